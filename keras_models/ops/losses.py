"""RetinaNet losses: sigmoid focal loss for classes, Huber (smooth L1) for boxes, both
summed and divided by the number of positive anchors in the batch."""

from __future__ import annotations

import tensorflow as tf

from keras_models.ops.box_uncertainty import NO_UNCERTAINTY, box_likelihood_loss
from keras_models.ops.matching import IGNORED


def sigmoid_focal_loss(class_targets: tf.Tensor, logits: tf.Tensor, alpha: float = 0.25,
                       gamma: float = 2.0) -> tf.Tensor:
    """Summed focal loss over every non-ignored anchor and class.

    Args:
      class_targets: `[B, A]` int32: class from 0, -1 background, -2 ignored.
      logits: `[B, A, C]` float.
    """
    logits = tf.cast(logits, tf.float32)
    labels = tf.one_hot(tf.maximum(class_targets, -1), tf.shape(logits)[-1], dtype=tf.float32)  # -1 → all zeros
    probabilities = tf.sigmoid(logits)
    cross_entropy = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    p_t = labels * probabilities + (1 - labels) * (1 - probabilities)
    alpha_t = labels * alpha + (1 - labels) * (1 - alpha)
    loss = alpha_t * tf.pow(1 - p_t, gamma) * cross_entropy
    counted = tf.cast(class_targets != IGNORED, tf.float32)[..., tf.newaxis]
    return tf.reduce_sum(loss * counted)


def box_regression_loss(box_targets: tf.Tensor, box_predictions: tf.Tensor, class_targets: tf.Tensor,
                        delta: float = 1.0) -> tf.Tensor:
    """Summed Huber loss over the positive anchors' 4 encoded coordinates.

    Args: box_targets and box_predictions `[B, A, 4]`, class_targets `[B, A]`.
    """
    error = tf.cast(box_predictions, tf.float32) - box_targets
    absolute = tf.abs(error)
    huber = tf.where(absolute < delta, 0.5 * tf.square(error), delta * (absolute - 0.5 * delta))
    positive = tf.cast(class_targets >= 0, tf.float32)[..., tf.newaxis]
    return tf.reduce_sum(huber * positive)


def positive_anchors(class_targets: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.cast(class_targets >= 0, tf.float32))


def detection_loss(class_targets: tf.Tensor, box_targets: tf.Tensor, logits: tf.Tensor, box_predictions: tf.Tensor,
                   box_loss_weight: float = 1.0, positives: tf.Tensor | None = None,
                   box_uncertainty: str = NO_UNCERTAINTY) -> dict[str, tf.Tensor]:
    """`{"class_loss", "box_loss", "loss"}`, each divided by max(1, positive anchors).

    `positives` defaults to this batch's count; under a distribution strategy pass the
    count summed over replicas, so the replicas' losses add up to the global batch's.
    With a `box_uncertainty` distribution the box loss is its negative log-likelihood
    (`box_uncertainty.box_likelihood_loss`, predictions `[B, A, 8]`) instead of Huber's.
    """
    if positives is None:
        positives = positive_anchors(class_targets)
    positives = tf.maximum(positives, 1.0)
    class_loss = sigmoid_focal_loss(class_targets, logits) / positives
    if box_uncertainty == NO_UNCERTAINTY:
        box_loss = box_regression_loss(box_targets, box_predictions, class_targets) / positives
    else:
        box_loss = box_likelihood_loss(box_targets, box_predictions, class_targets, box_uncertainty) / positives
    return {"class_loss": class_loss, "box_loss": box_loss, "loss": class_loss + box_loss_weight * box_loss}
