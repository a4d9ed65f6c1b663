"""The bootstrap intervals of AP, AP50, AP75 and AP_small: resampling all images once reproduces
pycocotools' numbers, the intervals bracket them, and perfect detections give [1, 1]."""


import numpy as np
import pytest

from keras_models.evaluation import coco_metrics
from keras_models.evaluation.bootstrap import INTERVAL_METRICS, bootstrap_intervals, resampled_metrics
from tests.builders import ground_truth_as_detections, random_evaluation_images


def test_the_identity_resample_is_pycocotools_numbers(rng):
    evaluation = coco_metrics.evaluate_coco(random_evaluation_images(rng, 30, 3), 3)
    resampled = resampled_metrics(evaluation, np.arange(30))
    reported = coco_metrics.summary(evaluation)
    assert reported["AP_small"] is not None, "the fixture holds small boxes"
    for name in INTERVAL_METRICS:
        assert resampled[name] == pytest.approx(reported[name], abs=1e-12), name


def test_a_repeated_image_set_is_the_same_ap(rng):
    images = random_evaluation_images(rng, 12, 3)
    twice = coco_metrics.evaluate_coco(images + images, 3)
    once = coco_metrics.evaluate_coco(images, 3)
    doubled = resampled_metrics(once, np.concatenate([np.arange(12), np.arange(12)]))
    for name in INTERVAL_METRICS:
        assert doubled[name] == pytest.approx(coco_metrics.summary(twice)[name]), name


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
