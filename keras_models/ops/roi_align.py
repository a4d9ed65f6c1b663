"""ROI Align (He et al., Mask R-CNN, 2017): a fixed `[S, S, C]` feature for every box, with no
quantization anywhere. Each of the S x S bins averages `sampling_ratio`² bilinear samples placed at
the centres of a regular grid inside the bin. Coordinates are "aligned": a feature cell `i` covers
image pixels `[i, i + 1) * stride`, so its value sits at `(i + 0.5) * stride`, half a cell from the
corner ROI Pooling assumes. Samples up to one cell outside the map take the edge value; further out,
zero (Detectron2's and torchvision's `aligned=True` semantics).

Two implementations with identical results, timed side by side in `benchmarks/roi_align_bench.py`:
- `roi_align`: gathers over all pyramid levels flattened together. Static shapes, and XLA
  compiles it: the one for `--xla` and TPUs.
- `roi_align_crop_and_resize`: one call of `tf.image.crop_and_resize`'s fused kernel, the levels
  stacked as the images of one batch. 2.25x faster for a training step on 2 CPU cores (1,024 ROIs
  from P2-P5 of 256 channels: 328 ms against 738), but XLA has no CropAndResize kernel.

Boxes are pixels XYXY of the model input (DESIGN.md §4). `levels` index `features`.
"""

from __future__ import annotations

import math
from typing import Sequence

import tensorflow as tf

OUTPUT_SIZE = 7
SAMPLING_RATIO = 2


def assign_levels(boxes: tf.Tensor, min_level: int, max_level: int, canonical_size: float = 224.0,
                  canonical_level: int = 4) -> tf.Tensor:
    """FPN's level for each box (Lin et al. 2017, eq. 1): `floor(canonical_level + log2(sqrt(w h) /
    canonical_size))`, clamped to `[min_level, max_level]`. `boxes` `[..., 4]` pixels XYXY →
    int32 `[...]` level numbers (a box of `canonical_size` pixels goes to `canonical_level`)."""
    side = tf.sqrt(tf.maximum((boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1]), 1e-6))
    level = tf.floor(canonical_level + tf.math.log(side / canonical_size) / math.log(2.0))
    return tf.cast(tf.clip_by_value(level, min_level, max_level), tf.int32)


def roi_align_for(jit_compile: bool):
    """The implementation to use: the gathers when the step is compiled with XLA (always on
    TPUs), the fused kernel otherwise."""
    return roi_align if jit_compile else roi_align_crop_and_resize


def roi_align(features: Sequence[tf.Tensor], strides: Sequence[int], boxes: tf.Tensor, levels: tf.Tensor,
              output_size: int = OUTPUT_SIZE, sampling_ratio: int = SAMPLING_RATIO) -> tf.Tensor:
    """Multilevel ROI Align by gathers.

    Args:
      features: per level `[B, H_l, W_l, C]`, of stride `strides[l]` pixels.
      boxes: `[B, R, 4]` pixels XYXY.
      levels: int32 `[B, R]`, each box's index into `features`.
    Returns:
      `[B, R, output_size, output_size, C]` in the features' dtype.
    """
    samples = output_size * sampling_ratio
    batch, channels = tf.shape(features[0])[0], features[0].shape[-1]
    flat = tf.concat([tf.reshape(level, [batch, -1, channels]) for level in features], axis=1)
    shapes = [tf.shape(level)[1:3] for level in features]
    heights = tf.stack([shape[0] for shape in shapes])
    widths = tf.stack([shape[1] for shape in shapes])
    offsets = tf.math.cumsum(heights * widths, exclusive=True)
    stride = tf.gather(tf.constant(strides, boxes.dtype), levels)
    height, width, offset = tf.gather(heights, levels), tf.gather(widths, levels), tf.gather(offsets, levels)

    y_low, y_high, y_fraction, y_valid = axis_samples(boxes[..., 1], boxes[..., 3], stride, height, samples)
    x_low, x_high, x_fraction, x_valid = axis_samples(boxes[..., 0], boxes[..., 2], stride, width, samples)
    valid = tf.cast(y_valid[..., :, tf.newaxis] & x_valid[..., tf.newaxis, :], flat.dtype)
    y_fraction, x_fraction = tf.cast(y_fraction, flat.dtype), tf.cast(x_fraction, flat.dtype)

    def corner(rows: tf.Tensor, columns: tf.Tensor) -> tf.Tensor:
        index = (offset[..., tf.newaxis, tf.newaxis] + rows[..., :, tf.newaxis] * width[..., tf.newaxis, tf.newaxis]
                 + columns[..., tf.newaxis, :])
        return tf.gather(flat, index, batch_dims=1)  # [B, R, samples, samples, C]

    y_weight, x_weight = y_fraction[..., :, tf.newaxis, tf.newaxis], x_fraction[..., tf.newaxis, :, tf.newaxis]
    values = ((1 - y_weight) * ((1 - x_weight) * corner(y_low, x_low) + x_weight * corner(y_low, x_high))
              + y_weight * ((1 - x_weight) * corner(y_high, x_low) + x_weight * corner(y_high, x_high)))
    return average_bins(values * valid[..., tf.newaxis], output_size, sampling_ratio)


def roi_align_crop_and_resize(features: Sequence[tf.Tensor], strides: Sequence[int], boxes: tf.Tensor,
                              levels: tf.Tensor, output_size: int = OUTPUT_SIZE,
                              sampling_ratio: int = SAMPLING_RATIO) -> tf.Tensor:
    """The same as `roi_align`, by one `tf.image.crop_and_resize` (float32 out, as that kernel gives).

    The levels become the images of one batch, `[B * L, H_0 + 2, W_0 + 2, C]`: each level inside a
    cell of edge copies (the edge value up to one cell outside the map), zeros beyond, so that every
    box is cropped once, from its own level.
    """
    samples = output_size * sampling_ratio
    batch, rois, channels = tf.shape(boxes)[0], tf.shape(boxes)[1], features[0].shape[-1]
    largest = tf.shape(features[0])[1:3] + 2
    images = []
    for level in features:
        edged = tf.pad(level, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
        room = largest - tf.shape(edged)[1:3]
        images.append(tf.pad(edged, [[0, 0], [0, room[0]], [0, room[1]], [0, 0]]))
    stacked = tf.reshape(tf.stack(images, axis=1), [-1, largest[0], largest[1], channels])

    boxes = tf.cast(boxes, tf.float32)
    stride = tf.gather(tf.constant(strides, tf.float32), levels)
    heights = tf.stack([tf.shape(level)[1] for level in features])
    widths = tf.stack([tf.shape(level)[2] for level in features])
    # Samples between one and two cells outside a map would blend its edge copies with the zeros;
    # by the definition they are zero, like every sample further out.
    y_valid = axis_samples(boxes[..., 1], boxes[..., 3], stride, tf.gather(heights, levels), samples)[3]
    x_valid = axis_samples(boxes[..., 0], boxes[..., 2], stride, tf.gather(widths, levels), samples)[3]
    valid = tf.cast(y_valid[..., :, tf.newaxis] & x_valid[..., tf.newaxis, :], tf.float32)

    # crop_and_resize samples a box's first and last rows at its y1 and y2 times (height - 1), in
    # cells of the padded level, and evenly between.
    step = (boxes[..., 2:] - boxes[..., :2]) / stride[..., tf.newaxis] / samples  # (x, y)
    first = boxes[..., :2] / stride[..., tf.newaxis] - 0.5 + step / 2 + 1
    last = boxes[..., 2:] / stride[..., tf.newaxis] - 0.5 - step / 2 + 1
    span = tf.cast(tf.reverse(largest, [0]) - 1, tf.float32)  # (width, height) less one
    corners = tf.concat([(first / span)[..., ::-1], (last / span)[..., ::-1]], axis=-1)  # y1, x1, y2, x2
    image_of_box = tf.range(batch)[:, tf.newaxis] * len(features) + levels
    if stacked.dtype == tf.bfloat16:  # crop_and_resize has no bfloat16 kernel (--bfloat16 runs)
        stacked = tf.cast(stacked, tf.float32)
    crops = tf.image.crop_and_resize(stacked, tf.reshape(corners, [-1, 4]), tf.reshape(image_of_box, [-1]),
                                     [samples, samples], extrapolation_value=0.0)
    crops = tf.reshape(crops, [batch, rois, samples, samples, channels]) * valid[..., tf.newaxis]
    return average_bins(crops, output_size, sampling_ratio)


def axis_samples(start: tf.Tensor, end: tf.Tensor, stride: tf.Tensor, size: tf.Tensor, count: int):
    """Sample positions along one axis of each box, in cells: `(low, high, fraction, valid)`, each
    `[B, R, count]`: the two cells to interpolate between, the weight of `high`, and whether the
    sample lies within a cell of the map."""
    first = start / stride - 0.5
    step = (end - start) / stride / count
    position = first[..., tf.newaxis] + (tf.range(count, dtype=start.dtype) + 0.5) * step[..., tf.newaxis]
    limit = tf.cast(size, start.dtype)[..., tf.newaxis]
    valid = (position >= -1.0) & (position <= limit)
    position = tf.clip_by_value(position, 0.0, limit - 1)
    low = tf.floor(position)
    high = tf.minimum(low + 1, limit - 1)
    return tf.cast(low, tf.int32), tf.cast(high, tf.int32), position - low, valid


def average_bins(values: tf.Tensor, output_size: int, sampling_ratio: int) -> tf.Tensor:
    """`[B, R, S * r, S * r, C]` samples → `[B, R, S, S, C]` bin means."""
    shape = tf.shape(values)
    grouped = tf.reshape(values, [shape[0], shape[1], output_size, sampling_ratio, output_size, sampling_ratio,
                                  values.shape[-1]])
    return tf.reduce_mean(grouped, axis=[3, 5])
