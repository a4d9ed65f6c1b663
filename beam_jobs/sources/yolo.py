"""YOLO txt labels + data YAML → `SourceImage`s.

Each label line is `class cx cy w h`, or a segmentation row `class x1 y1 x2 y2 ... xn yn`
(a polygon of 3 or more points, whose extent is its box), normalized to the image size,
classes from 0 indexing the YAML's `names`. Label files live in `labels/` beside the YAML (any
depth); an image without a label file is a negative example, and a label file
without an image is reported as a missing image.
"""

from __future__ import annotations

import functools
from typing import Optional

import yaml

from beam_jobs import file_io
from beam_jobs.source_records import (AnnotationError, Level, Reason, Rejection, SourceImage, SourceMask,
                                      SourceObject)
from beam_jobs.sources.source_plan import SourcePlan
from contracts.errors import BoxflowError


def plan_yolo(yaml_path: str, images_dir: Optional[str]) -> SourcePlan:
    class_names = read_class_names(yaml_path)
    base = file_io.dirname(yaml_path)
    labels_dir = file_io.join(base, "labels")
    images_dir = images_dir or file_io.join(base, "images")
    image_paths = file_io.list_files_with_extensions(images_dir, file_io.IMAGE_EXTENSIONS)
    label_paths = {file_io.stem(p): p for p in file_io.list_files_with_extensions(labels_dir, (".txt",))}
    if not image_paths and not label_paths:
        raise BoxflowError(f"{yaml_path}: no images in {images_dir} and no label files in {labels_dir}")
    image_stems = {file_io.stem(p) for p in image_paths}
    items = [(path, label_paths.get(file_io.stem(path))) for path in image_paths]
    # Label files whose image is missing still count as images read, rejected by validation.
    items += [(file_io.join(images_dir, f"{stem}.jpg"), path) for stem, path in sorted(label_paths.items())
              if stem not in image_stems]
    return SourcePlan(
        format_name="yolo",
        input_path=yaml_path,
        parse=functools.partial(read_yolo_labels, class_names=class_names),
        items=tuple(items),
        class_names=class_names,
    )


def read_class_names(yaml_path: str) -> tuple[str, ...]:
    try:
        config = yaml.safe_load(file_io.read_bytes(yaml_path))
    except (OSError, yaml.YAMLError) as error:
        raise BoxflowError(f"{yaml_path}: cannot read YOLO data YAML: {error}") from None
    names = config.get("names") if isinstance(config, dict) else None
    if isinstance(names, dict) and sorted(names) == list(range(len(names))):
        return tuple(str(names[i]) for i in range(len(names)))
    if isinstance(names, list) and names:
        return tuple(str(name) for name in names)
    raise BoxflowError(f"{yaml_path}: 'names' must be a list or a mapping 0..N-1 → name, got {names!r}")


def read_yolo_labels(item: tuple[str, Optional[str]], class_names: tuple[str, ...]) -> SourceImage:
    image_path, label_path = item
    text = ""
    if label_path is not None:
        try:
            text = file_io.read_bytes(label_path).decode("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise AnnotationError(label_path, f"cannot read label file: {error}") from None
    return parse_yolo_text(text, image_path, label_path or image_path, class_names)


def parse_yolo_text(text: str, image_path: str, source: str, class_names: tuple[str, ...]) -> SourceImage:
    """Pure: label-file text → `SourceImage` with normalized boxes."""
    objects, problems = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        fields = line.split()
        try:
            class_id = int(fields[0])
            box, mask = _box_or_polygon([float(v) for v in fields[1:]])
        except ValueError as error:
            problems.append(Rejection(where, Reason.ANNOTATION_MALFORMED, f"{error}: {line.strip()!r}", Level.BOX))
            continue
        if not 0 <= class_id < len(class_names):
            problems.append(Rejection(where, Reason.CLASS_UNKNOWN,
                                      f"class id {class_id} outside 0..{len(class_names) - 1}", Level.BOX))
            continue
        objects.append(SourceObject(class_name=class_names[class_id], box=box, mask=mask))
    filename = file_io.basename(image_path)
    return SourceImage(
        source=image_path,
        source_id=file_io.stem(image_path),
        filename=filename,
        objects=tuple(objects),
        image_path=image_path,
        boxes_normalized=True,
        parse_rejections=tuple(problems),
    )


def _box_or_polygon(values: list[float]) -> tuple[tuple[float, float, float, float], Optional[SourceMask]]:
    """A row's numbers after the class: `cx cy w h` → its box; `x1 y1 ... xn yn` (n ≥ 3) → the
    polygon's extent and the polygon as a normalized mask."""
    if len(values) == 4:
        center_x, center_y, width, height = values
        return (center_x - width / 2, center_y - height / 2, center_x + width / 2, center_y + height / 2), None
    if len(values) < 6 or len(values) % 2:
        raise ValueError(f"expected 'class cx cy w h' or 'class x1 y1 x2 y2 x3 y3 ...', got {len(values) + 1} fields")
    xs, ys = values[0::2], values[1::2]
    return (min(xs), min(ys), max(xs), max(ys)), SourceMask(polygons=(tuple(values),), normalized=True)
