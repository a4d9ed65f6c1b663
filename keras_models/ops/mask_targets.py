"""Mask R-CNN's mask targets (He et al. 2017): each positive ROI's ground-truth mask, cropped to the
ROI and resized to the mask head's `M x M`, with ROI Align's own sampling (`ops/roi_align`): each
cell averages `sampling_ratio`² bilinear samples of the 0/1 mask at the centres of a regular grid,
a pixel's value sitting at its centre. The targets are fractions in [0, 1] where a cell straddles
the mask's edge, and the head's logits see the same points of the image as its features did.

The masks come as one instance map per image (`pipeline`'s `targets["instance_map"]`), so each
sample reads four map pixels and compares them with the ROI's box number: no `[N, H, W]` stack of
full-size masks is ever built. Static shapes throughout: XLA and TPUs compile it.
"""

from __future__ import annotations

import tensorflow as tf

from contracts.export_schema import MASK_SIDE
from keras_models.ops.roi_align import SAMPLING_RATIO, average_bins, axis_samples

# The mask head's side: the export's `detection_masks` side.
MASK_SIZE = MASK_SIDE


def mask_targets(instance_map: tf.Tensor, rois: tf.Tensor, matched_boxes: tf.Tensor, size: int = MASK_SIZE,
                 sampling_ratio: int = SAMPLING_RATIO) -> tf.Tensor:
    """The mask targets of a batch's ROIs.

    Args:
      instance_map: int32 `[B, H, W]`, `i + 1` where box `i` of the image shows, 0 elsewhere.
      rois: `[B, R, 4]` pixels XYXY of the same image.
      matched_boxes: int32 `[B, R]`, each ROI's box (its row in the image's boxes; negative: none,
        whose target is all zeros).
    Returns:
      float32 `[B, R, size, size]` in [0, 1].
    """
    rois = tf.cast(rois, tf.float32)
    height, width = tf.shape(instance_map)[1], tf.shape(instance_map)[2]
    samples = size * sampling_ratio
    ones = tf.ones_like(rois[..., 0])
    y_low, y_high, y_fraction, y_valid = axis_samples(rois[..., 1], rois[..., 3], ones, height * tf.cast(ones, tf.int32),
                                                      samples)
    x_low, x_high, x_fraction, x_valid = axis_samples(rois[..., 0], rois[..., 2], ones, width * tf.cast(ones, tf.int32),
                                                      samples)
    flat = tf.reshape(instance_map, [tf.shape(instance_map)[0], -1])
    number = (tf.cast(matched_boxes, tf.int32) + 1)[..., tf.newaxis, tf.newaxis]

    def corner(rows: tf.Tensor, columns: tf.Tensor) -> tf.Tensor:
        index = rows[..., :, tf.newaxis] * width + columns[..., tf.newaxis, :]  # [B, R, samples, samples]
        return tf.cast(tf.gather(flat, index, batch_dims=1) == number, tf.float32)

    y_weight, x_weight = y_fraction[..., :, tf.newaxis], x_fraction[..., tf.newaxis, :]
    values = ((1 - y_weight) * ((1 - x_weight) * corner(y_low, x_low) + x_weight * corner(y_low, x_high))
              + y_weight * ((1 - x_weight) * corner(y_high, x_low) + x_weight * corner(y_high, x_high)))
    inside = tf.cast(y_valid[..., :, tf.newaxis] & x_valid[..., tf.newaxis, :], tf.float32)
    values.set_shape(inside.shape)  # the gathers' shape is lost where the ROI count is not static
    targets = average_bins((values * inside)[..., tf.newaxis], size, sampling_ratio)[..., 0]
    return tf.where((matched_boxes >= 0)[..., tf.newaxis, tf.newaxis], targets, 0.0)
