"""Decoding an image fully to prove it is whole, and normalizing it to 3-channel JPEG or PNG."""

from __future__ import annotations

import dataclasses
import io

from PIL import Image, UnidentifiedImageError

from beam_jobs.source_records import Reason

# Above this many pixels PIL refuses to decode (decompression-bomb guard).
Image.MAX_IMAGE_PIXELS = 16384 * 16384
_KEPT_AS_IS = {("JPEG", "RGB"): "jpeg", ("PNG", "RGB"): "png"}


@dataclasses.dataclass(frozen=True)
class CheckedImage:
    """Bytes safe to store: decodable, 3-channel, JPEG or PNG. Sizes in pixels."""

    encoded: bytes
    image_format: str  # "jpeg" or "png"
    width: int
    height: int


class ImageProblem(Exception):
    def __init__(self, reason: Reason, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def check_image(data: bytes) -> CheckedImage:
    """Decodes `data` completely; raises `ImageProblem(IMAGE_CORRUPT)` if it is not a whole image.

    RGB JPEG and PNG bytes are kept unchanged. Other modes (grayscale, RGBA, palette,
    CMYK) and other formats are converted to RGB and re-encoded: JPEG sources as JPEG
    (quality 95), everything else as lossless PNG.
    """
    if not data:
        raise ImageProblem(Reason.IMAGE_CORRUPT, "image file is empty")
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except UnidentifiedImageError:
        raise ImageProblem(Reason.IMAGE_CORRUPT, "not a recognizable image format") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageProblem(Reason.IMAGE_CORRUPT, f"cannot decode image: {error}") from None
    width, height = image.size
    kept_format = _KEPT_AS_IS.get((image.format, image.mode))
    if kept_format is not None:
        return CheckedImage(data, kept_format, width, height)
    target = "jpeg" if image.format == "JPEG" else "png"
    buffer = io.BytesIO()
    rgb = image.convert("RGB")
    if target == "jpeg":
        rgb.save(buffer, format="JPEG", quality=95)
    else:
        rgb.save(buffer, format="PNG")
    return CheckedImage(buffer.getvalue(), target, width, height)
