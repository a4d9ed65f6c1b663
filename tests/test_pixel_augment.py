"""The pixel ops change pixels as they claim to: each test fails if its op returns the image untouched
(test_augment checks that boxes and classes are left alone)."""

import numpy as np
import pytest
import tensorflow as tf

from pipeline.augment.colour import _RGB_TO_YIQ, random_colour_jitter
from pipeline.augment.cutout import FILL_VALUE, random_cutout
from pipeline.augment.jpeg_quality import random_jpeg_quality

SEEDS = range(10)


def colourful(seed: int, height: int = 48, width: int = 64) -> dict:
    """Mid-range colours (60..195), so that no jitter below clips them."""
    rng = np.random.default_rng(seed)
    image = rng.uniform(60, 195, size=(height, width, 3)).astype(np.float32)
    return {"image": tf.constant(image), "boxes": tf.zeros([0, 4]), "classes": tf.zeros([0], tf.int32)}


def jitter(example: dict, seed: int, **overrides) -> np.ndarray:
    settings = dict(brightness=0.0, contrast=(1.0, 1.0), saturation=(1.0, 1.0), hue=0.0)
    settings.update(overrides)
    return random_colour_jitter(example, tf.constant([seed, 0]), **settings)["image"].numpy()


def test_brightness_adds_one_shift_to_every_pixel_within_the_range():
    shifts = []
    for seed in SEEDS:
        example = colourful(seed)
        difference = jitter(example, seed, brightness=0.2) - example["image"].numpy()
        np.testing.assert_allclose(difference, difference.flat[0], atol=1e-3)  # one shift for all
        shifts.append(float(difference.flat[0]))
    assert max(abs(shift) for shift in shifts) <= 0.2 * 255 + 1e-3
    assert min(shifts) < -5 and max(shifts) > 5  # both ways, and not nothing


def test_contrast_scales_the_spread_about_the_mean():
    factors = []
    for seed in SEEDS:
        before = colourful(seed)["image"].numpy()
        after = jitter({"image": tf.constant(before)}, seed, contrast=(0.8, 1.2))
        assert after.mean() == pytest.approx(before.mean(), abs=1e-2)
        factors.append(after.std() / before.std())
    assert all(0.8 - 1e-4 <= factor <= 1.2 + 1e-4 for factor in factors)
    assert max(abs(factor - 1) for factor in factors) > 0.05


def test_saturation_zero_leaves_the_luma_as_grey_and_hue_keeps_the_luma():
    example = colourful(1)
    before = example["image"].numpy().reshape(-1, 3)
    luma = before @ _RGB_TO_YIQ[0]
    grey = jitter(example, 1, saturation=(0.0, 0.0)).reshape(-1, 3)
    np.testing.assert_allclose(grey, np.repeat(luma[:, None], 3, axis=1), atol=1e-2)

    turned = jitter(example, 1, hue=0.5).reshape(-1, 3)
    unclipped = ((turned > 0) & (turned < 255)).all(axis=1)  # a turned colour can leave the RGB cube
    assert unclipped.mean() > 0.5
    np.testing.assert_allclose((turned @ _RGB_TO_YIQ[0])[unclipped], luma[unclipped], atol=1e-2)  # brightness kept
    assert np.abs(turned - before).max() > 1.0  # colours moved


def test_cutout_fills_one_rectangle_of_the_given_size_and_nothing_else():
    for seed in SEEDS:
        example = colourful(seed)
        after = random_cutout(example, tf.constant([seed, 1]), size_range=(0.1, 0.3), probability=1.0)["image"]
        changed = np.any(after.numpy() != example["image"].numpy(), axis=-1)
        ys, xs = np.nonzero(changed)
        top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        assert changed[top:bottom, left:right].all() and changed.sum() == (bottom - top) * (right - left)
        assert (after.numpy()[top:bottom, left:right] == FILL_VALUE).all()
        assert 0.1 * 48 - 1 <= bottom - top <= 0.3 * 48 and 0.1 * 64 - 1 <= right - left <= 0.3 * 64


def test_jpeg_recompression_leaves_artefacts_that_grow_as_quality_falls():
    example = colourful(2)
    errors = {}
    for quality in (50, 95):
        # tf.image takes a range [low, high): quality + 1 is never drawn.
        after = random_jpeg_quality(example, tf.constant([2, 3]), (quality, quality + 1), probability=1.0)["image"]
        errors[quality] = float(np.abs(after.numpy() - example["image"].numpy()).mean())
    assert 0 < errors[95] < errors[50] < 60  # changed, more at quality 50, still the same picture
