"""The client's handling of detections: one label per object for pictures people read."""

import pytest

from contracts.box_overlap import iou
from serving.client import Detection, one_label_per_object


def test_iou_is_the_same_in_either_axis_order():
    assert iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)
    assert iou((0, 0, 2, 4), (0, 2, 2, 6)) == iou((0, 0, 4, 2), (2, 0, 6, 2)) == pytest.approx(4 / 12)
    assert iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0 and iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


def test_one_label_per_object_keeps_the_most_confident_class_of_each_object():
    circle = Detection(1, 0.9, (0.1, 0.1, 0.4, 0.4))
    square_on_the_circle = Detection(2, 0.6, (0.11, 0.1, 0.4, 0.41))
    square_elsewhere = Detection(2, 0.5, (0.6, 0.6, 0.9, 0.9))
    touching = Detection(3, 0.4, (0.3, 0.3, 0.6, 0.6))  # overlaps both, but at IoU < 0.5
    found = [circle, square_on_the_circle, square_elsewhere, touching]
    assert one_label_per_object(found) == [circle, square_elsewhere, touching]
    assert one_label_per_object(found, iou=0.99) == found
