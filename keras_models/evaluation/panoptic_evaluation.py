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
from keras_models.evaluation.bootstrap import percentile_interval, resample_counts
from keras_models.evaluation.panoptic_quality import ClassCounts, PanopticImage, image_counts, quality_of_counts

GROUPS = ("all", "things", "stuff")
QUALITIES = ("PQ", "SQ", "RQ")


def truth_panoptic(semantic_png: bytes, mask_pngs: Sequence[bytes], classes: np.ndarray,
                   is_crowd: np.ndarray) -> tuple[np.ndarray, np.ndarray, frozenset]:
    """A record's panoptic ground truth: int `[H, W]` class ids (`IGNORE_LABEL` void) and instance
    numbers, and its crowd `(class id, instance)` pairs. `classes` count from 0, as decoded."""
    labels = tf.io.decode_png(semantic_png, channels=1).numpy()[..., 0].astype(np.int64)
    labels[labels == 0] = IGNORE_LABEL
    instances = np.zeros(labels.shape, np.int64)
    for index, png in enumerate(mask_pngs):
        mask = tf.io.decode_png(png, channels=1).numpy()[..., 0] > 0
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
    thing_ids = [label for label in range(1, len(class_names) + 1) if label not in set(stuff_ids)]
    totals = quality_of_counts(_summed(per_image, np.ones(len(per_image), np.int64)), thing_ids, stuff_ids)
    metrics = {"images": len(per_image), **{group: totals[group] for group in GROUPS},
               "per_class": {class_names[label - 1]: quality for label, quality in totals["per_class"].items()}}
    if resamples:
        samples = [quality_of_counts(_summed(per_image, weights), thing_ids, stuff_ids)
                   for weights in resample_counts(len(per_image), resamples, seed)]
        metrics["intervals"] = {group: {quality: _interval([sample[group] and sample[group][quality]
                                                            for sample in samples], level, resamples)
                                        for quality in QUALITIES}
                                for group in GROUPS if totals[group] is not None}
    return metrics


def _summed(per_image: Sequence[dict[int, ClassCounts]], weights: np.ndarray) -> dict[int, ClassCounts]:
    """The images' counts added up, image i `weights[i]` times (a bootstrap resample)."""
    totals: dict[int, ClassCounts] = {}
    for counts, weight in zip(per_image, weights):
        for class_id, one in counts.items():
            totals.setdefault(class_id, ClassCounts()).add(one, int(weight))
    return totals


def _interval(values: list[Optional[float]], level: float, resamples: int) -> Optional[dict]:
    if any(value is None for value in values):
        return None
    low, high = percentile_interval(values, level)
    return {"low": low, "high": high, "level": level, "resamples": resamples, "method": "bootstrap over images"}


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
        spread = f"  PQ {interval['level']:.0%} interval [{interval['low']:.3f}, {interval['high']:.3f}]" if interval else ""
        lines.append(f"  {group:<7} {number(values['PQ']):>6} {number(values['SQ']):>6} {number(values['RQ']):>6} "
                     f"{values['classes']:>7}{spread}")
    lines += [f"  {name:<16} PQ {number(values['PQ'])} SQ {number(values['SQ'])} RQ {number(values['RQ'])}"
              for name, values in metrics["per_class"].items()]
    return lines
