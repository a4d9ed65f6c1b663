import io

import numpy as np
import pytest
from PIL import Image

from beam_jobs.image_check import ImageProblem, check_image
from beam_jobs.source_records import Reason
from tests.builders import image_bytes


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_rgb_jpeg_and_png_are_kept_byte_for_byte():
    for image_format, name in (("JPEG", "jpeg"), ("PNG", "png")):
        data = image_bytes(30, 20, image_format=image_format)
        checked = check_image(data)
        assert (checked.encoded, checked.image_format, checked.width, checked.height) == (data, name, 30, 20)


@pytest.mark.parametrize("mode, image_format, expected_format", [
    ("L", "JPEG", "jpeg"), ("RGBA", "PNG", "png"), ("L", "PNG", "png"), ("RGB", "BMP", "png")])
def test_other_modes_and_formats_become_three_channel(mode, image_format, expected_format):
    checked = check_image(image_bytes(30, 20, mode=mode, image_format=image_format))
    assert checked.image_format == expected_format
    image = decoded(checked.encoded)
    assert image.mode == "RGB" and image.size == (30, 20)


def test_lossless_conversion_keeps_pixels():
    data = image_bytes(16, 8, mode="RGBA", image_format="PNG")
    original = np.asarray(decoded(data))[..., :3]
    assert np.array_equal(np.asarray(decoded(check_image(data).encoded)), original)


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"plain text, not pixels", "not a recognizable image"),
    (image_bytes(64, 64)[:400], "cannot decode"),
])
def test_corrupt_and_truncated_images_are_rejected(data, message):
    with pytest.raises(ImageProblem, match=message) as problem:
        check_image(data)
    assert problem.value.reason is Reason.IMAGE_CORRUPT
