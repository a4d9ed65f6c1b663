import numpy as np
import pytest
import tensorflow as tf

from keras_models.ops.losses import box_regression_loss, detection_loss, sigmoid_focal_loss


def numpy_focal_loss(targets, logits, alpha=0.25, gamma=2.0):
    """Lin et al. 2017, written out: FL(p_t) = -alpha_t (1 - p_t)^gamma log(p_t), ignored anchors skipped."""
    total = 0.0
    for b in range(logits.shape[0]):
        for a in range(logits.shape[1]):
            if targets[b, a] == -2:
                continue
            for c in range(logits.shape[2]):
                y = 1.0 if targets[b, a] == c else 0.0
                p = 1.0 / (1.0 + np.exp(-logits[b, a, c]))
                p_t = p if y else 1.0 - p
                alpha_t = alpha if y else 1.0 - alpha
                total += -alpha_t * (1.0 - p_t) ** gamma * np.log(p_t)
    return total


def test_focal_loss_matches_the_numpy_reference(rng):
    logits = rng.normal(0, 3, size=(2, 7, 4)).astype(np.float32)
    targets = np.array([[0, 3, -1, -2, 1, -1, 2], [-1, -1, -2, 0, 0, -1, 3]], np.int32)
    got = sigmoid_focal_loss(tf.constant(targets), tf.constant(logits)).numpy()
    assert got == pytest.approx(numpy_focal_loss(targets, logits), rel=1e-5)


def test_confident_correct_predictions_cost_almost_nothing():
    targets = tf.constant([[0, -1]])
    good = tf.constant([[[8.0, -8.0], [-8.0, -8.0]]])
    bad = -good
    assert sigmoid_focal_loss(targets, good).numpy() < 1e-6 < sigmoid_focal_loss(targets, bad).numpy()


def test_box_loss_is_huber_over_positives_only():
    targets = tf.constant([[[0.0, 0, 0, 0], [0, 0, 0, 0]]])
    predictions = tf.constant([[[0.5, -2.0, 0, 0], [9.0, 9, 9, 9]]])
    classes = tf.constant([[1, -1]])  # the second anchor is background: its error does not count
    assert box_regression_loss(targets, predictions, classes).numpy() == pytest.approx(0.125 + 1.5)


def test_losses_are_normalized_by_positive_anchors():
    targets = tf.constant([[0, 0, -1, -1]])
    logits = tf.zeros([1, 4, 1])
    boxes = tf.zeros([1, 4, 4])
    losses = detection_loss(targets, boxes, logits, boxes + 1.0)
    assert losses["box_loss"].numpy() == pytest.approx(2 * 4 * 0.5 / 2)
    none = detection_loss(tf.constant([[-1, -1, -1, -1]]), boxes, logits, boxes)
    assert np.isfinite(none["loss"].numpy()) and none["box_loss"].numpy() == 0.0
