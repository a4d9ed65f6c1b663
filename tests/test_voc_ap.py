"""Pascal VOC AP50 on hand-worked cases: ranking, duplicates, difficult boxes, missing classes."""

import numpy as np
import pytest

from keras_models.evaluation.voc_ap import class_average_precision, interpolated_average_precision, \
    voc_average_precision
from tests.builders import evaluation_image

A, B = [10, 10, 50, 50], [60, 60, 90, 90]


def test_a_false_alarm_between_two_hits():
    # Ranked: hit (P 1, R .5), false alarm (P .5, R .5), hit (P .67, R 1): AP = .5 * 1 + .5 * 2/3.
    image = evaluation_image([A, B], [0, 0], [A, [0, 60, 5, 70], B], [0, 0, 0], [0.9, 0.8, 0.7])
    assert class_average_precision([image], 0) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_a_second_detection_of_one_box_is_a_false_alarm():
    image = evaluation_image([A], [0], [A, [11, 11, 51, 51]], [0, 0], [0.9, 0.8])
    assert class_average_precision([image], 0) == pytest.approx(1.0)  # the duplicate ranks after full recall
    image = evaluation_image([A, B], [0, 0], [A, [11, 11, 51, 51], B], [0, 0, 0], [0.9, 0.8, 0.7])
    assert class_average_precision([image], 0) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_difficult_boxes_count_neither_way():
    image = evaluation_image([A, B], [0, 0], [B, A], [0, 0], [0.9, 0.8], difficult=[False, True])
    assert class_average_precision([image], 0) == pytest.approx(1.0)
    missed = evaluation_image([A, B], [0, 0], [], [], [], difficult=[False, True])
    assert class_average_precision([missed], 0) == pytest.approx(0.0)


def test_overlap_must_exceed_one_half_and_classes_must_agree():
    half = [10, 10, 50, 30]  # IoU exactly 0.5 with A: not a hit under VOC's strict '>'
    assert class_average_precision([evaluation_image([A], [0], [half], [0], [0.9])], 0) == 0.0
    assert class_average_precision([evaluation_image([A], [0], [A], [1], [0.9])], 0) == 0.0


def test_classes_without_ground_truth_are_undefined():
    images = [evaluation_image([A], [0], [A, B], [0, 1], [0.9, 0.9])]
    assert voc_average_precision(images, ["a", "b", "c"]) == {"a": pytest.approx(1.0), "b": None, "c": None}


def test_interpolation_takes_the_precision_envelope():
    recall = np.array([0.25, 0.25, 0.5, 0.75])
    precision = np.array([1.0, 0.5, 0.67, 0.6])
    # Envelope: 1 up to .25, .67 up to .5, .6 up to .75, 0 beyond.
    assert interpolated_average_precision(recall, precision) == pytest.approx(0.25 + 0.25 * 0.67 + 0.25 * 0.6)
