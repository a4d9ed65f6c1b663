"""Per-image F1 at IoU 0.5, read from pycocotools' own per-image matches.

pycocotools matches each (image, class) greedily, most confident detection first, so the matches
of the detections above any score threshold are the matches they had among all detections: one
`evaluate()` serves every threshold. Crowd regions and the detections they absorb are ignored, as in
COCO AP.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
from pycocotools.cocoeval import COCOeval

from keras_models.evaluation.coco_metrics import AREA_ALL, IOU_50

NO_DETECTION = float("inf")  # the threshold that keeps nothing


@dataclasses.dataclass(frozen=True)
class ImageMatches:
    """One image's detections at IoU 0.5 over all classes: `scores` `[D]`, `matched` `[D]` bool (a
    true positive), and `truth` the number of ground-truth boxes that count (crowds excluded)."""

    scores: np.ndarray
    matched: np.ndarray
    truth: int


def image_matches(evaluation: COCOeval) -> list[ImageMatches]:
    """Per evaluated image, in the order of the evaluated list: detections that are not ignored."""
    evaluated = evaluation._paramsEval
    images, areas = len(evaluated.imgIds), len(evaluated.areaRng)
    matches = []
    for image in range(images):
        scores, matched, truth = [], [], 0
        for label in range(len(evaluated.catIds)):
            entry = evaluation.evalImgs[(label * areas + AREA_ALL) * images + image]
            if entry is None:
                continue
            kept = ~np.asarray(entry["dtIgnore"][IOU_50], bool)
            scores.append(np.asarray(entry["dtScores"], np.float64)[kept])
            matched.append(np.asarray(entry["dtMatches"][IOU_50])[kept] > 0)
            truth += int(np.sum(np.asarray(entry["gtIgnore"]) == 0))
        matches.append(ImageMatches(np.concatenate(scores) if scores else np.zeros(0),
                                    np.concatenate(matched) if matched else np.zeros(0, bool), truth))
    return matches


def f1_score(true_positives: int, detections: int, truth: int) -> float:
    """`2·TP / (detections + truth)`; 1 when there is nothing to find and nothing is claimed."""
    return 1.0 if detections + truth == 0 else 2.0 * true_positives / (detections + truth)


def best_f1_threshold(matches: Sequence[ImageMatches]) -> float:
    """The score threshold (detections scoring at least it are kept) that maximizes F1 pooled over
    the images; the highest such threshold on ties, `NO_DETECTION` when keeping none is best."""
    scores = np.concatenate([image.scores for image in matches])
    matched = np.concatenate([image.matched for image in matches])
    truth = sum(image.truth for image in matches)
    order = np.argsort(-scores, kind="stable")
    scores, true_positives = scores[order], np.cumsum(matched[order])
    # A threshold keeps every detection of its score: judge each distinct score at its last occurrence.
    last_of_score = np.flatnonzero(np.append(scores[1:] != scores[:-1], True)) if len(scores) else np.zeros(0, int)
    best_threshold, best = NO_DETECTION, f1_score(0, 0, truth)
    for position in last_of_score:
        value = f1_score(int(true_positives[position]), int(position) + 1, truth)
        if value > best:
            best_threshold, best = float(scores[position]), value
    return best_threshold


def per_image_f1(matches: Sequence[ImageMatches], threshold: float) -> np.ndarray:
    """`[N]` F1 of each image's detections scoring at least `threshold`."""
    values = []
    for image in matches:
        kept = image.scores >= threshold
        values.append(f1_score(int(np.sum(image.matched[kept])), int(np.sum(kept)), image.truth))
    return np.asarray(values, np.float64)
