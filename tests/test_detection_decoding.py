import numpy as np
import pytest
import tensorflow as tf

from keras_models.ops.box_coding import encode_boxes
from keras_models.ops.detection_decoding import NmsConfig, decode_detections, per_class_nms

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


def random_detections_input(rng, boxes_per_class: int):
    """`(boxes [2, 300, Q, 4], scores [2, 300, 3])`: overlapping random boxes, skewed scores."""
    corners = rng.uniform(0, 200, (2, 300, boxes_per_class, 2))
    sizes = rng.uniform(5, 60, (2, 300, boxes_per_class, 2))
    boxes = tf.constant(np.concatenate([corners, corners + sizes], axis=-1), tf.float32)
    return boxes, tf.constant(rng.uniform(0, 1, (2, 300, 3)) ** 3, tf.float32)


@pytest.mark.parametrize("boxes_per_class", [1, 3])
@pytest.mark.parametrize("config", [NmsConfig(max_detections=50, max_detections_per_class=40),
                                    NmsConfig(score_threshold=0.6, max_detections=150, max_detections_per_class=40)])
def test_the_xla_form_compiles_and_keeps_the_combined_detections(rng, boxes_per_class, config):
    # The second config keeps fewer boxes than max_detections: the padding rows must match too.
    boxes, scores = random_detections_input(rng, boxes_per_class)
    combined = per_class_nms(boxes, scores, 256, config)
    compiled = tf.function(lambda: per_class_nms(boxes, scores, 256, config, xla_compatible=True),
                           jit_compile=True)()
    assert 0 < combined["num_detections"].numpy().min() and combined["num_detections"].numpy().max() < 150
    for name, values in combined.items():
        np.testing.assert_allclose(compiled[name], values, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("xla_compatible", [False, True])
def test_hand_worked_cases_hold_for_both_forms(xla_compatible):
    config = NmsConfig(max_detections=5)
    encoded = encode_boxes(ANCHORS, ANCHORS)[tf.newaxis]
    scores = np.array([[0.9, 0.0], [0.8, 0.0], [0.7, 0.0], [0.0, 0.8]])
    logits = tf.constant(np.log(np.clip(scores, 1e-6, 1) / np.clip(1 - scores, 1e-6, 1))[np.newaxis], tf.float32)
    out = decode_detections(encoded, logits, ANCHORS, 100, config, xla_compatible)
    assert out["num_detections"].numpy().tolist() == [3]
    assert out["classes"].numpy()[0, :3].tolist() == [0, 1, 0]
    np.testing.assert_allclose(out["boxes"].numpy()[0, :3], [[0, 0, 20, 20], [0, 0, 20, 20], [50, 50, 70, 70]],
                               atol=1e-3)
    assert out["scores"].numpy()[0, 3:].tolist() == [0, 0] and out["boxes"].numpy()[0, 3:].max() == 0
