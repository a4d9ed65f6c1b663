"""Pascal VOC average precision at IoU 0.5 (the VOC2010+ all-point interpolated AP).

As in the VOC devkit: detections are taken in falling score order, each matches the
unmatched ground-truth box of its class it overlaps most when that IoU is above the
threshold; a match to a `difficult` (or crowd) box counts neither way; a second
detection of an already matched box is a false positive. IoU is continuous (no +1 pixel).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from contracts.box_overlap import iou_with_each
from keras_models.evaluation.evaluation_image import EvaluationImage


def interpolated_average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision envelope (precision made non-increasing in recall)."""
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def class_average_precision(images: Sequence[EvaluationImage], label: int, iou_threshold: float = 0.5
                            ) -> Optional[float]:
    """AP of one class over `images`; None when the class has no (non-difficult) ground truth."""
    truths = [image.boxes[image.classes == label] for image in images]
    ignored = [(image.difficult | image.is_crowd)[image.classes == label] for image in images]
    positives = sum(int((~flags).sum()) for flags in ignored)
    if positives == 0:
        return None
    found = [(index, score, box) for index, image in enumerate(images)
             for box, score in zip(image.detection_boxes[image.detection_classes == label],
                                   image.detection_scores[image.detection_classes == label])]
    found.sort(key=lambda item: -item[1])
    matched = [np.zeros(len(boxes), bool) for boxes in truths]
    true_positive = np.zeros(len(found))
    false_positive = np.zeros(len(found))
    for rank, (index, _, box) in enumerate(found):
        overlaps = iou_with_each(box, truths[index]) if len(truths[index]) else np.zeros(0)
        best = int(np.argmax(overlaps)) if overlaps.size else -1
        if best < 0 or overlaps[best] <= iou_threshold:
            false_positive[rank] = 1
        elif ignored[index][best]:
            continue
        elif matched[index][best]:
            false_positive[rank] = 1
        else:
            matched[index][best] = True
            true_positive[rank] = 1
    true_positive, false_positive = np.cumsum(true_positive), np.cumsum(false_positive)
    recall = true_positive / positives
    precision = true_positive / np.maximum(true_positive + false_positive, np.finfo(np.float64).eps)
    return interpolated_average_precision(recall, precision)


def voc_average_precision(images: Sequence[EvaluationImage], class_names: Sequence[str],
                          iou_threshold: float = 0.5) -> dict[str, Optional[float]]:
    """`{class name: AP}` at `iou_threshold`."""
    return {name: class_average_precision(images, label, iou_threshold) for label, name in enumerate(class_names)}
