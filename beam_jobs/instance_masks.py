"""Pure instance-mask work for `prepare`: COCO's `segmentation` read into a `SourceMask`, drawn at
the image's size with pycocotools (as COCO's own tools draw it), checked against its box, and
encoded as the record's PNG (values 0 and 1)."""

from __future__ import annotations

import io
from typing import Optional

import numpy as np

from beam_jobs.label_pngs import UnreadableLabels, read_png_ids
from beam_jobs.source_records import Reason, SourceMask

# A mask with less than this share of its pixels inside its (clipped) box is refused.
MIN_INSIDE_BOX = 0.5


class MaskProblem(ValueError):
    """A mask that cannot be used, with its reason code."""

    def __init__(self, reason: Reason, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def coco_segmentation(segmentation: object) -> Optional[SourceMask]:
    """COCO's `segmentation` (a list of polygons, or an RLE dict) as a `SourceMask`; None for an
    absent or empty one. Raises ValueError for one of another shape."""
    if segmentation is None or segmentation == []:
        return None
    if isinstance(segmentation, list):
        if not all(isinstance(polygon, list) and all(_is_number(v) for v in polygon) for polygon in segmentation):
            raise ValueError("'segmentation' must be a list of polygons [x1, y1, x2, y2, ...] or an RLE mapping")
        return SourceMask(polygons=tuple(tuple(float(v) for v in polygon) for polygon in segmentation))
    if isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
        counts, size = segmentation["counts"], segmentation["size"]
        if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size)):
            raise ValueError(f"RLE 'size' must be [height, width], got {size!r}")
        if isinstance(counts, list) and all(isinstance(v, int) for v in counts):
            return SourceMask(rle_counts=tuple(counts), rle_size=(size[0], size[1]))
        if isinstance(counts, str):
            return SourceMask(rle_counts=counts, rle_size=(size[0], size[1]))
        raise ValueError("RLE 'counts' must be a list of run lengths or a compressed string")
    raise ValueError("'segmentation' must be a list of polygons [x1, y1, x2, y2, ...] or an RLE mapping")


def drawn(mask: SourceMask, width: int, height: int) -> np.ndarray:
    """`[height, width]` uint8 of 0 and 1. Raises `MaskProblem` for a polygon of fewer than 3
    points or an RLE of another size than the image."""
    from pycocotools import mask as coco_mask

    if mask.png is not None:
        return _png_pixels(mask.png, width, height, mask.png_index, mask.png_rgb_ids)
    if mask.rle_counts is not None:
        if tuple(mask.rle_size) != (height, width):
            raise MaskProblem(Reason.MASK_SIZE_MISMATCH, f"the RLE mask is {mask.rle_size[1]}x{mask.rle_size[0]}, "
                                                         f"the image {width}x{height}")
        counts = mask.rle_counts
        rle = ({"counts": counts.encode(), "size": [height, width]} if isinstance(counts, str)
               else coco_mask.frPyObjects({"counts": list(counts), "size": [height, width]}, height, width))
        return coco_mask.decode(rle).astype(np.uint8)
    short = [len(polygon) // 2 for polygon in mask.polygons if len(polygon) < 6]
    if short or not mask.polygons:
        raise MaskProblem(Reason.MASK_POLYGON_TOO_SHORT, f"a mask polygon has {short[0] if short else 0} point(s), "
                                                         "fewer than 3")
    scale = np.array([width, height], float) if mask.normalized else np.ones(2)
    polygons = [list((np.reshape(polygon, (-1, 2)) * scale).ravel()) for polygon in mask.polygons]
    rles = coco_mask.frPyObjects(polygons, height, width)
    return coco_mask.decode(coco_mask.merge(rles)).astype(np.uint8)


def check_against_box(pixels: np.ndarray, box: tuple[float, float, float, float]) -> None:
    """Raises `MaskProblem` for an empty mask, or one mostly outside `box` (pixels XYXY, clipped)."""
    total = int(pixels.sum())
    if total == 0:
        raise MaskProblem(Reason.MASK_EMPTY, "the mask covers no pixel")
    xmin, ymin, xmax, ymax = box
    inside = int(pixels[int(np.floor(ymin)):int(np.ceil(ymax)), int(np.floor(xmin)):int(np.ceil(xmax))].sum())
    if inside < MIN_INSIDE_BOX * total:
        raise MaskProblem(Reason.MASK_OUTSIDE_BOX, f"only {inside / total:.0%} of the mask's {total} pixels lie "
                                                   "inside its box")


def _png_pixels(png: bytes, width: int, height: int, index: Optional[int] = None, rgb: bool = False) -> np.ndarray:
    """A 0/1 PNG's mask, or with `index` the pixels of a label PNG that hold that id (`read_png_ids`)."""
    from PIL import Image, UnidentifiedImageError

    if index is not None:
        try:
            ids = read_png_ids(png, rgb)
        except UnreadableLabels as error:
            raise MaskProblem(Reason.MASK_CORRUPT, f"the object PNG: {error}") from None
        _check_size(ids.shape, width, height)
        pixels = (ids == index).astype(np.uint8)
        if not pixels.any():
            raise MaskProblem(Reason.SEGMENT_MISSING, f"no pixel of the object PNG holds its id {index}")
        return pixels
    try:
        image = Image.open(io.BytesIO(png))
        image.load()
    except (UnidentifiedImageError, OSError) as error:
        raise MaskProblem(Reason.MASK_CORRUPT, f"the mask is not a readable PNG: {error}") from None
    _check_size((image.size[1], image.size[0]), width, height)
    return (np.array(image.convert("L")) > 0).astype(np.uint8)


def _check_size(shape: tuple[int, ...], width: int, height: int) -> None:
    if tuple(shape[:2]) != (height, width):
        raise MaskProblem(Reason.MASK_SIZE_MISMATCH, f"the mask PNG is {shape[1]}x{shape[0]}, the image "
                                                     f"{width}x{height}")


def png_bytes(pixels: np.ndarray) -> bytes:
    """The record's form of a mask: a one-channel PNG of 0 and 1."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
