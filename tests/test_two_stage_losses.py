"""Faster R-CNN's losses against the formulas computed by hand in NumPy."""

import numpy as np
import pytest
import tensorflow as tf

from keras_models.ops.matching import BACKGROUND, IGNORED
from keras_models.ops.two_stage_losses import roi_losses, rpn_losses


def huber(error: np.ndarray) -> float:
    error = np.abs(error)
    return float(np.where(error < 1, 0.5 * error ** 2, error - 0.5).sum())


def smooth_l1(error: np.ndarray, beta: float) -> float:
    """Detectron's: 0.5 x² / beta below beta, |x| - beta / 2 above."""
    error = np.abs(error)
    return float(np.where(error < beta, 0.5 * error ** 2 / beta, error - 0.5 * beta).sum())


def test_rpn_losses_count_sampled_anchors_only():
    objectness = tf.constant([[1, 0, IGNORED, 0]])
    logits = tf.constant([[2.0, -1.0, 5.0, 0.5]])
    targets = tf.constant([[[0.5, -0.5, 2.0, 0.0]] + [[9.0] * 4] * 3])
    deltas = tf.constant([[[0.0, 0.0, 0.0, 0.1]] + [[0.0] * 4] * 3])
    losses = rpn_losses(objectness, targets, logits, deltas, tf.constant(3.0))
    cross_entropy = np.log1p(np.exp(-2.0)) + np.log1p(np.exp(-1.0)) + np.log1p(np.exp(0.5))  # the ignored 5.0 absent
    assert float(losses["rpn_class_loss"]) == pytest.approx(cross_entropy / 3, rel=1e-6)
    # Detectron's RPN smooth L1, beta 1/9: -0.1 is in its quadratic part, the rest in the linear one.
    assert float(losses["rpn_box_loss"]) == pytest.approx(smooth_l1(np.array([0.5, -0.5, 2.0, -0.1]), 1 / 9) / 3,
                                                          rel=1e-6)


def test_roi_losses_score_background_last_and_train_the_own_class_box_only():
    class_targets = tf.constant([[1, BACKGROUND, IGNORED]])
    logits = np.array([[[0.2, 1.5, -0.3], [0.1, 0.0, 2.0], [5.0, 5.0, 5.0]]], np.float32)  # 2 classes + background
    targets = np.zeros((1, 3, 4), np.float32)
    targets[0, 0] = [1.0, 0.0, 0.0, 3.0]
    deltas = np.zeros((1, 3, 2, 4), np.float32)
    deltas[0, 0, 0] = 7.0  # another class's delta: not trained
    deltas[0, 0, 1] = [0.5, 0.0, 0.0, 0.0]
    losses = roi_losses(class_targets, tf.constant(targets), tf.constant(logits), tf.constant(deltas),
                        tf.constant(2.0))

    def cross_entropy(row, label):
        return -(row[label] - np.log(np.exp(row).sum()))

    expected = (cross_entropy(logits[0, 0], 1) + cross_entropy(logits[0, 1], 2)) / 2
    assert float(losses["class_loss"]) == pytest.approx(expected, rel=1e-6)
    assert float(losses["box_loss"]) == pytest.approx(huber(np.array([-0.5, 0.0, 0.0, -3.0])) / 2, rel=1e-6)


def test_a_probabilistic_roi_box_loss_is_the_own_class_laplace_likelihood():
    class_targets = tf.constant([[1, BACKGROUND]])
    targets = np.zeros((1, 2, 4), np.float32)
    targets[0, 0] = [1.0, 0.0, -0.5, 3.0]
    deltas = np.zeros((1, 2, 2, 8), np.float32)
    deltas[0, 0, 0] = 7.0  # another class's: not trained
    deltas[0, 0, 1] = [0.5, 0.0, 0.0, 0.0, 0.0, np.log(2.0), 0.0, 0.0]  # locations, then log-scales
    losses = roi_losses(class_targets, tf.constant(targets), tf.constant(np.zeros((1, 2, 3), np.float32)),
                        tf.constant(deltas), tf.constant(2.0), box_uncertainty="laplace")
    scales = np.array([1.0, 2.0, 1.0, 1.0])
    laplace = np.abs(targets[0, 0] - [0.5, 0, 0, 0]) / scales + np.log(2 * scales)
    assert float(losses["box_loss"]) == pytest.approx(laplace.sum() / 2, rel=1e-6)
