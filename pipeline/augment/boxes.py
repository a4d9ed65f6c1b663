"""Box bookkeeping shared by the geometric ops: clipping, and dropping mostly-cut boxes."""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

from pipeline.augment.instance_maps import renumbered_instances, tightened_to_masks


def box_areas(boxes: tf.Tensor) -> tf.Tensor:
    """`[N, 4]` xyxy → `[N]` areas (zero for inverted boxes)."""
    return tf.maximum(boxes[:, 2] - boxes[:, 0], 0.0) * tf.maximum(boxes[:, 3] - boxes[:, 1], 0.0)


def clip_and_drop(example: dict, moved_boxes: tf.Tensor, height: tf.Tensor, width: tf.Tensor,
                  min_visible_fraction: float, uncut_instance_map: Optional[tf.Tensor] = None) -> dict:
    """Clips `moved_boxes` (pixels of the new `height` x `width` image) and drops those
    keeping less than `min_visible_fraction` of their area; classes stay paired.

    With an instance map (`example["instance_map"]`, already cut to the new image, and
    `uncut_instance_map`, the same numbering before the cut) the boxes the cut touched are
    tightened to their masks' visible pixels, a box whose mask the cut removed is dropped, and
    the map is renumbered as the boxes are kept.
    """
    height, width = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    clipped = tf.stack([
        tf.clip_by_value(moved_boxes[:, 0], 0.0, width),
        tf.clip_by_value(moved_boxes[:, 1], 0.0, height),
        tf.clip_by_value(moved_boxes[:, 2], 0.0, width),
        tf.clip_by_value(moved_boxes[:, 3], 0.0, height),
    ], axis=-1)
    before = box_areas(moved_boxes)
    keep = (box_areas(clipped) >= min_visible_fraction * before) & (before > 0) & (box_areas(clipped) > 0)
    result = dict(example)
    if "instance_map" in example:
        clipped, lost = tightened_to_masks(clipped, moved_boxes, example["instance_map"], uncut_instance_map)
        keep &= ~lost
        result["instance_map"] = renumbered_instances(example["instance_map"], keep)
    result["boxes"] = tf.boolean_mask(clipped, keep)
    result["classes"] = tf.boolean_mask(example["classes"], keep)
    return result


def with_probability(seed: tf.Tensor, probability: float) -> tf.Tensor:
    """A scalar bool, true with `probability`, drawn from `seed`."""
    return tf.random.stateless_uniform([], seed=seed) < probability
