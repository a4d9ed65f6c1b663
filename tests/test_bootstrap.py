"""The bootstrap interval for mAP: resampling all images once reproduces pycocotools' AP, the
interval brackets it, and perfect detections give the degenerate interval [1, 1]."""


import numpy as np
import pytest

from keras_models.evaluation import coco_metrics
from keras_models.evaluation.bootstrap import bootstrap_map_interval, resampled_map
from tests.builders import ground_truth_as_detections, random_evaluation_images


def test_the_identity_resample_is_pycocotools_ap(rng):
    evaluation = coco_metrics.evaluate_coco(random_evaluation_images(rng, 30, 3), 3)
    assert resampled_map(evaluation, np.arange(30)) == pytest.approx(evaluation.stats[0], abs=1e-12)


def test_a_repeated_image_set_is_the_same_ap(rng):
    images = random_evaluation_images(rng, 12, 3)
    twice = coco_metrics.evaluate_coco(images + images, 3)
    once = coco_metrics.evaluate_coco(images, 3)
    assert resampled_map(once, np.concatenate([np.arange(12), np.arange(12)])) == pytest.approx(twice.stats[0])


def test_the_interval_brackets_the_estimate(rng):
    evaluation = coco_metrics.evaluate_coco(random_evaluation_images(rng, 60, 3), 3)
    interval = bootstrap_map_interval(evaluation, resamples=100, seed=3)
    assert interval.low < evaluation.stats[0] < interval.high
    assert interval.high - interval.low < 0.3 and interval.resamples == 100 and interval.level == 0.95
    assert bootstrap_map_interval(evaluation, resamples=100, seed=3) == interval, "seeded: reproducible"


def test_perfect_detections_give_a_point_interval(rng):
    images = [ground_truth_as_detections(image) for image in random_evaluation_images(rng, 20, 3)]
    interval = bootstrap_map_interval(coco_metrics.evaluate_coco(images, 3), resamples=20)
    assert interval.low == pytest.approx(1.0) and interval.high == pytest.approx(1.0)
