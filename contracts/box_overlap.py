"""Intersection over union of two boxes held as plain tuples, outside TensorFlow."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def iou(first: Sequence[float], second: Sequence[float]) -> float:
    """IoU of two boxes `(min_a, min_b, max_a, max_b)` in one axis order, xyxy or yxyx alike."""
    extent_a = max(0, min(first[2], second[2]) - max(first[0], second[0]))
    extent_b = max(0, min(first[3], second[3]) - max(first[1], second[1]))
    intersection = extent_a * extent_b
    union = ((first[2] - first[0]) * (first[3] - first[1]) + (second[2] - second[0]) * (second[3] - second[1])
             - intersection)
    return intersection / union if union > 0 else 0.0


def iou_with_each(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one `[4]` box with each of `[N, 4]`, in one axis order as for `iou`."""
    width = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    intersection = width * height
    union = ((box[2] - box[0]) * (box[3] - box[1])
             + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - intersection)
    return np.where(union > 0, intersection / np.maximum(union, 1e-12), 0.0)
