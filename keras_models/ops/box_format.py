"""Box format conversions and IoU. In memory, boxes are pixels XYXY `(xmin, ymin, xmax, ymax)`
(DESIGN.md §4); CENTER_SIZE is `(center x, center y, width, height)`, used by box coding."""

from __future__ import annotations

import tensorflow as tf


def xyxy_to_center_size(boxes: tf.Tensor) -> tf.Tensor:
    """`[..., 4]` XYXY → CENTER_SIZE."""
    xmin, ymin, xmax, ymax = tf.unstack(boxes, axis=-1)
    return tf.stack([(xmin + xmax) / 2, (ymin + ymax) / 2, xmax - xmin, ymax - ymin], axis=-1)


def center_size_to_xyxy(boxes: tf.Tensor) -> tf.Tensor:
    """`[..., 4]` CENTER_SIZE → XYXY."""
    center_x, center_y, width, height = tf.unstack(boxes, axis=-1)
    return tf.stack([center_x - width / 2, center_y - height / 2, center_x + width / 2, center_y + height / 2], axis=-1)


def _intersections_and_areas(boxes_a: tf.Tensor, boxes_b: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    a = boxes_a[..., :, tf.newaxis, :]
    b = boxes_b[..., tf.newaxis, :, :]
    width = tf.maximum(tf.minimum(a[..., 2], b[..., 2]) - tf.maximum(a[..., 0], b[..., 0]), 0.0)
    height = tf.maximum(tf.minimum(a[..., 3], b[..., 3]) - tf.maximum(a[..., 1], b[..., 1]), 0.0)
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return width * height, area_a, area_b


def pairwise_iou(boxes_a: tf.Tensor, boxes_b: tf.Tensor) -> tf.Tensor:
    """IoU of every pair: `[..., N, 4]` and `[..., M, 4]` XYXY → `[..., N, M]` (0 where a union is
    empty), the leading dimensions broadcast."""
    intersection, area_a, area_b = _intersections_and_areas(boxes_a, boxes_b)
    return tf.math.divide_no_nan(intersection, area_a + area_b - intersection)


def pairwise_overlaps(boxes_a: tf.Tensor, boxes_b: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """`pairwise_iou` and, from the same intersections, the fraction of each box of `a` inside each
    box of `b` (intersection over a's area, 0 for an empty box of `a`): both `[..., N, M]`."""
    intersection, area_a, area_b = _intersections_and_areas(boxes_a, boxes_b)
    return (tf.math.divide_no_nan(intersection, area_a + area_b - intersection),
            tf.math.divide_no_nan(intersection, area_a))
