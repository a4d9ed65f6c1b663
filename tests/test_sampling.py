"""Faster R-CNN's training samples on hand-worked cases: the RPN's labels (IoU bands, the forced
best anchor), the balanced draw and its quotas, ground truth joining the proposals, images with
no boxes, and the same draw for the same seed."""

import numpy as np
import tensorflow as tf

from keras_models.ops.matching import BACKGROUND, IGNORED
from pipeline.record_decoding import CROWD_CLASS
from keras_models.ops.sampling import (NO_BOX, RPN_SAMPLING, SamplingConfig, hashed_uniform, roi_targets, rpn_targets,
                                       sample_balanced)

SEED = tf.constant([3, 4])


def counts(mask) -> int:
    return int(np.sum(mask))


def test_the_draw_keeps_its_quota_and_fills_with_negatives():
    positive = tf.constant([True] * 300 + [False] * 700)
    sample = sample_balanced(positive, ~positive, RPN_SAMPLING, SEED).numpy()
    assert counts(sample[:300]) == 128 and counts(sample[300:]) == 128  # at most half positive
    few = tf.constant([True] * 5 + [False] * 995)
    sample = sample_balanced(few, ~few, RPN_SAMPLING, SEED).numpy()
    assert counts(sample[:5]) == 5 and counts(sample[5:]) == 251  # negatives make up the rest
    only = tf.constant([True] * 3 + [False] * 7)
    assert counts(sample_balanced(only, tf.zeros([10], tf.bool), RPN_SAMPLING, SEED)) == 3  # nothing else to take


def test_the_same_seed_draws_the_same_sample_and_another_seed_another():
    positive = tf.constant([True] * 300 + [False] * 700)
    first = sample_balanced(positive, ~positive, RPN_SAMPLING, SEED).numpy()
    np.testing.assert_array_equal(first, sample_balanced(positive, ~positive, RPN_SAMPLING, SEED).numpy())
    assert not np.array_equal(first, sample_balanced(positive, ~positive, RPN_SAMPLING, tf.constant([3, 5])).numpy())


def test_the_draw_keys_are_uniform_and_the_same_under_xla():
    # tf.random.stateless_uniform draws other numbers under XLA for the same seed, so an XLA run
    # sampled other anchors than the same run uncompiled.
    seed = tf.constant([3, 7])
    keys = tf.function(lambda seed: hashed_uniform(100_000, seed))(seed).numpy()
    compiled = tf.function(lambda seed: hashed_uniform(100_000, seed), jit_compile=True)(seed).numpy()
    np.testing.assert_array_equal(compiled, keys)
    assert keys.min() >= 0 and keys.max() < 1
    np.testing.assert_allclose(np.histogram(keys, bins=10, range=(0, 1))[0] / keys.size, 0.1, atol=0.005)
    for other in ([3, 8], [4, 7]):
        assert abs(np.corrcoef(keys, hashed_uniform(100_000, tf.constant(other)))[0, 1]) < 0.02


def test_rpn_labels_follow_the_iou_bands_and_force_each_boxes_best_anchor():
    box = [0.0, 0.0, 10.0, 10.0]
    anchors = tf.constant([
        box,                       # IoU 1: positive
        [0.0, 0.0, 10.0, 8.0],     # IoU 0.8: positive
        [0.0, 0.0, 10.0, 5.0],     # IoU 0.5: between 0.3 and 0.7, ignored
        [0.0, 0.0, 10.0, 2.0],     # IoU 0.2: negative
        [50.0, 50.0, 60.0, 60.0],  # no overlap: negative
        [100.0, 100.0, 120.0, 104.0],  # IoU 0.2 with the second box, its best: forced positive
    ])
    boxes = tf.constant([box, [100.0, 100.0, 104.0, 120.0]])
    objectness, box_targets = rpn_targets(anchors, boxes, tf.constant([2, 0]), SEED)
    assert objectness.numpy().tolist() == [1, 1, IGNORED, 0, 0, 1]
    np.testing.assert_allclose(box_targets[0], [0, 0, 0, 0], atol=1e-6)  # the anchor is the box
    assert np.abs(box_targets[5]).max() > 1  # encoded against a differently shaped anchor


def test_rpn_targets_of_an_image_without_boxes_are_sampled_negatives():
    anchors = tf.constant(np.random.default_rng(0).uniform(0, 100, (400, 2)).repeat(2, axis=1), tf.float32) + [
        0.0, 0.0, 10.0, 10.0]
    objectness, _ = rpn_targets(anchors, tf.zeros([3, 4]), tf.constant([-1, -1, -1]), SEED)
    assert counts(objectness == 0) == 256 and counts(objectness == IGNORED) == 144 and counts(objectness == 1) == 0


def test_roi_targets_add_the_ground_truth_and_keep_the_foreground_quota():
    rng = np.random.default_rng(0)
    box = np.array([20.0, 20.0, 60.0, 60.0])
    near = box + rng.uniform(-3, 3, (1000, 4))  # IoU >= 0.5 with the box
    far = np.array([100.0, 100.0, 130.0, 130.0]) + rng.uniform(-3, 3, (1000, 4))
    proposals = tf.constant(np.concatenate([near, far]), tf.float32)
    rois, classes, box_targets, _ = roi_targets(proposals, tf.ones([2000], tf.bool), tf.constant([box]),
                                                tf.constant([1]), SEED)
    assert rois.shape == (512, 4)
    assert counts(classes == 1) == 128 and counts(classes == BACKGROUND) == 384  # 25% foreground

    # Proposals that miss every box: the boxes themselves are the foreground, with zero targets.
    boxes = tf.constant([box, [70.0, 0.0, 90.0, 30.0], [0.0, 0.0, 0.0, 0.0]])
    rois, classes, box_targets, matched = roi_targets(tf.constant(far, tf.float32), tf.ones([1000], tf.bool), boxes,
                                                      tf.constant([1, 0, -1]), SEED)
    assert classes.numpy()[:2].tolist() == [1, 0] and counts(classes >= 0) == 2  # padding never joins
    assert matched.numpy()[:2].tolist() == [0, 1] and counts(matched == NO_BOX) == 510
    np.testing.assert_allclose(rois[:2], boxes[:2])
    np.testing.assert_allclose(box_targets[:2], 0, atol=1e-6)
    assert counts(classes == BACKGROUND) == 510


def test_roi_targets_with_few_candidates_or_no_boxes():
    # The last proposal is padding (as generate_proposals marks it): never a candidate.
    proposals = tf.constant([[0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 70.0, 70.0], [0.0, 0.0, 9.0, 10.0], [0.0] * 4])
    valid = tf.constant([True, True, True, False])
    config = SamplingConfig(sample_size=8, positive_fraction=0.25)
    rois, classes, _, matched = roi_targets(proposals, valid, tf.constant([[0.0, 0.0, 10.0, 10.0]]), tf.constant([2]),
                                            SEED, config)
    # 4 candidates (3 proposals and the box), 3 of them foreground: the quota (2 of 8) takes 2, the
    # one background candidate follows; the foreground left out does not become background.
    assert classes.numpy().tolist() == [2, 2, BACKGROUND] + [IGNORED] * 5
    assert matched.numpy().tolist() == [0, 0] + [NO_BOX] * 6
    rois, classes, box_targets, _ = roi_targets(proposals, valid, tf.zeros([0, 4]), tf.zeros([0], tf.int32), SEED,
                                             config)
    assert classes.numpy().tolist() == [BACKGROUND] * 3 + [IGNORED] * 5
    assert np.all(box_targets.numpy() == 0)


def test_anchors_and_proposals_inside_a_crowd_region_are_sampled_neither_way():
    crowd, box = [0.0, 0.0, 40.0, 40.0], [60.0, 60.0, 80.0, 80.0]
    anchors = tf.constant([[5.0, 5, 15, 15], [30, 30, 50, 50], [60, 60, 80, 80], [100, 0, 110, 10]])
    objectness, _ = rpn_targets(anchors, tf.constant([crowd, box]), tf.constant([CROWD_CLASS, 2]), SEED)
    # wholly inside the crowd: ignored; a quarter inside: negative; the box's: positive; outside: negative
    assert objectness.numpy().tolist() == [IGNORED, 0, 1, 0]

    proposals = tf.constant([[2.0, 2, 12, 12], [35, 35, 45, 45], [100, 0, 110, 10]])
    rois, classes, _, _ = roi_targets(proposals, tf.ones([3], tf.bool), tf.constant([crowd, box]),
                                   tf.constant([CROWD_CLASS, 2]), SEED, SamplingConfig(sample_size=8, positive_fraction=0.25))
    sampled = {tuple(roi): label for roi, label in zip(rois.numpy().tolist(), classes.numpy().tolist()) if label != IGNORED}
    # The box joins as foreground; the proposal inside the crowd is left out; the crowd never joins.
    assert sampled == {tuple(box): 2, (35.0, 35.0, 45.0, 45.0): BACKGROUND, (100.0, 0.0, 110.0, 10.0): BACKGROUND}


def test_rpn_box_targets_use_detectrons_unit_weights():
    # A box 1 px right of a 10 px anchor and twice as tall: (0.1, 0.5, 0, log 2) unscaled, where the
    # second stage's weights would give (1, 5, 0, 5 log 2).
    anchors = tf.constant([[0.0, 0.0, 10.0, 10.0]])
    objectness, box_targets = rpn_targets(anchors, tf.constant([[1.0, 0.0, 11.0, 20.0]]), tf.constant([0]), SEED)
    assert objectness.numpy().tolist() == [1]  # its best anchor
    np.testing.assert_allclose(box_targets[0], [0.1, 0.5, 0.0, np.log(2.0)], rtol=1e-5)
