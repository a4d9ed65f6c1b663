"""Box bookkeeping shared by the geometric ops: clipping, and dropping mostly-cut boxes."""

from __future__ import annotations

import tensorflow as tf


def box_areas(boxes: tf.Tensor) -> tf.Tensor:
    """`[N, 4]` xyxy → `[N]` areas (zero for inverted boxes)."""
    return tf.maximum(boxes[:, 2] - boxes[:, 0], 0.0) * tf.maximum(boxes[:, 3] - boxes[:, 1], 0.0)


def clip_and_drop(example: dict, moved_boxes: tf.Tensor, height: tf.Tensor, width: tf.Tensor,
                  min_visible_fraction: float) -> dict:
    """Clips `moved_boxes` (pixels of the new `height` x `width` image) and drops those
    keeping less than `min_visible_fraction` of their area; classes stay paired."""
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
    result["boxes"] = tf.boolean_mask(clipped, keep)
    result["classes"] = tf.boolean_mask(example["classes"], keep)
    if "instance_map" in example:
        result["instance_map"] = renumbered_instances(example["instance_map"], keep)
    return result


def renumbered_instances(instance_map: tf.Tensor, keep: tf.Tensor) -> tf.Tensor:
    """`instance_map` (int32 `[H, W]`, `i + 1` where box `i` shows, 0 elsewhere) after the boxes
    `keep` (bool `[N]`) marks are kept: kept boxes get their new numbers, dropped ones' pixels 0."""
    new_numbers = tf.cumsum(tf.cast(keep, tf.int32)) * tf.cast(keep, tf.int32)
    return tf.gather(tf.concat([[0], new_numbers], axis=0), instance_map)


def with_probability(seed: tf.Tensor, probability: float) -> tf.Tensor:
    """A scalar bool, true with `probability`, drawn from `seed`."""
    return tf.random.stateless_uniform([], seed=seed) < probability
