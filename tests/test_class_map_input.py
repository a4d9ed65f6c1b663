"""Per-pixel class labels in tf.data: the record's semantic PNG becomes one class map per image,
which the letterbox (void padding), every geometric op (nearest neighbour) and batching move with
the pixels, and which colour ops leave alone.

The generated images paint each pixel with its own label (all three channels), so after any op
that moves pixels the image itself says where each label must have gone."""

import dataclasses
import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from contracts.record_schema import IGNORE_LABEL
from pipeline.augment.colour import random_colour_jitter
from pipeline.augment.compose import augment
from pipeline.augment.config import AugmentationConfig
from pipeline.augment.cutout import random_cutout
from pipeline.augment.flip import random_flip
from pipeline.augment.jpeg_quality import random_jpeg_quality
from pipeline.augment.mosaic import mosaic_four
from pipeline.augment.rotate90 import random_rotate90
from pipeline.augment.scale_crop import random_scale_crop
from pipeline.dataset import IMAGE_VALID, make_dataset
from pipeline.record_decoding import decode_record
from tests.builders import make_example, prepare, write_coco_panoptic

SEEDS = range(6)


def labelled_example(seed: int, height: int = 96, width: int = 128) -> dict:
    """Bands of labels 1..4 (stuff) with a void (255) stripe and a label-7 rectangle (a thing,
    also boxed and in the instance map); each pixel's colour is its label."""
    rng = np.random.default_rng(seed)
    borders = np.sort(rng.integers(10, height - 10, size=3))
    labels = 1 + np.searchsorted(borders, np.arange(height), side="right")[:, None] * np.ones((1, width), np.int32)
    labels[:, rng.integers(0, width - 8):][:, :6] = IGNORE_LABEL
    x, y = rng.integers(0, width - 40), rng.integers(0, height - 40)
    labels[y:y + 36, x:x + 36] = 7
    instances = np.where(labels == 7, 1, 0).astype(np.int32)
    return {"image": tf.constant(np.repeat(labels[..., None], 3, axis=-1), tf.float32),
            "boxes": tf.constant([[x, y, x + 36, y + 36]], tf.float32), "classes": tf.constant([0], tf.int32),
            "instance_map": tf.constant(instances), "class_map": tf.constant(labels.astype(np.int32))}


def labels_follow_pixels(after: dict, exact: bool) -> None:
    """The class map says what label each moved pixel shows; where the op padded, the image is 0 and
    the map void. A resize blends the pixels (bilinear) along the borders between labels while the
    map takes one neighbour's label, so there only pixels amid their own label are compared."""
    shown = np.round(after["image"].numpy()[..., 0]).astype(np.int32)
    shown = np.where(shown == 0, IGNORE_LABEL, shown)
    labels = after["class_map"].numpy()
    compared = np.ones(shown.shape, bool)
    if not exact:
        padded = np.pad(shown, 1, mode="edge")
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                compared &= padded[dy:dy + shown.shape[0], dx:dx + shown.shape[1]] == shown
        assert compared.mean() > 0.7
    np.testing.assert_array_equal(labels[compared], shown[compared])


@pytest.mark.parametrize("seed", SEEDS)
def test_flip_rotation_and_mosaic_move_the_class_map_exactly(seed):
    example = labelled_example(seed)
    for op in (lambda e, s: random_flip(e, s, 1.0), lambda e, s: random_rotate90(e, s, 1.0)):
        labels_follow_pixels(op(example, tf.constant([seed, 0])), exact=True)
    tiles = [labelled_example(seed * 4 + i, 64, 64) for i in range(4)]
    after = mosaic_four(tiles, tf.constant([seed, 3]))
    assert after["class_map"].shape == (64, 64)
    labels_follow_pixels(after, exact=True)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scale", [0.6, 1.0, 1.7])
def test_scale_crop_moves_the_class_map_and_pads_it_void(seed, scale):
    example = labelled_example(seed)
    after = random_scale_crop(example, tf.constant([seed, 1]), (scale, scale))
    labels_follow_pixels(after, exact=scale == 1.0)
    if scale == 0.6:  # the scaled image is smaller than the window: the rest is padding, void
        assert (after["class_map"].numpy() == IGNORE_LABEL).sum() >= 96 * 128 - 58 * 77


@pytest.mark.parametrize("seed", SEEDS)
def test_colour_ops_and_cutout_leave_the_class_map_alone(seed):
    example = labelled_example(seed)
    for op in (random_colour_jitter, lambda e, s: random_jpeg_quality(e, s, probability=1.0),
               lambda e, s: random_cutout(e, s, probability=1.0)):
        np.testing.assert_array_equal(op(example, tf.constant([seed, 2]))["class_map"], example["class_map"])


@pytest.mark.parametrize("seed", SEEDS)
def test_composition_keeps_instances_inside_their_class(seed):
    config = AugmentationConfig(scale_range=(0.8, 1.3), rotate90_probability=0.5, cutout_probability=0.5)
    after = augment(labelled_example(seed), tf.constant([seed, 4]), dataclasses.replace(config, min_visible_fraction=0))
    instances, labels = after["instance_map"].numpy(), after["class_map"].numpy()
    assert (instances > 0).any() and (labels[instances > 0] == 7).all() and ((labels == 7) == (instances > 0)).all()


def png(labels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(labels.astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def test_decoding_reads_the_labels_and_a_record_without_them_is_void():
    labels = np.arange(48 * 64).reshape(48, 64) % 5
    decoded = decode_record(tf.constant(make_example(48, 64, [(1, 1, 9, 9)], semantic=png(labels))),
                            with_semantic=True)
    np.testing.assert_array_equal(decoded["class_map"], labels)
    without = decode_record(tf.constant(make_example(48, 64, [(1, 1, 9, 9)])), with_semantic=True)
    assert (without["class_map"].numpy() == IGNORE_LABEL).all()
    # A JPEG decoded at half size (for a 64 px input) takes every other label.
    shrunk = decode_record(tf.constant(make_example(96, 128, [(1, 1, 9, 9)], semantic=png(np.kron(labels, np.ones(
        (2, 2), int))))), shrink_for=64, with_semantic=True)
    assert shrunk["image"].shape[:2] == (48, 64)
    np.testing.assert_array_equal(shrunk["class_map"], labels)


def test_batches_carry_letterboxed_class_maps_and_blank_images_are_void(tmp_path):
    ids = np.repeat(np.array([7, 7, 9, 9])[:, None], 10, axis=0) * np.ones((1, 80), int)  # sky over ground
    segments = [{"id": 7, "category_id": 4}, {"id": 9, "category_id": 5}]
    path = write_coco_panoptic(tmp_path / "raw", {f"image{k}": (ids, segments) for k in range(3)}, size=(40, 80))
    prepare("coco_panoptic", path, tmp_path / "data", val_fraction=0.0)
    batches = list(make_dataset(str(tmp_path / "data"), "train", 64, batch_size=2, training=False, full_batches=True,
                                padded_max_boxes=4, with_semantic=True))
    maps = np.concatenate([targets["class_map"].numpy() for _, targets in batches])
    valid = np.concatenate([targets[IMAGE_VALID].numpy() for _, targets in batches])
    assert maps.shape == (4, 64, 64) and maps.dtype == np.int32 and valid.tolist() == [1, 1, 1, 0]
    sky, ground = 2, 3  # labels by sorted category id: circle, sky, ground
    expected = np.full((64, 64), IGNORE_LABEL)
    expected[:16], expected[16:32] = sky, ground  # 40x80 letterboxed to 32x64; the rest is padding, void
    for image_map in maps[:3]:
        np.testing.assert_array_equal(image_map, expected)
    assert (maps[3] == IGNORE_LABEL).all()
