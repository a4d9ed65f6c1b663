"""The semantic branch's loss: per-pixel softmax cross-entropy at the input's resolution, void
pixels (`IGNORE_LABEL`) left out, averaged over the labelled pixels of the global batch; or over
the hardest share of each image's pixels only (bootstrapped cross-entropy, as Panoptic-DeepLab
trains its semantic head), so that small objects do not drown in the large, easy regions around
them."""

from __future__ import annotations

import tensorflow as tf

from contracts.record_schema import IGNORE_LABEL


def semantic_loss(logits: tf.Tensor, class_map: tf.Tensor, count=lambda total: total,
                  hard_pixel_fraction: float = 1.0) -> tf.Tensor:
    """Mean cross-entropy of `logits` `[B, h, w, K]` (any stride; upsampled bilinearly to the map)
    against `class_map` int32 `[B, H, W]` (label ids `0..K-1`, `IGNORE_LABEL` void). Below 1,
    `hard_pixel_fraction` keeps only the `ceil(fraction * H * W)` largest pixel losses of each image
    (a static count, for XLA), void ones counting as 0. `count` turns this replica's
    count of averaged pixels into the global one (`global_count` under a strategy), so that every
    replica divides by the same number; no labelled pixel gives 0."""
    size = tf.shape(class_map)[1:3]
    logits = tf.image.resize(tf.cast(logits, tf.float32), size, method="bilinear")
    labelled = class_map != IGNORE_LABEL
    labels = tf.where(labelled, class_map, 0)
    weight = tf.cast(labelled, tf.float32)
    per_pixel = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits) * weight
    if hard_pixel_fraction < 1.0:
        # Per image, so that a blank image filling up a static batch changes no other image's share.
        images, pixels = tf.shape(per_pixel)[0], size[0] * size[1]
        kept = tf.cast(tf.math.ceil(hard_pixel_fraction * tf.cast(pixels, tf.float32)), tf.int32)
        per_pixel, indices = tf.math.top_k(tf.reshape(per_pixel, [images, pixels]), kept, sorted=False)
        weight = tf.gather(tf.reshape(weight, [images, pixels]), indices, batch_dims=1)
    return tf.math.divide_no_nan(tf.reduce_sum(per_pixel), count(tf.reduce_sum(weight)))
