"""One evaluated image: its ground truth and the detections on it, in original-image pixels."""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class EvaluationImage:
    """Boxes are pixels `xyxy` of the original (stored) image; classes count from 0.

    Ground truth: `boxes` `[N, 4]`, `classes` `[N]`, `is_crowd` / `difficult` `[N]` bool.
    Detections: `detection_boxes` `[K, 4]`, `detection_scores` `[K]`, `detection_classes` `[K]`, and
    from a model with box uncertainty `detection_stddev` `[K, 4]`, each edge's standard deviation.
    Masks, as COCO RLEs (`keras_models/evaluation/mask_encoding.py`) of the original image: `masks`,
    one per box (None: the record has none), and from a mask model `detection_masks`, one per
    detection. From a panoptic model, `panoptic_counts`: the image's per-class panoptic matches
    (`panoptic_evaluation`; None when its record has no per-pixel labels).
    """

    source_id: str
    height: int
    width: int
    boxes: np.ndarray
    classes: np.ndarray
    is_crowd: np.ndarray
    difficult: np.ndarray
    detection_boxes: np.ndarray
    detection_scores: np.ndarray
    detection_classes: np.ndarray
    detection_stddev: Optional[np.ndarray] = None
    masks: Optional[list] = None
    detection_masks: Optional[list] = None
    panoptic_counts: Optional[dict] = None

