"""Examples per second of the tf.data training input, side by side on the same shards:

- full: `make_dataset(training=True)` with the default augmentation (decode, letterbox,
  scale jitter + crop, flip, colour jitter, JPEG quality, cutout, ragged batch), parallel;
- decode-only upper bound: read + parse + decode, exactly as the pipeline decodes (a JPEG at the
  DCT scale that keeps its longer side >= --image-size) + ragged batch, parallel: everything the
  full pipeline does except letterboxing and augmentation;
- full, no parallelism: the same pipeline on a one-thread private pool;
- where the time goes: decoding and each augmentation op, each timed alone on one core.

The last line is the ratio full / decode-only: the share of the input time that is not
letterboxing and augmentation (target >= 0.5 on 2 cores).

    python benchmarks/input_bench.py [--images 1000] [--source-size 640] [--image-size 320]
    python benchmarks/input_bench.py --data DIR [--augmentation FILE.yaml] [--image-size S] [--batch-size B]

With `--data` it measures a prepared dataset's training split instead of synthetic images: the
full pipeline's rate is what `boxflow train` can be fed at most, to set against the training
images/s that `train` prints per epoch (docs/troubleshooting.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from beam_jobs.prepare_job import run  # noqa: E402
from beam_jobs.prepare_settings import PrepareSettings  # noqa: E402
from boxflow.synth import ANNOTATIONS_FILE, SynthConfig, write_synth_dataset  # noqa: E402
from pipeline.augment.compose import augment  # noqa: E402
from pipeline.augment.config import AugmentationConfig, load_augmentation_config  # noqa: E402
from pipeline.dataset import make_dataset, shard_files  # noqa: E402
from pipeline.record_decoding import decode_record  # noqa: E402


def decode_only(data_dir: str, image_size: int, batch_size: int) -> tf.data.Dataset:
    files = tf.data.Dataset.from_tensor_slices(shard_files(data_dir, "train"))
    records = files.interleave(tf.data.TFRecordDataset, cycle_length=tf.data.AUTOTUNE,
                               num_parallel_calls=tf.data.AUTOTUNE)
    examples = records.map(lambda r: decode_record(r, shrink_for=image_size), num_parallel_calls=tf.data.AUTOTUNE)
    batches = examples.map(lambda e: (e["image"], e["boxes"], e["classes"])).ragged_batch(batch_size)
    return batches.prefetch(tf.data.AUTOTUNE)


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

        def full(recipe: AugmentationConfig = augmentation) -> tf.data.Dataset:
            return make_dataset(data_dir, "train", args.image_size, args.batch_size, training=True, seed=0,
                                augmentation=recipe)

        # Interleaved rounds, best of each: the machine's noise only ever slows a run down.
        rates: dict[str, float] = {}

        def measure(name: str, dataset: tf.data.Dataset, epochs: int = args.epochs) -> None:
            rates[name] = max(rates.get(name, 0.0), examples_per_second(dataset, epochs))

        for _ in range(args.rounds):
            measure("decode-only", decode_only(data_dir, args.image_size, args.batch_size))
            measure("full", full())
            measure("serial", single_threaded(full()), 1)
        costs = op_costs(data_dir, args.image_size, augmentation)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    source = args.data or f"{args.images} synthetic images of {args.source_size}px"
    print(f"{source} → {args.image_size}px, batch {args.batch_size}, {os.cpu_count()} cores")
    print(f"decode-only upper bound:        {rates['decode-only']:8.1f} examples/s")
    print(f"full pipeline, parallel:        {rates['full']:8.1f} examples/s")
    print(f"full pipeline, no parallelism:  {rates['serial']:8.1f} examples/s")
    print(f"parallel / serial full pipeline: {rates['full'] / rates['serial']:.2f}x")
    print("where one core's time goes, ms per example (each step timed alone; expected = when applied x probability):")
    for step, (applied, probability) in costs.items():
        print(f"  {step:<28} {applied:6.2f} when applied, {applied * probability:6.2f} expected")
    print(f"full / decode-only: {rates['full'] / rates['decode-only']:.2f}x")


NOTHING = AugmentationConfig(flip_probability=0.0, scale_range=None, colour_probability=0.0, jpeg_probability=0.0,
                             cutout_probability=0.0)


def op_costs(data_dir: str, image_size: int, recipe: AugmentationConfig, count: int = 32,
             repeats: int = 8) -> dict[str, tuple[float, float]]:
    """`{step: (ms per example when applied, the recipe's probability of applying it)}` on one core.

    Each step runs alone in a one-thread tf.data map over `count` examples held in memory, less
    the same map doing nothing: decoding from the records; each augmentation op, forced on, on
    letterboxed float32 images as the pipeline hands them over.
    """
    records = tf.data.TFRecordDataset(shard_files(data_dir, "train")).take(count).cache()
    decoded = records.map(lambda r: {key: value for key, value in decode_record(r, shrink_for=image_size).items()
                                     if key != "source_id"}).cache()
    size = (image_size, image_size)
    letterboxed = decoded.map(lambda e: augment(e, tf.constant([0, 0], tf.int64), NOTHING, size)).cache()

    def milliseconds(base: tf.data.Dataset, step) -> float:
        seeds = tf.data.Dataset.random(seed=0).batch(2)
        mapped = single_threaded(tf.data.Dataset.zip(base.repeat(repeats), seeds).map(step))
        for _ in mapped.take(count):  # warm-up: tracing, caches
            pass
        started = time.perf_counter()
        examples = sum(1 for _ in mapped)
        return 1000 * (time.perf_counter() - started) / examples

    doing_nothing = {}

    def ms_of(base: tf.data.Dataset, step) -> float:
        if id(base) not in doing_nothing:
            doing_nothing[id(base)] = milliseconds(base, lambda example, seed: example)
        return milliseconds(base, step) - doing_nothing[id(base)]

    on = {"letterbox + scale jitter": (dataclasses.replace(NOTHING, scale_range=recipe.scale_range), size, 1.0),
          "flip": (dataclasses.replace(NOTHING, flip_probability=1.0), None, recipe.flip_probability),
          "rotate90": (dataclasses.replace(NOTHING, rotate90_probability=1.0), None, recipe.rotate90_probability),
          "colour jitter": (dataclasses.replace(NOTHING, colour_probability=1.0), None, recipe.colour_probability),
          "JPEG quality": (dataclasses.replace(NOTHING, jpeg_probability=1.0), None, recipe.jpeg_probability),
          "cutout": (dataclasses.replace(NOTHING, cutout_probability=1.0), None, recipe.cutout_probability)}
    costs = {"decode (DCT-scaled JPEG)": (ms_of(records, lambda record, seed: decode_record(record, image_size)), 1.0)}
    for step, (config, output_size, probability) in on.items():
        base = decoded if output_size else letterboxed
        costs[step] = (ms_of(base, lambda e, seed, c=config, o=output_size: augment(e, seed, c, o)), probability)
    return costs


if __name__ == "__main__":
    main()
