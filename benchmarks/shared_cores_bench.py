"""Two trainings sharing the cores: tf.data at its default pool against one bounded to the run's threads.

Two `boxflow train` processes start at once, each given its share of the cores for TensorFlow's own
pools (`TF_NUM_INTRAOP_THREADS` and `TF_NUM_INTEROP_THREADS` = cores / 2), as two runs sharing a
machine, or the test suite's two workers, are. They differ only in the input pipeline's threads:
- default: `input_threads` = every core, the size tf.data gives its pool on its own;
- bounded: `input_threads` left unset, so that it follows `TF_NUM_INTRAOP_THREADS` (cores / 2).

Both pairs train the same tiny model (`--model`, default Panoptic FPN, whose input decodes an
instance map and a class map per image) on the same `boxflow synth --stuff` data (`--masks` for the
detectors), prepared once, with the same settings and epochs, in alternating rounds. Each round prints both runs' wall times; a
pair is done when its slower run is. The last line is the slower run's time, default over bounded
(median over rounds, with the spread).

    python benchmarks/shared_cores_bench.py [--model panoptic_fpn] [--images 240] [--epochs 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from cli_runs import boxflow

from keras_models.models import MODELS

CONTENDERS = ("default", "bounded")
PER_PIXEL_MODELS = ("semantic_fpn", "panoptic_fpn")


def paired_run(data: str, workdir: str, name: str, model: str, epochs: int, cores: int) -> list[float]:
    """Wall seconds of the two side-by-side trainings of contender `name`."""
    share = str(max(1, cores // 2))
    environment = dict(os.environ, TF_NUM_INTRAOP_THREADS=share, TF_NUM_INTEROP_THREADS=share)
    config = os.path.join(workdir, f"{name}.yaml")
    with open(config, "w") as f:
        f.write(f"input_threads: {cores}\n" if name == "default" else "{}\n")
    started, processes = time.monotonic(), []
    for index in range(2):
        run = tempfile.mkdtemp(prefix=f"{name}-{index}-", dir=workdir)
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "boxflow", "train", "--data", data, "--out", os.path.join(run, "run"),
             "--model", model, "--image-size", "128", "--epochs", str(epochs), "--batch-size", "8",
             "--eval-every", "0", "--config", config],
            env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    seconds: dict[int, float] = {}
    while len(seconds) < len(processes):
        for index, process in enumerate(processes):
            if index not in seconds and process.poll() is not None:
                if process.returncode:
                    raise SystemExit(f"{name}: a training failed (exit {process.returncode})")
                seconds[index] = time.monotonic() - started
        time.sleep(0.2)
    return [seconds[index] for index in range(len(processes))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODELS, default="panoptic_fpn")
    parser.add_argument("--images", type=int, default=240)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    workdir = tempfile.mkdtemp(prefix="boxflow-shared-cores-")
    raw, data = os.path.join(workdir, "raw"), os.path.join(workdir, "data")
    per_pixel = args.model in PER_PIXEL_MODELS
    boxflow("synth", "--out", raw, "--images", str(args.images), "--image-size", "128", "--seed", "3",
            "--stuff" if per_pixel else "--masks")
    source = ("coco_panoptic", "panoptic.json") if per_pixel else ("coco", "annotations.json")
    boxflow("prepare", "--format", source[0], "--input", os.path.join(raw, source[1]), "--out", data,
            "--val-fraction", "0.1")
    slower: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    for round_index in range(args.rounds):
        order = CONTENDERS if round_index % 2 == 0 else CONTENDERS[::-1]
        for name in order:
            seconds = paired_run(data, workdir, name, args.model, args.epochs, cores)
            slower[name].append(max(seconds))
            print(f"round {round_index + 1} {name}: {seconds[0]:.0f} s and {seconds[1]:.0f} s", flush=True)
    ratios = [default / bounded for default, bounded in zip(slower["default"], slower["bounded"])]
    print(f"slower of two side-by-side {args.model} trainings on {cores} cores, tf.data default / bounded: "
          f"{statistics.median(ratios):.2f}x (rounds {min(ratios):.2f}-{max(ratios):.2f}; "
          f"bounded {statistics.median(slower['bounded']):.0f} s)")


if __name__ == "__main__":
    main()
