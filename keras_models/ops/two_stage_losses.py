"""Faster R-CNN's losses: the RPN's objectness (binary cross-entropy) and box (smooth L1, on
Detectron's unit-weight coding) losses over its sampled anchors, the second stage's softmax cross-entropy and class-specific Huber box loss
over its sampled ROIs. Each stage's sums are divided by the number of examples it sampled in the
global batch, so that, as with RetinaNet, the replicas' losses add up to the one-device loss."""

from __future__ import annotations

import tensorflow as tf

from keras_models.ops.box_uncertainty import NO_UNCERTAINTY, box_likelihood_loss
from keras_models.ops.losses import box_regression_loss
from keras_models.ops.matching import IGNORED

# Detectron's RPN.SMOOTH_L1_BETA: with unit-weight coding, the regression targets are about a tenth
# of the second stage's, so the loss turns linear ten times sooner.
RPN_SMOOTH_L1_BETA = 1.0 / 9.0


def rpn_losses(objectness: tf.Tensor, box_targets: tf.Tensor, logits: tf.Tensor, deltas: tf.Tensor,
               sampled: tf.Tensor) -> dict[str, tf.Tensor]:
    """`{"rpn_class_loss", "rpn_box_loss"}`.

    Args: objectness `[B, A]` int32 (1 positive, 0 negative, `IGNORED`); box_targets and deltas
    `[B, A, 4]`; logits `[B, A]`; sampled: the global batch's count of sampled anchors.
    """
    counted = tf.cast(objectness != IGNORED, tf.float32)
    cross_entropy = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(objectness == 1, tf.float32),
                                                            logits=tf.cast(logits, tf.float32))
    sampled = tf.maximum(sampled, 1.0)
    positives = tf.where(objectness == 1, 0, -1)
    # Detectron's smooth L1 (quadratic below beta, then |x| - beta/2) is the Huber loss over beta.
    box_loss = box_regression_loss(box_targets, deltas, positives, delta=RPN_SMOOTH_L1_BETA) / RPN_SMOOTH_L1_BETA
    return {"rpn_class_loss": tf.reduce_sum(cross_entropy * counted) / sampled, "rpn_box_loss": box_loss / sampled}


def roi_losses(class_targets: tf.Tensor, box_targets: tf.Tensor, class_logits: tf.Tensor, box_deltas: tf.Tensor,
               sampled: tf.Tensor, box_uncertainty: str = NO_UNCERTAINTY) -> dict[str, tf.Tensor]:
    """`{"class_loss", "box_loss"}` of the second stage.

    Args: class_targets `[B, R]` int32 (class from 0, `BACKGROUND`, `IGNORED`); box_targets `[B, R, 4]`;
    class_logits `[B, R, C + 1]` (background last); box_deltas `[B, R, C, 4]`, or `[B, R, C, 8]`
    with a `box_uncertainty` distribution, whose negative log-likelihood is then the box loss;
    sampled: the global batch's count of sampled ROIs.
    """
    num_classes = class_logits.shape[-1] - 1
    labels = tf.where(class_targets >= 0, class_targets, num_classes)
    cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels,
                                                                   logits=tf.cast(class_logits, tf.float32))
    counted = tf.cast(class_targets != IGNORED, tf.float32)
    # Only the delta of the ROI's own class is trained.
    own_deltas = tf.gather(box_deltas, tf.maximum(class_targets, 0), batch_dims=2)
    sampled = tf.maximum(sampled, 1.0)
    if box_uncertainty == NO_UNCERTAINTY:
        box_loss = box_regression_loss(box_targets, own_deltas, class_targets)
    else:
        box_loss = box_likelihood_loss(box_targets, own_deltas, class_targets, box_uncertainty)
    return {"class_loss": tf.reduce_sum(cross_entropy * counted) / sampled, "box_loss": box_loss / sampled}
