"""Precision–recall curves from pycocotools' accumulated precision, drawn to a PNG."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from pycocotools.cocoeval import COCOeval

from keras_models.evaluation.coco_metrics import AREA_ALL, IOU_50, MAX_DETECTIONS_100, mean_precision

IOU_75 = 5  # index of IoU 0.75 in pycocotools' thresholds 0.50:0.05:0.95


def write_pr_curves(evaluation: COCOeval, class_names: Sequence[str], path: str) -> None:
    """One curve per class at IoU 0.5 (solid) and 0.75 (dashed), area 'all', 100 detections."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on servers
    from matplotlib import pyplot

    recall = evaluation.params.recThrs
    precision = evaluation.eval["precision"]
    figure, axes = pyplot.subplots(figsize=(7, 5), dpi=100)
    colours = pyplot.get_cmap("tab10")
    for label, name in enumerate(class_names):
        at_50 = precision[IOU_50, :, label, AREA_ALL, MAX_DETECTIONS_100]
        if not np.any(at_50 > -1):
            continue  # no ground truth of this class
        colour = colours(label % 10)
        axes.plot(recall, np.clip(at_50, 0, 1), color=colour,
                  label=f"{name} (AP50 {mean_precision(at_50):.3f})")
        at_75 = precision[IOU_75, :, label, AREA_ALL, MAX_DETECTIONS_100]
        axes.plot(recall, np.clip(at_75, 0, 1), color=colour, linestyle="--")
    axes.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
             title="Precision–recall per class (solid IoU 0.5, dashed IoU 0.75)")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left", fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
