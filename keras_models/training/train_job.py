"""`run()` for `boxflow train`: data, strategy, model, schedule, callbacks, `fit`, run directory."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
import time
from typing import Callable, Optional

import keras
import tensorflow as tf

from contracts import record_schema
from contracts.errors import BoxflowError, SettingError
from contracts.user_paths import make_folder
from keras_models.ops.anchor_fitting import fit_anchors
from keras_models.ops.anchors import AnchorConfig
from keras_models.layers.backbone_weights import load_backbone_weights
from keras_models.training.evaluation_callback import CocoEvaluation, SemanticEvaluation
from keras_models.training.initialization import initialize_from
from keras_models.layers.normalization import default_normalization
from keras_models.models import MODEL_NAMES
from keras_models.training.model_factory import build_model, trains_on_masks, trains_on_semantic
from keras_models.training.optimizers import LearningRate, make_optimizer
from keras_models.models.dense_prediction_steps import DensePredictionSteps
from keras_models.models.model_config import ModelSizes
from keras_models.runs.run_directory import (BACKUP_DIR, CHECKPOINT_PATTERN, CHECKPOINTS_DIR, CONFIG_FILE, FINAL_WEIGHTS,
                                        HISTORY_FILE, LOGS_DIR, WORKERS_DIR)
from keras_models.training.schedule import WarmupCosine
from keras_models.training.strategy import choose_strategy, compiles_steps, worker_role, workers_in_tf_config
from keras_models.training.time_budget import TimeBudget
from keras_models.training.train_callbacks import EpochLog, HistoryFile, StopOnNaN
from keras_models.training.train_settings import TrainSettings
from pipeline.dataset import make_dataset, most_boxes_per_image, read_dataset_info, shard_files, stuff_classes
from pipeline.input_shards import full_batch_steps, records_per_pipeline

# With --time-budget the budget ends the run; this only bounds Keras' epoch loop.
BUDGETED_EPOCHS_LIMIT = 100_000


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(settings: TrainSettings, progress: Callable[[str], None] = _to_stderr) -> dict:
    """Trains, writing the run directory; returns `{"history": [...], "seconds": …}`."""
    with _dtype_policy(settings.precision_policy):
        return _train(settings, progress, time.monotonic())


@contextlib.contextmanager
def _dtype_policy(name: Optional[str]):
    """Keras reads the mixed-precision policy from a global; it is set for this run only."""
    previous = keras.mixed_precision.global_policy()
    if name:
        keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _train(settings: TrainSettings, progress: Callable[[str], None], started: float) -> dict:
    if settings.time_budget_minutes and workers_in_tf_config() > 1:
        raise SettingError("time_budget_minutes", "plans from this process's clock, which other workers do not share; "
                           "use --epochs with several workers")
    # First: MultiWorkerMirroredStrategy must exist before TensorFlow's runtime starts.
    strategy = choose_strategy(settings.strategy)
    replicas = strategy.num_replicas_in_sync
    info = read_dataset_info(settings.data_dir)
    train_images = info["splits"].get("train", {}).get("images", 0)
    val_images = info["splits"].get("val", {}).get("images", 0)
    if train_images < settings.batch_size:
        raise SettingError("data_dir", f"{settings.data_dir}: {train_images} training images, fewer than one batch "
                           f"of {settings.batch_size}")
    _check_maps(settings, info["splits"]["train"], progress)
    settings, sizes = settings.sized_to(info["splits"]["train"].get("boxes", 0) / train_images)
    settings = settings.padded_to(most_boxes_per_image(settings.data_dir, info))
    if sizes:
        progress(f"[train] {MODEL_NAMES[settings.model]} sized to the run: {sizes.describe()}; "
                 "--config sets any of them")
    keras.utils.set_random_seed(settings.seed)
    norm = settings.norm or default_normalization(replicas)
    # Every worker trains the same weights; only the chief writes the run directory. The
    # others keep their checkpoints and backups (which they need to resume) in a folder of
    # their own, so that workers sharing a file system never write the same file.
    is_chief, role = worker_role()
    run_dir = settings.run_dir if is_chief else os.path.join(settings.run_dir, WORKERS_DIR, role)
    make_folder(run_dir, "--out")

    steps_per_epoch = train_images // settings.batch_size
    epochs = BUDGETED_EPOCHS_LIMIT if settings.time_budget_minutes else settings.epochs
    anchors = _anchor_layout(settings, info, progress)
    learning_rate = settings.learning_rate_plan
    schedule = WarmupCosine(learning_rate.peak, steps_per_epoch * epochs,
                            int(settings.warmup_epochs * steps_per_epoch), final_fraction=0.01)
    with strategy.scope():
        model = _model(settings, len(info["classes"]), stuff_classes(info), norm, anchors)
        optimizer = make_optimizer(settings.optimizer, schedule, settings.weight_decay, settings.momentum,
                                   settings.clip_norm, model.trainable_variables)
        model.compile(optimizer=optimizer, jit_compile=compiles_steps(strategy, settings.xla))
        fit_scope = _multi_worker_fit_scope(model, strategy)
    _write_run_files(settings, run_dir, info, model, learning_rate, sizes)
    if settings.init_from:
        initialization = initialize_from(model, settings.init_from)
        initialization.write(run_dir)
        progress(f"[train] {initialization.summary()}")

    train, validation, validation_steps = fit_datasets(settings, strategy, val_images)

    stop_on_nan = StopOnNaN()
    budget = None
    if settings.time_budget_minutes:
        reserve = max(5.0, 0.02 * settings.time_budget_minutes * 60)
        budget = TimeBudget(started + settings.time_budget_minutes * 60, schedule, steps_per_epoch,
                            validation_share=(validation_steps or 0) / steps_per_epoch, reserve=reserve,
                            progress=progress)

    def run_path(*parts: str) -> str:
        return os.path.join(run_dir, *parts)

    callbacks = [stop_on_nan, *([budget] if budget else [])]
    if validation is not None and settings.eval_every and is_chief:
        class_names = [entry["name"] for entry in sorted(info["classes"], key=lambda entry: entry["id"])]
        if not model.FINDS_OBJECTS:
            callbacks.append(SemanticEvaluation(settings.data_dir, "val", class_names, settings.eval_every,
                                                settings.batch_size))
        else:
            callbacks.append(CocoEvaluation(settings.data_dir, "val", class_names, settings.eval_every,
                                            settings.batch_size, image_log_dir=run_path(LOGS_DIR, "images")))
    callbacks += [
        keras.callbacks.ModelCheckpoint(run_path(CHECKPOINTS_DIR, CHECKPOINT_PATTERN), save_weights_only=True),
        keras.callbacks.TensorBoard(run_path(LOGS_DIR), write_graph=False),
        HistoryFile(run_path(HISTORY_FILE)),
        # Last of the files: an epoch counts as done for a resumed run only once its checkpoint
        # and history entry are written (a kill between them lost the entry, seen here). Two
        # backups: a run killed while writing one resumes from the other (with one, the
        # half-written file stopped the resumed run: "bad object header version number").
        keras.callbacks.BackupAndRestore(run_path(BACKUP_DIR), double_checkpoint=True),
        EpochLog(None if budget else epochs, settings.batch_size, progress),
    ]
    length = (f"{settings.time_budget_minutes:g} minutes" if budget
              else f"{epochs} epochs") + f" of {steps_per_epoch} steps"
    precision = settings.precision_policy or "float32"
    progress(f"[train] {settings.model_config.backbone} {type(model).__name__} at {settings.image_size}px on {train_images} images, "
             f"{length}, {replicas} replica(s), {norm} norm, {precision}, {settings.optimizer} at "
             f"{learning_rate.describe()}{', XLA' if compiles_steps(strategy, settings.xla) else ''}")
    with fit_scope:
        model.fit(train, validation_data=validation, epochs=epochs, steps_per_epoch=steps_per_epoch,
                  validation_steps=validation_steps, callbacks=callbacks, shuffle=False, verbose=0)
    if stop_on_nan.message:
        broken = run_path(CHECKPOINTS_DIR, CHECKPOINT_PATTERN.format(epoch=stop_on_nan.bad_epoch))
        if os.path.exists(broken):
            os.remove(broken)
        good = CHECKPOINT_PATTERN.format(epoch=stop_on_nan.bad_epoch - 1) if stop_on_nan.bad_epoch > 1 else None
        raise BoxflowError(stop_on_nan.message + (f"; the last good checkpoint is {CHECKPOINTS_DIR}/{good}"
                                                  if good else "; no epoch finished before it"))
    model.save_weights(run_path(FINAL_WEIGHTS))
    with open(run_path(HISTORY_FILE)) as f:
        history = json.load(f)
    return {"history": history, "seconds": time.monotonic() - started,
            "steps": int(model.optimizer.iterations.numpy())}


# Per map a model learns from: dataset_info.json's count of what carries it and of what could,
# what it is, where it comes from, and what the ones without it still do.
_MAPS = {
    "masks": ("masks", "boxes", "instance masks", "prepare COCO polygons or RLE, VOC SegmentationObject PNGs, YOLO "
              "segmentation rows or `boxflow synth --masks`", "boxes have no mask; they train the boxes only"),
    "semantic": ("semantic_images", "images", "per-pixel labels", "prepare COCO panoptic, VOC SegmentationClass "
                 "PNGs, a folder of label PNGs or `boxflow synth --stuff`",
                 "images have no per-pixel labels; they teach nothing"),
}


def _check_maps(settings: TrainSettings, train_split: dict, progress: Callable[[str], None]) -> None:
    """Refuses a dataset without the per-pixel maps (instance masks, semantic labels) the model learns
    from, and says how many boxes or images lack them."""
    wanted = [kind for kind, needed in (("masks", trains_on_masks(settings)),
                                        ("semantic", trains_on_semantic(settings))) if needed]
    for kind in wanted:
        count_key, total_key, what, sources, without = _MAPS[kind]
        count, total = train_split.get(count_key, 0), train_split.get(total_key, 0)
        if not count:
            raise SettingError("data_dir", f"{settings.data_dir}: the training split has no {what}, which "
                               f"--model {settings.model} learns from ({sources})")
        if count < total:
            progress(f"[train] {total - count} of {total} training {without}")


def _anchor_layout(settings: TrainSettings, info: dict,
                   progress: Callable[[str], None]) -> Optional[AnchorConfig]:
    """The model's anchors sized by `anchor_size_multiplier`, or with `--anchors auto` fitted to the
    boxes; None for a model without anchors."""
    layout = settings.model_config.anchor_layout()
    if layout is None or settings.anchors != "auto":
        return layout
    anchors = fit_anchors(info.get("statistics", {}), settings.image_size,
                          os.path.join(settings.data_dir, record_schema.DATASET_INFO_FILE), layout)
    smallest = anchors.size_multiplier * 2 ** anchors.min_level
    largest = anchors.size_multiplier * 2 ** anchors.max_level * max(anchors.scales)
    ratios = ", ".join(f"{ratio:g}" for ratio in anchors.aspect_ratios)
    progress(f"[train] anchors fitted to the boxes: size multiplier {anchors.size_multiplier:g} (sides "
             f"{smallest:.0f}–{largest:.0f} px), aspect ratios (height/width) {ratios}")
    return anchors


def _model(settings: TrainSettings, num_classes: int, stuff: tuple[int, ...], norm: str,
           anchors: Optional[AnchorConfig]) -> DensePredictionSteps:
    """The run's model, its backbone loaded from `--weights` when given (inside the strategy's scope)."""
    model = build_model(settings, num_classes, norm, anchors, stuff)
    if settings.weights:
        load_backbone_weights(model.backbone, settings.model_config.backbone, settings.image_size, settings.weights)
    return model


def _multi_worker_fit_scope(model: DensePredictionSteps, strategy: tf.distribute.Strategy):
    """The scope to call `fit` in, and the two settings that make Keras 3's `fit` work under
    MultiWorkerMirroredStrategy (keras-team/keras#20585); every other strategy takes Keras'
    usual path.

    1. Before training, `fit` MEAN-reduces an input batch across workers to build the model
       symbolically, and that eager cross-worker reduce fails. Every model creates all its
       variables in `__init__`, so building the optimizer here leaves nothing to build; the
       model is detached from the strategy it was made under, and `fit` runs inside the
       strategy's scope, where Keras finds the strategy of models made outside one, a path
       without the pre-build.
    2. Each step's logs are then reduced across workers with `reduce("MEAN", axis=0)`, which
       fails on scalars: the models' steps report vectors of one value there (`_report`).
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return contextlib.nullcontext()
    model.optimizer.build(model.trainable_variables)
    model._distribute_strategy = None  # the one private attribute touched; see 1. above
    return strategy.scope()


def fit_datasets(settings: TrainSettings, strategy: tf.distribute.Strategy, val_images: int):
    """`(train, validation or None, validation steps)` for `fit`.

    One device: ragged batches, the validation split read once. Several replicas, XLA or a TPU:
    padded batches (none takes ragged values), and validation on full batches, the last ones
    filled up with blank images that count in no loss: every step has one static shape, and no
    image is lost. With several replicas each input pipeline builds its share through
    `distribute_datasets_from_function`, and every pipeline fills up to the same number of
    steps, those its largest share needs, so that all workers run the same steps.
    """
    replicas = strategy.num_replicas_in_sync
    compiled = compiles_steps(strategy, settings.xla)
    padded = settings.max_boxes if replicas > 1 or compiled else None
    # The validation loss of a mask or semantic model needs its maps too.
    maps = dict(with_masks=trains_on_masks(settings), with_semantic=trains_on_semantic(settings))

    def train(context: Optional[tf.distribute.InputContext] = None) -> tf.data.Dataset:
        # Repeated, with explicit epoch lengths: Keras then knows each epoch's end in advance.
        return make_dataset(settings.data_dir, "train", settings.image_size, settings.batch_size, training=True,
                            seed=settings.seed, padded_max_boxes=padded, augmentation=settings.augmentation,
                            input_context=context, deterministic=settings.deterministic_input,
                            threads=settings.input_threads, **maps).repeat()

    def validation(context: Optional[tf.distribute.InputContext] = None,
                   batch_count: Optional[int] = None) -> tf.data.Dataset:
        return make_dataset(settings.data_dir, "val", settings.image_size, settings.batch_size, training=False,
                            padded_max_boxes=padded, full_batches=compiled or context is not None,
                            batch_count=batch_count, input_context=context,
                            deterministic=settings.deterministic_input, threads=settings.input_threads, **maps)

    if replicas == 1:
        steps = math.ceil(val_images / settings.batch_size) if val_images else None
        return train(), validation() if val_images else None, steps
    if not val_images:
        return strategy.distribute_datasets_from_function(train), None, None
    planned_steps = []

    def validation_share(context: tf.distribute.InputContext) -> tf.data.Dataset:
        # Planned here, where the number of input pipelines is known; every pipeline plans the same.
        replicas_here = context.num_replicas_in_sync // context.num_input_pipelines
        counts = records_per_pipeline(shard_files(settings.data_dir, "val"), context.num_input_pipelines, val_images)
        steps = full_batch_steps(counts, context.get_per_replica_batch_size(settings.batch_size) * replicas_here)
        planned_steps.append(steps)
        return validation(context, batch_count=steps * replicas_here)

    distributed_validation = strategy.distribute_datasets_from_function(validation_share)
    return strategy.distribute_datasets_from_function(train), distributed_validation, planned_steps[0]


def _write_run_files(settings: TrainSettings, run_dir: str, info: dict, model: DensePredictionSteps,
                     learning_rate: LearningRate, sizes: Optional[ModelSizes]) -> None:
    shutil.copy(os.path.join(settings.data_dir, record_schema.LABEL_MAP_FILE),
                os.path.join(run_dir, record_schema.LABEL_MAP_FILE))
    # Without its dtype policy: a mixed-precision run's float32 weights serve in float32.
    model_config = {key: value for key, value in model.get_config().items() if key != "dtype"}
    config = {"settings": settings.to_json_dict(), "classes": info["classes"], "model": model_config,
              "learning_rate": learning_rate.to_json_dict()}
    if sizes:
        config["model_sizes"] = {"fitted": sizes.values(), "rule": sizes.reason}
    with open(os.path.join(run_dir, CONFIG_FILE), "w") as f:
        json.dump(config, f, indent=2)
