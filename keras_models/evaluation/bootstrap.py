"""A confidence interval for COCO mAP by bootstrap over images.

pycocotools matches detections to ground truth per (class, area range, image) in
`evaluate()`; only `accumulate()` pools images. So a resample of images reuses the
per-image matches and re-runs just the pooling, which makes a few hundred resamples
cost seconds rather than minutes. The interval's ends are percentiles from `tfp.stats`.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io

import numpy as np
from pycocotools.cocoeval import COCOeval

from keras_models.evaluation.coco_metrics import AREA_ALL, MAX_DETECTIONS_100, mean_precision


@dataclasses.dataclass(frozen=True)
class Interval:
    low: float
    high: float
    level: float
    resamples: int


def resampled_map(evaluation: COCOeval, image_positions: np.ndarray) -> float:
    """COCO mAP (area all, 100 detections) over the images at `image_positions` (repeats allowed)."""
    evaluated = evaluation._paramsEval  # the parameters evaluate() ran with; the layout of evalImgs
    images, areas = len(evaluated.imgIds), len(evaluated.areaRng)
    resample = copy.copy(evaluation)
    # evalImgs is laid out [class][area range][image]; keep area 'all' and the chosen images.
    resample.evalImgs = [evaluation.evalImgs[(k * areas + AREA_ALL) * images + i]
                         for k in range(len(evaluated.catIds)) for i in image_positions]
    params = copy.deepcopy(evaluated)
    params.imgIds = list(range(len(image_positions)))
    params.areaRng, params.areaRngLbl = [evaluated.areaRng[AREA_ALL]], [evaluated.areaRngLbl[AREA_ALL]]
    params.maxDets = [evaluated.maxDets[MAX_DETECTIONS_100]]
    resample._paramsEval = params
    resample.params = params
    with contextlib.redirect_stdout(io.StringIO()):
        resample.accumulate()
    return mean_precision(resample.eval["precision"][:, :, :, 0, 0]) or 0.0


def bootstrap_map_interval(evaluation: COCOeval, resamples: int = 200, level: float = 0.95, seed: int = 0
                           ) -> Interval:
    """The `level` percentile interval of mAP over `resamples` bootstrap resamples of the images."""
    import tensorflow_probability as tfp  # heavy import, needed here only

    images = len(evaluation._paramsEval.imgIds)
    rng = np.random.default_rng(seed)
    samples = np.array([resampled_map(evaluation, rng.integers(0, images, images)) for _ in range(resamples)])
    tail = (1.0 - level) / 2 * 100
    low, high = tfp.stats.percentile(samples, [tail, 100 - tail], interpolation="linear").numpy()
    return Interval(float(low), float(high), level, resamples)
