"""Instance masks in tf.data: the records' PNGs become one instance map per image, which the
letterbox, every augmentation op and batching carry with the pixels."""

import numpy as np
import pytest
import tensorflow as tf

from pipeline.augment.config import AugmentationConfig
from pipeline.dataset import IMAGE_VALID, make_dataset
from pipeline.record_decoding import CROWD_CLASS, decode_record
from tests.builders import make_example, prepared_synth


def rectangle(height, width, box):
    mask = np.zeros((height, width), np.uint8)
    x1, y1, x2, y2 = box
    mask[y1:y2, x1:x2] = 1
    return mask


def test_overlapping_masks_go_to_the_smaller_object_and_never_to_a_crowd():
    boxes = [(0, 0, 60, 40), (10, 10, 30, 30), (0, 0, 64, 48), (20, 5, 50, 35)]
    masks = [rectangle(48, 64, box) for box in boxes]
    serialized = make_example(48, 64, boxes, is_crowd=[False, False, True, False], masks=masks)
    decoded = decode_record(tf.constant(serialized), with_masks=True)
    assert decoded["classes"].numpy()[2] == CROWD_CLASS
    expected = np.full((48, 64), 3)  # the crowd where nothing else is
    for index in (0, 3, 1):  # largest to smallest: each painted over the ones before
        expected[masks[index] > 0] = index + 1
    np.testing.assert_array_equal(decoded["instance_map"].numpy(), expected)
    without = decode_record(tf.constant(make_example(48, 64, [(1, 1, 9, 9)])), with_masks=True)
    np.testing.assert_array_equal(without["instance_map"].numpy(), np.zeros((48, 64)))


def box_and_mask_agree(boxes: np.ndarray, instances: np.ndarray) -> int:
    """Each box is the tight box of its mask within 1 px, and no pixel names a box that is not there."""
    assert instances.max() <= len(boxes)
    for index, box in enumerate(boxes):
        ys, xs = np.nonzero(instances == index + 1)
        assert len(xs), f"box {index} has no mask"
        np.testing.assert_allclose(box, (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), atol=1.0)
    return len(boxes)


@pytest.fixture(scope="module")
def synth_with_masks(tmp_path_factory):
    return prepared_synth(tmp_path_factory.mktemp("masked"), images=24, image_size=96, object_sizes=(16, 48),
                          seed=6, masks=True)


@pytest.mark.parametrize("augmentation", [None, AugmentationConfig(rotate90_probability=0.5, mosaic_probability=0.5,
                                                                    cutout_probability=0.5)])
def test_batches_carry_one_instance_map_per_image_moved_with_its_boxes(synth_with_masks, augmentation):
    training = augmentation is not None
    compared = 0
    for seed in (1, 2, 3) if training else (0,):
        dataset = make_dataset(str(synth_with_masks), "train", 128, batch_size=4, training=training,
                               augmentation=augmentation, with_masks=True, seed=seed)
        for images, targets in dataset:
            assert targets["instance_map"].shape[1:] == (128, 128) and targets["instance_map"].dtype == tf.int32
            for boxes, instances in zip(targets["boxes"], targets["instance_map"]):
                compared += box_and_mask_agree(boxes.numpy(), instances.numpy())
    assert compared > 20


def test_filled_validation_batches_have_blank_maps(synth_with_masks):
    batches = list(make_dataset(str(synth_with_masks), "val", 96, batch_size=5, training=False, full_batches=True,
                                batch_count=3, padded_max_boxes=8, with_masks=True))
    for _, targets in batches:
        assert targets["instance_map"].shape == (5, 96, 96)
        for valid, classes, instances in zip(targets[IMAGE_VALID], targets["classes"], targets["instance_map"]):
            assert int(tf.reduce_max(instances)) == int(tf.reduce_sum(tf.cast(classes >= 0, tf.int32)))
            if valid == 0:
                assert int(tf.reduce_max(instances)) == 0
