"""mIoU, per-class IoU and pixel accuracy against hand-counted cases."""

import numpy as np
import pytest

from contracts.record_schema import IGNORE_LABEL
from keras_models.evaluation.semantic_metrics import ConfusionMatrix


def test_iou_counts_every_pixel_of_every_image_and_void_counts_nowhere():
    truth = np.array([[0, 0, 1, 1], [2, 2, IGNORE_LABEL, IGNORE_LABEL]])
    predicted = np.array([[0, 1, 1, 1], [2, 0, 2, 1]])
    matrix = ConfusionMatrix(3)
    matrix.add(truth, predicted)
    matrix.add(truth[:, :2], truth[:, :2])  # a second image, perfect
    scores = matrix.scores()
    # class 0: TP 1+2, FP 1 (a 2 called 0), FN 1 (a 0 called 1): 3/5; class 1: TP 2+0, FP 1: 2/3;
    # class 2: TP 1+2, FN 1: 3/4. Void pixels, whatever their prediction, count nowhere.
    assert scores["per_class_IoU"] == pytest.approx({0: 3 / 5, 1: 2 / 3, 2: 3 / 4})
    assert scores["mIoU"] == pytest.approx((3 / 5 + 2 / 3 + 3 / 4) / 3)
    assert scores["pixel_accuracy"] == pytest.approx(8 / 10)


def test_a_class_nobody_has_is_left_out_and_an_out_of_range_prediction_is_wrong():
    truth = np.array([[1, 1, 1, 1]])
    matrix = ConfusionMatrix(4)
    matrix.add(truth, np.array([[1, 1, 9, -1]]))
    scores = matrix.scores()
    assert scores["per_class_IoU"] == {1: 0.5} and scores["mIoU"] == 0.5 and scores["pixel_accuracy"] == 0.5
    assert ConfusionMatrix(2).scores() == {"mIoU": None, "pixel_accuracy": None, "per_class_IoU": {}}
