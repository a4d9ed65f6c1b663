"""`run()` for `boxflow train`: data, strategy, model, schedule, callbacks, `fit`, run directory."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from typing import Callable

import keras

from boxflow import record_schema
from boxflow.errors import BoxflowError
from keras_models.backbones import load_backbone_weights
from keras_models.retinanet import RetinaNet
from keras_models.schedule import WarmupCosine
from keras_models.strategy import choose_strategy
from keras_models.train_callbacks import HistoryFile, StopOnNaN
from keras_models.train_settings import TrainSettings
from pipeline.dataset import make_dataset

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
FINAL_WEIGHTS = "model.weights.h5"


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def read_dataset_info(data_dir: str) -> dict:
    path = os.path.join(data_dir, record_schema.DATASET_INFO_FILE)
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as error:
        raise BoxflowError(f"--data {data_dir}: cannot read {record_schema.DATASET_INFO_FILE}: {error}") from None


def run(settings: TrainSettings, progress: Callable[[str], None] = _to_stderr) -> dict:
    """Trains, writing the run directory; returns `{"history": [...], "seconds": …}`."""
    info = read_dataset_info(settings.data_dir)
    train_images = info["splits"].get("train", {}).get("images", 0)
    if train_images < settings.batch_size:
        raise BoxflowError(f"--data {settings.data_dir}: {train_images} training images, fewer than one batch "
                           f"of {settings.batch_size}")
    keras.utils.set_random_seed(settings.seed)
    if settings.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    strategy = choose_strategy(settings.strategy)
    replicas = strategy.num_replicas_in_sync
    os.makedirs(settings.run_dir, exist_ok=True)
    _write_run_files(settings, info)

    steps_per_epoch = train_images // settings.batch_size
    total_steps = steps_per_epoch * settings.epochs
    schedule = WarmupCosine(settings.learning_rate, total_steps, int(settings.warmup_epochs * steps_per_epoch),
                            final_fraction=0.01)
    with strategy.scope():
        model = RetinaNet(num_classes=len(info["classes"]), image_size=settings.image_size,
                          backbone=settings.backbone, backbone_width=settings.backbone_width,
                          fpn_channels=settings.fpn_channels, head_depth=settings.head_depth,
                          head_channels=settings.head_channels,
                          anchor_size_multiplier=settings.anchor_size_multiplier)
        if settings.weights:
            load_backbone_weights(model.backbone, settings.weights)
        optimizer = (keras.optimizers.AdamW(schedule, weight_decay=1e-4, global_clipnorm=settings.clip_norm)
                     if settings.optimizer == "adamw"
                     else keras.optimizers.SGD(schedule, momentum=0.9, global_clipnorm=settings.clip_norm))
        model.compile(optimizer=optimizer)

    # Mirrored, MultiWorker and TPU strategies cannot take ragged values: pad at the boundary.
    padded = settings.max_boxes if replicas > 1 else None
    train = make_dataset(settings.data_dir, "train", settings.image_size, settings.batch_size, training=True,
                         seed=settings.seed, padded_max_boxes=padded, augmentation=settings.augmentation)
    validation = None
    if info["splits"].get("val", {}).get("images", 0) >= settings.batch_size:
        validation = make_dataset(settings.data_dir, "val", settings.image_size, settings.batch_size,
                                  training=False, padded_max_boxes=padded)

    stop_on_nan = StopOnNaN()
    callbacks = [
        stop_on_nan,
        keras.callbacks.BackupAndRestore(os.path.join(settings.run_dir, "backup")),
        keras.callbacks.ModelCheckpoint(os.path.join(settings.run_dir, "checkpoints", "epoch-{epoch:03d}.weights.h5"),
                                        save_weights_only=True),
        keras.callbacks.TensorBoard(os.path.join(settings.run_dir, "logs"), write_graph=False),
        HistoryFile(os.path.join(settings.run_dir, HISTORY_FILE)),
    ]
    progress(f"[train] {settings.backbone} RetinaNet at {settings.image_size}px, {train_images} images, "
             f"{settings.epochs} epochs of {steps_per_epoch} steps, {replicas} replica(s)")
    started = time.monotonic()
    model.fit(train, validation_data=validation, epochs=settings.epochs, callbacks=callbacks, verbose=2)
    if stop_on_nan.message:
        raise BoxflowError(stop_on_nan.message)
    model.save_weights(os.path.join(settings.run_dir, FINAL_WEIGHTS))
    with open(os.path.join(settings.run_dir, HISTORY_FILE)) as f:
        history = json.load(f)
    return {"history": history, "seconds": time.monotonic() - started}


def _write_run_files(settings: TrainSettings, info: dict) -> None:
    shutil.copy(os.path.join(settings.data_dir, record_schema.LABEL_MAP_FILE),
                os.path.join(settings.run_dir, record_schema.LABEL_MAP_FILE))
    config = {"settings": settings.to_json_dict(), "classes": info["classes"]}
    with open(os.path.join(settings.run_dir, CONFIG_FILE), "w") as f:
        json.dump(config, f, indent=2)
