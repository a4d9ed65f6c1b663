"""`run()` for `boxflow train`: data, strategy, model, schedule, callbacks, `fit`, run directory."""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from typing import Callable

import keras

from boxflow import record_schema
from boxflow.errors import BoxflowError
from keras_models.backbones import load_backbone_weights
from keras_models.evaluation.evaluation_callback import CocoEvaluation
from keras_models.retinanet import RetinaNet
from keras_models.run_directory import (BACKUP_DIR, CHECKPOINT_PATTERN, CHECKPOINTS_DIR, CONFIG_FILE, FINAL_WEIGHTS,
                                        HISTORY_FILE, LOGS_DIR)
from keras_models.schedule import WarmupCosine
from keras_models.strategy import choose_strategy, workers_in_tf_config
from keras_models.time_budget import TimeBudget
from keras_models.train_callbacks import EpochLog, HistoryFile, StopOnNaN
from keras_models.train_settings import TrainSettings
from pipeline.dataset import make_dataset, read_dataset_info

# With --time-budget the budget ends the run; this only bounds Keras' epoch loop.
BUDGETED_EPOCHS_LIMIT = 100_000


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(settings: TrainSettings, progress: Callable[[str], None] = _to_stderr) -> dict:
    """Trains, writing the run directory; returns `{"history": [...], "seconds": …}`."""
    started = time.monotonic()
    info = read_dataset_info(settings.data_dir)
    train_images = info["splits"].get("train", {}).get("images", 0)
    val_images = info["splits"].get("val", {}).get("images", 0)
    if train_images < settings.batch_size:
        raise BoxflowError(f"--data {settings.data_dir}: {train_images} training images, fewer than one batch "
                           f"of {settings.batch_size}")
    if settings.time_budget_minutes and workers_in_tf_config() > 1:
        raise BoxflowError("--time-budget plans from this process's clock, which other workers do not share; "
                           "use --epochs with several workers")
    keras.utils.set_random_seed(settings.seed)
    if settings.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    strategy = choose_strategy(settings.strategy)
    replicas = strategy.num_replicas_in_sync
    os.makedirs(settings.run_dir, exist_ok=True)

    steps_per_epoch = train_images // settings.batch_size
    epochs = BUDGETED_EPOCHS_LIMIT if settings.time_budget_minutes else settings.epochs
    schedule = WarmupCosine(settings.learning_rate, steps_per_epoch * epochs,
                            int(settings.warmup_epochs * steps_per_epoch), final_fraction=0.01)
    with strategy.scope():
        model = RetinaNet(num_classes=len(info["classes"]), image_size=settings.image_size,
                          backbone=settings.backbone, backbone_width=settings.backbone_width,
                          fpn_channels=settings.fpn_channels, head_depth=settings.head_depth,
                          head_channels=settings.head_channels,
                          anchor_size_multiplier=settings.anchor_size_multiplier)
        if settings.weights:
            load_backbone_weights(model.backbone, settings.weights)
        model.compile(optimizer=_optimizer(settings, schedule), jit_compile=settings.xla)
    _write_run_files(settings, info, model)

    # Mirrored, MultiWorker and TPU strategies cannot take ragged values, nor can XLA: pad at the boundary.
    padded = settings.max_boxes if replicas > 1 or settings.xla else None
    # Repeated, with explicit epoch lengths: Keras then knows each epoch's end in advance.
    train = make_dataset(settings.data_dir, "train", settings.image_size, settings.batch_size, training=True,
                         seed=settings.seed, padded_max_boxes=padded, augmentation=settings.augmentation).repeat()
    has_validation = val_images > 0
    validation = make_dataset(settings.data_dir, "val", settings.image_size, settings.batch_size, training=False,
                              padded_max_boxes=padded) if has_validation else None
    validation_steps = math.ceil(val_images / settings.batch_size) if has_validation else None

    stop_on_nan = StopOnNaN()
    budget = None
    if settings.time_budget_minutes:
        reserve = max(5.0, 0.02 * settings.time_budget_minutes * 60)
        budget = TimeBudget(started + settings.time_budget_minutes * 60, schedule, steps_per_epoch,
                            validation_share=(validation_steps or 0) / steps_per_epoch, reserve=reserve,
                            progress=progress)

    def run_path(*parts: str) -> str:
        return os.path.join(settings.run_dir, *parts)

    callbacks = [stop_on_nan, *([budget] if budget else []),
                 keras.callbacks.BackupAndRestore(run_path(BACKUP_DIR))]
    if has_validation and settings.eval_every:
        class_names = [entry["name"] for entry in sorted(info["classes"], key=lambda entry: entry["id"])]
        callbacks.append(CocoEvaluation(settings.data_dir, "val", class_names, settings.eval_every,
                                        settings.batch_size, image_log_dir=run_path(LOGS_DIR, "images")))
    callbacks += [
        keras.callbacks.ModelCheckpoint(run_path(CHECKPOINTS_DIR, CHECKPOINT_PATTERN), save_weights_only=True),
        keras.callbacks.TensorBoard(run_path(LOGS_DIR), write_graph=False),
        HistoryFile(run_path(HISTORY_FILE)),
        EpochLog(None if budget else epochs, progress),
    ]
    length = (f"{settings.time_budget_minutes:g} minutes" if budget
              else f"{epochs} epochs") + f" of {steps_per_epoch} steps"
    progress(f"[train] {settings.backbone} RetinaNet at {settings.image_size}px on {train_images} images, "
             f"{length}, {replicas} replica(s){', XLA' if settings.xla else ''}")
    model.fit(train, validation_data=validation, epochs=epochs, steps_per_epoch=steps_per_epoch,
              validation_steps=validation_steps, callbacks=callbacks, shuffle=False, verbose=0)
    if stop_on_nan.message:
        raise BoxflowError(stop_on_nan.message)
    model.save_weights(run_path(FINAL_WEIGHTS))
    with open(run_path(HISTORY_FILE)) as f:
        history = json.load(f)
    return {"history": history, "seconds": time.monotonic() - started,
            "steps": int(model.optimizer.iterations.numpy())}


def _optimizer(settings: TrainSettings, schedule: WarmupCosine) -> keras.optimizers.Optimizer:
    if settings.optimizer == "adamw":
        return keras.optimizers.AdamW(schedule, weight_decay=settings.weight_decay,
                                      global_clipnorm=settings.clip_norm)
    return keras.optimizers.SGD(schedule, momentum=settings.momentum, weight_decay=settings.weight_decay,
                                global_clipnorm=settings.clip_norm)


def _write_run_files(settings: TrainSettings, info: dict, model: RetinaNet) -> None:
    shutil.copy(os.path.join(settings.data_dir, record_schema.LABEL_MAP_FILE),
                os.path.join(settings.run_dir, record_schema.LABEL_MAP_FILE))
    # Without its dtype policy: a mixed-precision run's float32 weights serve in float32.
    model_config = {key: value for key, value in model.get_config().items() if key != "dtype"}
    config = {"settings": settings.to_json_dict(), "classes": info["classes"], "model": model_config}
    with open(os.path.join(settings.run_dir, CONFIG_FILE), "w") as f:
        json.dump(config, f, indent=2)
