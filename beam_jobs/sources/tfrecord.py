"""Existing TF Object Detection API TFRecords → `SourceImage`s, to re-validate and re-shard.

Class names come from `image/object/class/text`; records carrying only numeric
labels need a label map to name them. Per-pixel labels (`image/segmentation/class/encoded`) hold
label ids the records do not name, nor say which are stuff: `prepare` reads both from the
`dataset_info.json` it wrote beside the shards, and refuses such records without one.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Optional

from beam_jobs import file_io
from beam_jobs.source_records import (AnnotationError, Level, Reason, Rejection, SourceImage, SourceMask,
                                      SourceObject, SourceSegment, SourceSemantic)
from beam_jobs.sources.source_plan import SourcePlan
from contracts import record_schema as keys
from contracts.example_proto import Example
from contracts.errors import BoxflowError


def plan_tfrecord(pattern: str, label_map_names: Optional[tuple[str, ...]]) -> SourcePlan:
    files = file_io.list_files(pattern)
    if not files:
        raise BoxflowError(f"{pattern}: no TFRecord files match")
    recorded = _recorded_segments(file_io.join(file_io.dirname(files[0]), keys.DATASET_INFO_FILE))
    return SourcePlan(
        format_name="tfrecord",
        input_path=pattern,
        parse=functools.partial(parse_tf_example, label_map_names=label_map_names, recorded_segments=recorded),
        tfrecord_pattern=pattern,
        # The recorded classes keep their ids; stuff classes, named by no box, would otherwise be lost.
        class_names=None if recorded is None else tuple(segment.class_name for segment in recorded),
        stuff_classes=None if recorded is None else tuple(s.class_name for s in recorded if not s.is_thing),
    )


def _recorded_segments(info_path: str) -> Optional[tuple[SourceSegment, ...]]:
    """The label ids of per-pixel labels as `prepare`'s `dataset_info.json` at `info_path` names them
    (id, name, thing or stuff), or None when there is no such file or it records no kinds."""
    if not file_io.exists(info_path):
        return None
    try:
        classes = json.loads(file_io.read_bytes(info_path))["classes"]
        if not classes or not all("kind" in entry for entry in classes):
            return None
        return tuple(SourceSegment(int(entry["id"]), str(entry["name"]), is_thing=entry["kind"] == "thing")
                     for entry in classes)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BoxflowError(f"{info_path}: cannot read its classes: {error}") from None


def parse_tf_example(item: tuple[str, bytes], label_map_names: Optional[tuple[str, ...]] = None,
                     recorded_segments: Optional[tuple[SourceSegment, ...]] = None) -> SourceImage:
    """Pure: `(file name, serialized tf.train.Example)` → `SourceImage` with normalized boxes, and
    its per-pixel labels named by `recorded_segments` (the shards' `dataset_info.json` classes)."""
    file_name, serialized = item
    try:
        example = Example.FromString(serialized)
    except Exception as error:  # protobuf's DecodeError
        raise AnnotationError(file_name, f"record is not a tf.train.Example: {error}") from None
    features = example.features.feature
    encoded = _bytes(features, keys.ENCODED)
    filename = (_bytes(features, keys.FILENAME) or b"").decode("utf-8", "replace")
    source_id = (_bytes(features, keys.SOURCE_ID) or b"").decode("utf-8", "replace") or filename
    if not source_id and encoded:
        source_id = hashlib.sha256(encoded).hexdigest()
    where = f"{file_name}:{source_id or '?'}"
    if encoded is None:
        raise AnnotationError(where, f"record has no '{keys.ENCODED}'")

    semantic = None
    if keys.SEMANTIC_ENCODED in features:
        if recorded_segments is None:
            # Neither the stuff classes' names nor which classes are stuff are in the record.
            raise AnnotationError(where, f"record has per-pixel labels ('{keys.SEMANTIC_ENCODED}') but no "
                                         f"{keys.DATASET_INFO_FILE} with class kinds beside the records names them; "
                                         "prepare the dataset from its source")
        semantic = SourceSemantic(png=_bytes(features, keys.SEMANTIC_ENCODED), segments=recorded_segments,
                                  where=f"{where}#{keys.SEMANTIC_ENCODED}", palette=True,
                                  void_ids=(keys.IGNORE_LABEL,), background_ids=(0,))
    columns = {key: list(features[key].float_list.value) for key in keys.BOX_KEYS}
    count = len(columns[keys.XMIN])
    texts = [t.decode("utf-8", "replace") for t in features[keys.CLASS_TEXT].bytes_list.value]
    labels = list(features[keys.CLASS_LABEL].int64_list.value)
    if any(len(values) != count for values in columns.values()) or (texts and len(texts) != count) or (
        labels and len(labels) != count
    ):
        raise AnnotationError(where, "box coordinate, class text and class label lists differ in length")
    masks = list(features[keys.MASK].bytes_list.value) if keys.MASK in features else []
    if masks and len(masks) != count:
        raise AnnotationError(where, f"{len(masks)} instance masks for {count} boxes")

    objects, problems = [], []
    for index in range(count):
        name = texts[index] if texts else _label_name(labels, index, label_map_names)
        if name is None:
            problems.append(Rejection(f"{where}#object {index}", Reason.CLASS_UNKNOWN,
                                      f"label {labels[index] if labels else '?'} has no class text and no "
                                      "--label-map names it", Level.BOX))
            continue
        objects.append(SourceObject(
            class_name=name,
            box=tuple(columns[key][index] for key in keys.BOX_KEYS),
            difficult=_int_at(features, keys.DIFFICULT, index),
            truncated=_int_at(features, keys.TRUNCATED, index),
            is_crowd=_int_at(features, keys.IS_CROWD, index),
            area=_float_at(features, keys.AREA, index),
            mask=SourceMask(png=masks[index]) if masks else None,
        ))
    return SourceImage(
        source=where,
        source_id=source_id,
        filename=filename or f"{source_id}.jpg",
        objects=tuple(objects),
        encoded=encoded,
        width=_int(features, keys.WIDTH),
        height=_int(features, keys.HEIGHT),
        boxes_normalized=True,
        parse_rejections=tuple(problems),
        semantic=semantic,
    )


def _bytes(features, key: str) -> Optional[bytes]:
    values = features[key].bytes_list.value if key in features else []
    return values[0] if values else None


def _int(features, key: str) -> Optional[int]:
    values = features[key].int64_list.value if key in features else []
    return int(values[0]) if values else None


def _int_at(features, key: str, index: int) -> bool:
    values = features[key].int64_list.value if key in features else []
    return bool(values[index]) if index < len(values) else False


def _float_at(features, key: str, index: int) -> Optional[float]:
    values = features[key].float_list.value if key in features else []
    return float(values[index]) if index < len(values) else None


def _label_name(labels: list[int], index: int, names: Optional[tuple[str, ...]]) -> Optional[str]:
    if not labels or names is None or not 1 <= labels[index] <= len(names):
        return None
    return names[labels[index] - 1]
