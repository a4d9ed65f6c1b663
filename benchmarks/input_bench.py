"""Examples per second of the tf.data training input, side by side on the same shards:

- full: `make_dataset(training=True)` with the default augmentation (decode, letterbox,
  scale jitter + crop, flip, colour jitter, JPEG quality, cutout, ragged batch), parallel;
- decode-only upper bound: read + parse + decode_jpeg + batch, parallel;
- full, no parallelism: the same pipeline on a one-thread private pool.

The last line is the ratio full / decode-only (target ≥ 0.6 on 2 cores).

    python benchmarks/input_bench.py [--images 1000] [--source-size 640] [--image-size 320]
    python benchmarks/input_bench.py --data DIR [--augmentation FILE.yaml] [--image-size S] [--batch-size B]

With `--data` it measures a prepared dataset's training split instead of synthetic images: the
full pipeline's rate is what `boxflow train` can be fed at most, to set against the training
images/s that `train` prints per epoch (docs/troubleshooting.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from beam_jobs.prepare_job import run  # noqa: E402
from beam_jobs.prepare_settings import PrepareSettings  # noqa: E402
from boxflow import record_schema  # noqa: E402
from boxflow.synth import ANNOTATIONS_FILE, SynthConfig, write_synth_dataset  # noqa: E402
from pipeline.augment.config import AugmentationConfig, load_augmentation_config  # noqa: E402
from pipeline.dataset import make_dataset, shard_files  # noqa: E402


def decode_only(data_dir: str, batch_size: int) -> tf.data.Dataset:
    files = tf.data.Dataset.from_tensor_slices(shard_files(data_dir, "train"))
    records = files.interleave(tf.data.TFRecordDataset, cycle_length=tf.data.AUTOTUNE,
                               num_parallel_calls=tf.data.AUTOTUNE)
    features = {record_schema.ENCODED: tf.io.FixedLenFeature([], tf.string)}
    images = records.map(lambda r: tf.io.decode_jpeg(tf.io.parse_single_example(r, features)[record_schema.ENCODED],
                                                     channels=3), num_parallel_calls=tf.data.AUTOTUNE)
    return images.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def single_threaded(dataset: tf.data.Dataset) -> tf.data.Dataset:
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    return dataset.with_options(options)


def examples_per_second(dataset: tf.data.Dataset, epochs: int) -> float:
    for _ in dataset.take(2):  # warm-up: threads, caches, autotuning
        pass
    count, started = 0, time.perf_counter()
    for _ in range(epochs):
        for batch in dataset:
            images = batch[0] if isinstance(batch, tuple) else batch
            count += int(images.shape[0])
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--source-size", type=int, default=640)
    parser.add_argument("--image-size", type=int, default=320)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", help="a prepared dataset to measure instead of synthetic images")
    parser.add_argument("--augmentation", help="YAML file of augmentation settings (default: the built-in recipe)")
    args = parser.parse_args()
    augmentation = load_augmentation_config(args.augmentation) if args.augmentation else AugmentationConfig()

    workdir = tempfile.mkdtemp(prefix="input_bench_")
    try:
        data_dir = args.data or os.path.join(workdir, "data")
        if not args.data:
            write_synth_dataset(os.path.join(workdir, "synth"), args.images,
                                SynthConfig.for_image_size(args.source_size), seed=0)
            run(PrepareSettings(source_format="coco", input_path=os.path.join(workdir, "synth", ANNOTATIONS_FILE),
                                out_dir=data_dir, val_fraction=0.0, workers=2), progress=lambda _: None)

        def full() -> tf.data.Dataset:
            return make_dataset(data_dir, "train", args.image_size, args.batch_size, training=True, seed=0,
                                augmentation=augmentation)

        # Interleaved rounds, best of each: the machine's noise only ever slows a run down.
        decode_rate = full_rate = serial_rate = 0.0
        for _ in range(args.rounds):
            decode_rate = max(decode_rate, examples_per_second(decode_only(data_dir, args.batch_size), args.epochs))
            full_rate = max(full_rate, examples_per_second(full(), args.epochs))
            serial_rate = max(serial_rate, examples_per_second(single_threaded(full()), 1))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    source = args.data or f"{args.images} synthetic images of {args.source_size}px"
    print(f"{source} → {args.image_size}px, batch {args.batch_size}, {os.cpu_count()} cores")
    print(f"decode-only upper bound:        {decode_rate:8.1f} examples/s")
    print(f"full pipeline, parallel:        {full_rate:8.1f} examples/s")
    print(f"full pipeline, no parallelism:  {serial_rate:8.1f} examples/s")
    print(f"parallel / serial full pipeline: {full_rate / serial_rate:.2f}x")
    print(f"full / decode-only: {full_rate / decode_rate:.2f}x")


if __name__ == "__main__":
    main()
