"""COCO detection and instance segmentation metrics, computed by pycocotools on in-memory ground
truth and detections.

Conventions fed to pycocotools: image ids are positions (1..N) in the evaluated list,
category ids are label-map ids (class + 1), boxes are `[x, y, width, height]` in
original-image pixels, and crowd boxes are `iscrowd` regions (matched detections are ignored).
`bbox` evaluation takes box areas for the area ranges; `segm` evaluation takes the masks (RLEs)
and their pixel areas, as COCO's own annotations do. `difficult` has no COCO meaning and is not
used here (the VOC metric ignores those boxes).
"""

from __future__ import annotations

import contextlib
import io
from typing import Optional, Sequence

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from keras_models.evaluation.evaluation_image import EvaluationImage

STAT_NAMES = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
              "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large")
# Indices into COCOeval.eval["precision"] [IoU 0.5:0.05:0.95, recall, class, area, max detections].
IOU_50, IOU_75, AREA_ALL, AREA_SMALL, MAX_DETECTIONS_100 = 0, 5, 0, 1, -1


def _xywh(boxes: np.ndarray) -> list[list[float]]:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).tolist()


def _coco(images: list[dict], categories: list[dict], annotations: list[dict]) -> COCO:
    coco = COCO()
    coco.dataset = {"images": images, "categories": categories, "annotations": annotations}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _region(box: list[float], rle: Optional[dict]) -> dict:
    """An annotation's geometry: its box, and with a mask the mask and its area (else the box's)."""
    if rle is None:
        return {"bbox": box, "area": box[2] * box[3]}
    return {"bbox": box, "segmentation": rle, "area": float(mask_utils.area(rle))}


def to_coco(images: Sequence[EvaluationImage], num_classes: int, masks: bool = False) -> tuple[COCO, COCO]:
    """Ground truth and detections as two pycocotools datasets, with their masks when `masks`
    (every image's `masks` and `detection_masks` set)."""
    coco_images = [{"id": index + 1, "height": image.height, "width": image.width}
                   for index, image in enumerate(images)]
    categories = [{"id": label + 1, "name": str(label + 1)} for label in range(num_classes)]
    truth, detections = [], []
    for index, image in enumerate(images):
        truth_masks = image.masks if masks else [None] * len(image.boxes)
        for box, label, crowd, rle in zip(_xywh(image.boxes), image.classes.tolist(), image.is_crowd.tolist(),
                                          truth_masks):
            truth.append({"id": len(truth) + 1, "image_id": index + 1, "category_id": label + 1,
                          "iscrowd": int(crowd), **_region(box, rle)})
        detection_masks = image.detection_masks if masks else [None] * len(image.detection_boxes)
        for box, label, score, rle in zip(_xywh(image.detection_boxes), image.detection_classes.tolist(),
                                          image.detection_scores.tolist(), detection_masks):
            detections.append({"id": len(detections) + 1, "image_id": index + 1, "category_id": label + 1,
                               "iscrowd": 0, "score": score, **_region(box, rle)})
    return _coco(coco_images, categories, truth), _coco(coco_images, categories, detections)


def evaluate_coco(images: Sequence[EvaluationImage], num_classes: int, iou_type: str = "bbox") -> COCOeval:
    """pycocotools' `bbox` (or, of the masks, `segm`) evaluation, run to the end (`stats` and
    `eval` filled), quietly."""
    truth, detections = to_coco(images, num_classes, masks=iou_type == "segm")
    evaluation = COCOeval(truth, detections, iouType=iou_type)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation


def _metric(value: float) -> Optional[float]:
    # pycocotools writes -1 where a metric is undefined (no ground truth in that range).
    return None if value < 0 else float(value)


def summary(evaluation: COCOeval) -> dict[str, Optional[float]]:
    """The twelve standard COCO numbers by name (None where undefined)."""
    return {name: _metric(value) for name, value in zip(STAT_NAMES, evaluation.stats)}


def mean_precision(precision: np.ndarray) -> Optional[float]:
    """Mean over the defined entries of a slice of `eval["precision"]` (as `summarize` does)."""
    defined = precision[precision > -1]
    return float(defined.mean()) if defined.size else None


def per_class(evaluation: COCOeval, class_names: Sequence[str]) -> dict[str, dict[str, Optional[float]]]:
    """`{class name: {"AP", "AP50"}}`, area 'all', 100 detections per image."""
    precision = evaluation.eval["precision"]
    return {
        name: {"AP": mean_precision(precision[:, :, label, AREA_ALL, MAX_DETECTIONS_100]),
               "AP50": mean_precision(precision[IOU_50, :, label, AREA_ALL, MAX_DETECTIONS_100])}
        for label, name in enumerate(class_names)
    }
