"""Label PNGs: one id per pixel, as Pascal VOC's `SegmentationObject`/`SegmentationClass` palette
PNGs and COCO panoptic's RGB PNGs store them."""

from __future__ import annotations

import io

import numpy as np

# PNG modes that store one number per pixel: palette indices or gray levels.
INDEX_MODES = ("P", "L", "I", "I;16")


class UnreadableLabels(ValueError):
    """A PNG that cannot be decoded, or that holds no ids (such as a photo's RGBA)."""


def read_png_ids(png: bytes, rgb: bool = False) -> np.ndarray:
    """int64 `[H, W]`: the stored index of a palette or grayscale PNG (never the palette colour:
    VOC's object 1 is index 1 whatever colour shows it), or with `rgb` the `R + 256·G + 256²·B`
    of an RGB PNG (COCO panoptic's segment ids). Raises `UnreadableLabels`, also for a PNG of the
    other kind: an RGB rendering of a VOC palette PNG has lost its indices."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(png))
        image.load()
    except (UnidentifiedImageError, OSError) as error:
        raise UnreadableLabels(f"not a readable PNG: {error}") from None
    if rgb:
        if image.mode != "RGB":
            raise UnreadableLabels(f"a panoptic PNG holds ids as RGB colours, this one is {image.mode}")
        channels = np.array(image).astype(np.int64)
        return channels[..., 0] + 256 * channels[..., 1] + 256 * 256 * channels[..., 2]
    if image.mode not in INDEX_MODES:
        raise UnreadableLabels(f"a label PNG must hold one index per pixel (a palette or grayscale PNG), this one "
                               f"is {image.mode}")
    return np.array(image).astype(np.int64)


def write_png_ids(ids: np.ndarray) -> bytes:
    """int `[H, W]` ids below 2²⁴ → an RGB PNG as COCO panoptic stores them (`read_png_ids` inverts it)."""
    from PIL import Image

    ids = np.asarray(ids, np.int64)
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // (256 * 256)], axis=-1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buffer, format="PNG")
    return buffer.getvalue()
