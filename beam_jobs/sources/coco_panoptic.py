"""COCO panoptic (`panoptic_*.json` and its folder of PNGs) → `SourceImage`s with per-pixel labels.

Each annotation names its image's PNG (`file_name`) and lists the image's segments
(`segments_info`: `id`, `category_id`, `bbox`, `iscrowd`, `area`). A pixel belongs to the segment
whose id is `R + 256·G + 256²·B` of its colour; id 0 is void. The PNGs are in the folder named like
the JSON without `.json` (COCO's `annotations/panoptic_val2017/`), else in `panoptic/` beside it.
Categories with `isthing: 1` are things: each of their segments is also an object, its box from
`bbox` and its mask its pixels. The others are stuff, labelled per pixel only. Classes are numbered
by sorted category id, as for COCO instances. A segment id listed twice claims the same pixels
twice: every segment with it is rejected (`segments_overlap`) and its pixels are void.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from typing import Optional

from beam_jobs import file_io
from beam_jobs.source_records import (Level, Reason, Rejection, SourceImage, SourceMask, SourceObject, SourceSegment,
                                      SourceSemantic)
from beam_jobs.sources.coco import coco_images_dir, parse_categories
from beam_jobs.sources.image_paths import outside_images, path_inside
from beam_jobs.sources.source_plan import SourcePlan
from contracts.errors import BoxflowError


@dataclasses.dataclass(frozen=True)
class PanopticItem:
    """One image's work: its `SourceImage` without labels yet, its PNG, and its usable segments."""

    image: SourceImage
    png_path: Optional[str]
    segments: tuple[SourceSegment, ...]
    void_ids: tuple[int, ...]


def plan_coco_panoptic(annotation_path: str, images_dir: Optional[str]) -> SourcePlan:
    try:
        document = json.loads(file_io.read_bytes(annotation_path))
    except (OSError, ValueError) as error:
        raise BoxflowError(f"{annotation_path}: cannot read COCO panoptic JSON: {error}") from None
    png_dir = annotation_path[:-len(".json")] if annotation_path.endswith(".json") else annotation_path
    if not file_io.list_files(file_io.join(png_dir, "*")):
        png_dir = file_io.join(file_io.dirname(annotation_path), "panoptic")
    class_names, stuff, items, rejections = parse_coco_panoptic(
        document, images_dir or coco_images_dir(annotation_path), png_dir, annotation_path)
    return SourcePlan(format_name="coco_panoptic", input_path=annotation_path, parse=read_panoptic_png,
                      items=tuple(items), class_names=class_names, rejections=tuple(rejections), stuff_classes=stuff)


def parse_coco_panoptic(document: object, images_dir: str, png_dir: str, source: str
                        ) -> tuple[tuple[str, ...], tuple[str, ...], list[PanopticItem], list[Rejection]]:
    """Pure: a parsed COCO panoptic document → (class names, the stuff ones, one item per image,
    rejections that fit no image)."""
    if not isinstance(document, dict):
        raise BoxflowError(f"{source}: COCO panoptic JSON must be an object with 'images', 'annotations' and "
                           "'categories'")
    for field in ("images", "annotations", "categories"):
        if not isinstance(document.get(field), list):
            raise BoxflowError(f"{source}: COCO panoptic JSON field '{field}' is missing or not a list")
    category_names = parse_categories(document["categories"], source)
    class_names = tuple(category_names[category_id] for category_id in sorted(category_names))
    things = {entry["id"] for entry in document["categories"] if entry.get("isthing") in (1, True)}
    stuff = tuple(category_names[category_id] for category_id in sorted(category_names) if category_id not in things)

    annotations, orphans = {}, []
    image_ids = {entry.get("id") for entry in document["images"] if isinstance(entry, dict)}
    for index, annotation in enumerate(document["annotations"]):
        image_id = annotation.get("image_id") if isinstance(annotation, dict) else None
        if image_id not in image_ids:
            orphans.append(Rejection(f"{source}#annotation {index}", Reason.ANNOTATION_MALFORMED,
                                     f"image_id {image_id!r} is not in 'images'"))
        else:
            annotations[image_id] = annotation
    items = [_item(entry, annotations, category_names, things, images_dir, png_dir, source)
             for entry in document["images"]]
    return class_names, stuff, items, orphans


def _item(entry: object, annotations: dict, category_names: dict[int, str], things: set[int], images_dir: str,
          png_dir: str, source: str) -> PanopticItem:
    image_id = entry.get("id") if isinstance(entry, dict) else None
    where = f"{source}#image {image_id!r}"
    if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
        problem = Rejection(where, Reason.ANNOTATION_MALFORMED, "image entry has no string 'file_name'")
        return PanopticItem(SourceImage(where, where, "", (), parse_rejections=(problem,)), None, (), ())
    image_path = path_inside(images_dir, entry["file_name"])
    width, height = entry.get("width"), entry.get("height")
    image = SourceImage(source=image_path or where, source_id=str(image_id), filename=entry["file_name"], objects=(),
                        image_path=image_path, width=width if isinstance(width, int) else None,
                        height=height if isinstance(height, int) else None)
    annotation = annotations.get(image_id)
    png_name = annotation.get("file_name") if annotation is not None else None
    png_path = path_inside(png_dir, png_name) if isinstance(png_name, str) else None
    segments_info = annotation.get("segments_info") if annotation is not None else None
    problems = () if image_path else (outside_images(where, entry["file_name"]),)
    if png_path is None or not isinstance(segments_info, list):
        detail = ("has no panoptic annotation" if annotation is None else
                  "its annotation has no 'segments_info' list" if not isinstance(segments_info, list) else
                  f"its annotation's 'file_name' {png_name!r} is not a PNG inside {png_dir}")
        problems += (Rejection(where, Reason.ANNOTATION_MALFORMED, f"image {entry['file_name']} {detail}"),)
        return PanopticItem(dataclasses.replace(image, parse_rejections=problems), None, (), ())
    objects, segments, void_ids = [], [], [0]
    repeated = {segment_id for segment_id, count in Counter(info.get("id") for info in segments_info
                                                            if isinstance(info, dict)).items() if count > 1}
    for info in segments_info:
        segment_id = info.get("id") if isinstance(info, dict) else None
        is_thing = isinstance(info, dict) and info.get("category_id") in things
        segment_where = f"{png_path}#segment {segment_id}"
        level = Level.BOX if is_thing else Level.SEGMENT
        try:
            segment, thing = _segment(info, category_names, is_thing)
        except ValueError as error:
            reason = Reason.CLASS_UNKNOWN if isinstance(error, _UnknownCategory) else Reason.ANNOTATION_MALFORMED
            problems += (Rejection(segment_where, reason, str(error), level),)
            if isinstance(segment_id, int):
                void_ids.append(segment_id)
            continue
        if segment_id in repeated:
            problems += (Rejection(segment_where, Reason.SEGMENTS_OVERLAP, f"segment id {segment_id} is listed "
                                   "more than once, so its pixels belong to several segments; they are void", level),)
            void_ids.append(segment_id)
            continue
        segments.append(segment)
        if thing is not None:
            objects.append(thing)
    image = dataclasses.replace(image, objects=tuple(objects), parse_rejections=problems)
    return PanopticItem(image, png_path, tuple(segments), tuple(sorted(set(void_ids))))


class _UnknownCategory(ValueError):
    pass


def _segment(info: object, category_names: dict[int, str], is_thing: bool
             ) -> tuple[SourceSegment, Optional[SourceObject]]:
    """A `segments_info` entry → its segment, and for a thing its object (no mask yet)."""
    if not isinstance(info, dict) or not isinstance(info.get("id"), int) or isinstance(info.get("id"), bool) \
            or info["id"] <= 0:
        raise ValueError(f"a segment needs a positive integer 'id', got {info!r}")
    if info.get("category_id") not in category_names:
        raise _UnknownCategory(f"category_id {info.get('category_id')!r} is not among the declared categories")
    segment = SourceSegment(info["id"], category_names[info["category_id"]], is_thing)
    if not is_thing:
        return segment, None
    bbox = info.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
        raise ValueError(f"'bbox' must be 4 numbers [x, y, width, height], got {bbox!r}")
    x, y, width, height = (float(v) for v in bbox)
    area = info.get("area")
    return segment, SourceObject(class_name=segment.class_name, box=(x, y, x + width, y + height),
                                 is_crowd=bool(info.get("iscrowd", 0)),
                                 area=float(area) if isinstance(area, (int, float)) else None)


def read_panoptic_png(item: PanopticItem) -> SourceImage:
    """Reads the item's PNG: each thing's mask is its segment's pixels, and the semantic labels all
    of them. A PNG that cannot be read rejects the image (`segmentation_unreadable`)."""
    if item.png_path is None:
        return item.image
    try:
        png = file_io.read_bytes(item.png_path)
    except OSError as error:
        problem = Rejection(item.image.source, Reason.SEGMENTATION_UNREADABLE,
                            f"cannot read the panoptic PNG {item.png_path}: {error}")
        return dataclasses.replace(item.image, parse_rejections=item.image.parse_rejections + (problem,))
    # `_item` appended each thing's object and segment together, so they pair in order.
    thing_ids = iter(segment.id for segment in item.segments if segment.is_thing)
    objects = tuple(dataclasses.replace(obj, mask=SourceMask(png=png, png_index=next(thing_ids), png_rgb_ids=True))
                    for obj in item.image.objects)
    semantic = SourceSemantic(png=png, segments=item.segments, where=item.png_path, rgb_ids=True,
                              void_ids=item.void_ids)
    return dataclasses.replace(item.image, objects=objects, semantic=semantic)
