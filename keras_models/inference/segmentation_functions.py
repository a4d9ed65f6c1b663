"""Semantic segmentation of original images: the in-graph functions behind a semantic model's export.

One function per input type, as for detection (`detection_functions`): each letterboxes the batch
to the model's input, runs the model, and brings each image's class logits back onto the image
as it was stored: upsampled to the model input (as the loss sees them), cropped to the image's
extent inside the letterbox, resized to the image's own size, then the most likely class per
pixel. Outputs (`contracts/export_schema.py`):

- `semantic_mask`: uint8 `[B, H, W]`, class per pixel (0 background, else the label-map id), H and
  W the batch's largest image; each image at the top left, `IGNORE_LABEL` (255) beyond it;
- `semantic_mask_png`: tf.string `[B]`, each image's mask as an 8-bit grey PNG of its own size.

`boxflow evaluate` runs the same functions on the in-process model.
"""

from __future__ import annotations

from typing import Protocol

import tensorflow as tf

from contracts.export_schema import SEMANTIC_MASK_OUTPUT, SEMANTIC_MASK_PNG_OUTPUT
from contracts.record_schema import IGNORE_LABEL
from keras_models.inference.letterboxed_batch import (LetterboxedBatch, encoded_of_examples, letterbox_encoded,
                                                      letterbox_pixels, pngs_of)
from keras_models.models.semantic_fpn import SEMANTIC_LOGITS


class Segmenter(Protocol):
    """What the functions need of a model: its square input side and `predict_outputs` with
    `"semantic_logits"` `[B, s, s, C]` over the letterboxed input (any stride)."""

    image_size: int

    def predict_outputs(self, images: tf.Tensor) -> dict[str, tf.Tensor]: ...


def segment_encoded_images(model: Segmenter, encoded: tf.Tensor) -> dict[str, tf.Tensor]:
    """`encoded`: tf.string `[B]` of JPEG or PNG bytes (any sizes)."""
    return _segmentation(model, letterbox_encoded(encoded, model.image_size))


def segment_images(model: Segmenter, images: tf.Tensor) -> dict[str, tf.Tensor]:
    """`images`: uint8 `[B, H, W, 3]`, pixels."""
    return _segmentation(model, letterbox_pixels(images, model.image_size))


def segment_examples(model: Segmenter, serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """`serialized`: tf.string `[B]` of `tf.train.Example`s holding `image/encoded`."""
    return segment_encoded_images(model, encoded_of_examples(serialized))


def _segmentation(model: Segmenter, batch: LetterboxedBatch) -> dict[str, tf.Tensor]:
    logits = tf.cast(model.predict_outputs(batch.images)[SEMANTIC_LOGITS], tf.float32)
    shapes = tf.cast(batch.shapes, tf.int32)
    height, width = tf.reduce_max(shapes[:, 0]), tf.reduce_max(shapes[:, 1])
    side = model.image_size

    def in_image(item):
        """One image's `[H, W]` labels in its stored frame, padded to the batch's largest with void."""
        image_logits, extent, shape = item
        at_input = tf.image.resize(image_logits, [side, side], method="bilinear")
        covered = tf.minimum(tf.cast(tf.math.ceil(extent), tf.int32), side)
        cropped = at_input[:covered[0], :covered[1]]
        labels = tf.argmax(tf.image.resize(cropped, shape, method="bilinear"), axis=-1, output_type=tf.int32)
        return tf.pad(tf.cast(labels, tf.uint8), [[0, height - shape[0]], [0, width - shape[1]]],
                      constant_values=IGNORE_LABEL)

    masks = tf.map_fn(in_image, (logits, batch.extents, shapes),
                      fn_output_signature=tf.TensorSpec([None, None], tf.uint8))
    return {SEMANTIC_MASK_OUTPUT: masks, SEMANTIC_MASK_PNG_OUTPUT: pngs_of(masks, batch)}
