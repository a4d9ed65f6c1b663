"""Images per second of `boxflow prepare` (Beam DirectRunner, 2 worker processes) against a plain
single-process loop doing the same decode/validate/encode/write with `tf.io.TFRecordWriter`
(the way the TF OD API's `create_pascal_tf_record.py` works), on the same synthetic images.

The Beam run's fixed start-up (worker processes, imports, pipeline set-up) is measured on a tiny
input in the same process. Two ratios are printed: without that start-up (what the workers
achieve once running) and end to end (what a user waits for), the end-to-end one last. For scale,
the run also measures this machine's own ceiling: the same decode work in W plain processes
against one (shared caches and memory bandwidth keep it below W).

    python benchmarks/prepare_bench.py [--images 3000] [--image-size 640] [--workers 2]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from beam_jobs.encode import encode_example  # noqa: E402
from beam_jobs.image_check import check_image  # noqa: E402
from beam_jobs.prepare_job import run  # noqa: E402
from beam_jobs.prepare_settings import PrepareSettings  # noqa: E402
from beam_jobs.split import hash_split  # noqa: E402
from beam_jobs.sources.coco import plan_coco  # noqa: E402
from beam_jobs.validate import validate_image  # noqa: E402
from contracts import record_schema  # noqa: E402
from boxflow.synth import ANNOTATIONS_FILE, SynthConfig, write_synth_dataset  # noqa: E402


def single_process_loop(annotations: str, out_dir: str, num_shards: int = 8) -> int:
    """The straightforward baseline: one process, one image after another, round-robin shards."""
    plan = plan_coco(annotations, None)
    class_ids = {name: label for label, name in enumerate(plan.class_names, start=1)}
    os.makedirs(out_dir, exist_ok=True)
    writers = {
        split: [tf.io.TFRecordWriter(os.path.join(out_dir, record_schema.shard_name(split, i, count)))
                for i in range(count)]
        for split, count in (("train", num_shards), ("val", max(1, num_shards // 4)))
    }
    written = 0
    for source in plan.items:
        with open(source.image_path, "rb") as f:
            checked = check_image(f.read())
        result = validate_image(source, checked, class_ids, hash_split(source.source_id, 0.1))
        if result.image is not None:
            shards = writers[result.image.split]
            shards[written % len(shards)].write(encode_example(result.image))
            written += 1
    for shards in writers.values():
        for writer in shards:
            writer.close()
    return written


def _decode_all(paths: list[str]) -> float:
    started = time.perf_counter()
    for path in paths:
        with open(path, "rb") as f:
            check_image(f.read())
    return time.perf_counter() - started


def parallel_ceiling(image_dir: str, workers: int, count: int = 600) -> float:
    """Throughput of `workers` processes decoding `count` images each, over one process doing the same."""
    paths = [os.path.join(image_dir, name) for name in sorted(os.listdir(image_dir))[:count]]
    alone = _decode_all(paths)
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.map(_decode_all, [paths[:2]] * workers)  # start and warm the workers first
        started = time.perf_counter()
        pool.map(_decode_all, [paths] * workers)
        together = time.perf_counter() - started
    return workers * alone / together


def beam_prepare(annotations: str, out_dir: str, workers: int) -> int:
    settings = PrepareSettings(source_format="coco", input_path=annotations, out_dir=out_dir, workers=workers)
    return run(settings, progress=lambda _: None)["accounting"]["images_written"]


def timed(function, *args) -> tuple[float, int]:
    started = time.perf_counter()
    count = function(*args)
    return time.perf_counter() - started, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--image-size", type=int, default=640)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    logging.getLogger("apache_beam").setLevel(logging.ERROR)

    workdir = args.workdir or tempfile.mkdtemp(prefix="prepare_bench_")
    big, tiny = os.path.join(workdir, "synth"), os.path.join(workdir, "synth_tiny")
    config = SynthConfig.for_image_size(args.image_size)
    started = time.perf_counter()
    write_synth_dataset(big, args.images, config, seed=0)
    write_synth_dataset(tiny, 8, config, seed=1)
    print(f"generated {args.images} synth images of {args.image_size}px in {time.perf_counter() - started:.1f}s")
    for name in sorted(os.listdir(os.path.join(big, "images"))):  # warm the page cache for both contenders
        with open(os.path.join(big, "images", name), "rb") as f:
            f.read()

    # Each contender runs --repeats times, interleaved; the best time of each counts (noise only adds).
    loop_times, startup_times, beam_times = [], [], []
    for _ in range(args.repeats):
        seconds, loop_count = timed(single_process_loop, os.path.join(big, ANNOTATIONS_FILE),
                                    os.path.join(workdir, "out_loop"))
        loop_times.append(seconds)
        startup_times.append(timed(beam_prepare, os.path.join(tiny, ANNOTATIONS_FILE),
                                   os.path.join(workdir, "out_tiny"), args.workers)[0])
        seconds, beam_count = timed(beam_prepare, os.path.join(big, ANNOTATIONS_FILE),
                                    os.path.join(workdir, "out_beam"), args.workers)
        beam_times.append(seconds)
        assert loop_count == beam_count == args.images, (loop_count, beam_count)
    loop_seconds, startup_seconds, beam_seconds = min(loop_times), min(startup_times), min(beam_times)

    ceiling = parallel_ceiling(os.path.join(big, "images"), args.workers)
    loop_rate = loop_count / loop_seconds
    beam_rate_total = beam_count / beam_seconds
    beam_rate = beam_count / max(beam_seconds - startup_seconds, 1e-9)
    print(f"single-process loop (TFRecordWriter): {loop_seconds:7.1f}s  {loop_rate:7.1f} images/s")
    print(f"beam prepare, {args.workers} workers, end to end:  {beam_seconds:7.1f}s  {beam_rate_total:7.1f} images/s")
    print(f"beam fixed start-up (8-image run):     {startup_seconds:7.1f}s")
    print(f"beam prepare without start-up:          {beam_seconds - startup_seconds:7.1f}s  {beam_rate:7.1f} images/s")
    print(f"machine ceiling, {args.workers} plain processes decoding vs one: {ceiling:.2f}x")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"throughput ratio beam/loop, start-up excluded: {beam_rate / loop_rate:.2f}x")
    print(f"throughput ratio beam/loop, end to end: {beam_rate_total / loop_rate:.2f}x")


if __name__ == "__main__":
    main()
