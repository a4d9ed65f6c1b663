"""Choosing the reader for `--format` and applying a user's label map."""

from __future__ import annotations

import dataclasses

from beam_jobs import file_io
from beam_jobs.prepare_settings import PrepareSettings
from beam_jobs.sources.coco import plan_coco
from beam_jobs.sources.coco_panoptic import plan_coco_panoptic
from beam_jobs.sources.csv_rows import plan_csv
from beam_jobs.sources.label_pngs import plan_label_pngs
from beam_jobs.sources.source_plan import SourcePlan
from beam_jobs.sources.tfrecord import plan_tfrecord
from beam_jobs.sources.voc import plan_voc
from beam_jobs.sources.yolo import plan_yolo
from contracts.errors import BoxflowError
from contracts.record_schema import IGNORE_LABEL
from contracts.label_map import parse_label_map


def plan_source(settings: PrepareSettings) -> SourcePlan:
    """Reads what planning needs (file lists, single-file annotations) and returns the plan.

    A `--label-map` fixes the class list and its ids for any format; boxes of other
    classes are then rejected as `class_unknown`.
    """
    label_map_names = _read_label_map(settings.label_map) if settings.label_map else None
    fmt, path, images = settings.source_format, settings.input_path, settings.images_dir
    if fmt != "tfrecord" and not file_io.exists(path):
        raise BoxflowError(f"--input {path}: no such file or directory")
    if fmt == "coco":
        plan = plan_coco(path, images)
    elif fmt == "coco_panoptic":
        plan = plan_coco_panoptic(path, images)
    elif fmt == "label_pngs":
        plan = plan_label_pngs(path, images, label_map_names)
    elif fmt == "voc":
        plan = plan_voc(path, images, settings.use_source_splits, label_map_names)
    elif fmt == "yolo":
        plan = plan_yolo(path, images)
    elif fmt == "csv":
        plan = plan_csv(path, images, settings.csv_columns)
    else:
        plan = plan_tfrecord(path, label_map_names)
    if label_map_names is not None:
        plan = dataclasses.replace(plan, class_names=label_map_names)
    if plan.stuff_classes is not None and len(plan.class_names or ()) >= IGNORE_LABEL:
        raise BoxflowError(f"--input {path}: {len(plan.class_names)} classes; per-pixel labels are stored as one byte "
                           f"per pixel, {IGNORE_LABEL} meaning void, so at most {IGNORE_LABEL - 1} classes fit")
    return plan


def _read_label_map(path: str) -> tuple[str, ...]:
    try:
        text = file_io.read_bytes(path).decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BoxflowError(f"--label-map {path}: cannot read: {error}") from None
    return tuple(parse_label_map(text, source=path))
