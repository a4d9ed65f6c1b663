"""The on-disk record schema: TF Object Detection API `tf.train.Example` keys.

Every writer (the Beam jobs) and reader (tf.data, serving) names features through
these constants, so our shards and the TF OD API's tools read each other.
On disk, boxes are normalized to [0, 1] and class labels count from 1.
"""

from typing import Final

ENCODED: Final = "image/encoded"
FORMAT: Final = "image/format"
HEIGHT: Final = "image/height"
WIDTH: Final = "image/width"
FILENAME: Final = "image/filename"
SOURCE_ID: Final = "image/source_id"
KEY_SHA256: Final = "image/key/sha256"
XMIN: Final = "image/object/bbox/xmin"
YMIN: Final = "image/object/bbox/ymin"
XMAX: Final = "image/object/bbox/xmax"
YMAX: Final = "image/object/bbox/ymax"
CLASS_LABEL: Final = "image/object/class/label"
CLASS_TEXT: Final = "image/object/class/text"
IS_CROWD: Final = "image/object/is_crowd"
DIFFICULT: Final = "image/object/difficult"
TRUNCATED: Final = "image/object/truncated"
AREA: Final = "image/object/area"
# One full-image PNG per object, values 0 and 1 (the TF OD API's PNG_MASKS, Model Garden's decoder):
# written for datasets with instance masks only.
MASK: Final = "image/object/mask"
# Semantic labels, Model Garden's keys: one PNG per image holding a label-map id per pixel, 0 for
# background (no class) and IGNORE_LABEL where the source says nothing (void): written for
# datasets with semantic or panoptic labels only.
SEMANTIC_ENCODED: Final = "image/segmentation/class/encoded"
SEMANTIC_FORMAT: Final = "image/segmentation/class/format"
IGNORE_LABEL: Final = 255

BOX_KEYS: Final = (XMIN, YMIN, XMAX, YMAX)

LABEL_MAP_FILE: Final = "label_map.pbtxt"
DATASET_INFO_FILE: Final = "dataset_info.json"
REJECTED_FILE: Final = "rejected.jsonl"
SCHEMA_VERSION: Final = 1


def shard_name(split: str, index: int, count: int) -> str:
    """File name of shard `index` of `count` of a split, e.g. `train-00000-of-00008.tfrecord`."""
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def shard_pattern(split: str) -> str:
    """Glob matching every shard of a split, and nothing a half-written run leaves behind."""
    return f"{split}-?????-of-?????.tfrecord"
