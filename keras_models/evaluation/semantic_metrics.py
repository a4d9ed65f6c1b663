"""Semantic segmentation scores from one confusion matrix: per-class IoU, mIoU and pixel accuracy.

Pixels whose true label is `IGNORE_LABEL` (void) count nowhere. A class's IoU is TP / (TP + FP + FN)
over every pixel of every image (not averaged per image), as Cityscapes, ADE20K and Model Garden's
`PerClassIoU` score it; mIoU is the mean over the classes that appear in the truth or the
prediction.
"""

from __future__ import annotations

import numpy as np

from contracts.record_schema import IGNORE_LABEL


class ConfusionMatrix:
    """Accumulates `[classes, classes]` pixel counts, rows the truth, columns the prediction; class
    ids are label ids `0..classes-1` (0 the background)."""

    def __init__(self, classes: int):
        self.classes = classes
        self.counts = np.zeros((classes, classes), np.int64)
        self.unknown_predictions = np.zeros(classes, np.int64)  # per true class: predicted outside the classes

    @classmethod
    def summed(cls, counts: np.ndarray, unknown_predictions: np.ndarray, weights: np.ndarray) -> "ConfusionMatrix":
        """The sum of per-image matrices, `counts` `[N, C, C]` and `unknown_predictions` `[N, C]`
        (each image's `counts` and `unknown_predictions` stacked), image i counted `weights[i]`
        times (all ones: every image once; a bootstrap resample's draws)."""
        total = cls(counts.shape[1])
        total.counts = np.tensordot(weights, counts, axes=1)
        total.unknown_predictions = np.tensordot(weights, unknown_predictions, axes=1)
        return total

    def add(self, truth: np.ndarray, predicted: np.ndarray) -> None:
        """One image's int `[H, W]` true and predicted labels (a prediction outside the classes
        counts as wrong for its true class)."""
        labelled = truth != IGNORE_LABEL
        truth, predicted = truth[labelled].astype(np.int64), predicted[labelled].astype(np.int64)
        known = (predicted >= 0) & (predicted < self.classes)
        self.counts += np.bincount(truth[known] * self.classes + predicted[known],
                                   minlength=self.classes ** 2).reshape(self.classes, self.classes)
        self.unknown_predictions += np.bincount(truth[~known], minlength=self.classes)

    def scores(self) -> dict:
        """`{"mIoU", "pixel_accuracy", "per_class_IoU": {label: IoU}}` (None where nothing was labelled)."""
        true_positives = np.diag(self.counts)
        truth_totals = self.counts.sum(axis=1) + self.unknown_predictions
        predicted_totals = self.counts.sum(axis=0)
        unions = truth_totals + predicted_totals - true_positives
        appears = unions > 0
        ious = np.where(appears, true_positives / np.maximum(unions, 1), np.nan)
        labelled = truth_totals.sum()
        return {
            "mIoU": float(np.nanmean(ious)) if appears.any() else None,
            "pixel_accuracy": float(true_positives.sum() / labelled) if labelled else None,
            "per_class_IoU": {int(label): float(ious[label]) for label in np.flatnonzero(appears)},
        }
