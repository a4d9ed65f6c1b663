"""Detection on original images: the in-graph functions behind the export's signatures.

One function per input type (encoded bytes, uint8 pixels, serialized `tf.train.Example`).
Each letterboxes every image of the batch to the model's input size, runs
`model.detect`, and maps the boxes back onto the original image, answering in the
TF Object Detection API's output form (DESIGN.md §6):

- `detection_boxes`: float32 `[B, K, 4]`, normalized `(ymin, xmin, ymax, xmax)` of the original image;
- `detection_scores`: float32 `[B, K]`;
- `detection_classes`: float32 `[B, K]`, label-map ids (from 1);
- `num_detections`: float32 `[B]`; rows past it are zero padding;
- `detection_box_stddev`: float32 `[B, K, 4]`, only from a model with a probabilistic box head:
  each edge's standard deviation, normalized to the original image as `detection_boxes` and in
  its `(ymin, xmin, ymax, xmax)` order;
- `detection_masks`: float32 `[B, K, 28, 28]`, only from a mask model: each detection's mask
  probabilities over its `detection_boxes` box (resampled where that box was clipped to the image);
- `detection_image_masks`: uint8 `[B, K, H, W]`, from a mask model with `image_masks`: each mask
  pasted into its original image and thresholded at 0.5 (`contracts/export_schema.py`);
- from a panoptic model, the merged maps of the model input brought into each original image's
  frame: `panoptic_category_mask` uint8 and `panoptic_instance_mask` uint16 `[B, H, W]` (255 and 0
  beyond the image), and each as a PNG per image, tf.string `[B]`.

`boxflow evaluate` calls the same functions on the in-process model, so what is
evaluated from a run directory is exactly what the export serves.
"""

from __future__ import annotations

from typing import Protocol

import tensorflow as tf

from contracts.export_schema import (BOXES_OUTPUT, CLASSES_OUTPUT, COUNT_OUTPUT, IMAGE_MASKS_OUTPUT, MASKS_OUTPUT,
                                     PANOPTIC_CATEGORY_OUTPUT, PANOPTIC_CATEGORY_PNG_OUTPUT, PANOPTIC_INSTANCE_OUTPUT,
                                     PANOPTIC_INSTANCE_PNG_OUTPUT, SCORES_OUTPUT, STDDEV_OUTPUT)
from contracts.record_schema import IGNORE_LABEL
from keras_models.inference.letterboxed_batch import (LetterboxedBatch, encoded_of_examples, in_stored_frames,
                                                      letterbox_encoded, letterbox_pixels, pngs_of)
from keras_models.models.panoptic_fpn import PANOPTIC_CATEGORIES, PANOPTIC_INSTANCES
from keras_models.ops.mask_pasting import masks_of_sub_boxes, paste_masks


class Detector(Protocol):
    """What the functions need of a model: its square input side and `detect` (DESIGN.md §5)."""

    image_size: int

    def detect(self, images: tf.Tensor) -> dict[str, tf.Tensor]: ...


def detect_encoded_images(model: Detector, encoded: tf.Tensor, image_masks: bool = False) -> dict[str, tf.Tensor]:
    """`encoded`: tf.string `[B]` of JPEG or PNG bytes (any sizes)."""
    return _detections(model, letterbox_encoded(encoded, model.image_size), image_masks)


def detect_images(model: Detector, images: tf.Tensor, image_masks: bool = False) -> dict[str, tf.Tensor]:
    """`images`: uint8 `[B, H, W, 3]`, pixels."""
    return _detections(model, letterbox_pixels(images, model.image_size), image_masks)


def detect_examples(model: Detector, serialized: tf.Tensor, image_masks: bool = False) -> dict[str, tf.Tensor]:
    """`serialized`: tf.string `[B]` of `tf.train.Example`s holding `image/encoded`."""
    return detect_encoded_images(model, encoded_of_examples(serialized), image_masks)


def _detections(model: Detector, batch: LetterboxedBatch, image_masks: bool = False) -> dict[str, tf.Tensor]:
    images, extents, shapes = batch
    detections = model.detect(images)
    valid = tf.sequence_mask(detections["num_detections"], tf.shape(detections["boxes"])[1])[..., tf.newaxis]

    def normalized_yxyx(xyxy: tf.Tensor) -> tf.Tensor:
        """`[B, K, 4]` model pixels XYXY → fractions of the original image, YXYX, padding rows zero."""
        xmin, ymin, xmax, ymax = tf.unstack(xyxy, axis=-1)
        height, width = extents[:, 0:1], extents[:, 1:2]
        return tf.where(valid, tf.stack([ymin / height, xmin / width, ymax / height, xmax / width], axis=-1), 0.0)

    unclipped = normalized_yxyx(detections["boxes"])
    outputs = {
        BOXES_OUTPUT: tf.clip_by_value(unclipped, 0.0, 1.0),
        SCORES_OUTPUT: detections["scores"],
        CLASSES_OUTPUT: tf.where(valid[..., 0], tf.cast(detections["classes"] + 1, tf.float32), 0.0),
        COUNT_OUTPUT: tf.cast(detections["num_detections"], tf.float32),
    }
    if "box_stddev" in detections:
        outputs[STDDEV_OUTPUT] = normalized_yxyx(detections["box_stddev"])
    if "masks" in detections:
        # A box reaching into the letterbox's padding was clipped to the image: its mask follows.
        outputs[MASKS_OUTPUT] = masks_of_sub_boxes(detections["masks"], unclipped, outputs[BOXES_OUTPUT])
        if image_masks:
            outputs[IMAGE_MASKS_OUTPUT] = _pasted(outputs[MASKS_OUTPUT], outputs[BOXES_OUTPUT], shapes)
    if PANOPTIC_CATEGORIES in detections:
        categories = in_stored_frames(tf.cast(detections[PANOPTIC_CATEGORIES], tf.uint8), batch, IGNORE_LABEL)
        instances = in_stored_frames(tf.cast(detections[PANOPTIC_INSTANCES], tf.uint16), batch, 0)
        outputs.update({PANOPTIC_CATEGORY_OUTPUT: categories, PANOPTIC_INSTANCE_OUTPUT: instances,
                        PANOPTIC_CATEGORY_PNG_OUTPUT: pngs_of(categories, batch),
                        PANOPTIC_INSTANCE_PNG_OUTPUT: pngs_of(instances, batch)})
    return outputs


def _pasted(masks: tf.Tensor, boxes: tf.Tensor, shapes: tf.Tensor) -> tf.Tensor:
    """Box-relative `masks` `[B, K, M, M]` over `boxes` `[B, K, 4]` normalized YXYX of images of
    `shapes` `[B, 2]` (height, width) → uint8 `[B, K, H, W]` 0/1, H and W the largest."""
    heights, widths = shapes[:, 0:1], shapes[:, 1:2]
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    pixels = tf.stack([xmin * widths, ymin * heights, xmax * widths, ymax * heights], axis=-1)
    height, width = tf.cast(tf.reduce_max(shapes[:, 0]), tf.int32), tf.cast(tf.reduce_max(shapes[:, 1]), tf.int32)
    pasted = paste_masks(masks, pixels, height, width) >= 0.5
    rows = tf.range(tf.cast(height, tf.float32))[tf.newaxis, :] < heights  # [B, H]: inside each image
    columns = tf.range(tf.cast(width, tf.float32))[tf.newaxis, :] < widths
    inside = rows[:, tf.newaxis, :, tf.newaxis] & columns[:, tf.newaxis, tf.newaxis, :]
    return tf.cast(pasted & inside, tf.uint8)
