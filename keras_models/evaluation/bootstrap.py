"""A confidence interval for COCO mAP by bootstrap over images.

A resample draws the images with replacement; `pooled_matches` scores every resample from the
matches pycocotools' `evaluate()` made once, so a thousand resamples of 5,000 images cost seconds.
Each interval's ends are percentiles of the resamples' values.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np
from pycocotools.cocoeval import COCOeval

from keras_models.evaluation.pooled_matches import POOLED_METRICS, PooledMatches

INTERVAL_METRICS = POOLED_METRICS


@dataclasses.dataclass(frozen=True)
class Interval:
    low: float
    high: float
    level: float
    resamples: int


def resample_counts(images: int, resamples: int, seed: int) -> np.ndarray:
    """`[resamples, images]`: how many times each image is drawn in each resample. Each resample
    draws `images` positions uniformly with replacement, one resample after another from `seed`."""
    rng = np.random.default_rng(seed)
    return np.stack([np.bincount(rng.integers(0, images, images), minlength=images) for _ in range(resamples)]
                    ) if resamples else np.zeros((0, images), np.int64)


def bootstrap_intervals(evaluation: COCOeval, resamples: int = 200, level: float = 0.95, seed: int = 0
                        ) -> dict[str, Optional[Interval]]:
    """The `level` percentile interval of each of `INTERVAL_METRICS` over `resamples` bootstrap
    resamples of the images; None for a metric some resample leaves undefined."""
    pooled = PooledMatches(evaluation)
    samples = pooled.metrics(resample_counts(pooled.images, resamples, seed))
    intervals: dict[str, Optional[Interval]] = {}
    for name in INTERVAL_METRICS:
        values = samples[name]
        intervals[name] = (None if np.isnan(values).any() else
                           Interval(*percentile_interval(values, level), level, resamples))
    return intervals


def percentile_interval(values: Sequence[float], level: float) -> tuple[float, float]:
    """The central `level` percentile interval of `values`: its (low, high) ends."""
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def interval_report(values: Sequence[Optional[float]], level: float, resamples: int) -> Optional[dict]:
    """A report's interval of one score over its bootstrap resamples' `values`; None when a resample
    leaves it undefined (None or NaN)."""
    if any(value is None or np.isnan(value) for value in values):
        return None
    low, high = percentile_interval(values, level)
    return {"low": low, "high": high, "level": level, "resamples": resamples, "method": "bootstrap over images"}
