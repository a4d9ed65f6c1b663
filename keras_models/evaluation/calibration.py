"""Calibration of predicted box uncertainty: do the edges' predicted distributions cover the true
edges as often as they claim?

Detections are matched to ground truth of their class at IoU ≥ 0.5, most confident first, each
box used once (crowd boxes never). For each matched edge the model's distribution (Laplace or
Normal, centred on the predicted edge, with the predicted standard deviation) is asked for its
central intervals; the share of true edges inside is the observed coverage (Kuleshov et al. 2018's
regression calibration), the quantiles coming from the same `tfp.distributions` the model trained
with.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import tensorflow as tf

from contracts.box_overlap import iou_with_each
from keras_models.evaluation.evaluation_image import EvaluationImage
from keras_models.ops.box_uncertainty import LAPLACE, edge_distribution, scale_from_stddev

REPORTED_LEVELS = (0.5, 0.68, 0.9, 0.95)
# The calibration error averages |observed - nominal| over these levels, as the plot draws them.
CURVE_LEVELS = tuple(np.round(np.arange(0.05, 1.0, 0.05), 2).tolist())
MATCH_IOU = 0.5


@dataclasses.dataclass(frozen=True)
class MatchedEdges:
    """`[M, 4]` pixels xyxy of the original images: predicted edges, their standard deviations, and
    the true edges of the boxes they matched."""

    predicted: np.ndarray
    stddev: np.ndarray
    truth: np.ndarray


def match_edges(images: Sequence[EvaluationImage], iou_threshold: float = MATCH_IOU) -> MatchedEdges:
    """Each image's detections, most confident first, matched to an unused ground-truth box of their
    class at IoU ≥ `iou_threshold`."""
    predicted, stddev, truth = [], [], []
    for image in images:
        if image.detection_stddev is None:
            raise ValueError(f"{image.source_id}: the detections carry no standard deviations")
        used = np.asarray(image.is_crowd, bool).copy()
        for detection in np.argsort(-image.detection_scores, kind="stable"):
            candidates = np.where(~used & (image.classes == image.detection_classes[detection]),
                                  iou_with_each(image.detection_boxes[detection], image.boxes.reshape(-1, 4)), -1.0)
            if candidates.size == 0 or candidates.max() < iou_threshold:
                continue
            best = int(np.argmax(candidates))
            used[best] = True
            predicted.append(image.detection_boxes[detection])
            stddev.append(image.detection_stddev[detection])
            truth.append(image.boxes[best])
    return MatchedEdges(*(np.asarray(values, np.float64).reshape(-1, 4) for values in (predicted, stddev, truth)))


def observed_coverage(edges: MatchedEdges, distribution: str, levels: Sequence[float]) -> list[float]:
    """For each nominal level, the share of true edges inside the predicted central interval."""
    family = _centred(edges.stddev, distribution)
    errors = np.abs(edges.truth - edges.predicted)
    return [float(np.mean(errors <= family.quantile(0.5 + level / 2).numpy())) for level in levels]


def mean_negative_log_likelihood(edges: MatchedEdges, distribution: str) -> float:
    """The true edges' mean `-log p` per edge, in pixels (a density per pixel)."""
    return float(-np.mean(_centred(edges.stddev, distribution).log_prob(edges.truth - edges.predicted).numpy()))


def fit_temperatures(edges: MatchedEdges, distribution: str) -> tuple[float, float, float, float]:
    """Per XYXY edge, the factor `t` on the predicted stddev that maximizes the matched edges'
    likelihood. Both families have it in closed form (the derivative of the NLL in `t` vanishes):
    Laplace `t = mean(|e| / b)`, Normal `t = sqrt(mean(e² / σ²))`, with `b` and `σ` the scales."""
    scale = scale_from_stddev(edges.stddev, distribution)
    ratios = np.abs(edges.truth - edges.predicted) / np.maximum(scale, 1e-9)
    fitted = ratios.mean(axis=0) if distribution == LAPLACE else np.sqrt(np.square(ratios).mean(axis=0))
    return tuple(float(value) for value in fitted)


def with_temperatures(images: Sequence[EvaluationImage], temperatures: Sequence[float]) -> list[EvaluationImage]:
    """`images` with each detection's stddev multiplied by the per-edge `temperatures`."""
    return [dataclasses.replace(image, detection_stddev=image.detection_stddev * np.asarray(temperatures))
            for image in images]


def calibration_report(images: Sequence[EvaluationImage], distribution: str) -> dict:
    """The report's "calibration" section."""
    edges = match_edges(images)
    if not len(edges.truth):
        return {"distribution": distribution, "matched_detections": 0}
    reported = observed_coverage(edges, distribution, REPORTED_LEVELS)
    curve = observed_coverage(edges, distribution, CURVE_LEVELS)
    return {
        "distribution": distribution,
        "matched_detections": len(edges.truth),
        "match_iou": MATCH_IOU,
        "coverage": {f"{level:.2f}": observed for level, observed in zip(REPORTED_LEVELS, reported)},
        "mean_negative_log_likelihood": mean_negative_log_likelihood(edges, distribution),
        "calibration_error": float(np.mean(np.abs(np.array(curve) - np.array(CURVE_LEVELS)))),
        "curve": {"nominal": list(CURVE_LEVELS), "observed": curve},
        "median_stddev_pixels": float(np.median(edges.stddev)),
    }


def _centred(stddev: np.ndarray, distribution: str):
    """The distribution of (true - predicted) edge: centred, with the given standard deviation."""
    scale = tf.constant(np.maximum(scale_from_stddev(stddev, distribution), 1e-9), tf.float64)
    return edge_distribution(tf.zeros_like(scale), tf.math.log(scale), distribution)


def write_reliability_plot(calibration: dict, path: str) -> None:
    """Observed against nominal coverage of the central intervals; the diagonal is perfect calibration."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on servers
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(5, 5), dpi=100)
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", label="calibrated")
    axes.plot(calibration["curve"]["nominal"], calibration["curve"]["observed"], marker="o",
              label=f"{calibration['distribution']} (error {calibration['calibration_error']:.3f})")
    axes.set(xlabel="nominal coverage of the central interval", ylabel="observed coverage", xlim=(0, 1),
             ylim=(0, 1), title=f"Box edge calibration ({calibration['matched_detections']} matched detections)")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
