"""Region proposals from the RPN's outputs (Ren et al. 2015, with FPN's per-level selection):
per level the `pre_nms_top_k` most object-like anchors, decoded and clipped to the image, then
one class-agnostic NMS over all levels, keeping the `post_nms_top_k` best. Static shapes: the
result is padded, with a mask of the real rows."""

from __future__ import annotations

import dataclasses
from typing import Sequence

import tensorflow as tf

from keras_models.ops.box_coding import RPN_VARIANCES, decode_boxes


@dataclasses.dataclass(frozen=True)
class ProposalConfig:
    pre_nms_top_k: int = 2000  # per level
    post_nms_top_k: int = 1000  # per image, across levels
    nms_iou: float = 0.7


def generate_proposals(logits: Sequence[tf.Tensor], deltas: Sequence[tf.Tensor], anchors: Sequence[tf.Tensor],
                       image_size: int, config: ProposalConfig,
                       xla_compatible: bool = False) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Proposals for a batch.

    Args:
      logits: per level `[B, N_l]` objectness logits. deltas: per level `[B, N_l, 4]` encoded boxes.
      anchors: per level `[N_l, 4]` pixels XYXY.
      xla_compatible: NMS by `non_max_suppression_padded`, which XLA compiles (for `--xla` and
        TPUs), instead of `combined_non_max_suppression`, which it cannot but which is faster
        elsewhere (6.8 against 11.0 ms compiled, 24.7 uncompiled, for 2 x 3000 boxes on CPU).
        Both keep the same boxes.
    Returns:
      `(boxes [B, K, 4] pixels XYXY, scores [B, K] objectness probabilities, valid [B, K] bool)`,
      best first, K = `post_nms_top_k`; rows past an image's proposals are zeros and not valid.
      Boxes carry no gradient: the second stage learns from where they are, not how they moved.
    """
    candidates, scores = [], []
    for level_logits, level_deltas, level_anchors in zip(logits, deltas, anchors):
        top = tf.math.top_k(tf.cast(level_logits, tf.float32), min(config.pre_nms_top_k, level_anchors.shape[0]))
        chosen = tf.gather(tf.cast(level_deltas, tf.float32), top.indices, batch_dims=1)
        boxes = decode_boxes(chosen, tf.gather(level_anchors, top.indices), RPN_VARIANCES)
        candidates.append(tf.clip_by_value(boxes, 0.0, float(image_size)))
        scores.append(tf.sigmoid(top.values))
    boxes, scores = tf.concat(candidates, axis=1), tf.concat(scores, axis=1)
    if xla_compatible:
        kept, count = tf.image.non_max_suppression_padded(
            boxes, scores, config.post_nms_top_k, iou_threshold=config.nms_iou, pad_to_max_output_size=True,
            canonicalized_coordinates=True)
        valid = tf.range(config.post_nms_top_k)[tf.newaxis, :] < count[:, tf.newaxis]
        boxes = tf.gather(boxes, kept, batch_dims=1) * tf.cast(valid, tf.float32)[..., tf.newaxis]
        scores = tf.gather(scores, kept, batch_dims=1) * tf.cast(valid, tf.float32)
    else:
        # combined_non_max_suppression only needs one consistent corner order; ours is XYXY.
        nms = tf.image.combined_non_max_suppression(
            boxes[:, :, tf.newaxis, :], scores[..., tf.newaxis], max_output_size_per_class=config.post_nms_top_k,
            max_total_size=config.post_nms_top_k, iou_threshold=config.nms_iou, score_threshold=0.0,
            clip_boxes=False)
        boxes, scores = nms.nmsed_boxes, nms.nmsed_scores
        valid = tf.range(config.post_nms_top_k)[tf.newaxis, :] < nms.valid_detections[:, tf.newaxis]
    return tf.stop_gradient(boxes), tf.stop_gradient(scores), valid
