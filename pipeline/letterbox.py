"""Resizing to the model's square input while keeping the aspect ratio (letterbox)."""

from __future__ import annotations

import tensorflow as tf


def letterbox(image: tf.Tensor, boxes: tf.Tensor, size: int, pad_value: float = 0.0) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Scales `image` so its longer side is `size`, pads bottom and right to `size` x `size`.

    Args:
      image: `[H, W, 3]`, any dtype, pixels.
      boxes: `[N, 4]` float32 pixels `xyxy` of `image`.
    Returns:
      `(image float32 [size, size, 3] in 0..255, boxes [N, 4] pixels of the new image, scale)`,
      where a point `p` of the input lands at `p * scale`.
    """
    scale, new_shape = _fit(tf.shape(image)[:2], size)
    resized = resize_bilinear(image, new_shape, scale)
    padded = tf.pad(resized, [[0, size - new_shape[0]], [0, size - new_shape[1]], [0, 0]],
                    constant_values=pad_value)
    padded.set_shape([size, size, 3])
    return padded, boxes * scale, scale


def letterbox_map(pixel_map: tf.Tensor, size: int, fill: int = 0) -> tf.Tensor:
    """int32 `[H, W]` per-pixel map (instances, classes) → `[size, size]`, as `letterbox` places its
    image (nearest neighbour, so every pixel keeps one source pixel's value; `fill` in the padding)."""
    _, new_shape = _fit(tf.shape(pixel_map), size)
    resized = tf.image.resize(pixel_map[..., tf.newaxis], new_shape, method="nearest")[..., 0]
    padded = tf.pad(resized, [[0, size - new_shape[0]], [0, size - new_shape[1]]], constant_values=fill)
    padded.set_shape([size, size])
    return padded


def _fit(shape: tf.Tensor, size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """The scale that puts the longer side of `shape` (`[H, W]`) onto `size`, and the scaled shape."""
    shape = tf.cast(shape, tf.float32)
    scale = tf.cast(size, tf.float32) / tf.reduce_max(shape)
    return scale, tf.cast(tf.round(shape * scale), tf.int32)


def resize_bilinear(image: tf.Tensor, shape: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
    """Resizes `image` (any dtype) to `shape` as float32; `scale` is the new/old size ratio.

    Plain bilinear is fine down to half size; below that it aliases, and the dearer
    antialiased kernel is used.
    """
    pixels = tf.cast(image, tf.float32)
    return tf.cond(scale < 0.5,
                   lambda: tf.image.resize(pixels, shape, method="bilinear", antialias=True),
                   lambda: tf.image.resize(pixels, shape, method="bilinear"))
