"""Pure encoding of a `ValidatedImage` as a TF Object Detection API `tf.train.Example`."""

from __future__ import annotations

import hashlib

from beam_jobs.source_records import ValidatedImage
from contracts import record_schema as keys
from contracts.example_proto import Example


def encode_example(image: ValidatedImage) -> bytes:
    """Serialized `tf.train.Example`: boxes normalized to [0, 1], labels from 1."""
    objects = image.objects
    example = Example()
    features = example.features.feature
    features[keys.ENCODED].bytes_list.value.append(image.encoded)
    features[keys.FORMAT].bytes_list.value.append(image.image_format.encode())
    features[keys.HEIGHT].int64_list.value.append(image.height)
    features[keys.WIDTH].int64_list.value.append(image.width)
    features[keys.FILENAME].bytes_list.value.append(image.filename.encode())
    features[keys.SOURCE_ID].bytes_list.value.append(image.source_id.encode())
    features[keys.KEY_SHA256].bytes_list.value.append(hashlib.sha256(image.encoded).hexdigest().encode())
    features[keys.XMIN].float_list.value.extend(o.box[0] / image.width for o in objects)
    features[keys.YMIN].float_list.value.extend(o.box[1] / image.height for o in objects)
    features[keys.XMAX].float_list.value.extend(o.box[2] / image.width for o in objects)
    features[keys.YMAX].float_list.value.extend(o.box[3] / image.height for o in objects)
    features[keys.CLASS_LABEL].int64_list.value.extend(o.label for o in objects)
    features[keys.CLASS_TEXT].bytes_list.value.extend(o.class_name.encode() for o in objects)
    features[keys.IS_CROWD].int64_list.value.extend(int(o.is_crowd) for o in objects)
    features[keys.DIFFICULT].int64_list.value.extend(int(o.difficult) for o in objects)
    features[keys.TRUNCATED].int64_list.value.extend(int(o.truncated) for o in objects)
    features[keys.AREA].float_list.value.extend(o.area for o in objects)
    if objects and all(o.mask is not None for o in objects):
        features[keys.MASK].bytes_list.value.extend(o.mask for o in objects)
    if image.semantic_png is not None:
        features[keys.SEMANTIC_ENCODED].bytes_list.value.append(image.semantic_png)
        features[keys.SEMANTIC_FORMAT].bytes_list.value.append(b"png")
    # Empty lists are still set, so every record carries every key (as the TF OD API writes them).
    for key in (keys.XMIN, keys.YMIN, keys.XMAX, keys.YMAX, keys.AREA):
        features[key].float_list.SetInParent()
    for key in (keys.CLASS_LABEL, keys.IS_CROWD, keys.DIFFICULT, keys.TRUNCATED):
        features[key].int64_list.SetInParent()
    features[keys.CLASS_TEXT].bytes_list.SetInParent()
    return example.SerializeToString(deterministic=True)
