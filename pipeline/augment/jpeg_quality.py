"""Random JPEG re-compression, to make a model robust to compression artefacts."""

from __future__ import annotations

import tensorflow as tf

from pipeline.augment.boxes import with_probability


def random_jpeg_quality(example: dict, seed: tf.Tensor, quality_range: tuple[int, int] = (50, 95),
                        probability: float = 0.25) -> dict:
    quality_seed, apply_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))

    def compress() -> tf.Tensor:
        image = tf.image.stateless_random_jpeg_quality(example["image"] / 255.0, quality_range[0], quality_range[1],
                                                       seed=quality_seed)
        return tf.reshape(image * 255.0, tf.shape(example["image"]))

    result = dict(example)
    result["image"] = tf.cond(with_probability(apply_seed, probability), compress, lambda: example["image"])
    return result
