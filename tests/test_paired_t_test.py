"""The paired t-test: SciPy's `ttest_rel` to 1e-6, and the degenerate cases said plainly."""

import numpy as np
import pytest
import scipy.stats

from keras_models.evaluation.paired_t_test import SMALL_SAMPLE, paired_t_test


@pytest.mark.parametrize("samples", [2, 5, 29, 200])
def test_statistic_and_p_value_equal_scipy(rng, samples):
    first = rng.uniform(0, 1, samples)
    second = first + rng.normal(0.03, 0.1, samples)
    ours = paired_t_test(first, second)
    theirs = scipy.stats.ttest_rel(second, first)
    assert ours.statistic == pytest.approx(theirs.statistic, abs=1e-6)
    assert ours.p_value == pytest.approx(theirs.pvalue, abs=1e-6)
    assert ours.degrees_of_freedom == samples - 1 and ours.small_sample == (samples < SMALL_SAMPLE)
    assert ours.mean_difference == pytest.approx(np.mean(second - first), abs=1e-12)


def test_the_direction_is_second_minus_first(rng):
    first = rng.uniform(0, 1, 40)
    worse = paired_t_test(first, first - 0.2 + rng.normal(0, 0.05, 40))
    assert worse.statistic < 0 and worse.mean_difference < 0 and worse.p_value < 1e-6


def test_no_difference_at_all_is_no_evidence_and_a_constant_one_is_certain():
    same = paired_t_test(np.arange(10.0), np.arange(10.0))
    assert (same.statistic, same.p_value, same.mean_difference) == (0.0, 1.0, 0.0)
    shifted = paired_t_test(np.arange(10.0), np.arange(10.0) + 0.5)
    assert shifted.statistic is None and shifted.p_value == 0.0 and shifted.mean_difference == 0.5


def test_unpaired_or_too_few_scores_are_refused():
    with pytest.raises(ValueError, match="one length"):
        paired_t_test(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="at least 2 pairs"):
        paired_t_test(np.zeros(1), np.zeros(1))
