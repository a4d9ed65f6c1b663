"""Variance voting (He et al. 2019, "Bounding Box Regression with Uncertainty", §3.3): after NMS,
each kept box's edges become the average of its neighbours' edges, weighted by how much each
neighbour overlaps it and by how sure it is of each edge."""

from __future__ import annotations

import tensorflow as tf

from keras_models.ops.box_format import pairwise_iou

# σ_t of the paper's overlap weight exp(-(1 - IoU)² / σ_t): small values trust close neighbours only.
OVERLAP_SIGMA = 0.02


def variance_voting(kept: tf.Tensor, candidates: tf.Tensor, candidate_stddev: tf.Tensor, candidate_valid: tf.Tensor,
                    overlap_sigma: float = OVERLAP_SIGMA) -> tf.Tensor:
    """Voted boxes `[..., P, 4]`.

    Args:
      kept: `[..., P, 4]` the boxes NMS kept, pixels XYXY.
      candidates: `[..., K, 4]` the boxes it chose from (the kept ones among them), pixels XYXY.
      candidate_stddev: `[..., K, 4]` each candidate edge's standard deviation, pixels.
      candidate_valid: `[..., K]` bool, the candidates that may vote (above the score threshold).
    Each edge is `Σ p_i x_i / σ_i² / Σ p_i / σ_i²` over the candidates overlapping the kept box,
    `p_i = exp(-(1 - IoU_i)² / overlap_sigma)`. A kept box votes for itself with IoU 1, so the
    denominator is never zero for a real box; padding rows (no overlapping candidate) stay as
    they are.
    """
    overlap = pairwise_iou(kept, candidates)  # [..., P, K]
    weight = tf.exp(-tf.square(1.0 - overlap) / overlap_sigma)
    weight *= tf.cast((overlap > 0.0) & candidate_valid[..., tf.newaxis, :], weight.dtype)
    precision = weight[..., tf.newaxis] / tf.square(tf.maximum(candidate_stddev, 1e-6))[..., tf.newaxis, :, :]
    total = tf.reduce_sum(precision, axis=-2)  # [..., P, 4]
    voted = tf.reduce_sum(precision * candidates[..., tf.newaxis, :, :], axis=-2) / tf.maximum(total, 1e-12)
    return tf.where(total > 0.0, voted, kept)
