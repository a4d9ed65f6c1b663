"""How much work one request may ask for, checked before the model sees it.

Request bytes alone do not bound the work: about 75,000 tiny JPEGs fit in 32 MiB and each becomes a
model input, and a 1 MB PNG of one colour can decode to gigabytes. So a request is also limited in
instances, and each image in decoded pixels, read from its header before anything is decoded:
encoded images (JPEG, PNG, GIF, BMP), `tf.Example`s holding one under `image/encoded`, and pixel
arrays `[N, H, W, C]`.
"""

from __future__ import annotations

import dataclasses
import io
import warnings
from typing import Mapping, Optional

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

    def __post_init__(self) -> None:
        if self.max_instances < 1:
            raise BoxflowError(f"--max-instances must be at least 1, got {self.max_instances}")
        if self.max_image_pixels < 1:
            raise BoxflowError(f"--max-image-pixels must be at least 1, got {self.max_image_pixels}")

    def check(self, inputs: Mapping[str, np.ndarray]) -> None:
        """Raises `BadRequest` naming the limit a request's inputs (batched on axis 0) exceed."""
        instances = max((len(value) for value in inputs.values() if value.ndim), default=1)
        if instances > self.max_instances:
            raise BadRequest(f"the request has {instances} instances; the limit is {self.max_instances} per request "
                             "(boxflow serve --max-instances)")
        limit = f"the limit is {self.max_image_pixels} pixels per image (boxflow serve --max-image-pixels)"
        for name, value in inputs.items():
            try:
                for index, (width, height) in enumerate(_image_sizes(value)):
                    if width * height > self.max_image_pixels:
                        raise BadRequest(f"input '{name}', instance {index}: the image is {width}x{height} pixels; "
                                         f"{limit}")
            except Image.DecompressionBombError:
                raise BadRequest(f"input '{name}': an image declares more than {2 * Image.MAX_IMAGE_PIXELS} pixels; "
                                 f"{limit}") from None


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
