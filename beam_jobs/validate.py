"""Pure validation of one image's annotations against the decoded image and the class list."""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional

from beam_jobs.image_check import CheckedImage
from beam_jobs.instance_masks import MaskProblem, check_against_box, drawn, png_bytes
from beam_jobs.semantic_maps import SemanticProblem, semantic_labels
from beam_jobs.source_records import (Level, Reason, Rejection, SourceImage, SourceObject, ValidatedImage,
                                      ValidatedObject)

# Boxes from normalized sources overshoot the border by float rounding; below this
# many pixels a clip is not worth reporting.
CLIP_TOLERANCE_PIXELS = 1e-3


@dataclasses.dataclass(frozen=True)
class ValidationResult:
    image: Optional[ValidatedImage]
    rejections: tuple[Rejection, ...]


def reject_image(source: SourceImage, reason: Reason, detail: str) -> ValidationResult:
    """The whole image is dropped; its parse-time box and segment problems are still reported."""
    image_rejection = Rejection(source.source, reason, detail, Level.IMAGE, boxes_lost=len(source.objects))
    # A segment or box the parser already rejected is reported still; the image's others go with it.
    part_problems = tuple(r for r in source.parse_rejections if r.level is not Level.IMAGE)
    return ValidationResult(None, (image_rejection,) + part_problems)


def image_level_problem(source: SourceImage) -> Optional[ValidationResult]:
    """The rejection of an image whose annotation was already unusable while parsing, if any."""
    problem = next((r for r in source.parse_rejections if r.level is Level.IMAGE), None)
    return None if problem is None else reject_image(source, problem.reason, problem.detail)


def validate_image(
    source: SourceImage,
    checked: CheckedImage,
    class_ids: Mapping[str, int],
    split: str,
    drop_emptied_images: bool = False,
) -> ValidationResult:
    """Checks `source`'s annotations against the real image `checked`.

    `class_ids` maps class name → label id (from 1). Boxes come out in pixel `xyxy`
    of the stored image, clipped to it.
    """
    if source.width is not None and source.height is not None and (
        (source.width, source.height) != (checked.width, checked.height)
    ):
        return reject_image(source, Reason.SIZE_MISMATCH,
                            f"annotation says {source.width}x{source.height}, image is {checked.width}x{checked.height}")

    rejections = list(source.parse_rejections)
    semantic = None
    if source.semantic is not None:
        try:
            semantic = semantic_labels(source.semantic, checked.width, checked.height, class_ids)
        except SemanticProblem as problem:
            return reject_image(source, problem.reason, problem.detail)
        rejections += semantic.rejections
    objects = []
    # An image with instance masks keeps only objects with a usable one: every record's masks
    # pair one to one with its boxes.
    with_masks = any(source_object.mask is not None for source_object in source.objects)
    for index, source_object in enumerate(source.objects):
        kept, rejection = _validate_object(source, index, source_object, checked, class_ids)
        if kept is not None and with_masks:
            kept, rejection = _with_mask(kept, source_object, f"{source.source}#box {index}", checked, rejection)
        if rejection is not None:
            rejections.append(rejection)
        if kept is not None:
            objects.append(kept)

    had_boxes = bool(source.objects) or bool(source.parse_rejections)
    if drop_emptied_images and had_boxes and not objects:
        # Every box was already rejected on its own, so none is lost with the image.
        emptied = Rejection(source.source, Reason.ALL_BOXES_REJECTED, "every box of this image was rejected")
        return ValidationResult(None, tuple(rejections) + (emptied,))
    image = ValidatedImage(
        source_id=source.source_id,
        filename=source.filename,
        encoded=checked.encoded,
        image_format=checked.image_format,
        width=checked.width,
        height=checked.height,
        objects=tuple(objects),
        split=split,
        semantic_png=semantic.png if semantic else None,
        semantic_pixels=semantic.pixels if semantic else (),
    )
    return ValidationResult(image, tuple(rejections))


def _with_mask(kept: ValidatedObject, source_object: SourceObject, where: str, checked: CheckedImage,
               clipped: Optional[Rejection]) -> tuple[Optional[ValidatedObject], Optional[Rejection]]:
    """`kept` with its mask drawn and checked, or no object and the mask's rejection."""
    if source_object.mask is None:
        return None, Rejection(where, Reason.MASK_MISSING, f"'{kept.class_name}' has no mask, the image's other "
                                                           "objects have one", Level.BOX)
    try:
        pixels = drawn(source_object.mask, checked.width, checked.height)
        check_against_box(pixels, kept.box)
    except MaskProblem as problem:
        return None, Rejection(where, problem.reason, f"'{kept.class_name}': {problem.detail}", Level.BOX)
    return dataclasses.replace(kept, mask=png_bytes(pixels), mask_pixels=int(pixels.sum())), clipped


def _validate_object(
    source: SourceImage, index: int, obj: SourceObject, checked: CheckedImage, class_ids: Mapping[str, int]
) -> tuple[Optional[ValidatedObject], Optional[Rejection]]:
    where = f"{source.source}#box {index}"
    width, height = checked.width, checked.height
    xmin, ymin, xmax, ymax = obj.box
    if source.boxes_normalized:
        xmin, xmax, ymin, ymax = xmin * width, xmax * width, ymin * height, ymax * height
    described = f"'{obj.class_name}' ({xmin:g}, {ymin:g}, {xmax:g}, {ymax:g})"
    if obj.class_name not in class_ids:
        return None, Rejection(where, Reason.CLASS_UNKNOWN, f"class '{obj.class_name}' is not in the class list", Level.BOX)
    if xmax <= xmin or ymax <= ymin:
        return None, Rejection(where, Reason.BOX_DEGENERATE, f"box {described} has zero or negative area", Level.BOX)
    if xmax <= 0 or ymax <= 0 or xmin >= width or ymin >= height:
        return None, Rejection(where, Reason.BOX_OUTSIDE, f"box {described} lies outside the {width}x{height} image", Level.BOX)

    clipped = (max(xmin, 0.0), max(ymin, 0.0), min(xmax, float(width)), min(ymax, float(height)))
    overshoot = max(abs(a - b) for a, b in zip(clipped, (xmin, ymin, xmax, ymax)))
    rejection = None
    if overshoot > CLIP_TOLERANCE_PIXELS:
        rejection = Rejection(where, Reason.BOX_CLIPPED,
                              f"box {described} clipped to the {width}x{height} image", Level.BOX)
    box_area = (clipped[2] - clipped[0]) * (clipped[3] - clipped[1])
    kept = ValidatedObject(
        label=class_ids[obj.class_name],
        class_name=obj.class_name,
        box=clipped,
        difficult=obj.difficult,
        truncated=obj.truncated,
        is_crowd=obj.is_crowd,
        area=obj.area if obj.area is not None else box_area,
    )
    return kept, rejection
