"""Offline augmentation for `prepare --augment-copies K`: a recipe's per-image ops, applied to
each copy.

The recipe comes from the application (the tf.data ops of `pipeline.augment`, the same as
training's), so that beam_jobs depends on the contracts alone. Copy `k` of an image is a pure
function of (source id, k, seed), so reruns and runners agree. An image with instance masks is
augmented with its instance map, as training's batches are: the masks move with the pixels, a box
the crop cuts is tightened to what is left of its mask, and where two masks overlap the copy gives
the pixel to the smaller box (crowds last), as the training input does. Per-pixel labels move
with the pixels too.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Protocol

import numpy as np

from beam_jobs.instance_masks import png_bytes
from beam_jobs.semantic_maps import encoded_labels
from beam_jobs.source_records import ValidatedImage


class ImageAugmentation(Protocol):
    """A picklable augmentation recipe of per-image ops."""

    def __call__(self, example: dict, seed) -> dict:
        """`example` `{"image": [H, W, 3] float32 0..255, "boxes": [N, 4] pixels xyxy, "classes": [N]
        int32}`, and optionally `"mask_pngs"` tf.string `[N]` (each box's full-image 0/1 PNG) with
        `"is_crowd"` bool `[N]`, augmented; `seed` `[2]` int64, the same seed giving the same
        result. Boxes that survive keep their `classes` entry; with masks the answer holds
        `"instance_map"` int32 `[H, W]`, `i + 1` where surviving box `i` shows. A `"class_map"` (int32
        `[H, W]` label ids, `IGNORE_LABEL` void) is moved with the pixels."""

    def to_json_dict(self) -> dict:
        """The recipe, as `dataset_info.json` records it."""


def copy_seed(source_id: str, copy_index: int, seed: int) -> tuple[int, int]:
    """A stateless-op seed pair from SHA-256, stable across processes and runners."""
    digest = hashlib.sha256(f"{source_id}\0{copy_index}\0{seed}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1, int.from_bytes(digest[4:8], "big") >> 1


def augmented_copies(image: ValidatedImage, copies: int, seed: int,
                     augmentation: ImageAugmentation) -> list[ValidatedImage]:
    """`copies` augmented variants of `image`, each re-encoded in the image's own format."""
    import tensorflow as tf  # only jobs that augment pay for TensorFlow in their workers

    pixels = tf.cast(tf.io.decode_image(image.encoded, channels=3, expand_animations=False), tf.float32)
    # The op carries object indices in place of classes, so each surviving box keeps its own
    # label and flags.
    example = {
        "image": pixels,
        "boxes": tf.reshape(tf.constant([o.box for o in image.objects], tf.float32), [-1, 4]),
        "classes": tf.range(len(image.objects), dtype=tf.int32),
    }
    # Validation pairs masks with boxes one to one: an image has a mask for every box or none.
    masked = any(o.mask is not None for o in image.objects)
    if masked:
        example["mask_pngs"] = tf.constant([o.mask for o in image.objects], tf.string)
        example["is_crowd"] = tf.constant([o.is_crowd for o in image.objects], tf.bool)
    if image.semantic_png is not None:
        example["class_map"] = tf.cast(tf.io.decode_png(image.semantic_png, channels=1)[..., 0], tf.int32)
    variants = []
    for copy_index in range(1, copies + 1):
        out = augmentation(example, tf.constant(copy_seed(image.source_id, copy_index, seed), tf.int64))
        rounded = tf.cast(tf.round(tf.clip_by_value(out["image"], 0.0, 255.0)), tf.uint8)
        encoded = (tf.io.encode_jpeg(rounded, quality=95) if image.image_format == "jpeg"
                   else tf.io.encode_png(rounded)).numpy()
        objects = []
        instances = out["instance_map"].numpy() if masked else None
        for position, (box, index) in enumerate(zip(out["boxes"].numpy().tolist(), out["classes"].numpy().tolist())):
            kept = dataclasses.replace(image.objects[index], box=tuple(box), area=(box[2] - box[0]) * (box[3] - box[1]))
            if masked:
                pixels = (instances == position + 1).astype(np.uint8)
                if not pixels.any():  # a box whose mask the others cover entirely: nothing of it to show
                    continue
                kept = dataclasses.replace(kept, mask=png_bytes(pixels), mask_pixels=int(pixels.sum()))
            objects.append(kept)
        height, width = int(rounded.shape[0]), int(rounded.shape[1])
        labels = {}
        if image.semantic_png is not None:
            png, pixels = encoded_labels(out["class_map"].numpy().astype(np.uint8))
            labels = {"semantic_png": png, "semantic_pixels": pixels}
        variants.append(dataclasses.replace(
            image, source_id=f"{image.source_id}#aug{copy_index}", encoded=encoded, width=width, height=height,
            objects=tuple(objects), copy_index=copy_index, **labels))
    return variants

