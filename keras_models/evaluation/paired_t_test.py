"""The paired t-test over per-image scores, its p-value from `tfp.distributions.StudentT`.

Images are the independent unit: the boxes of one image are repeated measurements of one subject
(same scene, same lighting, same model state), so testing over boxes would overstate the evidence.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

import numpy as np

# Below this many images the t approximation carries the result; the report says so.
SMALL_SAMPLE = 30


@dataclasses.dataclass(frozen=True)
class PairedTTest:
    """Two-sided test of mean(second − first) = 0.

    `statistic` is None when every difference is the same non-zero number (zero spread: the
    statistic is infinite and `p_value` 0). When every difference is 0, the statistic is 0 and
    `p_value` 1: there is no evidence of a difference (SciPy answers NaN there)."""

    mean_difference: float
    statistic: Optional[float]
    degrees_of_freedom: int
    p_value: float
    samples: int

    @property
    def small_sample(self) -> bool:
        return self.samples < SMALL_SAMPLE


def paired_differences(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """`second − first` `[N]` in float64, for two score vectors paired by position."""
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    if first.shape != second.shape or first.ndim != 1:
        raise ValueError(f"paired scores must be two vectors of one length, got {first.shape} and {second.shape}")
    return second - first


def paired_t_test(first: np.ndarray, second: np.ndarray) -> PairedTTest:
    """Student's paired t-test of `second − first` (both `[N]`, N ≥ 2, paired by position)."""
    import tensorflow_probability as tfp

    differences = paired_differences(first, second)
    samples = len(differences)
    if samples < 2:
        raise ValueError(f"a paired t-test needs at least 2 pairs, got {samples}")
    mean = float(differences.mean())
    spread = float(differences.std(ddof=1))
    degrees_of_freedom = samples - 1
    if spread == 0.0:
        return PairedTTest(mean, 0.0 if mean == 0.0 else None, degrees_of_freedom, 1.0 if mean == 0.0 else 0.0,
                           samples)
    statistic = mean / (spread / math.sqrt(samples))
    student = tfp.distributions.StudentT(df=np.float64(degrees_of_freedom), loc=np.float64(0.0),
                                         scale=np.float64(1.0))
    p_value = float(2.0 * student.survival_function(np.float64(abs(statistic))))
    return PairedTTest(mean, statistic, degrees_of_freedom, min(p_value, 1.0), samples)
