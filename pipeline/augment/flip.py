"""Random horizontal flip."""

from __future__ import annotations

import tensorflow as tf

from pipeline.augment.boxes import with_probability
from pipeline.augment.pixel_maps import with_maps_moved


def flip_horizontally(example: dict) -> dict:
    """Mirrors the image left-right; box `(x1, y1, x2, y2)` becomes `(W - x2, y1, W - x1, y2)`."""
    width = tf.cast(tf.shape(example["image"])[1], tf.float32)
    boxes = example["boxes"]
    result = dict(example)
    result["image"] = tf.image.flip_left_right(example["image"])
    result["boxes"] = tf.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=-1)
    return with_maps_moved(example, result, lambda pixel_map, _: tf.reverse(pixel_map, axis=[1]))


def random_flip(example: dict, seed: tf.Tensor, probability: float = 0.5) -> dict:
    return tf.cond(with_probability(seed, probability), lambda: flip_horizontally(example), lambda: dict(example))
