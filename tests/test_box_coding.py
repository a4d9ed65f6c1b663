import numpy as np
import tensorflow as tf

from keras_models.ops.box_coding import decode_boxes, encode_boxes
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
