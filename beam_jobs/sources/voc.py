"""Pascal VOC XML → `SourceImage`s, parsed with defusedxml.

Accepts a VOC root (`Annotations/`, `JPEGImages/`, `ImageSets/Main/`, for instance masks
`SegmentationObject/` and for per-pixel labels `SegmentationClass/`) or a folder of XML files.
When `ImageSets/Main/{train,val,test}.txt` exist they assign the splits. Coordinates are used as
written (like the TF OD API's `create_pascal_tf_record.py`, no 1-based shift), so the stored
normalized box is `xmin / width` etc. An image with `SegmentationObject/ID.png` gives its k-th `<object>` the pixels of palette
index k (0 is background, 255 the void border between objects, in no mask); an image without
one has boxes only. An image with `SegmentationClass/ID.png` gets per-pixel labels: palette index k
is the k-th class of the label map (`--label-map`), or of Pascal VOC's 20 classes without one; 0 is
background and 255 void.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Optional

import defusedxml.ElementTree as SafeElementTree

from beam_jobs import file_io
from beam_jobs.source_records import (AnnotationError, Level, Reason, Rejection, SourceImage, SourceMask,
                                     SourceObject, SourceSegment, SourceSemantic)
from beam_jobs.sources.image_paths import outside_images, path_inside
from beam_jobs.sources.source_plan import SourcePlan
from contracts.errors import BoxflowError

SOURCE_SPLITS = ("train", "val", "test")
# `SegmentationClass` palette indices 1..20, in the order of the VOC devkit.
VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
               "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")


def plan_voc(input_path: str, images_dir: Optional[str], use_source_splits: bool,
             label_map_names: Optional[tuple[str, ...]] = None) -> SourcePlan:
    root = input_path.rstrip("/")
    masks_dir = classes_dir = None
    if file_io.list_files(file_io.join(root, "Annotations", "*.xml")):
        annotations_dir = file_io.join(root, "Annotations")
        default_images = file_io.join(root, "JPEGImages")
        image_sets = file_io.join(root, "ImageSets", "Main")
        masks_dir = file_io.join(root, "SegmentationObject")
        if file_io.list_files(file_io.join(root, "SegmentationClass", "*.png")):
            classes_dir = file_io.join(root, "SegmentationClass")
    else:
        annotations_dir = root
        parent = file_io.dirname(root)
        default_images = next(
            (d for d in (file_io.join(parent, "JPEGImages"), file_io.join(parent, "images"))
             if file_io.list_files(file_io.join(d, "*"))),
            root,
        )
        image_sets = file_io.join(parent, "ImageSets", "Main")
    xml_paths = file_io.list_files(file_io.join(annotations_dir, "*.xml"))
    if not xml_paths:
        raise BoxflowError(f"{input_path}: no Pascal VOC .xml files found (looked in {annotations_dir})")
    split_of = _read_image_sets(image_sets) if use_source_splits else {}
    return SourcePlan(
        format_name="voc",
        input_path=input_path,
        parse=functools.partial(read_voc_annotation, images_dir=images_dir or default_images, masks_dir=masks_dir,
                                classes_dir=classes_dir, indexed_classes=label_map_names or VOC_CLASSES),
        items=tuple((path, split_of.get(file_io.stem(path))) for path in xml_paths),
        splits=tuple(split for split in SOURCE_SPLITS if split in split_of.values()) or None,
        stuff_classes=() if classes_dir else None,
    )


def _read_image_sets(image_sets_dir: str) -> dict[str, str]:
    """Image id → split, from `ImageSets/Main/{train,val,test}.txt` where present."""
    split_of: dict[str, str] = {}
    for split in SOURCE_SPLITS:
        path = file_io.join(image_sets_dir, f"{split}.txt")
        if not file_io.exists(path):
            continue
        for line in file_io.read_bytes(path).decode("utf-8").splitlines():
            image_id = line.split()[0] if line.strip() else None
            if image_id:
                split_of.setdefault(image_id, split)
    return split_of


def read_voc_annotation(item: tuple[str, Optional[str]], images_dir: str, masks_dir: Optional[str] = None,
                        classes_dir: Optional[str] = None, indexed_classes: tuple[str, ...] = VOC_CLASSES
                        ) -> SourceImage:
    """Reads and parses one XML file, and its `SegmentationObject` and `SegmentationClass` PNGs when
    `masks_dir` and `classes_dir` have them (index k of the latter is `indexed_classes[k - 1]`);
    raises `AnnotationError` if a file is unreadable."""
    xml_path, split = item
    try:
        data = file_io.read_bytes(xml_path)
    except OSError as error:
        raise AnnotationError(xml_path, f"cannot read annotation file: {error}") from None
    instances = _png_beside(masks_dir, xml_path, "instance mask")
    image = parse_voc_xml(data, xml_path, images_dir, split, instances)
    classes_path = file_io.join(classes_dir, f"{file_io.stem(xml_path)}.png") if classes_dir else None
    labels = _png_beside(classes_dir, xml_path, "class labels")
    if labels is None:
        return image
    segments = tuple(SourceSegment(index, name, is_thing=True) for index, name in enumerate(indexed_classes, start=1))
    return dataclasses.replace(image, semantic=SourceSemantic(png=labels, segments=segments, where=classes_path,
                                                              void_ids=(255,), background_ids=(0,), palette=True))


def _png_beside(folder: Optional[str], xml_path: str, what: str) -> Optional[bytes]:
    """The bytes of `folder/ID.png` for the XML file `ID.xml`, if there is one."""
    if folder is None:
        return None
    png_path = file_io.join(folder, f"{file_io.stem(xml_path)}.png")
    if not file_io.exists(png_path):
        return None
    try:
        return file_io.read_bytes(png_path)
    except OSError as error:
        raise AnnotationError(png_path, f"cannot read {what}: {error}") from None


def parse_voc_xml(data: bytes, xml_path: str, images_dir: str, split: Optional[str] = None,
                  instances: Optional[bytes] = None) -> SourceImage:
    """Pure: VOC XML bytes → `SourceImage` (boxes in pixels); with `instances`, the image's
    `SegmentationObject` PNG, object k's mask is its pixels of index k."""
    try:
        root = SafeElementTree.fromstring(data)
    except Exception as error:  # defusedxml raises ParseError and its own security errors
        raise AnnotationError(xml_path, f"malformed XML: {error}") from None
    if root.tag != "annotation":
        raise AnnotationError(xml_path, f"root element is <{root.tag}>, expected <annotation>")
    filename = (root.findtext("filename") or "").strip() or f"{file_io.stem(xml_path)}.jpg"
    width = _optional_int(root, "size/width", xml_path)
    height = _optional_int(root, "size/height", xml_path)

    objects, problems = [], []
    for index, element in enumerate(root.findall("object")):
        try:
            found = _object(element)
            if instances is not None:
                found = dataclasses.replace(found, mask=SourceMask(png=instances, png_index=index + 1))
            objects.append(found)
        except ValueError as error:
            problems.append(Rejection(f"{xml_path}#object {index}", Reason.ANNOTATION_MALFORMED, str(error), Level.BOX))
    image_path = path_inside(images_dir, filename)
    if image_path is None:
        problems.append(outside_images(xml_path, filename))
    return SourceImage(
        source=xml_path,
        source_id=filename,
        filename=filename,
        objects=tuple(objects),
        image_path=image_path,
        width=width,
        height=height,
        split=split,
        parse_rejections=tuple(problems),
    )


def _optional_int(root, path: str, xml_path: str) -> Optional[int]:
    text = root.findtext(path)
    if text is None or not text.strip():
        return None
    try:
        return int(float(text))
    except ValueError:
        raise AnnotationError(xml_path, f"<{path}> is not a number: {text!r}") from None


def _object(element) -> SourceObject:
    name = (element.findtext("name") or "").strip()
    if not name:
        raise ValueError("<object> has no <name>")
    box_element = element.find("bndbox")
    if box_element is None:
        raise ValueError(f"<object> '{name}' has no <bndbox>")
    coordinates = []
    for tag in ("xmin", "ymin", "xmax", "ymax"):
        text = box_element.findtext(tag)
        try:
            coordinates.append(float(text))
        except (TypeError, ValueError):
            raise ValueError(f"<bndbox><{tag}> of '{name}' is not a number: {text!r}") from None
    return SourceObject(
        class_name=name,
        box=tuple(coordinates),
        difficult=_flag(element, "difficult"),
        truncated=_flag(element, "truncated"),
    )


def _flag(element, tag: str) -> bool:
    text = (element.findtext(tag) or "0").strip()
    try:
        return bool(int(float(text)))
    except ValueError:
        return text.lower() == "true"
