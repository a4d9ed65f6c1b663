"""The bootstrap's reference: a resample's metrics from pycocotools' own `accumulate()`, re-run on
the images drawn (repeats allowed). `keras_models.evaluation.pooled_matches` must equal it; the
bootstrap benchmark times the two side by side."""

from __future__ import annotations

import contextlib
import copy
import io
from typing import Optional

import numpy as np
from pycocotools.cocoeval import COCOeval

from keras_models.evaluation.coco_metrics import AREA_ALL, AREA_SMALL, IOU_50, IOU_75, MAX_DETECTIONS_100, mean_precision


def accumulated_metrics(evaluation: COCOeval, image_positions: np.ndarray) -> dict[str, Optional[float]]:
    """AP, AP50, AP75 and AP_small (100 detections) over the images at `image_positions`; None where
    undefined."""
    evaluated = evaluation._paramsEval  # the parameters evaluate() ran with; the layout of evalImgs
    images, areas = len(evaluated.imgIds), len(evaluated.areaRng)
    kept_areas = (AREA_ALL, AREA_SMALL)
    resample = copy.copy(evaluation)
    # evalImgs is laid out [class][area range][image]; keep areas 'all' and 'small', and the chosen images.
    resample.evalImgs = [evaluation.evalImgs[(k * areas + area) * images + i]
                         for k in range(len(evaluated.catIds)) for area in kept_areas for i in image_positions]
    params = copy.deepcopy(evaluated)
    params.imgIds = list(range(len(image_positions)))
    params.areaRng = [evaluated.areaRng[area] for area in kept_areas]
    params.areaRngLbl = [evaluated.areaRngLbl[area] for area in kept_areas]
    params.maxDets = [evaluated.maxDets[MAX_DETECTIONS_100]]
    resample._paramsEval = params
    resample.params = params
    with contextlib.redirect_stdout(io.StringIO()):
        resample.accumulate()
    precision = resample.eval["precision"]  # [IoU threshold, recall, class, kept area, 1]
    return {"AP": mean_precision(precision[:, :, :, 0, 0]), "AP50": mean_precision(precision[IOU_50, :, :, 0, 0]),
            "AP75": mean_precision(precision[IOU_75, :, :, 0, 0]), "AP_small": mean_precision(precision[:, :, :, 1, 0])}
