"""Scale jitter with a random crop (or pad) back to a fixed size."""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

from pipeline.augment.boxes import clip_and_drop
from pipeline.augment.pixel_maps import FILL, INSTANCE_MAP, maps_of
from pipeline.letterbox import resize_bilinear


def random_scale_crop(example: dict, seed: tf.Tensor, scale_range: tuple[float, float] = (0.75, 1.25),
                      min_visible_fraction: float = 0.5, output_size: Optional[tuple[int, int]] = None) -> dict:
    """Resizes by a random factor in `scale_range`, then takes a random window of
    `output_size`, padding with zeros where the scaled image is smaller. Boxes move
    with the pixels, are clipped to the window, and are dropped when less than
    `min_visible_fraction` of their area stays inside. The per-pixel maps move with the pixels.

    Without `output_size` the window has the input's size. With it, the factor is
    relative to the letterbox fit (longer side onto the window), so the one resize
    does both the letterbox and the jitter.
    """
    scale_seed, y_seed, x_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    shape = tf.shape(example["image"])[:2]
    float_shape = tf.cast(shape, tf.float32)
    if output_size is None:
        out_height, out_width = shape[0], shape[1]
        fit = tf.constant(1.0)
    else:
        out_height, out_width = output_size
        fit = tf.minimum(out_height / float_shape[0], out_width / float_shape[1])
    jitter = tf.random.stateless_uniform([], seed=scale_seed, minval=scale_range[0], maxval=scale_range[1])
    scale = fit * jitter
    scaled_shape = tf.maximum(tf.cast(tf.round(float_shape * scale), tf.int32), 1)
    image = resize_bilinear(example["image"], scaled_shape, scale)

    # The window's offset inside the scaled image: positive crops, negative pads.
    offset_y = _random_offset(y_seed, scaled_shape[0], out_height)
    offset_x = _random_offset(x_seed, scaled_shape[1], out_width)
    scaled_maps = {key: tf.image.resize(example[key][..., tf.newaxis], scaled_shape, method="nearest")
                   for key in maps_of(example)}
    result = dict(example)
    result["image"] = _window(image, offset_y, offset_x, out_height, out_width)
    for key, scaled in scaled_maps.items():
        result[key] = _window(scaled, offset_y, offset_x, out_height, out_width, FILL[key])[..., 0]
    uncut_instances = scaled_maps[INSTANCE_MAP][..., 0] if INSTANCE_MAP in scaled_maps else None
    exact_scale = tf.cast(scaled_shape, tf.float32) / float_shape
    moved = example["boxes"] * tf.stack([exact_scale[1], exact_scale[0], exact_scale[1], exact_scale[0]]) - tf.cast(
        tf.stack([offset_x, offset_y, offset_x, offset_y]), tf.float32)
    return clip_and_drop(result, moved, out_height, out_width, min_visible_fraction, uncut_instances)


def _random_offset(seed: tf.Tensor, scaled: tf.Tensor, out: tf.Tensor) -> tf.Tensor:
    low, high = tf.minimum(0, scaled - out), tf.maximum(0, scaled - out)
    return tf.random.stateless_uniform([], seed=seed, minval=low, maxval=high + 1, dtype=tf.int32)


def _window(image: tf.Tensor, offset_y: tf.Tensor, offset_x: tf.Tensor, height, width, fill=0) -> tf.Tensor:
    """The `height` x `width` window at `(offset_y, offset_x)` of `image`, `fill` outside it."""
    scaled = tf.shape(image)
    top, left = tf.maximum(-offset_y, 0), tf.maximum(-offset_x, 0)
    crop_y, crop_x = tf.maximum(offset_y, 0), tf.maximum(offset_x, 0)
    crop_h = tf.minimum(scaled[0] - crop_y, height - top)
    crop_w = tf.minimum(scaled[1] - crop_x, width - left)
    cropped = image[crop_y:crop_y + crop_h, crop_x:crop_x + crop_w]
    return tf.pad(cropped, [[top, height - top - crop_h], [left, width - left - crop_w], [0, 0]],
                  constant_values=tf.cast(fill, image.dtype))
