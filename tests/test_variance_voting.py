"""Variance voting: a kept box's edges become its overlapping neighbours' average, weighted by
overlap and inverse variance (NumPy written from He et al. 2019), inside the NMS when asked."""

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
