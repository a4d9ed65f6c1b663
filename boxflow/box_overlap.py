"""Intersection over union of two boxes held as plain tuples, outside TensorFlow."""

from __future__ import annotations

from typing import Sequence


def iou(first: Sequence[float], second: Sequence[float]) -> float:
    """IoU of two boxes `(min_a, min_b, max_a, max_b)` in one axis order, xyxy or yxyx alike."""
    extent_a = max(0, min(first[2], second[2]) - max(first[0], second[0]))
    extent_b = max(0, min(first[3], second[3]) - max(first[1], second[1]))
    intersection = extent_a * extent_b
    union = ((first[2] - first[0]) * (first[3] - first[1]) + (second[2] - second[0]) * (second[3] - second[1])
             - intersection)
    return intersection / union if union > 0 else 0.0
