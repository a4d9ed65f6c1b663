"""COCO JSON (`instances_*.json`) → `SourceImage`s.

Category ids may be non-contiguous (COCO's 1..90); classes are numbered by sorted
category id, so the label map is contiguous from 1. `iscrowd` boxes are kept and
flagged. Images without annotations become negative examples.
"""

from __future__ import annotations

import json
import numbers
from collections import defaultdict

from beam_jobs import file_io
from beam_jobs.instance_masks import coco_segmentation
from beam_jobs.source_records import Level, Reason, Rejection, SourceImage, SourceObject
from beam_jobs.sources.image_paths import outside_images, path_inside
from beam_jobs.sources.source_plan import SourcePlan, already_parsed
from contracts.errors import BoxflowError


def plan_coco(annotation_path: str, images_dir: str | None) -> SourcePlan:
    """Reads a COCO JSON file; images are looked up in `images_dir` (default: `images/` beside it)."""
    try:
        document = json.loads(file_io.read_bytes(annotation_path))
    except (OSError, ValueError) as error:
        raise BoxflowError(f"{annotation_path}: cannot read COCO JSON: {error}") from None
    class_names, images, rejections = parse_coco(document, images_dir or coco_images_dir(annotation_path),
                                                 annotation_path)
    return SourcePlan(
        format_name="coco",
        input_path=annotation_path,
        parse=already_parsed,
        items=tuple(images),
        class_names=class_names,
        rejections=tuple(rejections),
    )


def coco_images_dir(annotation_path: str) -> str:
    """Where COCO's images are when `--images` does not say: `images/` beside the annotations'
    folder (COCO's layout), else beside the file."""
    beside_folder = file_io.join(file_io.dirname(file_io.dirname(annotation_path)), "images")
    if file_io.list_files(file_io.join(beside_folder, "*")):
        return beside_folder
    return file_io.join(file_io.dirname(annotation_path), "images")


def parse_coco(
    document: object, images_dir: str, source: str
) -> tuple[tuple[str, ...], list[SourceImage], list[Rejection]]:
    """Pure: a parsed COCO document → (class names, images, rejections that fit no image)."""
    if not isinstance(document, dict):
        raise BoxflowError(f"{source}: COCO JSON must be an object with 'images' and 'categories'")
    for field in ("images", "categories"):
        if not isinstance(document.get(field), list):
            raise BoxflowError(f"{source}: COCO JSON field '{field}' is missing or not a list")
    annotations = document.get("annotations", [])
    if not isinstance(annotations, list):
        raise BoxflowError(f"{source}: COCO JSON field 'annotations' is not a list")

    category_names = parse_categories(document["categories"], source)
    class_names = tuple(category_names[category_id] for category_id in sorted(category_names))

    objects_by_image: dict[int, list[SourceObject]] = defaultdict(list)
    problems_by_image: dict[int, list[Rejection]] = defaultdict(list)
    file_names = {entry.get("id"): entry.get("file_name") for entry in document["images"] if isinstance(entry, dict)}
    orphans: list[Rejection] = []
    for index, annotation in enumerate(annotations):
        image_id = annotation.get("image_id") if isinstance(annotation, dict) else None
        annotation_id = annotation.get("id", index) if isinstance(annotation, dict) else index
        where = f"{source}#annotation {annotation_id}"
        if image_id not in file_names:
            orphans.append(Rejection(where, Reason.ANNOTATION_MALFORMED, f"image_id {image_id!r} is not in 'images'", Level.BOX))
            continue
        if isinstance(file_names[image_id], str):
            where += f" (image {file_names[image_id]})"  # so that the user can find the picture
        try:
            objects_by_image[image_id].append(_object(annotation, category_names))
        except _UnknownCategory as error:
            problems_by_image[image_id].append(Rejection(where, Reason.CLASS_UNKNOWN, str(error), Level.BOX))
        except (KeyError, TypeError, ValueError) as error:
            problems_by_image[image_id].append(Rejection(where, Reason.ANNOTATION_MALFORMED, str(error), Level.BOX))

    images = [
        _image(entry, images_dir, source, objects_by_image, problems_by_image)
        for entry in document["images"]
    ]
    return class_names, images, orphans


class _UnknownCategory(ValueError):
    pass


def parse_categories(categories: list, source: str) -> dict[int, str]:
    """COCO `categories` → category id → name; raises `BoxflowError` for a malformed or repeated entry."""
    names: dict[int, str] = {}
    for entry in categories:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), int) or not isinstance(entry.get("name"), str):
            raise BoxflowError(f"{source}: every category needs an integer 'id' and a string 'name', got {entry!r}")
        if entry["id"] in names:
            raise BoxflowError(f"{source}: category id {entry['id']} appears twice")
        names[entry["id"]] = entry["name"]
    if not names:
        raise BoxflowError(f"{source}: COCO JSON declares no categories")
    return names


def _object(annotation: dict, category_names: dict[int, str]) -> SourceObject:
    bbox = annotation["bbox"]
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
        raise ValueError(f"'bbox' must be 4 numbers [x, y, width, height], got {bbox!r}")
    category_id = annotation.get("category_id")
    if category_id not in category_names:
        raise _UnknownCategory(f"category_id {category_id!r} is not among the declared categories")
    x, y, width, height = (float(v) for v in bbox)
    area = annotation.get("area")
    return SourceObject(
        class_name=category_names[category_id],
        box=(x, y, x + width, y + height),
        is_crowd=bool(annotation.get("iscrowd", 0)),
        area=float(area) if _is_number(area) else None,
        mask=coco_segmentation(annotation.get("segmentation")),
    )


def _image(entry: object, images_dir: str, source: str, objects_by_image, problems_by_image) -> SourceImage:
    if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
        where = f"{source}#image {entry.get('id') if isinstance(entry, dict) else entry!r}"
        # An image entry we cannot use still counts as an image read, so it flows on
        # with no path and is rejected (with its reason) by validation.
        return SourceImage(
            source=where,
            source_id=where,
            filename="",
            objects=(),
            parse_rejections=(Rejection(where, Reason.ANNOTATION_MALFORMED, "image entry has no string 'file_name'"),),
        )
    image_id = entry.get("id")
    width, height = entry.get("width"), entry.get("height")
    image_path = path_inside(images_dir, entry["file_name"])
    problems = tuple(problems_by_image.get(image_id, ()))
    if image_path is None:
        problems += (outside_images(f"{source}#image {image_id}", entry["file_name"]),)
    return SourceImage(
        source=image_path or f"{source}#image {image_id}",
        source_id=str(image_id),
        filename=entry["file_name"],
        objects=tuple(objects_by_image.get(image_id, ())),
        image_path=image_path,
        width=width if isinstance(width, int) else None,
        height=height if isinstance(height, int) else None,
        parse_rejections=problems,
    )


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
