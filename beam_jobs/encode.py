"""Pure encoding of a `ValidatedImage` as a TF Object Detection API `tf.train.Example`."""

from __future__ import annotations

import hashlib

import tensorflow as tf

from beam_jobs.source_records import ValidatedImage
from boxflow import record_schema as keys


def encode_example(image: ValidatedImage) -> bytes:
    """Serialized `tf.train.Example`: boxes normalized to [0, 1], labels from 1."""
    objects = image.objects
    feature = {
        keys.ENCODED: _bytes([image.encoded]),
        keys.FORMAT: _bytes([image.image_format.encode()]),
        keys.HEIGHT: _ints([image.height]),
        keys.WIDTH: _ints([image.width]),
        keys.FILENAME: _bytes([image.filename.encode()]),
        keys.SOURCE_ID: _bytes([image.source_id.encode()]),
        keys.KEY_SHA256: _bytes([hashlib.sha256(image.encoded).hexdigest().encode()]),
        keys.XMIN: _floats([o.box[0] / image.width for o in objects]),
        keys.YMIN: _floats([o.box[1] / image.height for o in objects]),
        keys.XMAX: _floats([o.box[2] / image.width for o in objects]),
        keys.YMAX: _floats([o.box[3] / image.height for o in objects]),
        keys.CLASS_LABEL: _ints([o.label for o in objects]),
        keys.CLASS_TEXT: _bytes([o.class_name.encode() for o in objects]),
        keys.IS_CROWD: _ints([int(o.is_crowd) for o in objects]),
        keys.DIFFICULT: _ints([int(o.difficult) for o in objects]),
        keys.TRUNCATED: _ints([int(o.truncated) for o in objects]),
        keys.AREA: _floats([o.area for o in objects]),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _bytes(values: list[bytes]) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _ints(values: list[int]) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def _floats(values: list[float]) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))
