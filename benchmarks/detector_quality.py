"""RetinaNet against Faster R-CNN: the same backbone, image size, data and time budget, side by side.

For each dataset, both detectors are trained from scratch through the `boxflow` command line as a new
user runs them: `boxflow train --model M --backbone tiny --image-size S --time-budget MINUTES`, every
other setting at its default and no `--config` (so Faster R-CNN is sized to the run), then evaluated
on held-out images and exported:
- synth: `boxflow synth` at 256 px (1,800 images, 300 held out);
- bccd (`../shared/data/bccd`, blood cells, 3 classes): its own splits, scored on `test`, at 384 px.

Each run prints mAP50, mAP, AP75 and AP_small with their 95% bootstrap intervals over images, the
median training images/s of its epochs, and the exported SavedModel's p50 latency at batch 1
(in-process `serving_default` on one held-out JPEG). It ends with one line per dataset giving
Faster R-CNN's mAP over RetinaNet's and its step time over RetinaNet's, synth's last, with the
targets (Faster R-CNN's synth mAP50 >= 0.85 in 14 minutes; step time within 2.5x of RetinaNet's).

    python benchmarks/detector_quality.py [--minutes 14] [--datasets synth,bccd] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import statistics
import tempfile
import time

from cli_runs import boxflow, boxflow_lines, evaluation

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPOSITORY.parent / "shared" / "data"
MODELS = ("retinanet", "faster_rcnn")
RATE = re.compile(r"([0-9.]+) training images/s")
HELD_OUT = 300  # synth images scored, none of them trained on


def prepare(name: str, workdir: str, images: int) -> tuple[str, str, int]:
    """`(prepared data folder, held-out split, image size)` of a dataset."""
    data = os.path.join(workdir, "data", name)
    if name == "synth":
        raw = os.path.join(workdir, "raw")
        boxflow("synth", "--out", raw, "--images", str(images), "--image-size", "256", "--seed", "7")
        boxflow("prepare", "--format", "coco", "--input", os.path.join(raw, "annotations.json"), "--out", data,
                "--val-fraction", str(HELD_OUT / images))
        return data, "val", 256
    if not SHARED_DATA.is_dir():
        raise SystemExit(f"the real datasets are not at {SHARED_DATA}")
    boxflow("prepare", "--format", "voc", "--input", str(SHARED_DATA / "bccd" / "BCCD"), "--out", data,
            "--num-shards", "2")
    return data, "test", 384


def serving_p50_ms(model_dir: str, data: str, split: str, calls: int = 50) -> float:
    import numpy as np
    import tensorflow as tf

    record = next(iter(tf.data.TFRecordDataset(sorted(str(p) for p in pathlib.Path(data).glob(f"{split}-*")))))
    image = tf.io.parse_single_example(record, {"image/encoded": tf.io.FixedLenFeature([], tf.string)})
    images = tf.reshape(image["image/encoded"], [1])
    signature = tf.saved_model.load(os.path.join(model_dir, "1")).signatures["serving_default"]
    signature(images=images)  # the first call traces
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        signature(images=images)
        times.append(time.perf_counter() - started)
    return float(np.percentile(times, 50) * 1000)


def interval_text(report: dict, name: str) -> str:
    value, interval = report["coco"][name], report["intervals"].get(name)
    if value is None:
        return f"{name} n/a"
    return f"{name} {value:.3f}" + (f" [{interval['low']:.3f}-{interval['high']:.3f}]" if interval else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=14.0, help="training budget of every run")
    parser.add_argument("--datasets", default="synth,bccd")
    parser.add_argument("--images", type=int, default=1800, help="synth images generated, 300 of them held out")
    parser.add_argument("--workdir", help="folder to work in (default: a temporary folder)")
    args = parser.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="boxflow-detector-quality-")
    os.makedirs(workdir, exist_ok=True)
    results: dict[tuple[str, str], dict] = {}
    speeds: dict[tuple[str, str], float] = {}
    for dataset in args.datasets.split(","):
        data, split, image_size = prepare(dataset, workdir, args.images)
        for model in MODELS:
            run = os.path.join(workdir, "runs", f"{dataset}-{model}")
            lines = boxflow_lines("train", "--model", model, "--backbone", "tiny", "--image-size", str(image_size),
                                  "--time-budget", str(args.minutes), "--data", data, "--out", run)
            rates = [float(match.group(1)) for line in lines for match in [RATE.search(line)] if match]
            speeds[dataset, model] = statistics.median(rates)
            report = evaluation(run, data, split, os.path.join(workdir, f"{dataset}-{model}.json"))
            model_dir = os.path.join(workdir, "models", f"{dataset}-{model}")
            boxflow("export", "--run", run, "--out", model_dir)
            results[dataset, model] = report
            print(f"# {dataset} ({split}), {model}: "
                  + ", ".join(interval_text(report, name) for name in ("AP50", "AP", "AP75", "AP_small"))
                  + f"; {len(rates)} epochs, median {speeds[dataset, model]:.1f} training images/s; "
                  f"serving p50 {serving_p50_ms(model_dir, data, split):.1f} ms", flush=True)
    # One ratio line per dataset, synth's (the one with targets) last.
    for dataset in sorted({dataset for dataset, _ in results}, key=lambda name: name == "synth"):
        retinanet, faster_rcnn = (results[dataset, model]["coco"] for model in MODELS)
        step_ratio = speeds[dataset, "retinanet"] / speeds[dataset, "faster_rcnn"]
        targets = (f"; faster_rcnn mAP50 {faster_rcnn['AP50']:.3f} after {args.minutes:g} minutes (target >= 0.85)"
                   if dataset == "synth" else "")
        print(f"{dataset} mAP faster_rcnn/retinanet {faster_rcnn['AP'] / max(retinanet['AP'], 1e-9):.2f}x, "
              f"step time faster_rcnn/retinanet {step_ratio:.2f}x (target <= 2.5x)" + targets)

if __name__ == "__main__":
    main()
