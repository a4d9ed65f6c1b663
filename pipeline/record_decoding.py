"""The one place where the on-disk record form meets the in-memory form.

On disk (DESIGN.md §3): `tf.train.Example`s with TF OD API keys, boxes normalized
`(xmin, ymin, xmax, ymax)` in [0, 1], labels from 1. In memory (§4): images uint8
`[H, W, 3]`, boxes float32 `[N, 4]` in absolute pixels `xyxy`, classes int32 `[N]` from 0,
with `CROWD_CLASS` for a crowd region (`image/object/is_crowd`, COCO's `iscrowd`).
"""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

from contracts import record_schema as keys

# The class of a crowd region in training targets: a region of many objects boxed as one, which
# is neither an object to find nor background. Training ignores the anchors and ROIs that lie
# mostly inside one (keras_models.ops.matching.CROWD_INSIDE_FRACTION); -1 marks padding.
CROWD_CLASS = -2

_FEATURES = {
    keys.ENCODED: tf.io.FixedLenFeature([], tf.string),
    keys.SOURCE_ID: tf.io.FixedLenFeature([], tf.string, default_value=""),
    keys.XMIN: tf.io.VarLenFeature(tf.float32),
    keys.YMIN: tf.io.VarLenFeature(tf.float32),
    keys.XMAX: tf.io.VarLenFeature(tf.float32),
    keys.YMAX: tf.io.VarLenFeature(tf.float32),
    keys.CLASS_LABEL: tf.io.VarLenFeature(tf.int64),
    keys.IS_CROWD: tf.io.VarLenFeature(tf.int64),
}


_MASK_FEATURES = {keys.MASK: tf.io.VarLenFeature(tf.string)}
_SEMANTIC_FEATURES = {keys.SEMANTIC_ENCODED: tf.io.FixedLenFeature([], tf.string, default_value="")}

JPEG_RATIOS = (1, 2, 4, 8)
JPEG_MAGIC = b"\xff\xd8\xff"  # the first bytes of every JPEG file


def decode_record(serialized: tf.Tensor, shrink_for: Optional[int] = None, with_masks: bool = False,
                  with_semantic: bool = False) -> dict[str, tf.Tensor]:
    """One serialized Example → `{"image", "boxes", "classes", "source_id"}` in memory form,
    `"instance_map"` `with_masks` and `"class_map"` `with_semantic`.

    `image`: uint8 `[H, W, 3]` (JPEG or PNG; grayscale becomes 3 channels).
    `boxes`: float32 `[N, 4]`, pixels `xyxy` of `image`. `classes`: int32 `[N]`, from 0, or
    `CROWD_CLASS` for a crowd region.
    `instance_map`: int32 `[H, W]` of `image`, `i + 1` where box `i`'s mask is, 0 elsewhere (and
    everywhere for a record without masks); see `instance_map_from_pngs` for overlaps.
    `class_map`: int32 `[H, W]` of `image`, the record's label-map id per pixel (0 background,
    `IGNORE_LABEL` void, and void everywhere for a record without per-pixel labels).
    With `shrink_for`, a JPEG is decoded at 1/2, 1/4 or 1/8 scale (in the DCT domain,
    far cheaper than a full decode and resize) while its longer side stays ≥ `shrink_for`.
    """
    parsed = tf.io.parse_single_example(serialized, {**_FEATURES, **(_MASK_FEATURES if with_masks else {}),
                                                     **(_SEMANTIC_FEATURES if with_semantic else {})})
    image = decode_image(parsed[keys.ENCODED], shrink_for)
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    normalized = tf.stack([tf.sparse.to_dense(parsed[k]) for k in keys.BOX_KEYS], axis=-1)
    classes = tf.cast(tf.sparse.to_dense(parsed[keys.CLASS_LABEL]), tf.int32) - 1
    # A writer may omit the crowd flags (or give fewer): the missing ones read as not crowd.
    crowd = tf.sparse.to_dense(parsed[keys.IS_CROWD])[:tf.size(classes)]
    crowd = tf.pad(crowd, [[0, tf.size(classes) - tf.size(crowd)]]) != 0
    example = {
        "image": image,
        "boxes": normalized_to_pixels(normalized, size[0], size[1]),
        "classes": tf.where(crowd, CROWD_CLASS, classes),
        "source_id": parsed[keys.SOURCE_ID],
    }
    if with_masks:
        example["instance_map"] = instance_map_from_pngs(tf.sparse.to_dense(parsed[keys.MASK]), normalized, crowd,
                                                         tf.shape(image)[:2])
    if with_semantic:
        example["class_map"] = class_map_from_png(parsed[keys.SEMANTIC_ENCODED], tf.shape(image)[:2])
    return example


def class_map_from_png(png: tf.Tensor, image_shape: tf.Tensor) -> tf.Tensor:
    """A record's semantic PNG (or `""` for none) → int32 `[H, W]` (`image_shape`) label ids, resized
    by nearest neighbour to the decoded image (which a JPEG's shrinking may have made smaller)."""
    labels = tf.cond(tf.strings.length(png) > 0,
                     lambda: tf.cast(tf.io.decode_png(png, channels=1), tf.int32),
                     lambda: tf.fill(tf.concat([image_shape, [1]], axis=0), keys.IGNORE_LABEL))
    return tf.ensure_shape(tf.image.resize(labels, image_shape, method="nearest")[..., 0], [None, None])


def instance_map_from_pngs(pngs: tf.Tensor, boxes: tf.Tensor, crowd: tf.Tensor, image_shape: tf.Tensor) -> tf.Tensor:
    """`[N]` full-image 0/1 mask PNGs → int32 `[H, W]` (`image_shape`), `i + 1` where mask `i` is.

    Where masks overlap, a pixel goes to the object with the smaller box (`boxes`, `[N, 4]` xyxy),
    and to any object before a crowd region (`crowd`, bool `[N]`): a small object in front of a
    larger one is the common case. A record without masks gives a map of zeros.
    """
    count = tf.shape(pngs)[0]
    areas = (boxes[:count, 2] - boxes[:count, 0]) * (boxes[:count, 3] - boxes[:count, 1])
    # Painted in this order, each over the ones before: crowds first, then from largest to smallest.
    order = tf.argsort(tf.cast(~crowd[:count], tf.float32) * (tf.reduce_max(areas) + 1) - areas, stable=True)
    stored_shape = tf.cond(count > 0, lambda: tf.shape(tf.io.decode_png(pngs[0], channels=1))[:2],
                           lambda: image_shape)

    def paint(instances: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        return tf.where(tf.io.decode_png(pngs[index], channels=1)[..., 0] > 0, index + 1, instances)

    instances = tf.foldl(paint, order, initializer=tf.zeros(stored_shape, tf.int32))
    resized = tf.image.resize(instances[..., tf.newaxis], image_shape, method="nearest")[..., 0]
    return tf.ensure_shape(resized, [None, None])


def decode_image(encoded: tf.Tensor, shrink_for: Optional[int] = None) -> tf.Tensor:
    """Encoded JPEG/PNG → uint8 `[H, W, 3]`, shrunk by a JPEG ratio when `shrink_for` allows."""
    if shrink_for is None:
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        image.set_shape([None, None, 3])
        return image

    def jpeg() -> tf.Tensor:
        shape = tf.io.extract_jpeg_shape(encoded)
        longer = tf.reduce_max(shape[:2])
        # The largest ratio r whose ceil(longer / r) is still at least shrink_for.
        fits = tf.stack([(longer + r - 1) // r >= shrink_for for r in JPEG_RATIOS])
        index = tf.reduce_sum(tf.cast(fits, tf.int32)) - 1
        branches = [lambda r=r: tf.io.decode_jpeg(encoded, channels=3, ratio=r) for r in JPEG_RATIOS]
        return tf.switch_case(tf.maximum(index, 0), branches)

    is_jpeg = tf.strings.substr(encoded, 0, 3) == JPEG_MAGIC
    image = tf.cond(is_jpeg, jpeg, lambda: tf.io.decode_image(encoded, channels=3, expand_animations=False))
    image.set_shape([None, None, 3])
    return image


def stored_shape(encoded: tf.Tensor, decoded: tf.Tensor) -> tf.Tensor:
    """int32 `[2]` height and width of the image `encoded` holds: a JPEG's from its header (which
    `decode_image`'s shrinking leaves behind), another format's from `decoded`."""
    is_jpeg = tf.strings.substr(encoded, 0, 3) == JPEG_MAGIC
    return tf.cond(is_jpeg, lambda: tf.io.extract_jpeg_shape(encoded)[:2], lambda: tf.shape(decoded)[:2])


def normalized_to_pixels(boxes: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """`[N, 4]` normalized `xyxy` → pixels `xyxy` of an image `height` x `width`."""
    return tf.reshape(boxes, [-1, 4]) * tf.stack([width, height, width, height])


_GROUND_TRUTH_FEATURES = {
    keys.SOURCE_ID: tf.io.FixedLenFeature([], tf.string, default_value=""),
    keys.HEIGHT: tf.io.FixedLenFeature([], tf.int64),
    keys.WIDTH: tf.io.FixedLenFeature([], tf.int64),
    **{key: tf.io.VarLenFeature(tf.float32) for key in keys.BOX_KEYS},
    keys.CLASS_LABEL: tf.io.VarLenFeature(tf.int64),
    keys.IS_CROWD: tf.io.VarLenFeature(tf.int64),
    keys.DIFFICULT: tf.io.VarLenFeature(tf.int64),
    keys.MASK: tf.io.VarLenFeature(tf.string),
    **_SEMANTIC_FEATURES,
}


def decode_ground_truth(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """A batch of serialized Examples `[B]` → their annotations, without decoding images.

    Returns `{"source_id": [B], "height", "width": [B] int32 (pixels of the stored image),
    "boxes": ragged [B, None, 4] pixels xyxy, "classes": ragged [B, None] int32 from 0,
    "is_crowd", "difficult": ragged [B, None] bool, "mask_pngs": ragged [B, None] tf.string,
    "semantic_png": [B] tf.string}` (the objects' mask PNGs and the per-pixel label PNG, undecoded;
    none, and `""`, for a record without them). Records without the optional crowd and difficult
    flags read as all False.
    """
    parsed = tf.io.parse_example(serialized, _GROUND_TRUTH_FEATURES)
    ragged = {key: tf.RaggedTensor.from_sparse(value) for key, value in parsed.items()
              if isinstance(value, tf.sparse.SparseTensor)}
    height = tf.cast(parsed[keys.HEIGHT], tf.int32)
    width = tf.cast(parsed[keys.WIDTH], tf.int32)
    normalized = tf.stack([ragged[key] for key in keys.BOX_KEYS], axis=-1)
    size = tf.cast(tf.stack([width, height, width, height], axis=-1), tf.float32)
    boxes = normalized * size[:, tf.newaxis, :]
    classes = ragged[keys.CLASS_LABEL]

    def flag(key: str) -> tf.RaggedTensor:
        # A writer may omit a flag; the dense detour gives those objects False.
        dense = ragged[key].to_tensor(default_value=0, shape=tf.shape(classes.to_tensor()))
        return tf.RaggedTensor.from_tensor(tf.not_equal(dense, 0), lengths=classes.row_lengths())

    return {
        "source_id": parsed[keys.SOURCE_ID],
        "height": height,
        "width": width,
        "boxes": boxes,
        "classes": tf.cast(classes, tf.int32) - 1,
        "is_crowd": flag(keys.IS_CROWD),
        "difficult": flag(keys.DIFFICULT),
        "mask_pngs": ragged[keys.MASK],
        "semantic_png": parsed[keys.SEMANTIC_ENCODED],
    }
