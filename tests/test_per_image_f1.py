"""Per-image F1 at IoU 0.5 from pycocotools' matches: a hand-worked case, the pooled-F1 threshold
against brute force, and perfect detections."""

import numpy as np
import pytest

from keras_models.evaluation import coco_metrics
from keras_models.evaluation.per_image_f1 import (NO_DETECTION, best_f1_threshold, f1_score, image_matches,
                                                  per_image_f1)
from tests.builders import evaluation_image, ground_truth_as_detections, random_evaluation_images

HIT, OTHER_HIT, MISS = [0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]


def hand_worked_images():
    return [
        # two boxes, found at 0.9 and 0.3, a false alarm at 0.8
        evaluation_image([HIT, OTHER_HIT], [0, 0], [HIT, MISS, OTHER_HIT], [0, 0, 0], [0.9, 0.8, 0.3]),
        # one box found at 0.6; false alarms at 0.5, 0.2, 0.1 and 0.05
        evaluation_image([HIT], [0], [HIT, MISS, OTHER_HIT, [70, 70, 80, 80], [80, 80, 90, 90]], [0] * 5,
                         [0.6, 0.5, 0.2, 0.1, 0.05]),
        evaluation_image([], []),  # nothing to find, nothing claimed
        evaluation_image([], [], [MISS], [0], [0.01]),  # a false alarm below the threshold
        # a crowd region with a detection on it (ignored) and a box never found
        evaluation_image([HIT, OTHER_HIT], [0, 0], [HIT], [0], [0.95], is_crowd=[True, False]),
    ]


def test_a_hand_worked_case():
    matches = image_matches(coco_metrics.evaluate_coco(hand_worked_images(), 1))
    assert [image.truth for image in matches] == [2, 1, 0, 0, 1], "the crowd region counts for nothing"
    assert [len(image.scores) for image in matches] == [3, 5, 0, 1, 0], "the detection on the crowd is ignored"
    # Pooled over 4 boxes, the scores in order hit, miss, hit, miss, hit, miss, ...: F1 is 2·TP / (kept + 4),
    # highest at 0.3 with 3 hits of 5 kept: 6/9.
    assert best_f1_threshold(matches) == 0.3
    np.testing.assert_allclose(per_image_f1(matches, 0.3), [4 / 5, 2 / 3, 1.0, 1.0, 0.0])
    np.testing.assert_allclose(per_image_f1(matches, 0.9), [2 / 3, 0.0, 1.0, 1.0, 0.0])


def test_the_threshold_maximizes_pooled_f1_against_brute_force(rng):
    matches = image_matches(coco_metrics.evaluate_coco(random_evaluation_images(rng, 40, 3), 3))
    truth = sum(image.truth for image in matches)

    def pooled_f1(threshold):
        kept = [image.scores >= threshold for image in matches]
        return f1_score(sum(int(np.sum(image.matched[k])) for image, k in zip(matches, kept)),
                        sum(int(np.sum(k)) for k in kept), truth)

    candidates = np.unique(np.concatenate([image.scores for image in matches]))
    best = max(pooled_f1(threshold) for threshold in candidates)
    chosen = best_f1_threshold(matches)
    assert pooled_f1(chosen) == pytest.approx(best, abs=1e-12) and 0 < best < 1
    assert all(pooled_f1(threshold) < best for threshold in candidates if threshold > chosen), "the highest on ties"


def test_perfect_detections_score_one_on_every_image(rng):
    images = [ground_truth_as_detections(image) for image in random_evaluation_images(rng, 20, 3)]
    matches = image_matches(coco_metrics.evaluate_coco(images, 3))
    np.testing.assert_array_equal(per_image_f1(matches, best_f1_threshold(matches)), np.ones(20))


def test_keeping_nothing_wins_when_every_detection_is_wrong():
    images = [evaluation_image([HIT], [0], [MISS], [0], [0.9]), evaluation_image([], [], [MISS], [0], [0.4])]
    matches = image_matches(coco_metrics.evaluate_coco(images, 1))
    assert best_f1_threshold(matches) == NO_DETECTION
    np.testing.assert_array_equal(per_image_f1(matches, NO_DETECTION), [0.0, 1.0])
