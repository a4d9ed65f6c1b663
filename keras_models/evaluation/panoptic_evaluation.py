"""A panoptic model scored on a split: PQ, SQ and RQ for all classes, the things and the stuff, and
per class (`panoptic_quality`), with bootstrap intervals over images.

The ground truth of an image comes from its record: the label PNG gives each pixel's class, the
objects' mask PNGs give each thing pixel its instance (object i is instance i + 1), and the crowd
flags the crowd regions. Background (0) and void (255) are both void: neither is a segment to find,
and a prediction lying mostly on them is not a false positive. The prediction is the export's
`panoptic_category_mask` and `panoptic_instance_mask` (category 0, void, is no segment).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from contracts.record_schema import IGNORE_LABEL
from keras_models.evaluation.bootstrap import interval_report, resample_counts
from keras_models.evaluation.panoptic_quality import (ClassCounts, PanopticImage, image_counts, qualities_of,
                                                      quality_of_counts, summed_counts)

GROUPS = ("all", "things", "stuff")
# How `compare` names each group's PQ.
PQ_GROUPS = {"all": "PQ", "things": "PQ things", "stuff": "PQ stuff"}
QUALITIES = ("PQ", "SQ", "RQ")


def truth_panoptic(semantic_png: bytes, masks: Sequence[np.ndarray], classes: np.ndarray,
                   is_crowd: np.ndarray) -> tuple[np.ndarray, np.ndarray, frozenset]:
    """A record's panoptic ground truth: int `[H, W]` class ids (`IGNORE_LABEL` void) and instance
    numbers, and its crowd `(class id, instance)` pairs. `masks` are the objects' bool `[H, W]`;
    `classes` count from 0, as decoded."""
    labels = tf.io.decode_png(semantic_png, channels=1).numpy()[..., 0].astype(np.int64)
    labels[labels == 0] = IGNORE_LABEL
    instances = np.zeros(labels.shape, np.int64)
    for index, mask in enumerate(masks):
        instances[mask & (labels == classes[index] + 1)] = index + 1
    crowd = frozenset((int(classes[index]) + 1, index + 1) for index in np.flatnonzero(is_crowd))
    return labels, instances, crowd


def predicted_panoptic(categories: np.ndarray, instances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The export's maps of one image (cropped to it) as `PanopticImage`'s prediction (0 → void)."""
    categories = categories.astype(np.int64)
    return np.where(categories == 0, IGNORE_LABEL, categories), instances.astype(np.int64)


def image_panoptic_counts(truth: tuple[np.ndarray, np.ndarray, frozenset], categories: np.ndarray,
                          instances: np.ndarray) -> dict[int, ClassCounts]:
    """One image's per-class matches, false positives and false negatives."""
    true_classes, true_instances, crowd = truth
    predicted_classes, predicted_instances = predicted_panoptic(categories, instances)
    return image_counts(PanopticImage(true_classes, true_instances, predicted_classes, predicted_instances, crowd))


def panoptic_metrics(per_image: Sequence[dict[int, ClassCounts]], class_names: Sequence[str],
                     stuff_ids: Sequence[int], resamples: int = 200, seed: int = 0, level: float = 0.95) -> dict:
    """`{"images", "all" | "things" | "stuff": {"PQ", "SQ", "RQ", "classes"} or None, "per_class":
    {name: {...}}, "intervals": {group: {quality: interval}}}` over the images' counts."""
    groups = _group_ids(len(class_names), stuff_ids)
    totals = quality_of_counts(summed_counts(per_image), groups["things"], groups["stuff"])
    metrics = {"images": len(per_image), **{group: totals[group] for group in GROUPS},
               "per_class": {class_names[label - 1]: quality for label, quality in totals["per_class"].items()}}
    if resamples:
        counts = _counts_array(per_image, len(class_names))
        resampled = np.einsum("rn,nck->rck", resample_counts(len(per_image), resamples, seed), counts)
        metrics["intervals"] = {
            group: {quality: interval_report(values, level, resamples)
                    for quality, values in _group_qualities(resampled, groups[group]).items()}
            for group in GROUPS if totals[group] is not None}
    return metrics


def resampled_pq(per_image: Sequence[dict[int, ClassCounts]], weights: np.ndarray, class_count: int,
                 stuff_ids: Sequence[int]) -> dict[str, np.ndarray]:
    """`{"PQ", "PQ things", "PQ stuff"}`: each float `[R]` over the resamples `weights` `[R, N]` (how
    many times each image is drawn; NaN where a group has no class that appears)."""
    resampled = np.einsum("rn,nck->rck", weights, _counts_array(per_image, class_count))
    groups = _group_ids(class_count, stuff_ids)
    return {name: _group_qualities(resampled, groups[group])["PQ"] for group, name in PQ_GROUPS.items()}


def _group_ids(class_count: int, stuff_ids: Sequence[int]) -> dict[str, list[int]]:
    stuff = sorted(set(stuff_ids))
    things = [label for label in range(1, class_count + 1) if label not in stuff]
    return {"all": things + stuff, "things": things, "stuff": stuff}


def _counts_array(per_image: Sequence[dict[int, ClassCounts]], class_count: int) -> np.ndarray:
    """float64 `[N, C + 1, 4]`: each image's true positives, false positives, false negatives and IoU
    sum per label id (0 unused)."""
    counts = np.zeros((len(per_image), class_count + 1, 4))
    for index, image in enumerate(per_image):
        for label, one in image.items():
            counts[index, label] = (one.true_positives, one.false_positives, one.false_negatives, one.iou_sum)
    return counts


def _group_qualities(resampled: np.ndarray, ids: Sequence[int]) -> dict[str, np.ndarray]:
    """`{"PQ", "SQ", "RQ"}` `[R]`: the means over the classes of `ids` that appear in each resample
    (`resampled` `[R, C + 1, 4]` summed counts), NaN where none does."""
    counts = np.moveaxis(resampled[:, list(ids)], -1, 0)
    appears = counts[:3].sum(axis=0) > 0
    shown = appears.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {name: np.where(shown > 0, (values * appears).sum(axis=1) / shown, np.nan)
                for name, values in qualities_of(*counts).items()}


def format_panoptic_metrics(metrics: dict) -> list[str]:
    """The metrics as a person reads them in a terminal."""
    def number(value: Optional[float]) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    lines = [f"panoptic quality over {metrics['images']} images with per-pixel labels:",
             f"  {'':<7} {'PQ':>6} {'SQ':>6} {'RQ':>6} classes"]
    for group in GROUPS:
        values = metrics[group]
        if values is None:
            lines.append(f"  {group:<7} {'n/a':>6}")
            continue
        interval = metrics.get("intervals", {}).get(group, {}).get("PQ")
        spread = (f"  PQ {interval['level']:.0%} interval [{interval['low']:.3f}, {interval['high']:.3f}]"
                  if interval else "")
        lines.append(f"  {group:<7} {number(values['PQ']):>6} {number(values['SQ']):>6} {number(values['RQ']):>6} "
                     f"{values['classes']:>7}{spread}")
    lines += [f"  {name:<16} PQ {number(values['PQ'])} SQ {number(values['SQ'])} RQ {number(values['RQ'])}"
              for name, values in metrics["per_class"].items()]
    return lines
