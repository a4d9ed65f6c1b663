"""Instance masks for scoring: the records' ground-truth PNGs decoded (for segm AP and PQ alike),
and COCO run-length encodings, the form pycocotools' segm evaluation reads, of those and of
detections' box-relative masks pasted into the image."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf
from pycocotools import mask as mask_utils

from keras_models.ops.mask_pasting import paste_masks

# Detections pasted at once: bounds the `[chunk, H, W]` float32 paste of a large image.
PASTE_CHUNK = 16


def encode(mask: np.ndarray) -> dict:
    """A `[H, W]` 0/1 (or bool) mask → its COCO RLE (`{"size": [H, W], "counts": bytes}`)."""
    return mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))


def truth_masks(pngs: Sequence[bytes], boxes: int, height: int, width: int) -> Optional[list[np.ndarray]]:
    """A record's object masks (one full-image 0/1 PNG per box) as bool `[height, width]` arrays;
    None when the record does not carry one per box (an image prepared without masks)."""
    if len(pngs) != boxes or not boxes:
        return None if boxes else []
    masks = []
    for png in pngs:
        mask = tf.io.decode_png(png, channels=1)
        if mask.shape[:2] != (height, width):
            mask = tf.image.resize(mask, (height, width), method="nearest")
        masks.append(mask.numpy()[..., 0] > 0)
    return masks


def detection_rles(masks: np.ndarray, boxes: np.ndarray, height: int, width: int) -> list[dict]:
    """Detections' box-relative masks `[K, M, M]` (0..1) over `boxes` `[K, 4]` pixels XYXY of a
    `height` x `width` image → their RLEs, each pasted and thresholded at 0.5."""
    rles = []
    for start in range(0, len(masks), PASTE_CHUNK):
        pasted = paste_masks(masks[np.newaxis, start:start + PASTE_CHUNK], boxes[np.newaxis, start:start + PASTE_CHUNK],
                             height, width).numpy()[0]
        rles.extend(encode(mask >= 0.5) for mask in pasted)
    return rles
