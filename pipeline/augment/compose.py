"""`augment`: the op sequence an `AugmentationConfig` describes."""

from __future__ import annotations

import dataclasses
from typing import Optional

import tensorflow as tf

from pipeline.augment.colour import random_colour_jitter
from pipeline.augment.config import AugmentationConfig
from pipeline.augment.cutout import random_cutout
from pipeline.augment.flip import random_flip
from pipeline.augment.jpeg_quality import random_jpeg_quality
from pipeline.augment.rotate90 import random_rotate90
from pipeline.augment.scale_crop import random_scale_crop
from pipeline.record_decoding import instance_map_from_pngs


def augment(example: dict, seed: tf.Tensor, config: AugmentationConfig,
            output_size: Optional[tuple[int, int]] = None) -> dict:
    """Applies the configured ops in a fixed order (geometry first, then pixels).

    Args:
      example: `{"image": [H, W, 3] 0..255 (any dtype), "boxes": [N, 4] pixels xyxy, "classes": [N]}`.
      seed: `[2]` integer tensor; the same seed gives the same result.
      output_size: `(height, width)` of the result; the first op letterboxes into it
        (with the scale jitter, in one resize). `None` keeps the input's size.
    Returns the augmented example, its image float32.
    """
    seeds = tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 6))
    scale_range = config.scale_range or (1.0, 1.0)
    if config.scale_range is not None or output_size is not None:
        example = random_scale_crop(example, seeds[0], scale_range, config.min_visible_fraction, output_size)
    else:
        example = {**example, "image": tf.cast(example["image"], tf.float32)}
    if config.flip_probability > 0:
        example = random_flip(example, seeds[1], config.flip_probability)
    if config.rotate90_probability > 0:
        example = random_rotate90(example, seeds[2], config.rotate90_probability)
    if config.colour_probability > 0:
        example = random_colour_jitter(example, seeds[3], config.brightness, config.contrast, config.saturation,
                                       config.hue, config.colour_probability)
    if config.jpeg_probability > 0:
        example = random_jpeg_quality(example, seeds[4], config.jpeg_quality_range, config.jpeg_probability)
    if config.cutout_probability > 0:
        example = random_cutout(example, seeds[5], config.cutout_size_range, config.cutout_probability)
    return example


@dataclasses.dataclass(frozen=True)
class PerImageAugmentation:
    """`config`'s per-image ops as one picklable callable, mosaic (which mixes images) left out:
    the recipe `prepare --augment-copies` applies to each copy, at the image's own size. An
    example with `"mask_pngs"` (tf.string `[N]`, each box's full-image 0/1 PNG) and `"is_crowd"`
    (bool `[N]`) is augmented with their instance map, painted as training's input paints it
    (`instance_map_from_pngs`), and answers `"instance_map"`."""

    config: AugmentationConfig

    def __call__(self, example: dict, seed: tf.Tensor) -> dict:
        if "mask_pngs" in example:
            example = dict(example)
            pngs, crowd = example.pop("mask_pngs"), example.pop("is_crowd")
            example["instance_map"] = instance_map_from_pngs(pngs, example["boxes"], crowd,
                                                             tf.shape(example["image"])[:2])
        return augment(example, seed, dataclasses.replace(self.config, mosaic_probability=0.0))

    def to_json_dict(self) -> dict:
        return self.config.to_json_dict()
