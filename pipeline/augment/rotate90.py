"""Random rotation by a multiple of 90 degrees."""

from __future__ import annotations

import tensorflow as tf

from pipeline.augment.boxes import with_probability
from pipeline.augment.pixel_maps import with_maps_moved


def rotate_quarter_turn(example: dict) -> dict:
    """Rotates 90° counter-clockwise: pixel `(x, y)` of a `W`-wide image goes to `(y, W - x)`."""
    width = tf.cast(tf.shape(example["image"])[1], tf.float32)
    boxes = example["boxes"]
    result = dict(example)
    result["image"] = tf.image.rot90(example["image"])
    result["boxes"] = tf.stack([boxes[:, 1], width - boxes[:, 2], boxes[:, 3], width - boxes[:, 0]], axis=-1)
    return with_maps_moved(example, result, lambda pixel_map, _: tf.image.rot90(pixel_map[..., tf.newaxis])[..., 0])


def random_rotate90(example: dict, seed: tf.Tensor, probability: float = 0.5) -> dict:
    """With `probability`, rotates by 90°, 180° or 270° (uniformly)."""
    turn_seed, apply_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    turns = tf.random.stateless_uniform([], seed=turn_seed, minval=1, maxval=4, dtype=tf.int32)

    def rotate() -> dict:
        rotated = dict(example)
        for count in range(1, 4):
            # Each turn is applied only while `count <= turns`; shapes change, so both branches rotate
            # a copy whose spatial shape is left unknown to the graph.
            rotated = tf.cond(count <= turns, lambda r=rotated: rotate_quarter_turn(r), lambda r=rotated: _relaxed(r))
        return rotated

    return tf.cond(with_probability(apply_seed, probability), rotate, lambda: _relaxed(example))


def _relaxed(example: dict) -> dict:
    """The example itself, with the identity op so `tf.cond` branches have matching structures."""
    return {key: tf.identity(value) for key, value in example.items()}
