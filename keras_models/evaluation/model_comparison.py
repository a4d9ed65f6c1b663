"""Is model B better than model A on the same images? A paired bootstrap of COCO metrics, and a
Wilcoxon signed-rank test and a t-test of per-image F1, all over images.

Every statistic pairs by image: every bootstrap resample draws one set of images and scores both
models on it, and the tests take each image's F1 difference. That removes the variation between
images (some are hard for every model) from the comparison, which is what makes small differences
detectable on a few hundred images. The verdict judges each metric (mAP, AP50, AP75 by their
bootstrap p-values, per-image F1 by the signed-rank test) with Holm's correction across the four,
or across seven when both models predict masks: their masks' AP, AP50 and AP75 (COCO segm) join
the family, from the same resamples; and two panoptic models' PQ over all classes, the things and
the stuff join it too.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np
from pycocotools.cocoeval import COCOeval

from keras_models.evaluation import coco_metrics
from keras_models.evaluation.bootstrap import percentile_interval, resample_counts
from keras_models.evaluation.evaluation_image import EvaluationImage
from keras_models.evaluation.panoptic_evaluation import PQ_GROUPS, resampled_pq
from keras_models.evaluation.pooled_matches import PooledMatches
from keras_models.evaluation.paired_t_test import PairedTTest, paired_t_test
from keras_models.evaluation.signed_rank_test import SignedRankTest, holm_adjusted, signed_rank_test
from keras_models.evaluation.per_image_f1 import NO_DETECTION, best_f1_threshold, image_matches, per_image_f1

COMPARED_METRICS = ("AP", "AP50", "AP75")
# The names of the masks' metrics in the bootstrap and the verdict.
MASK_METRICS = {f"mask {name}": name for name in COMPARED_METRICS}
F1 = "per-image F1"
ALPHA = 0.05  # the family-wise error rate of the verdict


@dataclasses.dataclass(frozen=True, eq=False)
class PairedDifference:
    """`second − first` of one metric: on all images, and its `level` interval over `samples`, the
    differences of the bootstrap resamples in which both are defined."""

    first: float
    second: float
    low: float
    high: float
    level: float
    samples: np.ndarray

    @property
    def difference(self) -> float:
        return self.second - self.first

    @property
    def second_wins(self) -> float:
        """The share of resamples in which the second model scores strictly higher."""
        return float(np.mean(self.samples > 0))

    @property
    def p_value(self) -> float:
        """Two-sided bootstrap p-value of "no difference": twice the smaller share of resamples on
        either side of 0 (0 itself counting on both), each share counted as (k + 1) / (n + 1) so that
        it is never 0."""
        count = len(self.samples)
        below = (np.sum(self.samples <= 0) + 1) / (count + 1)
        above = (np.sum(self.samples >= 0) + 1) / (count + 1)
        return float(min(1.0, 2 * min(below, above)))


def paired_bootstrap(first: COCOeval, second: COCOeval, resamples: int, level: float = 0.95, seed: int = 0
                     ) -> dict[str, Optional[PairedDifference]]:
    """`COMPARED_METRICS`' differences over `resamples` resamples of the images, the same images for
    both evaluations each time (they must hold the same images in the same order; `seed` draws the
    same resamples for every pair of evaluations); None for a metric undefined on all images."""
    pooled = PooledMatches(first), PooledMatches(second)
    return paired_differences([each.metrics for each in pooled], pooled[0].images, COMPARED_METRICS, resamples,
                               level, seed)


def paired_panoptic_bootstrap(first: Sequence[dict], second: Sequence[dict], class_count: int,
                              stuff_ids: Sequence[int], resamples: int, level: float = 0.95, seed: int = 0
                              ) -> dict[str, Optional[PairedDifference]]:
    """PQ's differences (all classes, things, stuff) over the same resamples of the images as
    `paired_bootstrap` draws with `seed`, from each model's per-image panoptic counts."""
    scorers = [lambda weights, counts=counts: resampled_pq(counts, weights, class_count, stuff_ids)
               for counts in (first, second)]
    return paired_differences(scorers, len(first), tuple(PQ_GROUPS.values()), resamples, level, seed)


def paired_differences(scorers: Sequence, images: int, names: Sequence[str], resamples: int, level: float,
                        seed: int) -> dict[str, Optional[PairedDifference]]:
    """Each of `names`' differences, second − first: `scorers` (first's, second's) turn `[R, N]`
    draw counts into `{name: [R] values}` (NaN where undefined)."""
    on_all = [score(np.ones((1, images), np.int64)) for score in scorers]
    counts = resample_counts(images, resamples, seed)
    drawn = [score(counts) for score in scorers]
    differences: dict[str, Optional[PairedDifference]] = {}
    for name in names:
        both = ~np.isnan(drawn[0][name]) & ~np.isnan(drawn[1][name])
        samples = (drawn[1][name] - drawn[0][name])[both]
        whole = float(on_all[0][name][0]), float(on_all[1][name][0])
        if np.isnan(whole).any() or not samples.size:
            differences[name] = None
            continue
        low, high = percentile_interval(samples, level)
        differences[name] = PairedDifference(*whole, low, high, level, samples)
    return differences


@dataclasses.dataclass(frozen=True, eq=False)
class Comparison:
    """Model A (`first`) against model B (`second`) on the same `source_ids`.

    `f1_first` / `f1_second` `[N]`: per-image F1 at IoU 0.5, each model at its own score threshold
    (`thresholds`, chosen by the caller: see `best_f1_thresholds`)."""

    source_ids: tuple[str, ...]
    bootstrap: dict[str, Optional[PairedDifference]]
    resamples: int
    thresholds: tuple[float, float]
    f1_first: np.ndarray
    f1_second: np.ndarray
    t_test: PairedTTest
    signed_rank: SignedRankTest
    # Keyed by `MASK_METRICS`' names, when both models predict masks (and the images have them).
    mask_bootstrap: Optional[dict[str, Optional[PairedDifference]]] = None
    # Keyed by `PQ_GROUPS`' names, when both models are panoptic (and the images have per-pixel labels).
    panoptic_bootstrap: Optional[dict[str, Optional[PairedDifference]]] = None

    @property
    def paired_metrics(self) -> dict[str, Optional[PairedDifference]]:
        """Every bootstrapped metric: the boxes', the masks', then PQ's."""
        return {**self.bootstrap, **(self.mask_bootstrap or {}), **(self.panoptic_bootstrap or {})}

    @property
    def holm_p_values(self) -> dict[str, float]:
        """Each defined metric's p-value, Holm-adjusted across them."""
        raw = {name: paired.p_value for name, paired in self.paired_metrics.items() if paired is not None}
        return holm_adjusted({**raw, F1: self.signed_rank.p_value})

    @property
    def verdict(self) -> str:
        adjusted = self.holm_p_values
        parts = []
        for name, paired in self.paired_metrics.items():
            if paired is None:
                parts.append(f"{name}: undefined (no ground truth)")
                continue
            detail = (f"Δ {paired.difference:+.3f}, {paired.level:.0%} interval {paired.low:+.3f} to "
                      f"{paired.high:+.3f}, Holm p {adjusted[name]:.2g}")
            parts.append(f"{name}: {judged(paired.difference, adjusted[name])} ({detail})")
        f1 = (f"{self.f1_second.mean():.3f} vs {self.f1_first.mean():.3f}, Wilcoxon Holm p {adjusted[F1]:.2g}, "
              f"t-test p {self.t_test.p_value:.2g}")
        parts.append(f"{F1}: {judged(self.signed_rank.statistic, adjusted[F1])} ({f1})")
        return f"B against A, Holm-corrected over {len(adjusted)} tests at {ALPHA:.0%}: " + "; ".join(parts)


def judged(direction: float, adjusted_p: float) -> str:
    if adjusted_p >= ALPHA or direction == 0:
        return "no difference shown"
    return "B higher" if direction > 0 else "B lower"


def best_f1_thresholds(first: Sequence[EvaluationImage], second: Sequence[EvaluationImage], num_classes: int
                       ) -> tuple[float, float]:
    """Each model's score threshold that maximizes its F1 pooled over these images: its operating
    point, to fix on other images than those compared (or it is chosen in-sample)."""
    return tuple(best_f1_threshold(image_matches(coco_metrics.evaluate_coco(images, num_classes)))
                 for images in (first, second))


def compare(first: Sequence[EvaluationImage], second: Sequence[EvaluationImage], num_classes: int,
            thresholds: tuple[float, float], resamples: int = 1000, level: float = 0.95, seed: int = 0,
            stuff_ids: Sequence[int] = ()) -> Comparison:
    """Compares two models' detections on the same images (same order, same ground truth), each
    model's per-image F1 taken at its score threshold in `thresholds` (A's, B's); two panoptic
    models' PQ too (`stuff_ids`: the label ids of the stuff classes)."""
    source_ids = tuple(image.source_id for image in first)
    if source_ids != tuple(image.source_id for image in second):
        raise ValueError("the two models were evaluated on different images")
    if len(source_ids) < 2:
        raise ValueError(f"comparing needs at least 2 images, got {len(source_ids)}")
    evaluations = coco_metrics.evaluate_coco(first, num_classes), coco_metrics.evaluate_coco(second, num_classes)
    matches = image_matches(evaluations[0]), image_matches(evaluations[1])
    f1_first, f1_second = per_image_f1(matches[0], thresholds[0]), per_image_f1(matches[1], thresholds[1])
    mask_bootstrap = None
    if all(image.detection_masks is not None and image.masks is not None for image in (*first, *second)):
        masks = [coco_metrics.evaluate_coco(images, num_classes, iou_type="segm") for images in (first, second)]
        mask_bootstrap = {name: paired_bootstrap(*masks, resamples, level, seed)[metric]
                          for name, metric in MASK_METRICS.items()}
    panoptic_bootstrap = None
    if all(image.panoptic_counts is not None for image in (*first, *second)):
        panoptic_bootstrap = paired_panoptic_bootstrap([image.panoptic_counts for image in first],
                                                       [image.panoptic_counts for image in second], num_classes,
                                                       stuff_ids, resamples, level, seed)
    return Comparison(source_ids, paired_bootstrap(*evaluations, resamples, level, seed), resamples, thresholds,
                      f1_first, f1_second, paired_t_test(f1_first, f1_second), signed_rank_test(f1_first, f1_second),
                      mask_bootstrap, panoptic_bootstrap)


def comparison_report(comparison: Comparison) -> dict:
    """The comparison as JSON-ready data (differences are B − A)."""
    test, rank = comparison.t_test, comparison.signed_rank
    adjusted = comparison.holm_p_values
    bootstrap = {}
    for name, paired in comparison.paired_metrics.items():
        bootstrap[name] = None if paired is None else {
            "A": paired.first, "B": paired.second, "difference": paired.difference, "low": paired.low,
            "high": paired.high, "level": paired.level, "B_wins": paired.second_wins,
            "p_value": paired.p_value, "holm_p_value": adjusted[name], "resamples_defined": int(len(paired.samples))}
    return {
        "images": len(comparison.source_ids),
        "bootstrap": {"resamples": comparison.resamples, "method": "paired bootstrap over images", **bootstrap},
        "per_image_f1": {
            "iou": 0.5,
            # None: keeping no detection scores best (JSON has no infinity).
            "thresholds": {letter: None if threshold == NO_DETECTION else threshold
                           for letter, threshold in zip("AB", comparison.thresholds)},
            "mean": {"A": float(comparison.f1_first.mean()), "B": float(comparison.f1_second.mean())},
            "t_test": {"mean_difference": test.mean_difference, "statistic": test.statistic,
                       "degrees_of_freedom": test.degrees_of_freedom, "p_value": test.p_value,
                       "small_sample": test.small_sample},
            "signed_rank_test": {"positive_rank_sum": rank.positive_rank_sum, "statistic": rank.statistic,
                                 "nonzero_differences": rank.nonzero, "p_value": rank.p_value,
                                 "holm_p_value": adjusted[F1], "small_sample": rank.small_sample},
            "images": [{"source_id": source_id, "A": float(a), "B": float(b)} for source_id, a, b
                       in zip(comparison.source_ids, comparison.f1_first, comparison.f1_second)],
        },
        "holm": {"alpha": ALPHA, "tests": sorted(adjusted)},
        "verdict": comparison.verdict,
    }
