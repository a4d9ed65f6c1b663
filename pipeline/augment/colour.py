"""Colour jitter: brightness, contrast, saturation and hue, in random order-free sequence."""

from __future__ import annotations

import tensorflow as tf


def random_colour_jitter(example: dict, seed: tf.Tensor, brightness: float = 0.2,
                         contrast: tuple[float, float] = (0.8, 1.2), saturation: tuple[float, float] = (0.8, 1.2),
                         hue: float = 0.05) -> dict:
    """Jitters the pixels only; boxes and classes are untouched.

    `brightness` and `hue` are the largest shifts (fractions of the full range);
    `contrast` and `saturation` are factor ranges.
    """
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
    image = example["image"] / 255.0
    image = tf.image.stateless_random_brightness(image, brightness, seed=seeds[0])
    image = tf.image.stateless_random_contrast(image, contrast[0], contrast[1], seed=seeds[1])
    image = tf.image.stateless_random_saturation(tf.clip_by_value(image, 0.0, 1.0), saturation[0], saturation[1],
                                                 seed=seeds[2])
    image = tf.image.stateless_random_hue(image, hue, seed=seeds[3])
    result = dict(example)
    result["image"] = tf.clip_by_value(image, 0.0, 1.0) * 255.0
    return result
