"""Panoptic FPN's merge of instances and stuff into one label per pixel (Kirillov et al. 2019, the
heuristic of Detectron2's `combine_semantic_and_instance_outputs`), in the graph with static shapes.

1. Instances are taken in descending score, those below `score_threshold` left out.
2. Each one's box-relative mask is pasted into the frame (`ops/mask_pasting`) and thresholded at
   0.5. An instance more than `overlap_threshold` of whose pixels are already taken by a
   higher-scoring one is dropped; otherwise it takes its pixels that are still free.
3. The free pixels take the semantic map's stuff class; a stuff class covering fewer than
   `stuff_min_area` of the frame's pixels (a share) is dropped there.
4. What is left is void.

Step 2 is sequential by nature (whether an instance survives depends on the ones before it): it is
a `tf.while_loop` over the K detection rows, pasting one mask per image per iteration, so the memory
is `[B, S, S]` whatever K, and XLA compiles it (no data-dependent shape, no host round trip) —
Model Garden's panoptic generation loops in Python and does not run on TPUs.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import tensorflow as tf

from keras_models.ops.mask_pasting import paste_masks

MASK_THRESHOLD = 0.5  # a pasted probability at or above it is the instance's pixel, as in the export
LABELS = 256  # label ids fit a byte (`record_schema.IGNORE_LABEL` is the last)


@dataclasses.dataclass(frozen=True)
class MergeConfig:
    """The merge's thresholds: the lowest instance score kept, the largest share of an instance
    already taken that still lets it in, and the smallest stuff region as a share of the frame."""

    score_threshold: float = 0.5
    overlap_threshold: float = 0.5
    stuff_min_area: float = 0.004


class PanopticMaps(NamedTuple):
    """int32 `[B, S, S]` each: `categories` (0 void, else a label-map id) and `instances` (0 for
    stuff and void, else the detection's row + 1)."""

    categories: tf.Tensor
    instances: tf.Tensor


def merge_panoptic(masks: tf.Tensor, boxes: tf.Tensor, scores: tf.Tensor, classes: tf.Tensor,
                   num_detections: tf.Tensor, stuff: tf.Tensor, config: MergeConfig) -> PanopticMaps:
    """Detections — `masks` float `[B, K, M, M]` (box-relative probabilities), `boxes` `[B, K, 4]`
    pixels XYXY of the frame, `scores` `[B, K]`, `classes` int `[B, K]` from 0, `num_detections`
    `[B]` — and `stuff` int `[B, S, S]` (each pixel's stuff label id from the semantic branch, 0
    where it sees a thing or background) → the frame's `PanopticMaps`."""
    stuff = tf.cast(stuff, tf.int32)
    side = stuff.shape[1] or tf.shape(stuff)[1]
    batch, rows = tf.shape(scores)[0], tf.shape(scores)[1]
    scores = tf.cast(scores, tf.float32)
    eligible = ((tf.range(rows)[tf.newaxis, :] < tf.cast(num_detections, tf.int32)[:, tf.newaxis])
                & (scores >= config.score_threshold))
    order = tf.argsort(tf.where(eligible, scores, -1.0), axis=1, direction="DESCENDING", stable=True)
    masks, boxes = tf.gather(masks, order, batch_dims=1), tf.gather(boxes, order, batch_dims=1)
    eligible = tf.gather(eligible, order, batch_dims=1)

    def claim(step, taken):
        mask = paste_masks(masks[:, step:step + 1], boxes[:, step:step + 1], side, side)[:, 0] >= MASK_THRESHOLD
        area = tf.reduce_sum(tf.cast(mask, tf.float32), axis=[1, 2])
        hidden = tf.reduce_sum(tf.cast(mask & (taken > 0), tf.float32), axis=[1, 2])
        kept = eligible[:, step] & (area > 0) & (hidden <= config.overlap_threshold * area)
        row = tf.gather(order, step, axis=1) + 1  # [B]: the detection's own row + 1
        free = kept[:, tf.newaxis, tf.newaxis] & mask & (taken == 0)
        return step + 1, tf.where(free, row[:, tf.newaxis, tf.newaxis], taken)

    _, instances = tf.while_loop(lambda step, _: step < rows, claim,
                                 (tf.constant(0), tf.zeros([batch, side, side], tf.int32)))
    row_classes = tf.concat([tf.zeros([batch, 1], tf.int32), tf.cast(classes, tf.int32) + 1], axis=1)
    thing_categories = tf.gather(row_classes, instances, batch_dims=1)
    free_stuff = tf.where(instances == 0, stuff, 0)
    categories = tf.where(instances > 0, thing_categories, _large_regions(free_stuff, config.stuff_min_area))
    return PanopticMaps(categories, instances)


def _large_regions(labels: tf.Tensor, min_area: float) -> tf.Tensor:
    """`labels` int32 `[B, S, S]` with every label covering less than `min_area` of its image's
    pixels set to 0 (labels 0..255; a scatter-add per image and label, no one-hot map)."""
    batch = tf.shape(labels)[0]
    pixels = tf.cast(tf.shape(labels)[1] * tf.shape(labels)[2], tf.float32)
    flat = labels + LABELS * tf.range(batch)[:, tf.newaxis, tf.newaxis]
    areas = tf.math.unsorted_segment_sum(tf.ones_like(flat, tf.float32), flat, batch * LABELS)
    large = tf.reshape(areas >= min_area * pixels, [batch, LABELS])
    return tf.where(tf.gather(large, labels, batch_dims=1), labels, 0)
