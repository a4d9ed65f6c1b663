"""Anchor ↔ ground-truth matching and the training targets it yields.

Crowd regions (class `CROWD_CLASS`, COCO's `iscrowd`) are never matched. An anchor that is not
positive and lies mostly inside one (at least `CROWD_INSIDE_FRACTION` of its area) is ignored,
neither positive nor negative: it may well show one of the crowd's objects. This is Detectron's
rule (`TRAIN.CROWD_FILTER_THRESH` 0.7, for RPN anchors and Fast R-CNN proposals); Detectron2 and
Model Garden instead drop crowd boxes in training, so such anchors learn "background".
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from keras_models.ops.box_coding import encode_boxes
from keras_models.ops.box_format import pairwise_overlaps
from pipeline.record_decoding import CROWD_CLASS

BACKGROUND = -1  # class target of a negative anchor
IGNORED = -2     # class target of an anchor that counts in no loss
CROWD_INSIDE_FRACTION = 0.7


@dataclasses.dataclass(frozen=True)
class MatchingConfig:
    positive_iou: float = 0.5
    negative_iou: float = 0.4
    force_best_anchor: bool = True
    crowd_inside_fraction: float = CROWD_INSIDE_FRACTION


def inside_crowd(inside: tf.Tensor, classes: tf.Tensor, fraction: float) -> tf.Tensor:
    """`[A]` bool: which candidates lie at least `fraction` inside a box whose class (`classes`
    `[N]`) is `CROWD_CLASS`, from `inside` `[A, N]`, each candidate's fraction inside each box
    (`pairwise_overlaps`)."""
    inside = tf.where((classes == CROWD_CLASS)[tf.newaxis, :], inside, 0.0)
    return tf.reduce_max(tf.concat([inside, tf.zeros_like(inside[:, :1])], axis=1), axis=1) >= fraction


def assign_targets(anchors: tf.Tensor, boxes: tf.Tensor, classes: tf.Tensor,
                   config: MatchingConfig = MatchingConfig(), encode=encode_boxes) -> tuple[tf.Tensor, tf.Tensor]:
    """Targets for one image.

    Args:
      anchors: `[A, 4]` pixels XYXY. boxes: `[N, 4]` pixels XYXY. classes: `[N]` int32 from 0,
        where -1 marks padding (ignored) and `CROWD_CLASS` a crowd region.
    Returns:
      `class_targets [A]` int32: the matched box's class for positives (IoU ≥ positive_iou,
      plus each box's best anchor), `BACKGROUND` below negative_iou, `IGNORED` in between and
      inside a crowd region;
      `box_targets [A, 4]`: the matched box as `encode(box, anchor)` codes it (`box_coding`'s
      centre-size or edge coding), meaningful for positives only.
    """
    # A padding entry at the end keeps every gather valid when an image has no boxes.
    boxes = tf.concat([tf.reshape(tf.cast(boxes, tf.float32), [-1, 4]), tf.zeros([1, 4])], axis=0)
    classes = tf.concat([tf.cast(classes, tf.int32), [-1]], axis=0)
    valid = classes >= 0
    overlap, inside = pairwise_overlaps(anchors, boxes)  # [A, N + 1] each
    iou = tf.where(valid[tf.newaxis, :], overlap, -1.0)
    best_iou = tf.reduce_max(iou, axis=1)
    best_box = tf.argmax(iou, axis=1, output_type=tf.int32)
    positive = best_iou >= config.positive_iou
    if config.force_best_anchor:
        # Each real box claims its best anchor, even below the threshold, so no box goes unlearned.
        # When two boxes claim one anchor, the later box wins (segment max). Boxes that claim
        # nothing vote -1 instead of being masked out, which keeps every shape static for XLA;
        # anchors nobody votes for get the int32 minimum.
        claims = valid & (tf.reduce_max(iou, axis=0) > 0.0)
        claimed_anchor = tf.argmax(iou, axis=0, output_type=tf.int32)
        claiming_box = tf.where(claims, tf.range(tf.size(classes)), -1)
        claimant = tf.math.unsorted_segment_max(claiming_box, claimed_anchor, num_segments=tf.shape(anchors)[0])
        is_forced = claimant >= 0
        best_box = tf.where(is_forced, claimant, best_box)
        positive = positive | is_forced

    negative = (best_iou < config.negative_iou) & ~inside_crowd(inside, classes, config.crowd_inside_fraction)
    class_targets = tf.where(positive, tf.gather(classes, best_box), tf.where(negative, BACKGROUND, IGNORED))
    box_targets = tf.where(positive[:, tf.newaxis], encode(tf.gather(boxes, best_box), anchors), 0.0)
    return class_targets, box_targets


def assign_batch_targets(anchors: tf.Tensor, boxes: tf.Tensor, classes: tf.Tensor,
                         config: MatchingConfig = MatchingConfig(), encode=encode_boxes) -> tuple[tf.Tensor, tf.Tensor]:
    """`assign_targets` over a padded batch: boxes `[B, M, 4]`, classes `[B, M]` (-1 = padding)
    → class targets `[B, A]`, box targets `[B, A, 4]`."""
    return tf.map_fn(lambda item: assign_targets(anchors, item[0], item[1], config, encode), (boxes, classes),
                     fn_output_signature=(tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, 4], tf.float32)))
