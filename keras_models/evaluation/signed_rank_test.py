"""The paired Wilcoxon signed-rank test over per-image scores, and Holm's correction for a family
of tests.

Per-image F1 is bounded in [0, 1] and full of ties (every image both models get right scores 1), so
beside the t-test's mean the signed-rank test asks whether B's per-image scores tend to be higher,
without assuming normal differences. Zero differences are dropped (Wilcoxon's own rule), tied
magnitudes share their mean rank, and the p-value comes from the normal approximation with the tie
correction, as SciPy's `wilcoxon(..., zero_method="wilcox", correction=False, method="approx")`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping

import numpy as np

from keras_models.evaluation.paired_t_test import paired_differences

# Below this many non-zero differences the normal approximation is rough; the report says so.
SMALL_SAMPLE = 20


@dataclasses.dataclass(frozen=True)
class SignedRankTest:
    """Two-sided test that `second − first` is symmetric about 0. `positive_rank_sum` is W+, the
    ranks of the positive differences; `nonzero` the differences that were ranked."""

    positive_rank_sum: float
    statistic: float  # z of W+ under the null
    p_value: float
    nonzero: int

    @property
    def small_sample(self) -> bool:
        return self.nonzero < SMALL_SAMPLE


def signed_rank_test(first: np.ndarray, second: np.ndarray) -> SignedRankTest:
    """Wilcoxon's signed-rank test of `second − first` (both `[N]`, paired by position)."""
    differences = paired_differences(first, second)
    differences = differences[differences != 0]
    count = len(differences)
    if count == 0:
        return SignedRankTest(0.0, 0.0, 1.0, 0)
    magnitudes = np.abs(differences)
    order = np.argsort(magnitudes, kind="stable")
    ranks = np.empty(count)
    ranks[order] = np.arange(1, count + 1)
    _, group, sizes = np.unique(magnitudes, return_inverse=True, return_counts=True)
    ranks = (np.bincount(group, weights=ranks) / sizes)[group]  # tied magnitudes share their mean rank
    positive = float(ranks[differences > 0].sum())
    mean = count * (count + 1) / 4
    variance = count * (count + 1) * (2 * count + 1) / 24 - float(np.sum(sizes ** 3 - sizes)) / 48
    if variance <= 0:
        return SignedRankTest(positive, 0.0, 1.0, count)
    statistic = (positive - mean) / math.sqrt(variance)
    return SignedRankTest(positive, statistic, math.erfc(abs(statistic) / math.sqrt(2)), count)


def holm_adjusted(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm's step-down adjustment: with the k smallest of m p-values multiplied by m, m − 1, …,
    made monotone and capped at 1, rejecting where the adjusted p is below α keeps the chance of
    any false rejection in the family at most α."""
    names = sorted(p_values, key=lambda name: p_values[name])
    adjusted, running = {}, 0.0
    for position, name in enumerate(names):
        running = max(running, min(1.0, (len(names) - position) * p_values[name]))
        adjusted[name] = running
    return {name: adjusted[name] for name in p_values}
