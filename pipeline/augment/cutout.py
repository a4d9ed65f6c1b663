"""Cutout: erase a random rectangle to mid-grey (boxes are kept: the object is occluded, not gone)."""

from __future__ import annotations

import tensorflow as tf

from pipeline.augment.boxes import with_probability

FILL_VALUE = 127.5


def random_cutout(example: dict, seed: tf.Tensor, size_range: tuple[float, float] = (0.1, 0.3),
                  probability: float = 0.25) -> dict:
    """With `probability`, fills a rectangle whose sides are `size_range` fractions of the image's."""
    size_seed, y_seed, x_seed, apply_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
    shape = tf.cast(tf.shape(example["image"])[:2], tf.float32)
    fractions = tf.random.stateless_uniform([2], seed=size_seed, minval=size_range[0], maxval=size_range[1])
    extent = tf.maximum(tf.cast(fractions * shape, tf.int32), 1)
    top = tf.random.stateless_uniform([], seed=y_seed, maxval=tf.cast(shape[0], tf.int32) - extent[0] + 1,
                                      dtype=tf.int32)
    left = tf.random.stateless_uniform([], seed=x_seed, maxval=tf.cast(shape[1], tf.int32) - extent[1] + 1,
                                       dtype=tf.int32)

    def erase() -> tf.Tensor:
        image = example["image"]
        height, width = tf.shape(image)[0], tf.shape(image)[1]
        # A padded block of ones marks the rectangle; blending is cheaper than a broadcast tf.where.
        mask = tf.pad(tf.ones([extent[0], extent[1], 1], image.dtype),
                      [[top, height - top - extent[0]], [left, width - left - extent[1]], [0, 0]])
        return image + mask * (FILL_VALUE - image)

    result = dict(example)
    result["image"] = tf.cond(with_probability(apply_seed, probability), erase, lambda: example["image"])
    return result
