"""`make_dataset`: prepared shards → `(images, {"boxes", "classes"})` batches for `fit`.

Each input pipeline of a strategy reads its share of the files (`pipeline/input_shards.py`).
"""

from __future__ import annotations

import json
import os
from typing import Optional

import tensorflow as tf

from contracts import record_schema
from contracts.errors import BoxflowError
from pipeline.augment.compose import augment
from pipeline.augment.config import AugmentationConfig
from pipeline.augment.mosaic import mosaic_dataset
from pipeline.input_shards import pipeline_share
from pipeline.as_written import as_written
from pipeline.augment.pixel_maps import CLASS_MAP, FILL, INSTANCE_MAP, maps_of
from pipeline.letterbox import letterbox, letterbox_map
from pipeline.ragged_padding import ragged_to_padded
from pipeline.record_decoding import decode_record

AUTOTUNE = tf.data.AUTOTUNE
# The key of a full batch's `[B]` float32 mask: 1 for a real image, 0 for a blank one that fills
# up a batch. A float, not a bool: Keras averages a distributed batch's values when it builds a
# model, and a bool has no mean.
IMAGE_VALID = "image_valid"


def shard_files(data_dir: str, split: str) -> list[str]:
    """The shard files of `split`, sorted; raises `BoxflowError` for an incomplete dataset."""
    if not tf.io.gfile.exists(os.path.join(data_dir, record_schema.DATASET_INFO_FILE)):
        raise BoxflowError(f"{data_dir}: no {record_schema.DATASET_INFO_FILE}: not a complete prepared dataset "
                           "(run `boxflow prepare`, or wait for it to finish)")
    files = sorted(tf.io.gfile.glob(os.path.join(data_dir, record_schema.shard_pattern(split))))
    if not files:
        raise BoxflowError(f"{data_dir}: no shards for split '{split}'")
    return files


def read_dataset_info(data_dir: str) -> dict:
    """The dataset's `dataset_info.json` (DESIGN.md §3); raises `BoxflowError` when unreadable."""
    path = os.path.join(data_dir, record_schema.DATASET_INFO_FILE)
    try:
        with tf.io.gfile.GFile(path) as f:
            return json.load(f)
    except (OSError, ValueError, tf.errors.OpError) as error:
        raise BoxflowError(f"--data {data_dir}: cannot read {record_schema.DATASET_INFO_FILE}: {error}") from None


def stuff_classes(info: dict) -> tuple[int, ...]:
    """The label ids `dataset_info.json` names as stuff (a dataset without per-pixel labels has none)."""
    return tuple(entry["id"] for entry in info["classes"] if entry.get("kind") == "stuff")


def most_boxes_per_image(data_dir: str, info: dict, splits: tuple[str, ...] = ("train", "val")) -> int:
    """The most boxes in one image of `splits` (those present): `dataset_info.json`'s count, or, for
    a dataset prepared before prepare counted them, the longest box list in the split's records."""
    counts = []
    for split in (name for name in splits if name in info["splits"]):
        count = info["splits"][split].get("max_boxes_per_image")
        if count is None:
            labels = tf.data.TFRecordDataset(shard_files(data_dir, split)).map(as_written(
                lambda serialized: tf.io.parse_single_example(
                    serialized, {record_schema.CLASS_LABEL: tf.io.VarLenFeature(tf.int64)})[record_schema.CLASS_LABEL]))
            count = int(labels.reduce(tf.constant(0, tf.int64), as_written(
                lambda most, label: tf.maximum(most, tf.size(label.values, tf.int64)))))
        counts.append(count)
    return max(counts, default=0)


def make_dataset(
    data_dir: str,
    split: str,
    image_size: int,
    batch_size: int,
    training: bool,
    seed: int = 0,
    deterministic: bool = False,
    padded_max_boxes: Optional[int] = None,
    full_batches: bool = False,
    batch_count: Optional[int] = None,
    augmentation: Optional[AugmentationConfig] = None,
    shuffle_buffer: int = 1024,
    input_context: Optional[tf.distribute.InputContext] = None,
    with_masks: bool = False,
    with_semantic: bool = False,
    threads: Optional[int] = None,
) -> tf.data.Dataset:
    """Streams a split of a prepared dataset.

    Each element is `(images, targets)`: images float32 `[B, S, S, 3]` in 0..255
    (letterboxed to `image_size`), targets `{"boxes": [B, None, 4] pixels xyxy of the
    letterboxed image, "classes": [B, None] int32 from 0}` as ragged tensors, or, with
    `padded_max_boxes`, dense `[B, M, 4]` / `[B, M]` with class -1 as padding (for
    distribution strategies). `with_masks` adds `targets["instance_map"]`: int32 `[B, S, S]`,
    `i + 1` where box `i` of the image shows, 0 elsewhere (see `instance_map_from_pngs`): one map
    per image, moved with the pixels by every augmentation op; `with_semantic` adds
    `targets["class_map"]`: int32 `[B, S, S]` label-map ids per pixel, 0 background,
    `IGNORE_LABEL` void and in the letterbox's padding, moved the same way. `batch_size` is
    global; with an `input_context` each input pipeline reads its shard of the data and batches
    its per-replica share.
    Training shuffles (seeded), applies `augmentation` (after the letterbox, so at
    model resolution) and drops the last partial batch. Otherwise, with `full_batches`, the last
    batch is filled up with blank images, and `targets[IMAGE_VALID]` `[B]` (1 or 0) tells the real
    ones: every batch has the same static shape (XLA, TPUs) and no image is lost; `batch_count`
    then makes it exactly that many batches, all-blank ones after the split's, so that every input
    pipeline of a strategy runs the same steps. `deterministic=True` fixes the order of every
    parallel step, so a run reproduces bit for bit. No stream is autotuned: each parallel step runs
    one call per thread of the pool. `threads` sizes that pool (None: every core, tf.data's default).
    """
    files = shard_files(data_dir, split)
    maps = (INSTANCE_MAP,) * with_masks + (CLASS_MAP,) * with_semantic
    pipelines, index = 1, 0
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
        pipelines, index = input_context.num_input_pipelines, input_context.input_pipeline_id
    share = pipeline_share(files, pipelines, index)
    records = _interleave(tf.data.Dataset.from_tensor_slices(share.files), training, seed, deterministic)
    if share.by_record:
        records = records.shard(pipelines, index)

    if training:
        records = records.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if training and augmentation is not None:
        # One stateless seed per example, different each epoch, fixed by `seed`. The
        # augmentation's first op letterboxes with its scale jitter, in one resize.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        examples = tf.data.Dataset.zip(records, seeds).map(as_written(
            lambda serialized, example_seed: _square(
                augment(_decode(serialized, image_size, maps), example_seed, augmentation,
                        (image_size, image_size)),
                image_size)),
            num_parallel_calls=AUTOTUNE, deterministic=deterministic)
        if augmentation.mosaic_probability > 0:
            examples = mosaic_dataset(examples, augmentation, seed, deterministic).map(
                as_written(lambda example: _square(example, image_size)))
    else:
        examples = records.map(as_written(lambda serialized: _letterboxed(serialized, image_size, maps)),
                               num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    batches = examples.ragged_batch(batch_size, drop_remainder=training)
    batches = batches.map(as_written(_to_inputs_and_targets), num_parallel_calls=AUTOTUNE,
                          deterministic=deterministic)
    if full_batches and not training:
        batches = batches.map(as_written(lambda images, targets: _filled(images, targets, batch_size, image_size)))
        if batch_count is not None:
            batches = batches.concatenate(_blank_batches(batches.element_spec)).take(batch_count)
    if padded_max_boxes is not None:
        batches = batches.map(as_written(lambda images, targets: (images, _padded(targets, padded_max_boxes))),
                              num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    options = tf.data.Options()
    options.deterministic = deterministic
    # Sharding is done above, explicitly; the strategy must not shard again.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    # Fixed parallelism, one call per thread. An autotuned iterator's deletion waits for autotuning's
    # thread to wake, and that thread sleeps up to a minute between rounds: Keras deletes the training
    # iterator at the end of `fit` and the validation one each epoch, and the deletions held the run
    # 28-50 s in a third to half of the runs (seen in the native stack:
    # `RootDataset::Iterator::~Iterator` waiting on `Model::OptimizeLoop`). At every core it is no slower:
    # 394 and 356 examples/s against 252 and 328 autotuned (Panoptic FPN's input, 2 cores).
    options.autotune.enabled = False
    if threads is not None:
        # tf.data sizes its pool to the machine, whatever TensorFlow's own pools are set to, so a run
        # bounded to its share of a shared machine would not stay inside it
        # (benchmarks/shared_cores_bench.py measures two such runs side by side).
        options.threading.private_threadpool_size = threads
    return batches.with_options(options).prefetch(AUTOTUNE)


def _interleave(files: tf.data.Dataset, training: bool, seed: int, deterministic: bool) -> tf.data.Dataset:
    if training:
        files = files.shuffle(1024, seed=seed, reshuffle_each_iteration=True)
    return files.interleave(tf.data.TFRecordDataset, cycle_length=AUTOTUNE, num_parallel_calls=AUTOTUNE,
                            deterministic=deterministic)


def _decode(serialized: tf.Tensor, image_size: int, maps: tuple[str, ...]) -> dict[str, tf.Tensor]:
    example = decode_record(serialized, shrink_for=image_size, with_masks=INSTANCE_MAP in maps,
                            with_semantic=CLASS_MAP in maps)
    return {key: value for key, value in example.items() if key != "source_id"}


def _letterboxed(serialized: tf.Tensor, image_size: int, maps: tuple[str, ...]) -> dict[str, tf.Tensor]:
    example = _decode(serialized, image_size, maps)
    image, boxes, _ = letterbox(example["image"], example["boxes"], image_size)
    return {**example, **{key: letterbox_map(example[key], image_size, FILL[key]) for key in maps},
            "image": image, "boxes": boxes}


def _square(example: dict, image_size: int) -> dict:
    """Restores the static `[S, S, 3]` image (and `[S, S]` maps) shape that shape-changing ops
    (rot90) leave unknown."""
    return {**example, "image": tf.ensure_shape(example["image"], [image_size, image_size, 3]),
            **{key: tf.ensure_shape(example[key], [image_size, image_size]) for key in maps_of(example)}}


def _to_inputs_and_targets(batch: dict[str, tf.Tensor]) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    return batch["image"], {key: value for key, value in batch.items() if key != "image"}


def _filled(images: tf.Tensor, targets: dict[str, tf.RaggedTensor], batch_size: int,
            image_size: int) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """A batch of up to `batch_size` images filled up with blank, box-free ones, and the mask of
    the real ones."""
    count = tf.shape(images)[0]
    blanks = batch_size - count
    images = tf.concat([images, tf.zeros(tf.stack([blanks, image_size, image_size, 3]), images.dtype)], axis=0)
    lengths = tf.concat([targets["boxes"].row_lengths(), tf.zeros([blanks], tf.int64)], axis=0)
    filled = {"boxes": tf.RaggedTensor.from_row_lengths(targets["boxes"].flat_values, lengths),
              "classes": tf.RaggedTensor.from_row_lengths(targets["classes"].flat_values, lengths),
              IMAGE_VALID: tf.cast(tf.range(batch_size) < count, tf.float32)}
    for key in maps_of(targets):
        filled[key] = tf.ensure_shape(tf.pad(targets[key], [[0, blanks], [0, 0], [0, 0]], constant_values=FILL[key]),
                                      [batch_size, image_size, image_size])
    return tf.ensure_shape(images, [batch_size, image_size, image_size, 3]), filled


def _blank_batches(spec) -> tf.data.Dataset:
    """Endless all-blank batches of the filled-up batches' `spec`: no boxes, no valid image."""
    image_spec, target_spec = spec
    batch_size = image_spec.shape[0]
    no_boxes = tf.zeros([batch_size], tf.int64)
    blank = (tf.zeros(image_spec.shape, image_spec.dtype),
             {"boxes": tf.RaggedTensor.from_row_lengths(tf.zeros([0, 4], target_spec["boxes"].dtype), no_boxes),
              "classes": tf.RaggedTensor.from_row_lengths(tf.zeros([0], target_spec["classes"].dtype), no_boxes),
              IMAGE_VALID: tf.zeros([batch_size], tf.float32)})
    for key in maps_of(target_spec):
        blank[1][key] = tf.fill(target_spec[key].shape, FILL[key])
    return tf.data.Dataset.from_tensors(blank).repeat()


def _padded(targets: dict[str, tf.RaggedTensor], max_boxes: int) -> dict[str, tf.Tensor]:
    boxes, classes = ragged_to_padded(targets["boxes"], targets["classes"], max_boxes)
    return {**targets, "boxes": boxes, "classes": classes}
