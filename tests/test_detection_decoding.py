import numpy as np
import tensorflow as tf

from keras_models.ops.box_coding import encode_boxes
from keras_models.ops.detection_decoding import NmsConfig, decode_detections

ANCHORS = tf.constant([[0.0, 0, 20, 20], [2, 2, 22, 22], [50, 50, 70, 70], [0, 0, 20, 20]])


def detections(scores, config=NmsConfig(max_detections=5)):
    """Every anchor predicts exactly itself; `scores` `[A, C]` are probabilities."""
    logits = np.log(np.clip(scores, 1e-6, 1 - 1e-6) / (1 - np.clip(scores, 1e-6, 1 - 1e-6)))
    encoded = encode_boxes(ANCHORS, ANCHORS)[tf.newaxis]
    return decode_detections(encoded, tf.constant(logits[np.newaxis], tf.float32), ANCHORS, 100, config)


def test_overlapping_boxes_of_one_class_are_suppressed():
    out = detections(np.array([[0.9, 0.0], [0.8, 0.0], [0.7, 0.0], [0.0, 0.0]]))
    assert out["num_detections"].numpy().tolist() == [2]  # anchor 1 (IoU 0.68 with anchor 0) is dropped
    np.testing.assert_allclose(out["boxes"].numpy()[0, :2], [[0, 0, 20, 20], [50, 50, 70, 70]], atol=1e-3)
    np.testing.assert_allclose(out["scores"].numpy()[0, :2], [0.9, 0.7], rtol=1e-4)
    assert out["scores"].shape == (1, 5) and out["boxes"].shape == (1, 5, 4)  # padded to max_detections


def test_nms_is_per_class_and_honours_the_score_threshold():
    out = detections(np.array([[0.9, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.8]]))
    assert out["num_detections"].numpy().tolist() == [2]  # the same box, two classes: both kept
    assert sorted(out["classes"].numpy()[0, :2].tolist()) == [0, 1]
    quiet = detections(np.array([[0.04, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.03]]))
    assert quiet["num_detections"].numpy().tolist() == [0]


def test_max_detections_caps_the_output():
    out = detections(np.full((4, 2), 0.9), NmsConfig(max_detections=3, iou_threshold=0.99))
    assert out["num_detections"].numpy().tolist() == [3] and out["boxes"].shape == (1, 3, 4)
