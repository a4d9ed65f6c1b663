"""A confidence interval for COCO mAP by bootstrap over images.

pycocotools matches detections to ground truth per (class, area range, image) in
`evaluate()`; only `accumulate()` pools images. So a resample of images reuses the
per-image matches and re-runs just the pooling, which makes a few hundred resamples
cost seconds rather than minutes. Each interval's ends are percentiles of the resamples' values.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
from typing import Optional, Sequence

import numpy as np
from pycocotools.cocoeval import COCOeval

from keras_models.evaluation.coco_metrics import AREA_ALL, AREA_SMALL, IOU_50, IOU_75, MAX_DETECTIONS_100, mean_precision

INTERVAL_METRICS = ("AP", "AP50", "AP75", "AP_small")  # COCO's names (coco_metrics.STAT_NAMES)


@dataclasses.dataclass(frozen=True)
class Interval:
    low: float
    high: float
    level: float
    resamples: int


def resampled_metrics(evaluation: COCOeval, image_positions: np.ndarray) -> dict[str, Optional[float]]:
    """`INTERVAL_METRICS` (100 detections) over the images at `image_positions` (repeats allowed);
    None where undefined (AP_small without small boxes)."""
    evaluated = evaluation._paramsEval  # the parameters evaluate() ran with; the layout of evalImgs
    images, areas = len(evaluated.imgIds), len(evaluated.areaRng)
    kept_areas = (AREA_ALL, AREA_SMALL)
    resample = copy.copy(evaluation)
    # evalImgs is laid out [class][area range][image]; keep areas 'all' and 'small', and the chosen images.
    resample.evalImgs = [evaluation.evalImgs[(k * areas + area) * images + i]
                         for k in range(len(evaluated.catIds)) for area in kept_areas for i in image_positions]
    params = copy.deepcopy(evaluated)
    params.imgIds = list(range(len(image_positions)))
    params.areaRng = [evaluated.areaRng[area] for area in kept_areas]
    params.areaRngLbl = [evaluated.areaRngLbl[area] for area in kept_areas]
    params.maxDets = [evaluated.maxDets[MAX_DETECTIONS_100]]
    resample._paramsEval = params
    resample.params = params
    with contextlib.redirect_stdout(io.StringIO()):
        resample.accumulate()
    precision = resample.eval["precision"]  # [IoU threshold, recall, class, kept area, 1]
    return {"AP": mean_precision(precision[:, :, :, 0, 0]), "AP50": mean_precision(precision[IOU_50, :, :, 0, 0]),
            "AP75": mean_precision(precision[IOU_75, :, :, 0, 0]), "AP_small": mean_precision(precision[:, :, :, 1, 0])}


def bootstrap_intervals(evaluation: COCOeval, resamples: int = 200, level: float = 0.95, seed: int = 0
                        ) -> dict[str, Optional[Interval]]:
    """The `level` percentile interval of each of `INTERVAL_METRICS` over `resamples` bootstrap
    resamples of the images; None for a metric some resample leaves undefined."""
    images = len(evaluation._paramsEval.imgIds)
    rng = np.random.default_rng(seed)
    samples = [resampled_metrics(evaluation, rng.integers(0, images, images)) for _ in range(resamples)]
    intervals: dict[str, Optional[Interval]] = {}
    for name in INTERVAL_METRICS:
        values = [sample[name] for sample in samples]
        if any(value is None for value in values):
            intervals[name] = None
            continue
        intervals[name] = Interval(*percentile_interval(values, level), level, resamples)
    return intervals


def percentile_interval(values: Sequence[float], level: float) -> tuple[float, float]:
    """The central `level` percentile interval of `values`: its (low, high) ends."""
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
