"""The bootstrap intervals of AP, AP50, AP75 and AP_small: resampling all images once reproduces
pycocotools' numbers, every resample equals pycocotools' own accumulate() over the images drawn,
the intervals bracket the estimate, and perfect detections give [1, 1]."""


import numpy as np
import pytest

from keras_models.evaluation import coco_metrics
from keras_models.evaluation.bootstrap import (INTERVAL_METRICS, bootstrap_intervals, percentile_interval,
                                               resample_counts)
from keras_models.evaluation.pooled_matches import PooledMatches
from tests.builders import ground_truth_as_detections, random_evaluation_images
from tests.helpers.coco_reference import accumulated_metrics


def pooled_metrics(evaluation, image_positions) -> dict:
    counts = np.bincount(image_positions, minlength=len(evaluation._paramsEval.imgIds))
    return {name: float(values[0]) for name, values in PooledMatches(evaluation).metrics(counts[np.newaxis]).items()}


def test_the_identity_resample_is_pycocotools_numbers(rng):
    evaluation = coco_metrics.evaluate_coco(random_evaluation_images(rng, 30, 3), 3)
    resampled = pooled_metrics(evaluation, np.arange(30))
    reported = coco_metrics.summary(evaluation)
    assert reported["AP_small"] is not None, "the fixture holds small boxes"
    for name in INTERVAL_METRICS:
        assert resampled[name] == pytest.approx(reported[name], abs=1e-12), name


def test_a_repeated_image_set_is_the_same_ap(rng):
    images = random_evaluation_images(rng, 12, 3)
    twice = coco_metrics.evaluate_coco(images + images, 3)
    once = coco_metrics.evaluate_coco(images, 3)
    doubled = pooled_metrics(once, np.concatenate([np.arange(12), np.arange(12)]))
    for name in INTERVAL_METRICS:
        assert doubled[name] == pytest.approx(coco_metrics.summary(twice)[name]), name


def test_every_resample_equals_pycocotools_accumulate_over_the_images_drawn(rng):
    # 4 classes, some without small boxes in some resamples (AP_small undefined there: NaN / None).
    evaluation = coco_metrics.evaluate_coco(random_evaluation_images(rng, 40, 4), 4)
    counts = resample_counts(40, 60, seed=5)
    pooled = PooledMatches(evaluation).metrics(counts)
    draws = np.random.default_rng(5)
    for row in range(60):
        positions = draws.integers(0, 40, 40)  # the same draws resample_counts made
        assert np.array_equal(np.bincount(positions, minlength=40), counts[row])
        reference = accumulated_metrics(evaluation, positions)
        for name in INTERVAL_METRICS:
            expected = np.nan if reference[name] is None else reference[name]
            np.testing.assert_allclose(pooled[name][row], expected, rtol=0, atol=1e-12, err_msg=name)
    # And so the interval is the one the per-resample accumulate() gives.
    reference_ap = [accumulated_metrics(evaluation, np.repeat(np.arange(40), row))["AP"] for row in counts]
    assert bootstrap_intervals(evaluation, resamples=60, seed=5)["AP"].low == pytest.approx(
        percentile_interval(reference_ap, 0.95)[0], abs=1e-12)


def test_the_interval_brackets_the_estimate(rng):
    evaluation = coco_metrics.evaluate_coco(random_evaluation_images(rng, 60, 3), 3)
    intervals = bootstrap_intervals(evaluation, resamples=100, seed=3)
    for name, value in coco_metrics.summary(evaluation).items():
        if name in INTERVAL_METRICS:
            interval = intervals[name]
            assert interval.low < value < interval.high, name
            assert interval.high - interval.low < 0.3 and interval.resamples == 100 and interval.level == 0.95
    assert bootstrap_intervals(evaluation, resamples=100, seed=3) == intervals, "seeded: reproducible"


def test_perfect_detections_give_a_point_interval(rng):
    images = [ground_truth_as_detections(image) for image in random_evaluation_images(rng, 20, 3)]
    intervals = bootstrap_intervals(coco_metrics.evaluate_coco(images, 3), resamples=20)
    for name in INTERVAL_METRICS:
        assert intervals[name].low == pytest.approx(1.0) and intervals[name].high == pytest.approx(1.0), name
