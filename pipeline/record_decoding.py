"""The one place where the on-disk record form meets the in-memory form.

On disk (DESIGN.md §3): `tf.train.Example`s with TF OD API keys, boxes normalized
`(xmin, ymin, xmax, ymax)` in [0, 1], labels from 1. In memory (§4): images uint8
`[H, W, 3]`, boxes float32 `[N, 4]` in absolute pixels `xyxy`, classes int32 `[N]` from 0.
"""

from __future__ import annotations

import tensorflow as tf

from boxflow import record_schema as keys

_FEATURES = {
    keys.ENCODED: tf.io.FixedLenFeature([], tf.string),
    keys.SOURCE_ID: tf.io.FixedLenFeature([], tf.string, default_value=""),
    keys.XMIN: tf.io.VarLenFeature(tf.float32),
    keys.YMIN: tf.io.VarLenFeature(tf.float32),
    keys.XMAX: tf.io.VarLenFeature(tf.float32),
    keys.YMAX: tf.io.VarLenFeature(tf.float32),
    keys.CLASS_LABEL: tf.io.VarLenFeature(tf.int64),
}


def decode_record(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """One serialized Example → `{"image", "boxes", "classes", "source_id"}` in memory form.

    `image`: uint8 `[H, W, 3]` (JPEG or PNG; grayscale becomes 3 channels).
    `boxes`: float32 `[N, 4]`, pixels `xyxy`. `classes`: int32 `[N]`, from 0.
    """
    parsed = tf.io.parse_single_example(serialized, _FEATURES)
    image = tf.io.decode_image(parsed[keys.ENCODED], channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    normalized = tf.stack([tf.sparse.to_dense(parsed[k]) for k in keys.BOX_KEYS], axis=-1)
    return {
        "image": image,
        "boxes": normalized_to_pixels(normalized, size[0], size[1]),
        "classes": tf.cast(tf.sparse.to_dense(parsed[keys.CLASS_LABEL]), tf.int32) - 1,
        "source_id": parsed[keys.SOURCE_ID],
    }


def normalized_to_pixels(boxes: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """`[N, 4]` normalized `xyxy` → pixels `xyxy` of an image `height` x `width`."""
    return tf.reshape(boxes, [-1, 4]) * tf.stack([width, height, width, height])


def pixels_to_normalized(boxes: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """`[N, 4]` pixels `xyxy` → normalized `xyxy` (the inverse of `normalized_to_pixels`)."""
    return tf.reshape(boxes, [-1, 4]) / tf.stack([width, height, width, height])
