"""Property tests of the box-aware augmentation ops.

Each generated image holds filled rectangles of distinct colours and its instance map
(`i + 1` where box `i` shows), which the ops move with the pixels. After every op and their
composition: each surviving box is the tight box of its mask within 1 px and its mask has
IoU ≥ 0.9 with its drawn (moved, clipped) rectangle; the dropped boxes are exactly those
mostly cut off, and their pixels leave the map; class ids stay paired with their boxes
(object k has class k).
"""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from pipeline.augment.colour import random_colour_jitter
from pipeline.augment.compose import augment
from pipeline.augment.config import AugmentationConfig
from pipeline.augment.cutout import random_cutout
from pipeline.augment.flip import random_flip
from pipeline.augment.jpeg_quality import random_jpeg_quality
from pipeline.augment.mosaic import mosaic_four
from pipeline.augment.rotate90 import random_rotate90
from pipeline.augment.scale_crop import random_scale_crop

MIN_VISIBLE = 0.5
# Near the drop threshold pixel rounding may tip an object either way.
THRESHOLD_SLACK = 0.08


def rectangles_example(seed: int, height: int = 128, width: int = 160, first_class: int = 0,
                       min_side: int = 34) -> dict:
    """Up to 4 disjoint filled rectangles. Sides of at least 34 px stay at least 20 px after a
    0.6x resize, where nearest-neighbour rounding of the instance map (±1 px per side) still
    allows IoU ≥ 0.9 with the exact box."""
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), 40, np.float32)
    instances = np.zeros((height, width), np.int32)
    boxes, classes = [], []
    for k in range(rng.integers(1, 5)):
        w, h = rng.integers(min_side, width // 2), rng.integers(min_side, height // 2)
        x, y = rng.integers(0, width - w), rng.integers(0, height - h)
        # Later rectangles may overlap earlier ones; keep objects apart so each stays whole.
        if instances[y:y + h, x:x + w].any():
            continue
        image[y:y + h, x:x + w] = rng.integers(80, 255, size=3)
        boxes.append([x, y, x + w, y + h])
        instances[y:y + h, x:x + w] = len(boxes)
        classes.append(first_class + k)
    return {"image": tf.constant(image), "boxes": tf.constant(np.reshape(boxes, (-1, 4)), tf.float32),
            "classes": tf.constant(classes, tf.int32), "instance_map": tf.constant(instances)}


def iou(a, b) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def masks_by_class(example: dict) -> dict[int, np.ndarray]:
    instances = example["instance_map"].numpy()
    return {int(k): instances == i + 1 for i, k in enumerate(example["classes"].numpy())}


def check_boxes_follow_objects(before: dict, after: dict, area_scale: float, kept_all: dict = None) -> None:
    """`area_scale`: how the op scales an object's pixel count when nothing is cut off; `kept_all`:
    the same op and seed keeping every box with a pixel left (where each object went), when the op
    drops boxes."""
    original_pixels = {k: int(mask.sum()) for k, mask in masks_by_class(before).items()}
    everywhere = masks_by_class(kept_all if kept_all is not None else after)
    survivors = dict(zip(after["classes"].numpy().tolist(), after["boxes"].numpy().tolist()))
    assert len(survivors) == len(after["classes"].numpy()), "a class id appears twice"
    masks = masks_by_class(after)
    for k, pixels in original_pixels.items():
        visible = int(everywhere[k].sum()) / (pixels * area_scale) if k in everywhere else 0.0
        if k not in survivors:
            assert visible < MIN_VISIBLE + THRESHOLD_SLACK, (k, visible)
            continue
        assert visible >= MIN_VISIBLE - THRESHOLD_SLACK, (k, visible)
        ys, xs = np.nonzero(masks[k])
        extent = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        np.testing.assert_allclose(survivors[k], extent, atol=1.0, err_msg=f"object {k}: box not its mask's")
        drawn = np.zeros_like(masks[k])
        x1, y1, x2, y2 = np.round(survivors[k]).astype(int)
        drawn[y1:y2, x1:x2] = True
        assert (masks[k] & drawn).sum() / (masks[k] | drawn).sum() >= 0.9, k
    # A dropped box's pixels leave the map.
    assert int((after["instance_map"].numpy() > 0).sum()) == sum(int(masks[k].sum()) for k in survivors)


SEEDS = range(12)


@pytest.mark.parametrize("seed", SEEDS)
def test_flip_and_rotation(seed):
    example = rectangles_example(seed)
    for op in (lambda e, s: random_flip(e, s, 1.0), lambda e, s: random_rotate90(e, s, 1.0)):
        check_boxes_follow_objects(example, op(example, tf.constant([seed, 0])), area_scale=1.0)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scale", [0.6, 1.0, 1.7])
def test_scale_jitter_with_crop_drops_exactly_the_mostly_cut_boxes(seed, scale):
    example = rectangles_example(seed)
    after = random_scale_crop(example, tf.constant([seed, 1]), (scale, scale), MIN_VISIBLE)
    kept_all = random_scale_crop(example, tf.constant([seed, 1]), (scale, scale), 0.0)
    assert after["image"].shape == example["image"].shape
    check_boxes_follow_objects(example, after, scale ** 2, kept_all)


@pytest.mark.parametrize("seed", SEEDS)
def test_pixel_ops_leave_boxes_and_classes_alone(seed):
    example = rectangles_example(seed)
    for op in (random_colour_jitter, lambda e, s: random_jpeg_quality(e, s, probability=1.0),
               lambda e, s: random_cutout(e, s, probability=1.0)):
        after = op(example, tf.constant([seed, 2]))
        assert after["image"].shape == example["image"].shape
        assert 0.0 <= float(tf.reduce_min(after["image"])) and float(tf.reduce_max(after["image"])) <= 255.0
        np.testing.assert_array_equal(after["boxes"], example["boxes"])
        np.testing.assert_array_equal(after["classes"], example["classes"])


@pytest.mark.parametrize("seed", SEEDS)
def test_mosaic_moves_every_box_with_its_image(seed):
    examples = [rectangles_example(seed * 4 + i, 64, 64, first_class=10 * i, min_side=8) for i in range(4)]
    classes = tf.concat([e["classes"] for e in examples], axis=0)
    # Every object once, in one map (stacked, numbered as mosaic joins the boxes), to count its pixels.
    firsts = np.cumsum([0] + [len(e["classes"]) for e in examples])
    stacked = np.concatenate([np.where(e["instance_map"] > 0, e["instance_map"] + first, 0)
                              for e, first in zip(examples, firsts)])
    before = {"classes": classes, "instance_map": tf.constant(stacked)}
    after = mosaic_four(examples, tf.constant([seed, 3]), MIN_VISIBLE)
    kept_all = mosaic_four(examples, tf.constant([seed, 3]), 0.0)
    assert after["image"].shape == (64, 64, 3)
    check_boxes_follow_objects(before, after, 1.0, kept_all)


@pytest.mark.parametrize("seed", SEEDS)
def test_composition_of_all_ops(seed):
    config = AugmentationConfig(scale_range=(1.3, 1.3), rotate90_probability=0.5, jpeg_probability=0.5,
                                cutout_probability=0.5, min_visible_fraction=MIN_VISIBLE)
    example = rectangles_example(seed)
    after = augment(example, tf.constant([seed, 4]), config)
    kept_all = augment(example, tf.constant([seed, 4]), dataclasses.replace(config, min_visible_fraction=0.0))
    check_boxes_follow_objects(example, after, 1.3 ** 2, kept_all)


def discs_example(seed: int, size: int, first_class: int) -> dict:
    """Two disjoint discs (boxes their tight boxes) and a box with no mask, of classes
    `first_class` + 0, 1, 2."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[:size, :size]
    instances = np.zeros((size, size), np.int32)
    boxes = []
    for index, centre_x in enumerate((size // 4, 3 * size // 4)):
        radius = size // 5
        centre_y = rng.integers(radius, size - radius)
        disc = (xs - centre_x) ** 2 + (ys - centre_y) ** 2 < radius ** 2
        instances[disc] = index + 1
        boxes.append([xs[disc].min(), ys[disc].min(), xs[disc].max() + 1, ys[disc].max() + 1])
    boxes.append([0, 0, size, size])
    image = np.where(instances[..., None] > 0, 200.0, 40.0) * np.ones(3)
    return {"image": tf.constant(image, tf.float32), "boxes": tf.constant(boxes, tf.float32),
            "classes": tf.constant([first_class, first_class + 1, first_class + 2], tf.int32), "instance_map": tf.constant(instances)}


def test_a_cut_round_object_gets_the_box_of_what_is_left_of_it():
    """Clipping a disc's box to the window leaves it wider than the disc's cut-off part; with a map
    the box shrinks to the visible pixels. A box without a mask is clipped as before."""
    operations = {
        "scale crop": lambda examples, seed: random_scale_crop(examples[0], seed, (1.7, 1.7), 0.0),
        "mosaic": lambda examples, seed: mosaic_four(examples, seed, 0.0),
    }
    for name, operation in operations.items():
        tightened = 0
        for seed in range(8):
            examples = [discs_example(seed * 4 + i, 96, first_class=10 * i) for i in range(4)]
            after = operation(examples, tf.constant([seed, 5]))
            clipped_only = operation([{key: value for key, value in example.items() if key != "instance_map"}
                                      for example in examples], tf.constant([seed, 5]))
            instances = after["instance_map"].numpy()
            plain_boxes = dict(zip(clipped_only["classes"].numpy(), clipped_only["boxes"].numpy()))
            for index, (box, k) in enumerate(zip(after["boxes"].numpy(), after["classes"].numpy())):
                plain = plain_boxes[k]
                if k % 10 == 2:
                    np.testing.assert_array_equal(box, plain, err_msg=name)
                    continue
                ys, xs = np.nonzero(instances == index + 1)
                extent = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
                np.testing.assert_allclose(box, extent, atol=1.0, err_msg=f"{name}, seed {seed}")
                tightened += np.abs(plain - extent).max() > 1.0
        assert tightened >= 3, name


def test_same_seed_same_result_and_images_without_boxes_pass():
    config = AugmentationConfig(rotate90_probability=0.5, jpeg_probability=1.0, cutout_probability=1.0)
    example = rectangles_example(3)
    first = augment(example, tf.constant([5, 6]), config)
    second = augment(example, tf.constant([5, 6]), config)
    for key in ("image", "boxes", "classes"):
        np.testing.assert_array_equal(first[key], second[key])
    empty = {**example, "boxes": tf.zeros([0, 4]), "classes": tf.zeros([0], tf.int32),
             "instance_map": tf.zeros_like(example["instance_map"])}
    assert augment(empty, tf.constant([1, 2]), config)["boxes"].shape == (0, 4)


def test_augmentation_config_from_yaml(tmp_path):
    from contracts.errors import BoxflowError
    from pipeline.augment.config import load_augmentation_config

    path = tmp_path / "aug.yaml"
    path.write_text("flip_probability: 0.2\nscale_range: [0.5, 2]\nmosaic_probability: 0.5\n")
    config = load_augmentation_config(str(path))
    assert (config.flip_probability, config.scale_range, config.mosaic_probability) == (0.2, (0.5, 2.0), 0.5)
    assert config.cutout_probability == AugmentationConfig().cutout_probability
    for text, message in (("flip: 1\n", "unknown augmentation setting"), ("flip_probability: 2\n", r"must be in \[0, 1\]"),
                          ("scale_range: 3\n", r"expected a \[low, high\] pair"), ("- a\n", "must be a mapping")):
        path.write_text(text)
        with pytest.raises(BoxflowError, match=message):
            load_augmentation_config(str(path))
