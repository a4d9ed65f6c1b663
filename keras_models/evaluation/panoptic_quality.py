"""Panoptic quality (Kirillov et al., CVPR 2019), with panopticapi's rules.

A segment is the set of pixels sharing one (class, instance) pair; stuff has instance 0, so each
stuff class is one segment per image. A predicted and a ground-truth segment of the same class
match when their IoU exceeds 0.5, the union leaving out the prediction's pixels on void; matches are
then unique. Per class, PQ = ΣIoU(matches) / (TP + ½FP + ½FN) = SQ · RQ, with SQ = ΣIoU / TP and
RQ = TP / (TP + ½FP + ½FN). A crowd region of the ground truth is never a false negative, and a
prediction lying more than half on void or on a crowd region of its class is not a false
positive. PQ over classes is their mean over the classes that appear (TP + FP + FN > 0), for all
classes, the things and the stuff.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Iterable, Optional

import numpy as np

from contracts.record_schema import IGNORE_LABEL

MATCH_IOU = 0.5
# The share of a prediction on void or same-class crowd above which it is not a false positive.
IGNORED_SHARE = 0.5


@dataclasses.dataclass(frozen=True)
class PanopticImage:
    """One image's panoptic labels and prediction, int `[H, W]` each: class ids (`IGNORE_LABEL` for
    void) and instance numbers (0 for stuff; a thing's number is unique within its class).
    `crowd` holds the ground truth's `(class, instance)` pairs that are crowd regions."""

    true_classes: np.ndarray
    true_instances: np.ndarray
    predicted_classes: np.ndarray
    predicted_instances: np.ndarray
    crowd: frozenset = frozenset()


@dataclasses.dataclass
class ClassCounts:
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    iou_sum: float = 0.0

    def add(self, other: "ClassCounts") -> None:
        self.true_positives += other.true_positives
        self.false_positives += other.false_positives
        self.false_negatives += other.false_negatives
        self.iou_sum += other.iou_sum

    @property
    def appears(self) -> bool:
        return self.true_positives + self.false_positives + self.false_negatives > 0

    def quality(self) -> dict:
        """`{"PQ", "SQ", "RQ"}` of this class (0 where it has no match)."""
        qualities = qualities_of(self.true_positives, self.false_positives, self.false_negatives, self.iou_sum)
        return {name: float(value) for name, value in qualities.items()}


def qualities_of(true_positives: np.ndarray, false_positives: np.ndarray, false_negatives: np.ndarray,
                 iou_sum: np.ndarray) -> dict[str, np.ndarray]:
    """`{"PQ", "SQ", "RQ"}`, elementwise over counts of any one shape (0 where there is no match)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        sq = np.where(np.greater(true_positives, 0), np.divide(iou_sum, true_positives), 0.0)
        denominator = np.add(true_positives, 0.5 * np.add(false_positives, false_negatives))
        rq = np.where(np.greater(denominator, 0), np.divide(true_positives, denominator), 0.0)
    return {"PQ": sq * rq, "SQ": sq, "RQ": rq}


def image_counts(image: PanopticImage) -> dict[int, ClassCounts]:
    """Per class, the matches, false positives and false negatives of one image."""
    true_segments = _segments(image.true_classes, image.true_instances)
    predicted_segments = _segments(image.predicted_classes, image.predicted_instances)
    void = image.true_classes == IGNORE_LABEL
    crowd = np.zeros(void.shape, bool)
    crowd_of_class: dict[int, np.ndarray] = {}
    for crowd_class, crowd_instance in image.crowd:
        region = (image.true_classes == crowd_class) & (image.true_instances == crowd_instance)
        crowd_of_class[crowd_class] = crowd_of_class.get(crowd_class, crowd) | region
    counts: dict[int, ClassCounts] = defaultdict(ClassCounts)
    matched_true, matched_predicted = set(), set()
    for predicted_key, predicted in predicted_segments.items():
        on_void = int((predicted & void).sum())
        for true_key, truth in true_segments.items():
            if true_key[0] != predicted_key[0] or true_key in image.crowd:
                continue
            intersection = int((predicted & truth).sum())
            if not intersection:
                continue
            union = int(predicted.sum()) - on_void + int(truth.sum()) - intersection
            iou = intersection / union
            if iou > MATCH_IOU:
                counts[true_key[0]].true_positives += 1
                counts[true_key[0]].iou_sum += iou
                matched_true.add(true_key)
                matched_predicted.add(predicted_key)
    for true_key in true_segments:
        if true_key not in matched_true and true_key not in image.crowd:
            counts[true_key[0]].false_negatives += 1
    for predicted_key, predicted in predicted_segments.items():
        if predicted_key in matched_predicted:
            continue
        ignored = predicted & (void | crowd_of_class.get(predicted_key[0], crowd))
        if ignored.sum() > IGNORED_SHARE * predicted.sum():
            continue
        counts[predicted_key[0]].false_positives += 1
    return dict(counts)


def _segments(classes: np.ndarray, instances: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    """`(class, instance)` → its bool `[H, W]` pixels, void left out."""
    labelled = classes != IGNORE_LABEL
    pairs = np.unique(np.stack([classes[labelled], instances[labelled]], axis=-1), axis=0)
    return {(int(c), int(i)): (classes == c) & (instances == i) for c, i in pairs}


def panoptic_quality(images: Iterable[PanopticImage], thing_classes: Iterable[int],
                     stuff_classes: Iterable[int]) -> dict:
    """`{"all" | "things" | "stuff": {"PQ", "SQ", "RQ", "classes"}, "per_class": {id: {...}}}` over
    `images`; each group's numbers are means over its classes that appear."""
    return quality_of_counts(summed_counts(image_counts(image) for image in images), thing_classes, stuff_classes)


def summed_counts(per_image: Iterable[dict[int, ClassCounts]]) -> dict[int, ClassCounts]:
    """Per class, the counts of every image added up."""
    totals: dict[int, ClassCounts] = defaultdict(ClassCounts)
    for counts in per_image:
        for class_id, one in counts.items():
            totals[class_id].add(one)
    return dict(totals)


def quality_of_counts(totals: dict[int, ClassCounts], thing_classes: Iterable[int],
                      stuff_classes: Iterable[int]) -> dict:
    """`panoptic_quality`'s result from the per-class counts summed over the images."""
    things, stuff = set(thing_classes), set(stuff_classes)
    per_class = {class_id: totals[class_id].quality() for class_id in sorted(totals) if totals[class_id].appears}
    return {"all": _mean(per_class, things | stuff), "things": _mean(per_class, things),
            "stuff": _mean(per_class, stuff), "per_class": per_class}


def _mean(per_class: dict[int, dict], group: set[int]) -> Optional[dict]:
    chosen = [quality for class_id, quality in per_class.items() if class_id in group]
    if not chosen:
        return None
    return {**{key: float(np.mean([quality[key] for quality in chosen])) for key in ("PQ", "SQ", "RQ")},
            "classes": len(chosen)}
