"""The augmentation recipe (`AugmentationConfig`) and the op sequence it describes (`augment`)."""

from __future__ import annotations

import dataclasses
from typing import Optional

import tensorflow as tf

from pipeline.augment.colour import random_colour_jitter
from pipeline.augment.cutout import random_cutout
from pipeline.augment.flip import random_flip
from pipeline.augment.jpeg_quality import random_jpeg_quality
from pipeline.augment.rotate90 import random_rotate90
from pipeline.augment.scale_crop import random_scale_crop


@dataclasses.dataclass(frozen=True)
class AugmentationConfig:
    """Which ops run and how strongly. A probability of 0 (or a `None` range) turns an op off."""

    flip_probability: float = 0.5
    scale_range: Optional[tuple[float, float]] = (0.75, 1.25)
    min_visible_fraction: float = 0.5
    rotate90_probability: float = 0.0
    brightness: float = 0.2
    contrast: tuple[float, float] = (0.8, 1.2)
    saturation: tuple[float, float] = (0.8, 1.2)
    hue: float = 0.05
    colour_jitter: bool = True
    jpeg_quality_range: tuple[int, int] = (50, 95)
    jpeg_probability: float = 0.25
    cutout_size_range: tuple[float, float] = (0.1, 0.3)
    cutout_probability: float = 0.25
    mosaic_probability: float = 0.0

    def to_json_dict(self) -> dict:
        return dataclasses.asdict(self)


def augment(example: dict, seed: tf.Tensor, config: AugmentationConfig) -> dict:
    """Applies the configured ops in a fixed order (geometry first, then pixels).

    Args:
      example: `{"image": float32 [H, W, 3] 0..255, "boxes": [N, 4] pixels xyxy, "classes": [N]}`.
      seed: `[2]` integer tensor; the same seed gives the same result.
    Returns the augmented example; geometry keeps the input's size.
    """
    seeds = tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 6))
    if config.scale_range is not None:
        example = random_scale_crop(example, seeds[0], config.scale_range, config.min_visible_fraction)
    if config.flip_probability > 0:
        example = random_flip(example, seeds[1], config.flip_probability)
    if config.rotate90_probability > 0:
        example = random_rotate90(example, seeds[2], config.rotate90_probability)
    if config.colour_jitter:
        example = random_colour_jitter(example, seeds[3], config.brightness, config.contrast, config.saturation,
                                       config.hue)
    if config.jpeg_probability > 0:
        example = random_jpeg_quality(example, seeds[4], config.jpeg_quality_range, config.jpeg_probability)
    if config.cutout_probability > 0:
        example = random_cutout(example, seeds[5], config.cutout_size_range, config.cutout_probability)
    return example
