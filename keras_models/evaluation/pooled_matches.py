"""COCO's AP, AP50, AP75 and AP_small of many bootstrap resamples at once, from matches pooled once.

pycocotools matches detections per (class, area range, image) in `evaluate()`; `accumulate()`
then pools the chosen images, sorts their detections by score and reads precision at 101 recall
levels. A bootstrap resample only changes how many times each image counts, so this module pools
every image's matches once, in the order `accumulate()` sorts them, and scores each resample by
weighting the pooled detections with its image counts: cumulative sums over `[resamples,
detections]` arrays instead of one `accumulate()` per resample.

The precision envelope (the best precision at any recall at least as high) only rises at true
positives, so only their positions are kept per IoU threshold; the false positives enter through
the weighted count of all detections before each. For the whole image set, and for resamples whose
detections have distinct scores across images, the values equal `accumulate()`'s bit for bit (the
same float operations); where scores tie across images, `accumulate()` orders the tie by the
resample's image order, this module by the images' own order.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from pycocotools.cocoeval import COCOeval

from keras_models.evaluation.coco_metrics import AREA_ALL, AREA_SMALL, IOU_50, IOU_75, MAX_DETECTIONS_100

# COCO's names (coco_metrics.STAT_NAMES), each an area range and the IoU thresholds it averages.
_SELECTIONS = {"AP": (AREA_ALL, slice(None)), "AP50": (AREA_ALL, IOU_50), "AP75": (AREA_ALL, IOU_75),
               "AP_small": (AREA_SMALL, slice(None))}
POOLED_METRICS = tuple(_SELECTIONS)
# Resamples scored together are capped so that a chunk's `[resamples, detections]` arrays stay
# near this many entries (about 32 MB of int64 each).
CHUNK_ENTRIES = 4_000_000


@dataclasses.dataclass(frozen=True)
class PooledCurve:
    """One class in one area range: every image's detections in `accumulate()`'s score order.

    `image [D]`: each detection's image position. `true_positive`, `ignored` `[T, D]` bool per IoU
    threshold. `truth_per_image [I]`: the ground truth that counts (not ignored) in each image."""

    image: np.ndarray
    true_positive: np.ndarray
    ignored: np.ndarray
    truth_per_image: np.ndarray


class PooledMatches:
    """The matches of a `COCOeval` after `evaluate()`, pooled per class for the areas 'all' and
    'small' at 100 detections per image, ready to score any weighting of its images."""

    def __init__(self, evaluation: COCOeval):
        params = evaluation._paramsEval  # the parameters evaluate() ran with; the layout of evalImgs
        self.images = len(params.imgIds)
        self.thresholds = len(params.iouThrs)
        self.recall_levels = np.asarray(params.recThrs, np.float64)
        max_detections = params.maxDets[MAX_DETECTIONS_100]
        areas = len(params.areaRng)
        self.curves = {area: [self._pool(evaluation.evalImgs, (k * areas + area) * self.images, max_detections)
                              for k in range(len(params.catIds))] for area in (AREA_ALL, AREA_SMALL)}

    def _pool(self, evaluated_images: list, start: int, max_detections: int) -> PooledCurve:
        scores, image, matched, ignored = [], [], [], []
        truth = np.zeros(self.images, np.int64)
        for position in range(self.images):
            entry = evaluated_images[start + position]
            if entry is None:  # neither ground truth nor detections of this class
                continue
            truth[position] = np.count_nonzero(np.asarray(entry["gtIgnore"]) == 0)
            kept = len(entry["dtScores"][:max_detections])
            scores.append(np.asarray(entry["dtScores"][:max_detections], np.float64))
            image.append(np.full(kept, position, np.int64))
            matched.append(np.asarray(entry["dtMatches"])[:, :max_detections].reshape(self.thresholds, kept))
            ignored.append(np.asarray(entry["dtIgnore"])[:, :max_detections].reshape(self.thresholds, kept))
        if not scores:
            empty = np.zeros((self.thresholds, 0), bool)
            return PooledCurve(np.zeros(0, np.int64), empty, empty, truth)
        order = np.argsort(-np.concatenate(scores), kind="mergesort")  # as accumulate() sorts
        matched_all = np.concatenate(matched, axis=1)[:, order] != 0
        ignored_all = np.concatenate(ignored, axis=1)[:, order] != 0
        return PooledCurve(np.concatenate(image)[order], matched_all & ~ignored_all, ignored_all, truth)

    def metrics(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        """`POOLED_METRICS` for each row of `counts` `[R, I]` (how many times each image is drawn):
        `[R]` float64 each, NaN where undefined (no ground truth of any class, or none small).
        Each is the mean over the defined classes' precision entries, as `summarize()` takes it."""
        counts = np.asarray(counts, np.int64).reshape(-1, self.images)
        sums = {name: np.zeros(len(counts)) for name in POOLED_METRICS}
        entries = {name: np.zeros(len(counts)) for name in POOLED_METRICS}
        for area, curves in self.curves.items():
            names = [name for name, (name_area, _) in _SELECTIONS.items() if name_area == area]
            for curve in curves:
                chunk = max(1, CHUNK_ENTRIES // max(1, curve.image.size))
                for first in range(0, len(counts), chunk):
                    rows = slice(first, first + chunk)
                    precision, defined = self._precision(curve, counts[rows])  # [r, T, levels], [r]
                    for name in names:
                        taken = precision[:, _SELECTIONS[name][1]].reshape(len(defined), -1)
                        sums[name][rows] += np.where(defined, taken.sum(axis=1), 0.0)
                        entries[name][rows] += np.where(defined, taken.shape[1], 0)
        with np.errstate(invalid="ignore"):
            return {name: np.where(entries[name] > 0, sums[name] / entries[name], np.nan) for name in POOLED_METRICS}

    def _precision(self, curve: PooledCurve, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`[r, T, levels]` interpolated precision at the recall levels, and `[r]` whether any ground
        truth counts (pycocotools leaves the class out otherwise)."""
        truth = counts @ curve.truth_per_image  # [r]
        weights = counts[:, curve.image]  # [r, D]: each pooled detection counts as often as its image
        seen = np.cumsum(weights, axis=1)  # detections up to and including each one
        precision = np.zeros((len(counts), self.thresholds, len(self.recall_levels)))
        for threshold in range(self.thresholds):
            hits = np.flatnonzero(curve.true_positive[threshold])
            if hits.size == 0:
                continue  # recall stays 0: accumulate()'s precision is 0 at every level
            true_positives = np.cumsum(weights[:, hits], axis=1)
            skipped = np.flatnonzero(curve.ignored[threshold])
            skipped_before = np.concatenate([np.zeros((len(counts), 1), np.int64),
                                             np.cumsum(weights[:, skipped], axis=1)], axis=1)[
                :, np.searchsorted(skipped, hits)]
            tp = true_positives.astype(np.float64)
            point_precision = tp / ((seen[:, hits] - skipped_before).astype(np.float64) + np.spacing(1))
            envelope = np.maximum.accumulate(point_precision[:, ::-1], axis=1)[:, ::-1]
            first = _first_reaching(true_positives, truth, self.recall_levels)  # [r, levels]
            reached = first < hits.size
            precision[:, threshold] = np.where(
                reached, np.take_along_axis(envelope, np.minimum(first, hits.size - 1), axis=1), 0.0)
        return precision, truth > 0


def _first_reaching(true_positives: np.ndarray, truth: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """`[r, levels]`: per row, the first position whose recall `true_positives / truth` (computed as
    pycocotools computes it, in float64) is at least each level; the row length where none is.

    Recall is monotone in the integer count, so the float comparison becomes an integer one: the
    smallest count `c` with `c / truth >= level` (rounding moves the product's ceiling by at most
    one), then an exact search over rows made one sorted array by integer offsets."""
    rows, length = true_positives.shape
    denominator = np.maximum(truth, 1).astype(np.float64)[:, np.newaxis]
    ceiling = np.ceil(levels[np.newaxis, :] * denominator)
    needed = ceiling + 1
    for candidate in (ceiling, ceiling - 1):
        needed = np.where(candidate / denominator >= levels[np.newaxis, :], candidate, needed)
    span = int(true_positives[:, -1].max(initial=0)) + 2
    offsets = np.arange(rows, dtype=np.int64)[:, np.newaxis] * span
    keys = (true_positives + offsets).ravel()
    queries = (np.minimum(needed.astype(np.int64), span - 1) + offsets).ravel()
    return (np.searchsorted(keys, queries, side="left").reshape(rows, -1) - np.arange(rows)[:, np.newaxis] * length)
