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


def masks_of_sub_boxes(masks: tf.Tensor, boxes: tf.Tensor, sub_boxes: tf.Tensor) -> tf.Tensor:
    """Box-relative `masks` float `[B, K, M, M]` (rows along y) of `boxes` `[B, K, 4]` YXYX → the
    same masks over `sub_boxes` `[B, K, 4]` YXYX in the same units (each inside its box, e.g. the
    box clipped to the image), sampled bilinearly at the new cells' centres; float32 `[B, K, M, M]`."""
    masks = tf.cast(masks, tf.float32)
    batch, count, cells = tf.shape(masks)[0], tf.shape(masks)[1], masks.shape[-1]
    extent = tf.maximum(boxes[..., 2:] - boxes[..., :2], 1e-6)
    low = (sub_boxes[..., :2] - boxes[..., :2]) / extent  # fractions of the box
    high = (sub_boxes[..., 2:] - boxes[..., :2]) / extent
    # The new cells' centres in old cells (u = 0 at the first cell's centre), then in a grid with a
    # cell of zeros around it, whose ends crop_and_resize puts at 0 and 1: inside, its bilinear
    # sampling is the paste's tent blend, with the same zero padding half a cell past the edge.
    first = cells * low + 0.5 * (high - low) - 0.5
    last = cells * low + (cells - 0.5) * (high - low) - 0.5
    padded = tf.pad(tf.reshape(masks, [-1, cells, cells, 1]), [[0, 0], [1, 1], [1, 1], [0, 0]])
    crops = tf.image.crop_and_resize(padded, tf.reshape(tf.concat([first, last], axis=-1) + 1.0, [-1, 4]) / (cells + 1),
                                     tf.range(batch * count), [cells, cells])
    return tf.reshape(crops, [batch, count, cells, cells])
