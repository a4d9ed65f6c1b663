"""Ragged ↔ padded box batches: the one conversion at the distribution-strategy boundary.

Mirrored, MultiWorker and TPU strategies cannot take ragged values, so there a batch
travels as `boxes [B, M, 4]` and `classes [B, M]` with class -1 marking padding.
"""

from __future__ import annotations

import math
from typing import Optional

import tensorflow as tf

PADDING_CLASS = -1
TOO_MANY_BOXES = "an image has more boxes than max_boxes"


def padded_box_count(boxes: int) -> int:
    """The `M` that holds `boxes` boxes in a row: rounded up to a multiple of 8, at least 8."""
    return max(8, 8 * math.ceil(boxes / 8))


def ragged_to_padded(boxes: tf.RaggedTensor, classes: tf.RaggedTensor,
                     max_boxes: Optional[int] = None) -> tuple[tf.Tensor, tf.Tensor]:
    """`[B, None, 4]`, `[B, None]` → `[B, M, 4]`, `[B, M]` (class -1 = padding).

    `M` is `max_boxes`, or the longest row of this batch when `max_boxes` is None. A row longer
    than `max_boxes` fails with `TOO_MANY_BOXES` rather than losing its last boxes.
    """
    if max_boxes is None:
        return boxes.to_tensor(default_value=0.0), classes.to_tensor(default_value=PADDING_CLASS)
    tf.debugging.assert_less_equal(boxes.row_lengths(), tf.cast(max_boxes, boxes.row_lengths().dtype),
                                   message=f"{TOO_MANY_BOXES} ({max_boxes})")
    batch = boxes.nrows()
    dense_boxes = boxes.to_tensor(default_value=0.0, shape=[batch, max_boxes, 4])
    dense_classes = classes.to_tensor(default_value=PADDING_CLASS, shape=[batch, max_boxes])
    return dense_boxes, dense_classes


def padded_to_ragged(boxes: tf.Tensor, classes: tf.Tensor) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
    """The inverse of `ragged_to_padded`: drops every entry whose class is -1."""
    keep = classes != PADDING_CLASS
    return tf.ragged.boolean_mask(boxes, keep), tf.ragged.boolean_mask(classes, keep)
