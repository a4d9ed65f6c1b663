"""The paired bootstrap of `boxflow compare` at COCO val scale: pooled matches against re-running
pycocotools' `accumulate()` for every resample.

Two models' detections on 5,000 images of 80 classes (0–14 boxes each, 7 on average, as COCO val
has; each model finds most boxes with its own noise and adds false alarms, up to 100 detections per
image), evaluated once by pycocotools. Then, for the same resamples of the images:
- pooled: `PooledMatches` of both models, `--resamples` resamples (what `compare` runs);
- accumulate: `accumulate()` per resample and model, as `compare` did before, timed on
  `--accumulate-resamples` of them and scaled to `--resamples` (all of them would take tens of
  minutes). The first of those resamples is checked to agree between the two.
Both do the same work per resample: the metrics of both models on the images drawn.

Usage: python benchmarks/bootstrap_bench.py [--images 5000] [--resamples 1000] [--accumulate-resamples 5]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the repository, for tests.helpers
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_models.evaluation import coco_metrics  # noqa: E402
from keras_models.evaluation.bootstrap import resample_counts  # noqa: E402
from keras_models.evaluation.evaluation_image import EvaluationImage  # noqa: E402
from keras_models.evaluation.pooled_matches import PooledMatches  # noqa: E402
from tests.helpers.coco_reference import accumulated_metrics  # noqa: E402

CLASSES = 80


def coco_like_images(images: int, seed: int) -> tuple[list[EvaluationImage], list[EvaluationImage]]:
    """The same ground truth with two models' detections."""
    rng = np.random.default_rng(seed)
    first, second = [], []
    for index in range(images):
        height, width = int(rng.integers(240, 640)), int(rng.integers(240, 640))
        count = int(rng.integers(0, 15))
        sizes = rng.uniform(6, 0.6 * min(height, width), (count, 2))
        corners = rng.uniform(0, 1, (count, 2)) * ([width, height] - sizes)
        boxes = np.concatenate([corners, corners + sizes], axis=1)
        classes = rng.integers(0, CLASSES, count)
        pair = []
        for noise in (0.06, 0.08):
            found = rng.random(count) < 0.8
            detected = boxes[found] + rng.normal(0, noise, (found.sum(), 4)) * np.tile(sizes[found], 2)
            labels = np.where(rng.random(found.sum()) < 0.9, classes[found], rng.integers(0, CLASSES, found.sum()))
            alarms = int(rng.integers(0, 100 - found.sum()))
            alarm_corners = rng.uniform(0, 1, (alarms, 2)) * [width - 20, height - 20]
            alarm_boxes = np.concatenate([alarm_corners, alarm_corners + rng.uniform(5, 20, (alarms, 2))], axis=1)
            pair.append(EvaluationImage(
                source_id=f"image-{index}", height=height, width=width, boxes=boxes, classes=classes,
                is_crowd=np.zeros(count, bool), difficult=np.zeros(count, bool),
                detection_boxes=np.concatenate([detected, alarm_boxes]),
                detection_classes=np.concatenate([labels, rng.integers(0, CLASSES, alarms)]),
                detection_scores=np.concatenate([rng.uniform(0.3, 1.0, found.sum()), rng.uniform(0.01, 0.6, alarms)]),
                detection_stddev=None))
        first.append(pair[0])
        second.append(pair[1])
    return first, second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--accumulate-resamples", type=int, default=5)
    args = parser.parse_args()

    first, second = coco_like_images(args.images, seed=0)
    started = time.perf_counter()
    evaluations = [coco_metrics.evaluate_coco(images, CLASSES) for images in (first, second)]
    detections = sum(len(image.detection_scores) for image in first + second)
    print(f"{args.images} images, {detections} detections of two models; pycocotools evaluate() "
          f"{time.perf_counter() - started:.1f}s (once, for both)")
    counts = resample_counts(args.images, args.resamples, seed=0)

    started = time.perf_counter()
    pooled = [PooledMatches(evaluation).metrics(counts) for evaluation in evaluations]
    pooled_seconds = time.perf_counter() - started
    print(f"pooled: {args.resamples} resamples x 2 models in {pooled_seconds:.1f}s")

    draws = np.random.default_rng(0)
    started = time.perf_counter()
    for row in range(args.accumulate_resamples):
        positions = draws.integers(0, args.images, args.images)  # resample_counts' draws, in order
        accumulated = [accumulated_metrics(evaluation, positions) for evaluation in evaluations]
        if row == 0:
            for model, values in enumerate(accumulated):
                gap = max(abs(values[name] - pooled[model][name][0]) for name in ("AP", "AP50", "AP75"))
                print(f"resample 0, model {model}: AP {values['AP']:.4f}, largest difference {gap:.1e}")
    per_resample = (time.perf_counter() - started) / args.accumulate_resamples
    accumulate_seconds = per_resample * args.resamples
    print(f"accumulate: {per_resample:.2f}s per resample (both models, {args.accumulate_resamples} timed); "
          f"{args.resamples} resamples would take {accumulate_seconds / 60:.1f} min")
    print(f"bootstrap of {args.images} images, {args.resamples} resamples, 2 models: pooled {pooled_seconds:.1f}s "
          f"(goal <= 60 s), accumulate {accumulate_seconds:.0f}s; accumulate/pooled "
          f"{accumulate_seconds / pooled_seconds:.0f}x")


if __name__ == "__main__":
    main()
