"""A folder of label PNGs with a class list → `SourceImage`s with per-pixel labels and no boxes (a
semantic-segmentation dataset).

`--input` is the folder of PNGs (any depth), one per image, matched to the image of the same name
in `--images` (default: `images/` beside the folder). Each pixel holds the stored index of a
grayscale or palette PNG: k is the k-th class of `--label-map` (required: nothing else names the
classes), 0 background and 255 void. Every class is stuff: the labels have no instances. An image
without a label PNG is read with none; a PNG without its image is reported as a missing image.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Optional

from beam_jobs import file_io
from beam_jobs.source_records import AnnotationError, SourceImage, SourceSegment, SourceSemantic
from beam_jobs.sources.source_plan import SourcePlan
from contracts.errors import BoxflowError


def plan_label_pngs(labels_dir: str, images_dir: Optional[str],
                    label_map_names: Optional[tuple[str, ...]]) -> SourcePlan:
    if not label_map_names:
        raise BoxflowError(f"--input {labels_dir}: label PNGs hold class indices; give --label-map to name them "
                           "(index k is the label map's item with id k)")
    labels_dir = labels_dir.rstrip("/")
    images_dir = images_dir or file_io.join(file_io.dirname(labels_dir), "images")
    label_paths = {file_io.stem(path): path for path in file_io.list_files_with_extensions(labels_dir, (".png",))}
    image_paths = [path for path in file_io.list_files_with_extensions(images_dir, file_io.IMAGE_EXTENSIONS)
                   if path.rstrip("/") != labels_dir]
    if not label_paths:
        raise BoxflowError(f"--input {labels_dir}: no label PNGs found")
    image_stems = {file_io.stem(path) for path in image_paths}
    items = [(path, label_paths.get(file_io.stem(path))) for path in image_paths]
    # A label PNG whose image is missing still counts as an image read, rejected by validation.
    items += [(file_io.join(images_dir, f"{stem}.jpg"), path) for stem, path in sorted(label_paths.items())
              if stem not in image_stems]
    return SourcePlan(format_name="label_pngs", input_path=labels_dir,
                      parse=functools.partial(read_label_png, class_names=label_map_names), items=tuple(items),
                      class_names=label_map_names, stuff_classes=label_map_names)


def read_label_png(item: tuple[str, Optional[str]], class_names: tuple[str, ...]) -> SourceImage:
    """One image and its label PNG (if any) → a `SourceImage` without boxes; raises `AnnotationError`
    for a PNG that cannot be read."""
    image_path, png_path = item
    name = file_io.basename(image_path)
    image = SourceImage(source=image_path, source_id=name, filename=name, objects=(), image_path=image_path)
    if png_path is None:
        return image
    try:
        png = file_io.read_bytes(png_path)
    except OSError as error:
        raise AnnotationError(png_path, f"cannot read the label PNG: {error}") from None
    segments = tuple(SourceSegment(index, class_name) for index, class_name in enumerate(class_names, start=1))
    return dataclasses.replace(image, semantic=SourceSemantic(png=png, segments=segments, where=png_path,
                                                              void_ids=(255,), background_ids=(0,), palette=True))
