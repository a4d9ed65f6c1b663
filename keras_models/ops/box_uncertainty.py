"""Probabilistic box regression (He et al. 2019, "Bounding Box Regression with Uncertainty"): each
encoded edge is a Laplace or Normal distribution whose location and log-scale the head predicts,
and the loss is the negative log-likelihood of the target edge under it, kept robust for large
errors as the paper's smooth-L1 form does."""

from __future__ import annotations

import math

import tensorflow as tf
import tensorflow_probability as tfp

from contracts.errors import BoxflowError
from keras_models.ops.box_coding import encode_boxes, encode_edges

NO_UNCERTAINTY, LAPLACE, NORMAL = "none", "laplace", "normal"
BOX_UNCERTAINTIES = (NO_UNCERTAINTY, LAPLACE, NORMAL)
# Predicted log-scales are clipped to this range (scales of 1e-3 to 1e3 encoded units) so that an
# untrained or diverging head cannot overflow exp().
LOG_SCALE_LIMIT = 7.0
# Beyond this error (in encoded units) the Normal's loss continues linearly, as smooth L1 does.
ROBUST_BEYOND = 1.0


def edge_distribution(locations: tf.Tensor, log_scales: tf.Tensor, kind: str) -> tfp.distributions.Distribution:
    """The per-edge distribution: `locations` and `log_scales` `[..., 4]` encoded edges (scale =
    the Laplace's b or the Normal's σ)."""
    family = {LAPLACE: tfp.distributions.Laplace, NORMAL: tfp.distributions.Normal}[kind]
    return family(loc=locations, scale=tf.exp(log_scales))


def box_negative_log_likelihood(targets: tf.Tensor, locations: tf.Tensor, log_scales: tf.Tensor,
                                kind: str) -> tf.Tensor:
    """`-log p(target)` per encoded edge, `[..., 4]` float32.

    Laplace: exactly `-log_prob`, already linear in the error. Normal: exactly `-log_prob` while
    `|target - location| <= ROBUST_BEYOND`; beyond it the loss goes on linearly with the value and
    slope it has there (He et al.'s KL loss, plus the constant log √(2π)), so one far-off target
    cannot dominate a batch as a squared error would.
    """
    targets = tf.cast(targets, tf.float32)
    locations, log_scales = tf.cast(locations, tf.float32), tf.cast(log_scales, tf.float32)
    distribution = edge_distribution(locations, log_scales, kind)
    if kind == LAPLACE:
        return -distribution.log_prob(targets)
    error = tf.abs(targets - locations)
    linear = ((error - ROBUST_BEYOND / 2) * ROBUST_BEYOND * tf.exp(-2.0 * log_scales) + log_scales
              + 0.5 * math.log(2 * math.pi))
    return tf.where(error <= ROBUST_BEYOND, -distribution.log_prob(targets), linear)


def box_outputs(kind: str) -> int:
    """Numbers a box head predicts per box: 4 coordinates, or each edge's location and log-scale."""
    return 4 if kind == NO_UNCERTAINTY else 8


def target_encoder(kind: str):
    """The coding of a head's box targets: centre-size, or edges for a probabilistic head."""
    return encode_boxes if kind == NO_UNCERTAINTY else encode_edges


def scale_from_stddev(stddev, kind: str):
    """A distribution's scale from its standard deviation (a Laplace's b is σ / √2)."""
    return stddev / math.sqrt(2.0) if kind == LAPLACE else stddev


def split_box_predictions(predictions: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """A probabilistic head's `[..., 8]` float32 → `(locations [..., 4], log_scales [..., 4])`, both
    in edge coding, the log-scales clipped to ±`LOG_SCALE_LIMIT`."""
    predictions = tf.cast(predictions, tf.float32)
    return predictions[..., :4], tf.clip_by_value(predictions[..., 4:], -LOG_SCALE_LIMIT, LOG_SCALE_LIMIT)


def box_likelihood_loss(box_targets: tf.Tensor, box_predictions: tf.Tensor, class_targets: tf.Tensor,
                        kind: str) -> tf.Tensor:
    """Summed negative log-likelihood over the positive anchors' 4 edges.

    Args: box_targets `[B, A, 4]` edge-coded, box_predictions `[B, A, 8]`, class_targets `[B, A]`.
    """
    locations, log_scales = split_box_predictions(box_predictions)
    loss = box_negative_log_likelihood(box_targets, locations, log_scales, kind)
    positive = tf.cast(class_targets >= 0, tf.float32)[..., tf.newaxis]
    return tf.reduce_sum(tf.where(positive > 0, loss, 0.0))
