"""Instance-map bookkeeping for the geometric ops: renumbering after boxes are dropped, and
boxes tightened to what a cut leaves of their masks."""

from __future__ import annotations

import tensorflow as tf


def renumbered_instances(instance_map: tf.Tensor, keep: tf.Tensor) -> tf.Tensor:
    """`instance_map` (int32 `[H, W]`, `i + 1` where box `i` shows, 0 elsewhere) after the boxes
    `keep` (bool `[N]`) marks are kept: kept boxes get their new numbers, dropped ones' pixels 0."""
    new_numbers = tf.cumsum(tf.cast(keep, tf.int32)) * tf.cast(keep, tf.int32)
    return tf.gather(tf.concat([[0], new_numbers], axis=0), instance_map)


def instance_extents(instance_map: tf.Tensor, count: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The tight box of each of `count` instances of `instance_map` (int32 `[H, W]`).

    Returns `(extents, shown)`: float32 `[count, 4]` pixel-edge xyxy (a pixel `(x, y)` spans
    `x..x+1`), meaningless where `shown` (bool `[count]`) is false: no pixel of that instance.
    """
    height, width = tf.shape(instance_map)[0], tf.shape(instance_map)[1]
    ys, xs = tf.meshgrid(tf.range(height), tf.range(width), indexing="ij")
    ids = tf.reshape(instance_map, [-1])
    segments = count + 1

    def lowest(values: tf.Tensor) -> tf.Tensor:
        return tf.math.unsorted_segment_min(tf.reshape(values, [-1]), ids, segments)[1:]

    def highest(values: tf.Tensor) -> tf.Tensor:
        return tf.math.unsorted_segment_max(tf.reshape(values, [-1]), ids, segments)[1:]

    x_min, y_min, x_max, y_max = lowest(xs), lowest(ys), highest(xs), highest(ys)
    extents = tf.cast(tf.stack([x_min, y_min, x_max + 1, y_max + 1], axis=-1), tf.float32)
    return extents, x_min <= x_max


def instances_shown(instance_map: tf.Tensor, count: tf.Tensor) -> tf.Tensor:
    """bool `[count]`: which instances have at least one pixel in `instance_map` (int32 `[H, W]`)."""
    return tf.math.bincount(tf.reshape(instance_map, [-1]), minlength=count + 1, maxlength=count + 1)[1:] > 0


def tightened_to_masks(clipped: tf.Tensor, moved: tf.Tensor, cut_map: tf.Tensor,
                       uncut_map: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Boxes a cut clipped, shrunk to their masks' visible pixels.

    Clipping a box to a window is exact for a rectangle, not for a disc or a person: the part
    of the object left inside can be narrower than the clipped box. A box the cut touched
    (`clipped` differs from `moved`, both `[N, 4]` pixels) becomes its clipped box intersected
    with the tight box of its pixels in `cut_map` (the instance map inside the window).
    Boxes without a mask before the cut (no pixel in `uncut_map`) are left as clipped.

    Returns `(boxes [N, 4], lost [N] bool)`: `lost` marks boxes that had a mask and have no
    pixel of it left, which the caller drops.
    """
    count = tf.shape(clipped)[0]
    had_mask = instances_shown(uncut_map, count)
    extents, shown = instance_extents(cut_map, count)
    cut = tf.reduce_any(tf.not_equal(clipped, moved), axis=-1)
    intersected = tf.concat([tf.maximum(clipped[:, :2], extents[:, :2]),
                             tf.minimum(clipped[:, 2:], extents[:, 2:])], axis=-1)
    boxes = tf.where((cut & had_mask & shown)[:, tf.newaxis], intersected, clipped)
    return boxes, had_mask & ~shown
