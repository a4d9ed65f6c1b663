"""Mosaic: four examples tiled 2x2, then a random window of one example's size.

keras-cv has a Mosaic layer, but it draws from layer state (see the package
docstring); this one takes its randomness from a seed like the other ops.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from pipeline.as_written import as_written
from pipeline.augment.boxes import clip_and_drop, with_probability
from pipeline.augment.pixel_maps import CLASS_MAP


def mosaic_four(examples: Sequence[dict], seed: tf.Tensor, min_visible_fraction: float = 0.5) -> dict:
    """Tiles four `S` x `S` examples into a `2S` x `2S` canvas and cuts a random `S` x `S` window.

    Boxes move with their image, are clipped to the window, and are dropped when less
    than `min_visible_fraction` of them stays inside. Instance maps, when all four
    examples carry one, are tiled the same way and numbered as the boxes are joined; a box the
    window cuts is then tightened to its mask's visible pixels. Class maps are tiled as they are.
    """
    size = tf.shape(examples[0]["image"])[0]
    y_seed, x_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    top = tf.random.stateless_uniform([], seed=y_seed, maxval=size + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([], seed=x_seed, maxval=size + 1, dtype=tf.int32)

    def tile(parts: Sequence[tf.Tensor]) -> tf.Tensor:
        return tf.concat([tf.concat(parts[:2], axis=1), tf.concat(parts[2:], axis=1)], axis=0)

    def window(canvas: tf.Tensor) -> tf.Tensor:
        return canvas[top:top + size, left:left + size]

    # Quadrant origins (x, y): top-left, top-right, bottom-left, bottom-right.
    origins = [(0, 0), (1, 0), (0, 1), (1, 1)]
    moved = tf.concat([
        example["boxes"] + tf.cast(tf.stack([ox * size - left, oy * size - top] * 2), tf.float32)
        for example, (ox, oy) in zip(examples, origins)
    ], axis=0)
    result = {"image": window(tile([example["image"] for example in examples])),
              "classes": tf.concat([example["classes"] for example in examples], axis=0)}
    if all(CLASS_MAP in example for example in examples):
        result[CLASS_MAP] = window(tile([example[CLASS_MAP] for example in examples]))
    if all("instance_map" in example for example in examples):
        # Each quadrant's numbers follow the boxes of the quadrants before it.
        firsts = tf.cumsum([tf.shape(example["classes"])[0] for example in examples], exclusive=True)
        numbered = [example["instance_map"] + tf.where(example["instance_map"] > 0, first, 0)
                    for example, first in zip(examples, tf.unstack(firsts))]
        canvas = tile(numbered)
        result["instance_map"] = window(canvas)
        return clip_and_drop(result, moved, size, size, min_visible_fraction, canvas)
    return clip_and_drop(result, moved, size, size, min_visible_fraction)


def mosaic_dataset(examples: tf.data.Dataset, config, seed: int, deterministic: bool) -> tf.data.Dataset:
    """Replaces each run of four consecutive examples by their mosaic with `config.mosaic_probability`.

    `examples` must have a static image shape (square `S` x `S`); `config` is an
    `AugmentationConfig`.
    """
    groups = examples.ragged_batch(4, drop_remainder=True)
    seeds = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True).batch(2)

    def maybe_mosaic(group: dict, group_seed: tf.Tensor) -> dict:
        mosaic_seed, apply_seed = tf.unstack(tf.random.experimental.stateless_split(group_seed, 2))
        parts = [{key: value[i] for key, value in group.items()} for i in range(4)]

        def combined() -> dict:
            tiled = mosaic_four(parts, mosaic_seed, config.min_visible_fraction)
            return {key: (tf.RaggedTensor.from_tensor(value[tf.newaxis]) if key in ("boxes", "classes")
                          else value[tf.newaxis]) for key, value in tiled.items()}

        def unchanged() -> dict:
            return dict(group)

        return tf.cond(with_probability(apply_seed, config.mosaic_probability), combined, unchanged)

    mixed = tf.data.Dataset.zip(groups, seeds).map(as_written(maybe_mosaic), num_parallel_calls=tf.data.AUTOTUNE,
                                                   deterministic=deterministic)
    return mixed.unbatch()
