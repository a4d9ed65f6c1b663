"""Instance masks in the input pipeline: one packed instance map per image against a ragged stack of
per-object masks, side by side on the same records.

Both read the same `synth --masks` records (256 px) and decode every object's mask PNG; then
- packed (what `make_dataset(with_masks=True)` does): the PNGs are painted into one int32 `[H, W]`
  map (`i + 1` where box `i` shows), letterboxed by nearest neighbour, batched dense `[B, S, S]`;
- ragged (the TF OD API's and Model Garden's form): the PNGs are stacked `[N, H, W]` uint8,
  letterboxed by nearest neighbour, batched ragged `[B, None, S, S]`.
Neither decodes or resizes the image itself (the same work for both). Each is timed over the same
passes, alternating, and the bytes of mask data per batch are counted. The last line is packed's
examples/s over ragged's.

    python benchmarks/instance_map_bench.py [--images 400] [--image-size 256] [--passes 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time

import tensorflow as tf

from boxflow.synth import ANNOTATIONS_FILE, SynthConfig, write_synth_dataset
from contracts import record_schema as keys
from pipeline.dataset import shard_files
from pipeline.letterbox import letterbox_map
from pipeline.record_decoding import instance_map_from_pngs

FEATURES = {keys.MASK: tf.io.VarLenFeature(tf.string), keys.HEIGHT: tf.io.FixedLenFeature([], tf.int64),
            keys.WIDTH: tf.io.FixedLenFeature([], tf.int64),
            **{key: tf.io.VarLenFeature(tf.float32) for key in keys.BOX_KEYS},
            keys.IS_CROWD: tf.io.VarLenFeature(tf.int64)}


def parsed(serialized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    features = tf.io.parse_single_example(serialized, FEATURES)
    pngs = tf.sparse.to_dense(features[keys.MASK])
    boxes = tf.stack([tf.sparse.to_dense(features[key]) for key in keys.BOX_KEYS], axis=-1)
    crowd = tf.sparse.to_dense(features[keys.IS_CROWD]) != 0
    shape = tf.cast(tf.stack([features[keys.HEIGHT], features[keys.WIDTH]]), tf.int32)
    return pngs, boxes, crowd, shape


def packed(files: list[str], size: int, batch: int) -> tf.data.Dataset:
    def one(serialized):
        pngs, boxes, crowd, shape = parsed(serialized)
        return letterbox_map(instance_map_from_pngs(pngs, boxes, crowd, shape), size)

    return tf.data.TFRecordDataset(files).map(one, num_parallel_calls=tf.data.AUTOTUNE).batch(batch)


def ragged(files: list[str], size: int, batch: int) -> tf.data.Dataset:
    def one(serialized):
        pngs, _, _, shape = parsed(serialized)
        # An image without objects has no PNG to stack: an empty stack of its size.
        masks = tf.cond(tf.size(pngs) > 0,
                        lambda: tf.map_fn(lambda png: tf.io.decode_png(png, channels=1)[..., 0], pngs,
                                          fn_output_signature=tf.TensorSpec([None, None], tf.uint8)),
                        lambda: tf.zeros(tf.concat([[0], shape], axis=0), tf.uint8))
        scale = size / tf.cast(tf.reduce_max(shape), tf.float32)
        resized = tf.image.resize(masks[..., tf.newaxis], tf.cast(tf.round(tf.cast(shape, tf.float32) * scale),
                                                                   tf.int32), method="nearest")[..., 0]
        fitted = tf.shape(resized)
        return tf.pad(resized, [[0, 0], [0, size - fitted[1]], [0, size - fitted[2]]])

    return tf.data.TFRecordDataset(files).map(one, num_parallel_calls=tf.data.AUTOTUNE).ragged_batch(batch)


def timed(dataset: tf.data.Dataset) -> tuple[float, int, int]:
    """`(seconds, examples, mask bytes)` of one pass."""
    started, examples, size = time.perf_counter(), 0, 0
    for masks in dataset:
        examples += int(masks.shape[0]) if isinstance(masks, tf.Tensor) else int(masks.nrows())
        values = masks if isinstance(masks, tf.Tensor) else masks.flat_values
        size += int(tf.size(values)) * values.dtype.size
    return time.perf_counter() - started, examples, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="boxflow-instance-map-bench-")
    config = dataclasses.replace(SynthConfig.for_image_size(args.image_size), masks=True)
    write_synth_dataset(f"{root}/synth", args.images, config, seed=5)
    from beam_jobs.prepare_job import run
    from beam_jobs.prepare_settings import PrepareSettings

    run(PrepareSettings(source_format="coco", input_path=f"{root}/synth/{ANNOTATIONS_FILE}", out_dir=f"{root}/data",
                        val_fraction=0.0), progress=lambda _: None)
    files = shard_files(f"{root}/data", "train")
    pipelines = {"packed": packed(files, args.image_size, args.batch_size),
                 "ragged": ragged(files, args.image_size, args.batch_size)}
    for pipeline in pipelines.values():
        timed(pipeline)  # traced and warmed, page cache filled
    rates: dict[str, list[float]] = {name: [] for name in pipelines}
    batch_bytes: dict[str, float] = {}
    for _ in range(args.passes):
        for name, pipeline in pipelines.items():
            seconds, examples, size = timed(pipeline)
            rates[name].append(examples / seconds)
            batch_bytes[name] = size / examples * args.batch_size
    for name in pipelines:
        print(f"# {name}: {statistics.median(rates[name]):.0f} examples/s (passes {min(rates[name]):.0f}-"
              f"{max(rates[name]):.0f}), {batch_bytes[name] / 2**20:.2f} MiB of masks per batch of "
              f"{args.batch_size}")
    ratio = statistics.median(rates["packed"]) / statistics.median(rates["ragged"])
    print(f"packed/ragged examples/s {ratio:.2f}x, mask bytes per batch {batch_bytes['packed'] / batch_bytes['ragged']:.2f}x")


if __name__ == "__main__":
    main()
