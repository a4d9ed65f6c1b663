"""The panoptic merge against a NumPy reference written as Detectron2's
`combine_semantic_and_instance_outputs` loops (one instance at a time, Python control flow), on
hand-made and random cases, eagerly and compiled with XLA."""

import numpy as np
import pytest
import tensorflow as tf

from keras_models.ops.mask_pasting import paste_masks
from keras_models.ops.panoptic_merge import MergeConfig, merge_panoptic

SIDE, CELLS = 32, 28


def reference_merge(masks, boxes, scores, classes, count, stuff, config: MergeConfig):
    """One image: pasted masks (by the paste under test, checked on its own in test_mask_rcnn) merged
    with Python loops."""
    pasted = paste_masks(masks[np.newaxis], boxes[np.newaxis], SIDE, SIDE).numpy()[0] >= 0.5
    categories = np.zeros((SIDE, SIDE), int)
    instances = np.zeros((SIDE, SIDE), int)
    for row in sorted(range(count), key=lambda k: -scores[k]):
        if scores[row] < config.score_threshold:
            break
        mask = pasted[row]
        area = mask.sum()
        if area == 0 or (mask & (instances > 0)).sum() / area > config.overlap_threshold:
            continue
        mask = mask & (instances == 0)
        instances[mask], categories[mask] = row + 1, classes[row] + 1
    for label in np.unique(stuff):
        region = (stuff == label) & (instances == 0)
        if label == 0 or region.sum() < config.stuff_min_area * SIDE * SIDE:
            continue
        categories[region] = label
    return categories, instances


def square_mask() -> np.ndarray:
    return np.ones((CELLS, CELLS), np.float32)


def merged(batch, config, jit_compile=False):
    function = tf.function(lambda *args: merge_panoptic(*args, config), jit_compile=jit_compile)
    result = function(*[tf.constant(value) for value in batch])
    return result.categories.numpy(), result.instances.numpy()


def test_a_higher_score_takes_the_overlap_and_a_mostly_hidden_instance_is_dropped():
    boxes = np.array([[0, 0, 16, 16], [8, 0, 24, 16], [2, 2, 14, 14], [20, 20, 30, 30]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.3], np.float32)  # row 2 lies under row 0; row 3 scores too low
    stuff = np.zeros((SIDE, SIDE), np.int32)
    stuff[16:] = 5
    stuff[:2, 30:] = 6  # 4 pixels: under the minimum area
    batch = (np.stack([square_mask()] * 4)[np.newaxis], boxes[np.newaxis], scores[np.newaxis],
             np.array([[0, 1, 2, 0]], np.int32), np.array([4], np.int32), stuff[np.newaxis])
    config = MergeConfig(score_threshold=0.5, overlap_threshold=0.5, stuff_min_area=0.01)
    categories, instances = merged(batch, config)
    assert np.all(instances[0, :16, :8] == 1) and np.all(instances[0, :16, 16:24] == 2)
    assert np.all(instances[0, :16, 8:16] == 1)  # the overlap goes to the higher score
    assert not np.any(instances[0] == 3) and not np.any(instances[0] == 4)
    assert np.all(categories[0, :16, :8] == 1) and np.all(categories[0, :16, 16:24] == 2)
    assert np.all(categories[0, 16:] == 5) and np.all(instances[0, 16:] == 0)
    assert np.all(categories[0, :2, 30:] == 0)  # the small stuff region is void
    expected = reference_merge(*[value[0] for value in batch[:4]], 4, stuff, config)
    assert np.array_equal(categories[0], expected[0]) and np.array_equal(instances[0], expected[1])


@pytest.mark.parametrize("jit_compile", [False, True])
def test_random_detections_merge_as_the_reference_does(rng, jit_compile):
    images, rows = 3, 12
    corners = rng.uniform(-4, SIDE, size=(images, rows, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(2, 16, size=(images, rows, 2))], axis=-1).astype(np.float32)
    masks = rng.uniform(0, 1, size=(images, rows, CELLS, CELLS)).astype(np.float32)
    scores = rng.uniform(0, 1, size=(images, rows)).astype(np.float32)
    classes = rng.integers(0, 4, size=(images, rows)).astype(np.int32)
    counts = np.array([rows, 7, 0], np.int32)
    stuff = rng.choice([0, 5, 6, 7], p=[0.4, 0.4, 0.19, 0.01], size=(images, SIDE, SIDE)).astype(np.int32)
    config = MergeConfig(score_threshold=0.3, overlap_threshold=0.4, stuff_min_area=0.02)
    categories, instances = merged((masks, boxes, scores, classes, counts, stuff), config, jit_compile)
    for image in range(images):
        expected = reference_merge(masks[image], boxes[image], scores[image], classes[image], counts[image],
                                   stuff[image], config)
        assert np.array_equal(categories[image], expected[0]), image
        assert np.array_equal(instances[image], expected[1]), image
    assert instances[:2].max() > 0 and not instances[2].any()


def test_the_merge_holds_no_op_a_tpu_cannot_shape(rng):
    from tests.test_tpu_path import denied, op_types

    function = tf.function(lambda *args: merge_panoptic(*args, MergeConfig()))
    arguments = [tf.zeros([2, 5, CELLS, CELLS]), tf.zeros([2, 5, 4]), tf.zeros([2, 5]), tf.zeros([2, 5], tf.int32),
                 tf.zeros([2], tf.int32), tf.zeros([2, SIDE, SIDE], tf.int32)]
    types = op_types(function, *arguments)
    assert "While" in types or "StatelessWhile" in types, types  # one instance per step, shapes fixed
    assert not denied(types), denied(types)
