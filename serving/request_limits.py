"""How much work one request may ask for, checked before the model sees it.

Request bytes alone do not bound the work: about 75,000 tiny JPEGs fit in 32 MiB and each becomes a
model input, and a 1 MB PNG of one colour can decode to gigabytes. So a request is also limited in
instances, and each image in decoded pixels, read from its header before anything is decoded:
encoded images (JPEG, PNG, GIF, BMP), `tf.Example`s holding one under `image/encoded`, and pixel
arrays `[N, H, W, C]`. The answer is bounded too, before the model runs: each output's bytes from
its static shape, an unknown dimension after the batch read as the largest image's height, then
width (a mask model's `detection_image_masks` `[B, K, H, W]`).
"""

from __future__ import annotations

import dataclasses
import io
import warnings
from typing import Mapping, Optional, Sequence

import numpy as np
from PIL import Image

from contracts import record_schema
from contracts.errors import BoxflowError
from serving.errors import BadRequest


@dataclasses.dataclass(frozen=True)
class RequestLimits:
    max_instances: int = 64
    # A 24-megapixel camera's photos pass; one image decodes to at most 75 MB of uint8.
    max_image_pixels: int = 25_000_000
    # 64 images' masks at the box-relative 28x28 (20 MB) pass; pasted at full resolution, a few
    # photos' do (100 masks of a 1600x1200 photo are 192 MB).
    max_answer_bytes: int = 256 * 2**20

    def __post_init__(self) -> None:
        if self.max_instances < 1:
            raise BoxflowError(f"--max-instances must be at least 1, got {self.max_instances}")
        if self.max_image_pixels < 1:
            raise BoxflowError(f"--max-image-pixels must be at least 1, got {self.max_image_pixels}")
        if self.max_answer_bytes < 1:
            raise BoxflowError(f"--max-answer-bytes must be at least 1, got {self.max_answer_bytes}")

    def check(self, inputs: Mapping[str, np.ndarray],
              outputs: Mapping[str, tuple[Sequence[Optional[int]], int]] = {}) -> None:
        """Raises `BadRequest` naming the limit a request's inputs (batched on axis 0) exceed, or
        its answer would: `outputs` are the signature's `{name: (shape, bytes per value)}`."""
        instances = max((len(value) for value in inputs.values() if value.ndim), default=1)
        if instances > self.max_instances:
            raise BadRequest(f"the request has {instances} instances; the limit is {self.max_instances} per request "
                             "(boxflow serve --max-instances)")
        limit = f"the limit is {self.max_image_pixels} pixels per image (boxflow serve --max-image-pixels)"
        sizes = []
        for name, value in inputs.items():
            try:
                for index, (width, height) in enumerate(_image_sizes(value)):
                    if width * height > self.max_image_pixels:
                        raise BadRequest(f"input '{name}', instance {index}: the image is {width}x{height} pixels; "
                                         f"{limit}")
                    sizes.append((width, height))
            except Image.DecompressionBombError:
                raise BadRequest(f"input '{name}': an image declares more than {2 * Image.MAX_IMAGE_PIXELS} pixels; "
                                 f"{limit}") from None
        answer = _answer_bytes(outputs, instances, sizes)
        if answer > self.max_answer_bytes:
            raise BadRequest(f"the answer to {instances} instance(s) would hold {answer} bytes; the limit is "
                             f"{self.max_answer_bytes} bytes per answer (boxflow serve --max-answer-bytes)")


def _answer_bytes(outputs: Mapping[str, tuple[Sequence[Optional[int]], int]], instances: int,
                  sizes: Sequence[tuple[int, int]]) -> int:
    """The bytes of the outputs for `instances`, unknown dimensions after the batch read as the
    largest image's height, then width (`sizes` `(width, height)`; 0 when there are none)."""
    height = max((h for _, h in sizes), default=0)
    width = max((w for w, _ in sizes), default=0)
    total = 0
    for shape, item_bytes in outputs.values():
        spatial = iter((height, width))
        values = instances
        for dimension in list(shape)[1:]:
            values *= dimension if dimension is not None else next(spatial, 0)
        total += values * item_bytes
    return total


def _image_sizes(value: np.ndarray):
    """`(width, height)` of each image in an input, where the input holds images."""
    if value.dtype == np.object_:
        for item in value.reshape(-1):
            size = _encoded_image_size(item) or _example_image_size(item)
            if size:
                yield size
    elif value.ndim == 4:
        for _ in range(value.shape[0]):
            yield value.shape[2], value.shape[1]


def _encoded_image_size(data: bytes) -> Optional[tuple[int, int]]:
    """The size an encoded image declares in its header, without decoding it; None if not an image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                return image.size
    except Image.DecompressionBombError:
        raise  # larger than PIL opens at all
    except Exception:  # not an image PIL knows: the model will say what is wrong with it
        return None


def _example_image_size(data: bytes) -> Optional[tuple[int, int]]:
    import tensorflow as tf  # here, so that `boxflow serve --help` starts without TensorFlow

    try:
        example = tf.train.Example.FromString(data)
    except Exception:  # not a serialized tf.Example
        return None
    encoded = example.features.feature.get(record_schema.ENCODED)
    if encoded is None or not encoded.bytes_list.value:
        return None
    return _encoded_image_size(encoded.bytes_list.value[0])
