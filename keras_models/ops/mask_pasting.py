"""Box-relative masks pasted into the image frame, for a whole batch at once and inside the graph.

A mask `[M, M]` covers its box, cell `j` the box's `[j, j + 1) * width / M` with its value at the
cell's centre. Each image pixel (value at its centre) takes the bilinear blend of the nearest cells,
and zero outside the mask beyond half a cell (Detectron2's `paste_masks_in_image`, zero padding).
Bilinear sampling is separable, so the paste is two small matrix products per mask: row weights
`[H, M]` and column weights `[W, M]` (each a tent `max(0, 1 - |u - j|)` of the pixel's position
`u` in cells), `rows @ mask @ columnsᵀ`. No per-image loop, no data-dependent shape; the TF OD
API's `reframe_box_masks_to_image_masks` crops and resizes one image at a time.
"""

from __future__ import annotations

import tensorflow as tf


def paste_masks(masks: tf.Tensor, boxes: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """`masks` float `[B, K, M, M]` (probabilities, box-relative) and `boxes` `[B, K, 4]` pixels
    XYXY → float32 `[B, K, height, width]` in the image frame."""
    masks, boxes = tf.cast(masks, tf.float32), tf.cast(boxes, tf.float32)
    cells = masks.shape[-1] or tf.shape(masks)[-1]
    rows = _tent_weights(boxes[..., 1], boxes[..., 3], height, cells)  # [B, K, H, M]
    columns = _tent_weights(boxes[..., 0], boxes[..., 2], width, cells)  # [B, K, W, M]
    return tf.einsum("bkhi,bkij,bkwj->bkhw", rows, masks, columns)


def _tent_weights(start: tf.Tensor, end: tf.Tensor, pixels: int, cells) -> tf.Tensor:
    """`[B, K, pixels, cells]`: the weight of each mask cell in each pixel along one axis."""
    extent = tf.maximum(end - start, 1e-6)[..., tf.newaxis]
    centres = tf.range(pixels, dtype=tf.float32) + 0.5
    position = (centres - start[..., tf.newaxis]) / extent * tf.cast(cells, tf.float32) - 0.5  # [B, K, pixels]
    cell = tf.range(cells, dtype=tf.float32)
    return tf.nn.relu(1.0 - tf.abs(position[..., tf.newaxis] - cell))
