"""What a source reader hands the Beam job: the work items and how to parse each one."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

from beam_jobs.source_records import Rejection, SourceImage


@dataclasses.dataclass(frozen=True)
class SourcePlan:
    """The planned input of one `prepare` run.

    `items` are small, picklable work units (paths or already-parsed images) that
    `parse` turns into one `SourceImage` each inside the pipeline; for TFRecord input
    `tfrecord_pattern` is set instead and each record is an item. `class_names` is set
    when the source declares its classes (COCO categories, YOLO names, a label map);
    otherwise the job derives them from the data. `splits` is set when the source
    assigns splits itself. `rejections` are box-level problems found while planning
    that belong to no image (e.g. a COCO annotation naming a missing image id).
    `stuff_classes` is set when the source labels pixels (COCO panoptic): the classes that are
    stuff, the others being things; `dataset_info.json` records which is which.
    """

    format_name: str
    input_path: str
    parse: Callable[[Any], SourceImage]
    items: tuple[Any, ...] = ()
    tfrecord_pattern: Optional[str] = None
    class_names: Optional[tuple[str, ...]] = None
    splits: Optional[tuple[str, ...]] = None
    rejections: tuple[Rejection, ...] = ()
    stuff_classes: Optional[tuple[str, ...]] = None  # for per-pixel labels: the classes that are stuff


def already_parsed(item: SourceImage) -> SourceImage:
    """`parse` for sources whose items are parsed while planning (COCO, CSV)."""
    return item
