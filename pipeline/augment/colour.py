"""Colour jitter: brightness, contrast, saturation and hue.

Saturation and hue are applied together as one 3x3 colour matrix: a rotation of the
chroma plane of YIQ space (hue) scaled about the grey axis (saturation). It is a
linear stand-in for `tf.image`'s HSV-based ops at a fraction of their cost, which
matters on the input path's hot loop.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from pipeline.augment.boxes import with_probability

# NumPy, not TensorFlow, constants: a tensor made at import would start TensorFlow's runtime,
# and MultiWorkerMirroredStrategy must be created before it starts.
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float32)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ).astype(np.float32)


def colour_matrix(saturation: tf.Tensor, hue_turns: tf.Tensor) -> tf.Tensor:
    """The `[3, 3]` matrix that scales chroma by `saturation` and turns hue by `hue_turns` (1 = 360°)."""
    angle = 2.0 * math.pi * hue_turns
    cos, sin = saturation * tf.cos(angle), saturation * tf.sin(angle)
    chroma = tf.stack([[1.0, 0.0, 0.0], tf.stack([0.0, cos, -sin]), tf.stack([0.0, sin, cos])])
    return tf.constant(_YIQ_TO_RGB) @ chroma @ tf.constant(_RGB_TO_YIQ)


def random_colour_jitter(example: dict, seed: tf.Tensor, brightness: float = 0.2,
                         contrast: tuple[float, float] = (0.8, 1.2), saturation: tuple[float, float] = (0.8, 1.2),
                         hue: float = 0.05, probability: float = 1.0) -> dict:
    """With `probability`, jitters the pixels only; boxes and classes are untouched.

    `brightness` and `hue` are the largest shifts (fractions of the full range, of a
    full turn); `contrast` and `saturation` are factor ranges.
    """
    jitter_seed, apply_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    result = dict(example)
    result["image"] = tf.cond(with_probability(apply_seed, probability),
                              lambda: _jitter(example["image"], jitter_seed, brightness, contrast, saturation, hue),
                              lambda: example["image"])
    return result


def _jitter(image: tf.Tensor, seed: tf.Tensor, brightness: float, contrast: tuple[float, float],
            saturation: tuple[float, float], hue: float) -> tf.Tensor:
    draws = tf.random.stateless_uniform([4], seed=seed)
    shift = (2.0 * draws[0] - 1.0) * brightness * 255.0
    contrast_factor = contrast[0] + draws[1] * (contrast[1] - contrast[0])
    saturation_factor = saturation[0] + draws[2] * (saturation[1] - saturation[0])
    hue_turns = (2.0 * draws[3] - 1.0) * hue

    shape = tf.shape(image)
    pixels = tf.reshape(image, [-1, 3]) @ tf.transpose(colour_matrix(saturation_factor, hue_turns))
    mean = tf.reduce_mean(pixels)
    pixels = (pixels - mean) * contrast_factor + mean + shift
    return tf.reshape(tf.clip_by_value(pixels, 0.0, 255.0), shape)
