"""Box regression targets: centre offsets scaled by anchor size, log-scale width and height."""

from __future__ import annotations

import tensorflow as tf

from keras_models.ops.box_format import center_size_to_xyxy, xyxy_to_center_size

# The usual RetinaNet / Faster R-CNN variances: they bring the targets to roughly unit scale
# (Detectron's second-stage weights 10, 10, 5, 5).
DEFAULT_VARIANCES = (0.1, 0.1, 0.2, 0.2)
# The RPN's: Detectron's unit weights (RPN.BBOX_REG_WEIGHTS 1, 1, 1, 1), with its smooth L1 at
# beta 1/9 (two_stage_losses.RPN_SMOOTH_L1_BETA).
RPN_VARIANCES = (1.0, 1.0, 1.0, 1.0)


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


# Edge coding (He et al. 2019, "Bounding Box Regression with Uncertainty"): each edge's offset from
# the anchor's, over the anchor's side along that edge's axis. The probabilistic heads predict a
# distribution per edge in this coding, so a predicted scale is an edge's spread in pixels times a
# constant (`edge_scales_to_pixels`), with no change of variables.
EDGE_VARIANCE = 0.1


def _edge_sides(anchors: tf.Tensor) -> tf.Tensor:
    """`[..., 4]` XYXY anchors → `[..., 4]` `(width, height, width, height)` pixels."""
    sides = anchors[..., 2:] - anchors[..., :2]
    return tf.concat([sides, sides], axis=-1)


def encode_edges(boxes: tf.Tensor, anchors: tf.Tensor, variance: float = EDGE_VARIANCE) -> tf.Tensor:
    """`[..., 4]` XYXY boxes relative to `[..., 4]` XYXY anchors → `[..., 4]` per-edge offsets."""
    anchors = tf.cast(anchors, boxes.dtype)
    return (boxes - anchors) / (_edge_sides(anchors) * variance)


def decode_edges(encoded: tf.Tensor, anchors: tf.Tensor, variance: float = EDGE_VARIANCE) -> tf.Tensor:
    """The inverse of `encode_edges`: per-edge offsets → XYXY pixels. Edges predicted past each
    other (max before min) give an empty box at the min edge rather than a crossed one, which
    IoU, drawing and COCO's areas would all misread."""
    anchors = tf.cast(anchors, encoded.dtype)
    boxes = anchors + encoded * _edge_sides(anchors) * variance
    return tf.concat([boxes[..., :2], tf.maximum(boxes[..., 2:], boxes[..., :2])], axis=-1)


def edge_scales_to_pixels(scales: tf.Tensor, anchors: tf.Tensor, variance: float = EDGE_VARIANCE) -> tf.Tensor:
    """A distribution's scale per encoded edge `[..., 4]` → the same scale in pixels `[..., 4]`."""
    return scales * _edge_sides(tf.cast(anchors, scales.dtype)) * variance
