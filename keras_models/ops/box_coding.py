"""Box regression targets: centre offsets scaled by anchor size, log-scale width and height."""

from __future__ import annotations

import tensorflow as tf

from keras_models.ops.box_format import center_size_to_xyxy, xyxy_to_center_size

# The usual RetinaNet / Faster R-CNN variances: they bring the targets to roughly unit scale.
DEFAULT_VARIANCES = (0.1, 0.1, 0.2, 0.2)


def encode_boxes(boxes: tf.Tensor, anchors: tf.Tensor, variances=DEFAULT_VARIANCES) -> tf.Tensor:
    """`[..., 4]` XYXY boxes relative to `[..., 4]` XYXY anchors → `[..., 4]` `(dx, dy, dw, dh)`."""
    box = xyxy_to_center_size(boxes)
    anchor = xyxy_to_center_size(anchors)
    encoded = tf.concat([
        (box[..., :2] - anchor[..., :2]) / anchor[..., 2:],
        tf.math.log(tf.maximum(box[..., 2:], 1e-6) / anchor[..., 2:]),
    ], axis=-1)
    return encoded / tf.constant(variances, encoded.dtype)


def decode_boxes(encoded: tf.Tensor, anchors: tf.Tensor, variances=DEFAULT_VARIANCES) -> tf.Tensor:
    """The inverse of `encode_boxes`: `(dx, dy, dw, dh)` → XYXY pixels."""
    deltas = encoded * tf.constant(variances, encoded.dtype)
    anchor = xyxy_to_center_size(tf.cast(anchors, encoded.dtype))
    center = deltas[..., :2] * anchor[..., 2:] + anchor[..., :2]
    # Clamp log-sizes so an untrained head cannot overflow exp().
    size = tf.exp(tf.minimum(deltas[..., 2:], 8.0)) * anchor[..., 2:]
    return center_size_to_xyxy(tf.concat([center, size], axis=-1))
