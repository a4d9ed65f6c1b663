"""Variance voting: a kept box's edges become its overlapping neighbours' average, weighted by
overlap and inverse variance (NumPy written from He et al. 2019), inside the NMS when asked."""

import dataclasses

import numpy as np
import tensorflow as tf

from keras_models.ops.detection_decoding import NmsConfig, per_class_nms
from keras_models.ops.variance_voting import OVERLAP_SIGMA, variance_voting


def numpy_vote(kept, candidates, stddev, valid):
    voted = []
    for box in kept:
        width = np.clip(np.minimum(box[2], candidates[:, 2]) - np.maximum(box[0], candidates[:, 0]), 0, None)
        height = np.clip(np.minimum(box[3], candidates[:, 3]) - np.maximum(box[1], candidates[:, 1]), 0, None)
        inter = width * height
        union = np.prod(box[2:] - box[:2]) + np.prod(candidates[:, 2:] - candidates[:, :2], axis=1) - inter
        overlap = inter / union
        weight = np.exp(-(1 - overlap) ** 2 / OVERLAP_SIGMA) * (overlap > 0) * valid
        precision = weight[:, None] / stddev ** 2
        voted.append((precision * candidates).sum(0) / precision.sum(0))
    return np.array(voted)


def test_each_edge_is_the_overlap_and_inverse_variance_weighted_average(rng):
    candidates = np.array([[10, 10, 50, 50], [12, 9, 52, 48], [8, 11, 49, 53], [100, 100, 120, 120],
                           [11, 10, 50, 51]], np.float64)
    stddev = rng.uniform(0.5, 4, (5, 4))
    valid = np.array([True, True, True, True, False])  # the last scores below the threshold
    kept = candidates[[0, 3]]
    voted = variance_voting(tf.constant(kept), tf.constant(candidates), tf.constant(stddev), tf.constant(valid))
    np.testing.assert_allclose(voted.numpy(), numpy_vote(kept, candidates, stddev, valid), rtol=1e-12)
    np.testing.assert_allclose(voted.numpy()[1], kept[1])  # alone: it votes for itself only
    # A sure edge pulls the vote: the second candidate's x-min is 100 times more certain.
    stddev[1, 0] = 0.01
    pulled = variance_voting(tf.constant(kept), tf.constant(candidates), tf.constant(stddev), tf.constant(valid))
    assert abs(float(pulled[0, 0]) - 12) < 0.1


def test_the_nms_votes_only_when_asked():
    boxes = tf.constant([[[10.0, 10, 50, 50]], [[14, 10, 54, 50]], [[90, 90, 120, 120]]])[tf.newaxis]
    scores = tf.constant([[[0.9], [0.8], [0.7]]])
    stddev = tf.constant([[[4.0, 1, 1, 1]], [[1, 1, 1, 1]], [[1, 1, 1, 1]]])[tf.newaxis]
    plain = per_class_nms(boxes, scores, 200, NmsConfig(max_detections=3), box_stddev=stddev)
    voted = per_class_nms(boxes, scores, 200, NmsConfig(max_detections=3, variance_voting=True), box_stddev=stddev)
    assert plain["num_detections"].numpy().tolist() == voted["num_detections"].numpy().tolist() == [2]
    np.testing.assert_allclose(plain["boxes"][0, 0], [10, 10, 50, 50])
    # The kept box votes with weight 1, its neighbour (IoU 36·40 / (2·1600 − 36·40) = 0.82) with
    # exp(-(1 − 0.82)² / σ_t); its x-min is 4 times less sure, so the neighbour's 14 outweighs its 10.
    overlap = (36 * 40) / (2 * 1600 - 36 * 40)
    weight = np.exp(-(1 - overlap) ** 2 / OVERLAP_SIGMA)
    np.testing.assert_allclose(voted["boxes"][0, 0, 0], (10 / 16 + 14 * weight) / (1 / 16 + weight), rtol=1e-6)
    np.testing.assert_allclose(voted["boxes"][0, 0, 2], (50 + 54 * weight) / (1 + weight), rtol=1e-6)
    assert float(voted["boxes"][0, 0, 0]) > 13
    np.testing.assert_allclose(voted["boxes"][0, 1], [90, 90, 120, 120])  # no neighbour
    np.testing.assert_allclose(voted["box_stddev"], plain["box_stddev"])


def test_each_shown_box_votes_among_its_own_class_only(rng):
    """Three classes, boxes per class, clustered so that every class has neighbours and other classes'
    boxes overlap too: each shown box is the vote of its own class's candidates above the threshold."""
    centres = rng.uniform(40, 160, (5, 2))
    corners = np.repeat(centres, 8, axis=0)[:, np.newaxis, :] + rng.normal(0, 4, (40, 3, 2))
    sizes = rng.uniform(20, 40, (40, 3, 2))
    boxes = np.concatenate([corners, corners + sizes], axis=-1).astype(np.float32)  # [N, C, 4]
    scores = rng.uniform(0, 1, (40, 3)).astype(np.float32)
    stddev = rng.uniform(0.5, 5, (40, 3, 4)).astype(np.float32)
    config = NmsConfig(max_detections=12, score_threshold=0.2)
    plain = per_class_nms(boxes[np.newaxis], scores[np.newaxis], 200, config, box_stddev=stddev[np.newaxis])
    voted = per_class_nms(boxes[np.newaxis], scores[np.newaxis], 200,
                          dataclasses.replace(config, variance_voting=True), box_stddev=stddev[np.newaxis])
    count = int(voted["num_detections"][0])
    assert count == 12 and len(set(voted["classes"][0].numpy().tolist())) == 3
    np.testing.assert_array_equal(voted["classes"], plain["classes"])
    for row in range(count):
        label = int(voted["classes"][0, row])
        expected = numpy_vote(plain["boxes"][0, row].numpy()[np.newaxis].astype(np.float64), boxes[:, label],
                              stddev[:, label], scores[:, label] > 0.2)
        np.testing.assert_allclose(voted["boxes"][0, row], expected[0], rtol=1e-5, atol=1e-4)
    assert not np.allclose(voted["boxes"][0, :count], plain["boxes"][0, :count])
