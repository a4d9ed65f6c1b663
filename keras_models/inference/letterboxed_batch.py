"""The export's three input types (encoded bytes, uint8 pixels, serialized `tf.train.Example`s)
turned into one model batch: each image decoded and letterboxed to the model's square input, with
where it lies inside that square and the size it was stored at, so that answers map back onto the
original images."""

from __future__ import annotations

from typing import Callable, NamedTuple

import tensorflow as tf

from contracts import record_schema
from pipeline.letterbox import letterbox
from pipeline.record_decoding import decode_image, stored_shape


class LetterboxedBatch(NamedTuple):
    """`images` float32 `[B, S, S, 3]` in 0..255; `extents` float32 `[B, 2]`: each original image's
    height and width inside its letterboxed square, in model pixels (it sits at the top left);
    `shapes` float32 `[B, 2]`: each image's height and width as stored, in pixels."""

    images: tf.Tensor
    extents: tf.Tensor
    shapes: tf.Tensor


def letterbox_encoded(encoded: tf.Tensor, size: int) -> LetterboxedBatch:
    """`encoded`: tf.string `[B]` of JPEG or PNG bytes (any sizes)."""
    def decoded(one: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = decode_image(one, shrink_for=size)
        return image, stored_shape(one, image)

    return _letterbox_each(encoded, decoded, size)


def letterbox_pixels(images: tf.Tensor, size: int) -> LetterboxedBatch:
    """`images`: uint8 `[B, H, W, 3]`, pixels."""
    return _letterbox_each(images, lambda one: (one, tf.shape(one)[:2]), size)


def encoded_of_examples(serialized: tf.Tensor) -> tf.Tensor:
    """tf.string `[B]`: the `image/encoded` bytes of serialized `tf.train.Example`s `[B]`."""
    features = tf.io.parse_example(serialized, {record_schema.ENCODED: tf.io.FixedLenFeature([], tf.string)})
    return features[record_schema.ENCODED]


def _letterbox_each(batch: tf.Tensor, to_image: Callable, size: int) -> LetterboxedBatch:
    """`to_image(element)` → `(image [h, w, 3] as decoded, [2] height and width of the image as stored)`."""
    def letterboxed(element):
        image, stored = to_image(element)
        resized, _, scale = letterbox(image, tf.zeros([0, 4]), size)
        return resized, scale * tf.cast(tf.shape(image)[:2], tf.float32), tf.cast(stored, tf.float32)

    return LetterboxedBatch(*tf.map_fn(
        letterboxed, batch,
        fn_output_signature=(tf.TensorSpec([size, size, 3], tf.float32), tf.TensorSpec([2], tf.float32),
                             tf.TensorSpec([2], tf.float32))))


def in_stored_frames(maps: tf.Tensor, batch: LetterboxedBatch, fill: int) -> tf.Tensor:
    """Label maps `[B, S, S]` over the letterboxed batch → `[B, H, W]` of the same dtype in each
    image's stored frame: its part of the square, resized to its stored size by nearest neighbour,
    at the top left; `fill` beyond it (H, W: the batch's largest image)."""
    shapes = tf.cast(batch.shapes, tf.int32)
    height, width = tf.reduce_max(shapes[:, 0]), tf.reduce_max(shapes[:, 1])
    side = maps.shape[1] or tf.shape(maps)[1]

    def in_image(item):
        labels, extent, shape = item
        covered = tf.minimum(tf.cast(tf.math.ceil(extent), tf.int32), side)
        resized = tf.image.resize(labels[:covered[0], :covered[1], tf.newaxis], shape, method="nearest")[..., 0]
        return tf.pad(resized, [[0, height - shape[0]], [0, width - shape[1]]], constant_values=fill)

    return tf.map_fn(in_image, (maps, batch.extents, shapes),
                     fn_output_signature=tf.TensorSpec([None, None], maps.dtype))


def pngs_of(maps: tf.Tensor, batch: LetterboxedBatch) -> tf.Tensor:
    """tf.string `[B]`: each image's part of `maps` `[B, H, W]` (uint8 or uint16, in the stored
    frames) as a one-channel PNG of the image's own size."""
    shapes = tf.cast(batch.shapes, tf.int32)
    return tf.map_fn(lambda item: tf.io.encode_png(item[0][:item[1][0], :item[1][1], tf.newaxis]), (maps, shapes),
                     fn_output_signature=tf.TensorSpec([], tf.string))
