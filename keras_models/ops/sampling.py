"""Training samples for the two stages of Faster R-CNN (Ren et al. 2015), in static shapes.

- The RPN learns from `sample_size` anchors per image (256), at most half of them positive:
  IoU ≥ 0.7 with a box, or a box's best anchor; negatives below 0.3; the band between is ignored.
- The second stage learns from `sample_size` ROIs per image (512): the proposals plus the ground
  truth boxes themselves, at most a quarter foreground (IoU ≥ 0.5), the rest background.

Sampling is random but reproducible: each image's draw is seeded by `(step, image index in the
global batch)`, so one device and several replicas sample the same anchors for the same image,
and the draw's keys come from an integer hash (`hashed_uniform`), so XLA draws them too.
Nothing here uses `boolean_mask` or another data-dependent shape: XLA and TPUs compile it.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import tensorflow as tf

from keras_models.ops.box_coding import RPN_VARIANCES, encode_boxes
from keras_models.ops.box_format import pairwise_overlaps
from keras_models.ops.matching import (BACKGROUND, CROWD_INSIDE_FRACTION, IGNORED, MatchingConfig, assign_targets,
                                       inside_crowd)


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    """How many examples each stage learns from per image, and which share is positive."""

    sample_size: int
    positive_fraction: float

    @property
    def positive_slots(self) -> int:
        """The most positives a sample holds: `round(sample_size * positive_fraction)`."""
        return int(round(self.sample_size * self.positive_fraction))


RPN_MATCHING = MatchingConfig(positive_iou=0.7, negative_iou=0.3, force_best_anchor=True)
RPN_SAMPLING = SamplingConfig(sample_size=256, positive_fraction=0.5)
ROI_SAMPLING = SamplingConfig(sample_size=512, positive_fraction=0.25)
ROI_FOREGROUND_IOU = 0.5
NO_BOX = -1  # `RoiTargets.matched_boxes` of a ROI that learns from no box


class RoiTargets(NamedTuple):
    """One image's sampled ROIs and what each learns, `R = sample_size` rows, foreground first.

    `rois [R, 4]` pixels XYXY; `class_targets [R]` int32: the class of the box a foreground ROI
    overlaps most, `BACKGROUND`, or `IGNORED` for rows left empty; `box_targets [R, 4]` that box
    encoded against the ROI (zero elsewhere); `matched_boxes [R]` int32: that box's row in the
    image's `boxes`, `NO_BOX` for background and empty rows, so that a later stage (masks) can
    take the box's own targets.
    """

    rois: tf.Tensor
    class_targets: tf.Tensor
    box_targets: tf.Tensor
    matched_boxes: tf.Tensor


def sample_balanced(positive: tf.Tensor, negative: tf.Tensor, config: SamplingConfig, seed: tf.Tensor) -> tf.Tensor:
    """`[N]` bool candidates → `[N]` bool sample: up to `round(sample_size * positive_fraction)`
    positives drawn at random, then negatives drawn at random to fill `sample_size` (fewer when
    there are not enough). `seed`: int `[2]`."""
    keys = hashed_uniform(tf.shape(positive)[0], seed)
    chosen_positive = _draw(positive, keys, config.positive_slots)
    negative_quota = config.sample_size - tf.reduce_sum(tf.cast(chosen_positive, tf.int32))
    return chosen_positive | _draw(negative & ~positive, keys, negative_quota)


def hashed_uniform(count, seed: tf.Tensor) -> tf.Tensor:
    """`[count]` float32 in [0, 1), a fixed function of `seed` (int `[2]`) on every device.

    `tf.random.stateless_uniform` gives other numbers under XLA than without it for the same seed
    (measured on CPU, Philox named explicitly too), which would make an XLA run sample other
    anchors than the same run uncompiled. This is MurmurHash3's 32-bit finalizer over the index
    mixed with the seed: plain integer arithmetic, the same everywhere.
    """
    seed = tf.cast(seed, tf.uint32)
    values = tf.range(count, dtype=tf.int32)
    mixed = tf.cast(values, tf.uint32) * tf.constant(0x9E3779B1, tf.uint32)
    mixed ^= seed[0] * tf.constant(0x85EBCA6B, tf.uint32) + seed[1] * tf.constant(0xC2B2AE35, tf.uint32)
    for shift, multiplier in ((16, 0x85EBCA6B), (13, 0xC2B2AE35)):
        mixed = (mixed ^ _shifted(mixed, shift)) * tf.constant(multiplier, tf.uint32)
    mixed ^= _shifted(mixed, 16)
    return tf.cast(_shifted(mixed, 8), tf.float32) / float(1 << 24)


def _shifted(values: tf.Tensor, bits: int) -> tf.Tensor:
    return tf.bitwise.right_shift(values, tf.constant(bits, tf.uint32))


def _draw(candidates: tf.Tensor, keys: tf.Tensor, quota) -> tf.Tensor:
    """The `quota` candidates with the largest keys (all of them if fewer)."""
    order = tf.argsort(tf.where(candidates, keys, -1.0), direction="DESCENDING", stable=True)
    rank = tf.math.invert_permutation(order)
    return candidates & (rank < quota)


def rpn_targets(anchors: tf.Tensor, boxes: tf.Tensor, classes: tf.Tensor, seed: tf.Tensor,
                matching: MatchingConfig = RPN_MATCHING,
                sampling: SamplingConfig = RPN_SAMPLING) -> tuple[tf.Tensor, tf.Tensor]:
    """The RPN's targets for one image.

    Args:
      anchors: `[A, 4]` pixels XYXY. boxes: `[M, 4]` pixels XYXY; classes `[M]` (-1 = padding,
        `CROWD_CLASS` a crowd region, as `assign_targets` treats them).
      seed: int `[2]`.
    Returns:
      `objectness [A]` int32: 1 for a sampled positive, 0 for a sampled negative, `IGNORED` for
      every other anchor; `box_targets [A, 4]`: the matched box encoded against the anchor with
      the RPN's unit weights (meaningful where objectness is 1).
    """
    any_object = tf.where(classes >= 0, 0, classes)  # the RPN does not tell classes apart; markers stay
    labels, box_targets = assign_targets(anchors, boxes, any_object, matching,
                                         encode=lambda boxes, anchors: encode_boxes(boxes, anchors, RPN_VARIANCES))
    sampled = sample_balanced(labels >= 0, labels == BACKGROUND, sampling, seed)
    objectness = tf.where(sampled, tf.cast(labels >= 0, tf.int32), IGNORED)
    return objectness, box_targets


def roi_targets(proposals: tf.Tensor, proposal_valid: tf.Tensor, boxes: tf.Tensor, classes: tf.Tensor,
                seed: tf.Tensor, sampling: SamplingConfig = ROI_SAMPLING,
                foreground_iou: float = ROI_FOREGROUND_IOU, encode=encode_boxes) -> RoiTargets:
    """The second stage's training ROIs for one image.

    Args:
      proposals: `[P, 4]` pixels XYXY (the RPN's, gradient stopped); proposal_valid `[P]` bool
        (False: padding). boxes `[M, 4]`, classes `[M]` int32 from 0 (-1 = padding, `CROWD_CLASS` a
        crowd region: a proposal mostly inside one is sampled neither as foreground nor as
        background). seed: int `[2]`.
    Returns `RoiTargets`, the box targets encoded against the ROI by `encode` (`box_coding`'s
    centre-size coding with Detectron's second-stage weights 10, 10, 5, 5, or the edge coding of
    a probabilistic head).
    """
    boxes = tf.reshape(tf.cast(boxes, tf.float32), [-1, 4])
    classes = tf.cast(classes, tf.int32)
    # The ground truth joins the candidates (padding rows never become candidates), so every box
    # has at least one foreground ROI from the first step.
    candidates = tf.concat([tf.cast(proposals, tf.float32), boxes], axis=0)
    is_candidate = tf.concat([proposal_valid, classes >= 0], axis=0)
    valid = tf.concat([classes >= 0, [False]], axis=0)
    padded_boxes = tf.concat([boxes, tf.zeros([1, 4])], axis=0)  # keeps gathers valid without boxes
    overlap, inside = pairwise_overlaps(candidates, padded_boxes)
    iou = tf.where(valid[tf.newaxis, :], overlap, -1.0)
    best_iou, best_box = tf.reduce_max(iou, axis=1), tf.argmax(iou, axis=1, output_type=tf.int32)
    foreground = is_candidate & (best_iou >= foreground_iou)
    background = is_candidate & ~foreground & ~inside_crowd(inside, tf.concat([classes, [-1]], 0), CROWD_INSIDE_FRACTION)
    sampled = sample_balanced(foreground, background, sampling, seed)

    # The sampled rows first (foreground before background), then the rest, cut to sample_size.
    rank_key = tf.cast(sampled, tf.int32) * 2 + tf.cast(foreground, tf.int32)
    order, filled = _first(tf.argsort(rank_key, direction="DESCENDING", stable=True), sampling.sample_size)
    rois = tf.gather(candidates, order)
    kept = tf.gather(sampled, order) & filled
    matched_boxes = tf.gather(best_box, order)
    class_targets = tf.where(tf.gather(foreground, order), tf.gather(tf.concat([classes, [-1]], 0), matched_boxes),
                             BACKGROUND)
    class_targets = tf.where(kept, class_targets, IGNORED)
    learns_a_box = class_targets >= 0
    box_targets = tf.where(learns_a_box[:, tf.newaxis], encode(tf.gather(padded_boxes, matched_boxes), rois), 0.0)
    return RoiTargets(rois, class_targets, box_targets, tf.where(learns_a_box, matched_boxes, NO_BOX))


def _first(indices: tf.Tensor, count: int) -> tuple[tf.Tensor, tf.Tensor]:
    """`(the first count entries, [count] bool: which are real)`; when there are fewer, the last
    entry fills the rest, so that the length is static."""
    padding = tf.maximum(count - tf.size(indices), 0)
    padded = tf.concat([indices, tf.repeat(indices[-1:], padding)], axis=0)
    return padded[:count], tf.range(count) < tf.size(indices)
