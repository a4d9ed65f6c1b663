import numpy as np
import tensorflow as tf

from keras_models.ops.matching import BACKGROUND, IGNORED, MatchingConfig, assign_batch_targets, assign_targets
from pipeline.record_decoding import CROWD_CLASS

ANCHORS = tf.constant([[0.0, 0, 10, 10], [5, 5, 15, 15], [20, 20, 30, 30], [0, 0, 30, 30], [40, 40, 50, 50]])


def test_thresholds_give_positives_and_background():
    # Box 0 is anchor 0 exactly; box 1 has IoU 81/119 = 0.68 with anchor 2; the rest stay below 0.4.
    boxes = tf.constant([[0.0, 0, 10, 10], [21, 21, 31, 31]])
    classes, box_targets = assign_targets(ANCHORS, boxes, tf.constant([2, 1]))
    assert classes.numpy().tolist() == [2, BACKGROUND, 1, BACKGROUND, BACKGROUND]
    np.testing.assert_allclose(box_targets.numpy()[0], [0, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(box_targets.numpy()[2], [1.0, 1.0, 0.0, 0.0], atol=1e-5)  # centre +1 px / 10 px / 0.1


def test_best_anchor_is_forced_positive_and_otherwise_ignored():
    box, label = tf.constant([[5.0, 5, 12, 12]]), tf.constant([0])  # IoU 49/100 = 0.49 with anchor 1, its best
    assert assign_targets(ANCHORS, box, label)[0].numpy().tolist() == [BACKGROUND, 0] + [BACKGROUND] * 3
    unforced = assign_targets(ANCHORS, box, label, MatchingConfig(force_best_anchor=False))[0].numpy()
    assert unforced.tolist() == [BACKGROUND, IGNORED] + [BACKGROUND] * 3


def test_an_anchor_between_the_thresholds_is_ignored():
    anchors = tf.constant([[0.0, 0, 10, 10], [0.0, 0, 10, 22], [50.0, 50, 60, 60]])
    classes = assign_targets(anchors, tf.constant([[0.0, 0, 10, 10]]), tf.constant([4]))[0]
    assert classes.numpy().tolist() == [4, IGNORED, BACKGROUND]  # IoU 1, 100/220 = 0.45, 0


def test_zero_boxes_and_padding_give_background_everywhere():
    for boxes, classes in ((tf.zeros([0, 4]), tf.zeros([0], tf.int32)),
                           (tf.constant([[0.0, 0, 10, 10]]), tf.constant([-1]))):
        targets, box_targets = assign_targets(ANCHORS, boxes, classes)
        assert targets.numpy().tolist() == [BACKGROUND] * 5
        assert not box_targets.numpy().any()


def test_padded_batch_matches_per_image_results():
    boxes = tf.constant([[[0.0, 0, 10, 10], [0, 0, 0, 0]], [[40.0, 40, 50, 50], [20, 20, 30, 30]]])
    classes = tf.constant([[3, -1], [1, 2]])
    batch_classes, batch_boxes = assign_batch_targets(ANCHORS, boxes, classes)
    for index in range(2):
        single_classes, single_boxes = assign_targets(ANCHORS, boxes[index], classes[index])
        assert batch_classes[index].numpy().tolist() == single_classes.numpy().tolist()
        np.testing.assert_allclose(batch_boxes[index].numpy(), single_boxes.numpy())
    assert batch_classes.numpy().tolist() == [[3, -1, -1, -1, -1], [-1, -1, 2, -1, 1]]


def test_two_boxes_claiming_one_anchor_stay_valid():
    # Both small boxes have anchor 1 as their best anchor (IoU 0.49 and 0.36), neither above 0.5.
    boxes = tf.constant([[5.0, 5, 12, 12], [8.0, 8, 14, 14]])
    classes, box_targets = assign_targets(ANCHORS, boxes, tf.constant([0, 1]))
    assert classes.numpy().tolist() == [BACKGROUND, 1, BACKGROUND, BACKGROUND, BACKGROUND]
    assert np.isfinite(box_targets.numpy()).all()


def test_a_crowd_region_is_never_matched_and_silences_the_negatives_inside_it():
    # ANCHORS 0 and 1 lie wholly and 25/100 inside the crowd; anchor 2 is a real box's; anchor 3 is
    # 100/900 inside; anchor 4 is outside. (Detectron's rule: ignored from 70% inside.)
    boxes = tf.constant([[0.0, 0, 10, 10], [20, 20, 30, 30]])
    classes, _ = assign_targets(ANCHORS, boxes, tf.constant([CROWD_CLASS, 1]))
    assert classes.numpy().tolist() == [IGNORED, BACKGROUND, 1, BACKGROUND, BACKGROUND]
    # A real object inside a crowd region stays positive; the crowd alone never claims an anchor.
    inside = assign_targets(ANCHORS, tf.constant([[0.0, 0, 30, 30], [0, 0, 10, 10]]), tf.constant([CROWD_CLASS, 0]))
    assert inside[0].numpy().tolist() == [0, IGNORED, IGNORED, IGNORED, BACKGROUND]
    alone = assign_targets(ANCHORS, tf.constant([[0.0, 0, 30, 30]]), tf.constant([CROWD_CLASS]))[0].numpy()
    assert alone.tolist() == [IGNORED] * 4 + [BACKGROUND]
