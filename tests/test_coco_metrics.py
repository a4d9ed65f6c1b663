"""COCO metrics: the same numbers as pycocotools run by hand on files in the COCO formats, 1.0
for perfect detections, and the box convention (xyxy pixels → COCO xywh) checked by IoU."""

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from keras_models.evaluation import coco_metrics
from tests.builders import (evaluation_image, ground_truth_as_detections, random_evaluation_images,
                            with_ellipse_masks)

CLASSES = ("circle", "square", "triangle")


def by_hand(images, tmp_path, iou_type: str = "bbox") -> np.ndarray:
    """pycocotools the documented way: a ground-truth JSON file and a results JSON file (with each
    object's RLE for `segm`, whose areas pycocotools computes itself)."""
    truth = {"images": [], "annotations": [], "categories": [{"id": k + 1, "name": n} for k, n in enumerate(CLASSES)]}
    results = []
    for image_id, image in enumerate(images, start=7):  # ids unrelated to positions
        truth["images"].append({"id": image_id, "width": image.width, "height": image.height})
        truth_masks = image.masks if iou_type == "segm" else [None] * len(image.boxes)
        for (x0, y0, x1, y1), label, rle in zip(image.boxes.tolist(), image.classes.tolist(), truth_masks):
            annotation = {"id": len(truth["annotations"]) + 1, "image_id": image_id, "category_id": label + 1,
                          "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0}
            if rle is not None:
                annotation.update(segmentation=as_json(rle), area=float(mask_utils.area(rle)))
            truth["annotations"].append(annotation)
        detection_masks = image.detection_masks if iou_type == "segm" else [None] * len(image.detection_boxes)
        for (x0, y0, x1, y1), label, score, rle in zip(image.detection_boxes.tolist(), image.detection_classes.tolist(),
                                                       image.detection_scores.tolist(), detection_masks):
            result = {"image_id": image_id, "category_id": label + 1, "score": score}
            result.update({"segmentation": as_json(rle)} if rle is not None else {"bbox": [x0, y0, x1 - x0, y1 - y0]})
            results.append(result)
    (tmp_path / "truth.json").write_text(json.dumps(truth))
    (tmp_path / "results.json").write_text(json.dumps(results))
    ground_truth = COCO(str(tmp_path / "truth.json"))
    evaluation = COCOeval(ground_truth, ground_truth.loadRes(str(tmp_path / "results.json")), iou_type)
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    return evaluation.stats


def test_metrics_equal_pycocotools_run_by_hand(rng, tmp_path):
    images = random_evaluation_images(rng, 40, len(CLASSES))
    ours = coco_metrics.evaluate_coco(images, len(CLASSES)).stats
    assert 0.2 < ours[0] < 0.95, "the fixture should give a middling mAP, not a trivial one"
    np.testing.assert_allclose(ours, by_hand(images, tmp_path), atol=1e-12)


def as_json(rle: dict) -> dict:
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def test_mask_metrics_equal_pycocotools_run_by_hand(rng, tmp_path):
    """Truth: ellipses inscribed in the boxes; detections: ellipses in the detected boxes, half of
    them filled boxes instead (which a box metric cannot tell from the ellipses)."""
    images = [with_ellipse_masks(image, filled=lambda index: index % 2 == 0)
              for image in random_evaluation_images(rng, 30, len(CLASSES))]
    ours = coco_metrics.evaluate_coco(images, len(CLASSES), iou_type="segm").stats
    np.testing.assert_allclose(ours, by_hand(images, tmp_path, "segm"), atol=1e-12)
    boxes = coco_metrics.evaluate_coco(images, len(CLASSES)).stats
    assert 0.1 < ours[0] < boxes[0] - 0.02, "the filled boxes should cost mask AP, not box AP"


def test_ground_truth_as_detections_scores_one(rng):
    images = [ground_truth_as_detections(image) for image in random_evaluation_images(rng, 30, len(CLASSES))]
    evaluation = coco_metrics.evaluate_coco(images, len(CLASSES))
    summary = coco_metrics.summary(evaluation)
    for name in ("AP", "AP50", "AP75", "AR100"):
        assert summary[name] == pytest.approx(1.0)
    for values in coco_metrics.per_class(evaluation, CLASSES).values():
        assert values == {"AP": pytest.approx(1.0), "AP50": pytest.approx(1.0)}


# A 100x50 box and a detection shifted right by s pixels overlap with IoU (100 - s) / (100 + s):
# 0.96 for 2, 0.67 for 20, 0.43 for 40. Read as xywh by mistake, the boxes would overlap differently.
@pytest.mark.parametrize("shift, expected_ap50, expected_ap75", [(2.0, 1.0, 1.0), (20.0, 1.0, 0.0), (40.0, 0.0, 0.0)])
def test_boxes_are_read_as_pixel_corners(shift, expected_ap50, expected_ap75):
    truth = [20.0, 30.0, 120.0, 80.0]
    detected = [20.0 + shift, 30.0, 120.0 + shift, 80.0]
    image = evaluation_image([truth], [1], [detected], [1], [0.9], height=200, width=300)
    summary = coco_metrics.summary(coco_metrics.evaluate_coco([image], len(CLASSES)))
    assert summary["AP50"] == pytest.approx(expected_ap50)
    assert summary["AP75"] == pytest.approx(expected_ap75)


def test_crowd_boxes_are_ignored_and_size_ranges_follow_box_area():
    crowd = evaluation_image([[0, 0, 50, 50], [100, 100, 110, 110]], [0, 0],
                             [[0, 0, 50, 50], [100, 100, 110, 110]], [0, 0], [0.5, 0.9],
                             height=200, width=200, is_crowd=[True, False])
    summary = coco_metrics.summary(coco_metrics.evaluate_coco([crowd], len(CLASSES)))
    # The detection of the crowd region is neither right nor wrong; the 10x10 box is 'small'.
    assert summary["AP"] == pytest.approx(1.0) and summary["AP_small"] == pytest.approx(1.0)
    assert summary["AP_medium"] is None and summary["AP_large"] is None
