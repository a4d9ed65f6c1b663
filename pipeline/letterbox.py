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
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.cast(size, tf.float32) / tf.reduce_max(shape)
    new_shape = tf.cast(tf.round(shape * scale), tf.int32)
    resized = resize_bilinear(image, new_shape, scale)
    padded = tf.pad(resized, [[0, size - new_shape[0]], [0, size - new_shape[1]], [0, 0]],
                    constant_values=pad_value)
    padded.set_shape([size, size, 3])
    return padded, boxes * scale, scale


def resize_bilinear(image: tf.Tensor, shape: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
    """Resizes `image` (any dtype) to `shape` as float32; `scale` is the new/old size ratio.

    Plain bilinear is fine down to half size; below that it aliases, and the dearer
    antialiased kernel is used.
    """
    pixels = tf.cast(image, tf.float32)
    return tf.cond(scale < 0.5,
                   lambda: tf.image.resize(pixels, shape, method="bilinear", antialias=True),
                   lambda: tf.image.resize(pixels, shape, method="bilinear"))
