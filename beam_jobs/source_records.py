"""Typed records that flow between the steps of `boxflow prepare`.

A source reader turns annotations into `SourceImage`s (boxes as the source gave
them); validation turns those into `ValidatedImage`s (boxes in pixel `xyxy` of the
decoded image, clipped, with label ids) plus `Rejection`s for everything it drops.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Optional


class Reason(str, enum.Enum):
    """Fixed reason codes written to `rejected.jsonl`."""

    IMAGE_MISSING = "image_missing"            # no image file where the annotation points
    PATH_OUTSIDE_IMAGES = "path_outside_images"  # the file name is absolute or climbs out with ..
    IMAGE_UNREADABLE = "image_unreadable"      # the file exists but cannot be read
    IMAGE_CORRUPT = "image_corrupt"            # not an image, or truncated / undecodable
    ANNOTATION_MALFORMED = "annotation_malformed"  # unparsable annotation file, row or field
    SIZE_MISMATCH = "size_mismatch"            # annotated width/height differ from the real image
    BOX_DEGENERATE = "box_degenerate"          # zero or negative width or height
    BOX_OUTSIDE = "box_outside"                # box lies entirely outside the image
    BOX_CLIPPED = "box_clipped"                # box partly outside: clipped and kept
    CLASS_UNKNOWN = "class_unknown"            # class name or id not in the class list
    ALL_BOXES_REJECTED = "all_boxes_rejected"  # every box dropped and --drop-emptied-images set
    MASK_POLYGON_TOO_SHORT = "mask_polygon_too_short"  # a mask polygon of fewer than 3 points
    MASK_EMPTY = "mask_empty"                  # the mask covers no pixel
    MASK_OUTSIDE_BOX = "mask_outside_box"      # most of the mask lies outside its box
    MASK_SIZE_MISMATCH = "mask_size_mismatch"  # a mask's size (RLE, PNG) differs from the image's
    MASK_CORRUPT = "mask_corrupt"              # a mask PNG that cannot be decoded
    MASK_MISSING = "mask_missing"              # an object without a mask in an image whose others have one
    SEGMENT_MISSING = "segment_missing"        # no pixel of the label PNG holds the segment's (object's) id
    SEGMENT_UNLISTED = "segment_unlisted"      # label PNG pixels hold an id that no segment lists (made void)
    SEGMENTS_OVERLAP = "segments_overlap"      # two segments of one image claim the same id (so the same pixels)
    SEGMENTATION_SIZE_MISMATCH = "segmentation_size_mismatch"  # the label PNG's size differs from the image's
    SEGMENTATION_UNREADABLE = "segmentation_unreadable"  # the label PNG is missing or cannot be decoded


class Level(str, enum.Enum):
    IMAGE = "image"
    BOX = "box"
    SEGMENT = "segment"  # a stuff region of an image's semantic labels


@dataclasses.dataclass(frozen=True)
class Rejection:
    """One line of `rejected.jsonl`: an image or box dropped (or, for BOX_CLIPPED, repaired)."""

    source: str
    reason: Reason
    detail: str
    level: Level = Level.IMAGE
    boxes_lost: int = 0  # for an image rejection: boxes dropped with the image

    @property
    def kept(self) -> bool:
        return self.reason is Reason.BOX_CLIPPED

    def to_json_dict(self) -> dict:
        return {
            "source": self.source,
            "level": self.level.value,
            "reason": self.reason.value,
            "kept": self.kept,
            "detail": self.detail,
            "boxes_lost": self.boxes_lost,
        }


@dataclasses.dataclass(frozen=True)
class SourceMask:
    """An object's instance mask as the source gave it, in pixels of the annotated image: polygons
    (each `(x1, y1, x2, y2, ...)`), a run-length encoding (COCO's RLE: `rle_counts` a list of run
    lengths or COCO's compressed string, `rle_size` its `(height, width)`), or a PNG of the whole
    image (a TFRecord's). Polygons and RLE are small enough to cross a shuffle; every form is
    drawn only where the image is decoded. `normalized` polygons are in fractions of the image's
    width and height (YOLO's). With `png_index` the PNG holds every object of the image, one
    id per pixel, and this object's pixels are those holding that id: the stored index of a
    palette or grayscale PNG (Pascal VOC's `SegmentationObject`; never the palette colour), or
    `R + 256·G + 256²·B` of an RGB PNG (COCO panoptic's segment ids)."""

    polygons: tuple[tuple[float, ...], ...] = ()
    normalized: bool = False
    rle_counts: Optional[object] = None  # tuple[int, ...] or str
    rle_size: Optional[tuple[int, int]] = None
    png: Optional[bytes] = None
    png_index: Optional[int] = None
    png_rgb_ids: bool = False  # the PNG holds RGB ids (COCO panoptic), not indices


@dataclasses.dataclass(frozen=True)
class SourceObject:
    """One annotated box as the source gave it.

    `box` is `(xmin, ymin, xmax, ymax)`: pixels of the annotated image, or fractions of
    its width and height when the owning `SourceImage.boxes_normalized` is set.
    """

    class_name: str
    box: tuple[float, float, float, float]
    difficult: bool = False
    truncated: bool = False
    is_crowd: bool = False
    area: Optional[float] = None  # the source's own area (e.g. COCO mask area), pixels²
    mask: Optional[SourceMask] = None


@dataclasses.dataclass(frozen=True)
class SourceSegment:
    """One labelled region of an image's label PNG: the pixels holding `id` are `class_name`.
    A thing's segment is also an object of the image (its mask, `png_index=id`)."""

    id: int
    class_name: str
    is_thing: bool = False


@dataclasses.dataclass(frozen=True)
class SourceSemantic:
    """An image's per-pixel labels as the source gave them: `png` holds one id per pixel (as
    `SourceMask.png_index` reads it) and `segments` say which class each listed id is. Ids in
    `void_ids` are unlabelled (COCO panoptic's 0, VOC's 255 border, segments the reader already
    rejected) and ids in `background_ids` are labelled "no class" (VOC's 0); any other id found
    in the PNG is reported and made void. `where` names the PNG in messages. A `palette` lists
    every id any image may hold (VOC's class indices), so a listed id absent from the PNG is fine;
    otherwise the segments are the image's own (COCO panoptic) and each should show."""

    png: bytes
    segments: tuple[SourceSegment, ...]
    where: str
    rgb_ids: bool = False  # `png` holds RGB ids (COCO panoptic), not indices (VOC)
    palette: bool = False
    void_ids: tuple[int, ...] = (0,)
    background_ids: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class SourceImage:
    """One image and its annotations, before the image has been read or checked.

    Exactly one of `image_path` and `encoded` is set. `width`/`height` are the sizes
    the annotation claims (None when it claims none); `split` is the source's own
    split assignment, or None to split by hash.
    """

    source: str
    source_id: str
    filename: str
    objects: tuple[SourceObject, ...]
    image_path: Optional[str] = None
    encoded: Optional[bytes] = None
    width: Optional[int] = None
    height: Optional[int] = None
    boxes_normalized: bool = False
    split: Optional[str] = None
    parse_rejections: tuple[Rejection, ...] = ()  # problems found while parsing
    semantic: Optional[SourceSemantic] = None  # per-pixel labels, for semantic and panoptic sources

    @property
    def boxes_in_source(self) -> int:
        """Boxes the annotation holds: those parsed plus those already rejected while parsing."""
        return len(self.objects) + sum(1 for r in self.parse_rejections if r.level is Level.BOX)


@dataclasses.dataclass(frozen=True)
class ValidatedObject:
    """A box that passed validation: pixel `xyxy` in the stored image, label id from 1."""

    label: int
    class_name: str
    box: tuple[float, float, float, float]
    difficult: bool
    truncated: bool
    is_crowd: bool
    area: float
    mask: Optional[bytes] = None  # a PNG of the whole image, 0 and 1, for datasets with instance masks
    mask_pixels: int = 0  # the pixels the mask covers


@dataclasses.dataclass(frozen=True)
class ValidatedImage:
    """An image ready to encode: 3-channel JPEG or PNG bytes and its checked boxes."""

    source_id: str
    filename: str
    encoded: bytes
    image_format: str  # "jpeg" or "png"
    width: int
    height: int
    objects: tuple[ValidatedObject, ...]
    split: str
    copy_index: int = 0  # 0 for the image itself, k for its k-th offline-augmented copy
    # Semantic labels: a one-channel PNG of label ids (0 background, record_schema.IGNORE_LABEL void)
    # and its pixels per label id.
    semantic_png: Optional[bytes] = None
    semantic_pixels: tuple[tuple[int, int], ...] = ()


class AnnotationError(Exception):
    """An annotation file, row or field that cannot be parsed; becomes ANNOTATION_MALFORMED."""

    def __init__(self, source: str, detail: str):
        super().__init__(f"{source}: {detail}")
        self.source = source
        self.detail = detail
