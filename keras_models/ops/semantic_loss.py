"""The semantic branch's loss: per-pixel softmax cross-entropy at the input's resolution, void
pixels (`IGNORE_LABEL`) left out, averaged over the labelled pixels of the global batch."""

from __future__ import annotations

import tensorflow as tf

from contracts.record_schema import IGNORE_LABEL


def semantic_loss(logits: tf.Tensor, class_map: tf.Tensor, count=lambda total: total) -> tf.Tensor:
    """Mean cross-entropy of `logits` `[B, h, w, K]` (any stride; upsampled bilinearly to the map)
    against `class_map` int32 `[B, H, W]` (label ids `0..K-1`, `IGNORE_LABEL` void). `count` turns
    this replica's labelled-pixel count into the global one (`global_count` under a strategy), so
    that every replica divides by the same number; no labelled pixel gives 0."""
    size = tf.shape(class_map)[1:3]
    logits = tf.image.resize(tf.cast(logits, tf.float32), size, method="bilinear")
    labelled = class_map != IGNORE_LABEL
    labels = tf.where(labelled, class_map, 0)
    per_pixel = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    weight = tf.cast(labelled, tf.float32)
    return tf.math.divide_no_nan(tf.reduce_sum(per_pixel * weight), count(tf.reduce_sum(weight)))
