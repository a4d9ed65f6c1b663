"""Offline augmentation for `prepare --augment-copies K`: the tf.data ops, applied per image.

Copy `k` of an image is a pure function of (source id, k, seed), so reruns and
runners agree. Mosaic mixes several images and stays an online-only op.
"""

from __future__ import annotations

import dataclasses
import hashlib

from beam_jobs.source_records import ValidatedImage
from pipeline.augment.config import AugmentationConfig


def copy_seed(source_id: str, copy_index: int, seed: int) -> tuple[int, int]:
    """A stateless-op seed pair from SHA-256, stable across processes and runners."""
    digest = hashlib.sha256(f"{source_id}\0{copy_index}\0{seed}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1, int.from_bytes(digest[4:8], "big") >> 1


def augmented_copies(image: ValidatedImage, copies: int, seed: int, config: AugmentationConfig) -> list[ValidatedImage]:
    """`copies` augmented variants of `image`, each re-encoded in the image's own format."""
    import tensorflow as tf  # only jobs that augment pay for TensorFlow in their workers

    from pipeline.augment.compose import augment

    pixels = tf.cast(tf.io.decode_image(image.encoded, channels=3, expand_animations=False), tf.float32)
    # The op carries object indices in place of classes, so each surviving box keeps its own
    # label and flags.
    example = {
        "image": pixels,
        "boxes": tf.reshape(tf.constant([o.box for o in image.objects], tf.float32), [-1, 4]),
        "classes": tf.range(len(image.objects), dtype=tf.int32),
    }
    variants = []
    for copy_index in range(1, copies + 1):
        out = augment(example, tf.constant(copy_seed(image.source_id, copy_index, seed), tf.int64),
                      dataclasses.replace(config, mosaic_probability=0.0))
        rounded = tf.cast(tf.round(tf.clip_by_value(out["image"], 0.0, 255.0)), tf.uint8)
        encoded = (tf.io.encode_jpeg(rounded, quality=95) if image.image_format == "jpeg"
                   else tf.io.encode_png(rounded)).numpy()
        objects = []
        for box, index in zip(out["boxes"].numpy().tolist(), out["classes"].numpy().tolist()):
            kept = image.objects[index]
            area = (box[2] - box[0]) * (box[3] - box[1])
            objects.append(dataclasses.replace(kept, box=tuple(box), area=area))
        height, width = int(rounded.shape[0]), int(rounded.shape[1])
        variants.append(dataclasses.replace(
            image, source_id=f"{image.source_id}#aug{copy_index}", encoded=encoded, width=width, height=height,
            objects=tuple(objects), copy_index=copy_index))
    return variants
