"""Existing TF Object Detection API TFRecords → `SourceImage`s, to re-validate and re-shard.

Class names come from `image/object/class/text`; records carrying only numeric
labels need a label map to name them.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Optional

from beam_jobs import file_io
from beam_jobs.source_records import (AnnotationError, Level, Reason, Rejection, SourceImage, SourceMask,
                                      SourceObject)
from beam_jobs.sources.source_plan import SourcePlan
from contracts import record_schema as keys
from contracts.example_proto import Example
from contracts.errors import BoxflowError


def plan_tfrecord(pattern: str, label_map_names: Optional[tuple[str, ...]]) -> SourcePlan:
    if not file_io.list_files(pattern):
        raise BoxflowError(f"{pattern}: no TFRecord files match")
    return SourcePlan(
        format_name="tfrecord",
        input_path=pattern,
        parse=functools.partial(parse_tf_example, label_map_names=label_map_names),
        tfrecord_pattern=pattern,
    )


def parse_tf_example(item: tuple[str, bytes], label_map_names: Optional[tuple[str, ...]] = None) -> SourceImage:
    """Pure: `(file name, serialized tf.train.Example)` → `SourceImage` with normalized boxes."""
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

    if keys.SEMANTIC_ENCODED in features:
        # Their stuff classes are not named in the record, and dropping the labels would lose them.
        raise AnnotationError(where, f"record has per-pixel labels ('{keys.SEMANTIC_ENCODED}'), which prepare cannot "
                                     "re-read from TFRecords yet; prepare the dataset from its source")
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
