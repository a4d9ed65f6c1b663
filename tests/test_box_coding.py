import numpy as np
import tensorflow as tf

from keras_models.ops.box_coding import (EDGE_VARIANCE, decode_boxes, decode_edges, edge_scales_to_pixels,
                                         encode_boxes, encode_edges)
from keras_models.ops.box_format import center_size_to_xyxy, pairwise_iou, xyxy_to_center_size


def test_encode_then_decode_is_the_identity(rng):
    anchors = rng.uniform(0, 200, size=(500, 2))
    anchors = np.concatenate([anchors, anchors + rng.uniform(4, 100, size=(500, 2))], axis=1).astype(np.float32)
    boxes = rng.uniform(0, 200, size=(500, 2))
    boxes = np.concatenate([boxes, boxes + rng.uniform(1, 150, size=(500, 2))], axis=1).astype(np.float32)
    decoded = decode_boxes(encode_boxes(tf.constant(boxes), tf.constant(anchors)), tf.constant(anchors))
    np.testing.assert_allclose(decoded.numpy(), boxes, rtol=1e-5, atol=1e-3)


def test_a_box_equal_to_its_anchor_encodes_to_zero_and_known_offsets():
    anchors = tf.constant([[0.0, 0.0, 10.0, 20.0]])
    np.testing.assert_allclose(encode_boxes(anchors, anchors).numpy(), [[0, 0, 0, 0]], atol=1e-6)
    shifted = tf.constant([[1.0, 2.0, 11.0, 22.0]])  # centre moves by a tenth of the anchor size
    np.testing.assert_allclose(encode_boxes(shifted, anchors).numpy(), [[1.0, 1.0, 0.0, 0.0]], atol=1e-5)


def test_format_round_trip_and_iou():
    boxes = tf.constant([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 15.0, 15.0]])
    np.testing.assert_allclose(center_size_to_xyxy(xyxy_to_center_size(boxes)).numpy(), boxes.numpy())
    iou = pairwise_iou(boxes, tf.concat([boxes, [[0.0, 0.0, 0.0, 0.0]]], axis=0)).numpy()
    np.testing.assert_allclose(iou, [[1.0, 25 / 175, 0.0], [25 / 175, 1.0, 0.0]], rtol=1e-6)


def test_edge_coding_round_trips_and_each_edge_moves_by_its_anchor_side():
    anchors = tf.constant([[0.0, 0.0, 10.0, 20.0], [5.0, 5.0, 45.0, 25.0]], tf.float64)
    boxes = tf.constant([[1.0, -2.0, 12.0, 20.0], [0.0, 9.0, 40.0, 30.0]], tf.float64)
    encoded = encode_edges(boxes, anchors)
    # x edges over the anchor's width, y edges over its height, then over the variance.
    np.testing.assert_allclose(encoded[0].numpy(), np.array([1 / 10, -2 / 20, 2 / 10, 0]) / EDGE_VARIANCE)
    np.testing.assert_allclose(decode_edges(encoded, anchors).numpy(), boxes.numpy(), atol=1e-6)
    # A scale of 1 encoded unit is a tenth of the side in pixels.
    np.testing.assert_allclose(edge_scales_to_pixels(tf.ones([2, 4], tf.float64), anchors).numpy(),
                               [[1, 2, 1, 2], [4, 2, 4, 2]])


def test_edges_predicted_past_each_other_decode_to_an_empty_box_not_a_crossed_one():
    anchors = tf.constant([[0.0, 0.0, 10.0, 20.0]])
    crossed = tf.constant([[0.0, 0.0, -15.0, 0.0]])  # x-max at 10 - 15 = -5, left of x-min 0
    np.testing.assert_allclose(decode_edges(crossed, anchors).numpy(), [[0, 0, 0, 20]])
