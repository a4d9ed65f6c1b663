"""From head outputs to detections: decode boxes against anchors, then per-class NMS in the graph."""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from keras_models.ops.box_coding import decode_boxes


@dataclasses.dataclass(frozen=True)
class NmsConfig:
    score_threshold: float = 0.05
    iou_threshold: float = 0.5
    max_detections: int = 100
    max_detections_per_class: int = 100
    # The XLA form's candidates per class, chosen by score before NMS: it needs a static bound.
    pre_nms_top_k: int = 1000


def decode_detections(box_predictions: tf.Tensor, logits: tf.Tensor, anchors: tf.Tensor, image_size: int,
                      config: NmsConfig = NmsConfig(), xla_compatible: bool = False) -> dict[str, tf.Tensor]:
    """Per-class NMS over decoded boxes.

    Args:
      box_predictions: `[B, A, 4]` encoded. logits: `[B, A, C]`. anchors: `[A, 4]` pixels XYXY.
    Returns `{"boxes": [B, K, 4] pixels XYXY, "scores": [B, K], "classes": [B, K] int32 from 0,
    "num_detections": [B] int32}`, padded to K = `max_detections` (DESIGN.md §5).
    """
    boxes = decode_boxes(tf.cast(box_predictions, tf.float32), anchors)
    return per_class_nms(boxes[:, :, tf.newaxis, :], tf.sigmoid(tf.cast(logits, tf.float32)), image_size, config,
                         xla_compatible)


def per_class_nms(boxes: tf.Tensor, scores: tf.Tensor, image_size: int, config: NmsConfig,
                  xla_compatible: bool = False) -> dict[str, tf.Tensor]:
    """`boxes [B, N, Q, 4]` pixels XYXY (Q = 1: shared by the classes; Q = C: one per class), `scores
    [B, N, C]` → DESIGN.md §5's padded detections, boxes clipped to the image.

    `xla_compatible` selects a form XLA compiles (`predict` under `jit_compile`, TPUs):
    `combined_non_max_suppression` has no XLA kernel.
    """
    boxes = tf.clip_by_value(boxes, 0.0, float(image_size))
    if xla_compatible:
        return _padded_per_class_nms(boxes, scores, config)
    # combined_non_max_suppression only needs one consistent corner order; ours is XYXY.
    nms = tf.image.combined_non_max_suppression(
        boxes, scores,
        max_output_size_per_class=config.max_detections_per_class,
        max_total_size=config.max_detections,
        iou_threshold=config.iou_threshold,
        score_threshold=config.score_threshold,
        clip_boxes=False,
    )
    return {
        "boxes": nms.nmsed_boxes,
        "scores": nms.nmsed_scores,
        "classes": tf.cast(nms.nmsed_classes, tf.int32),
        "num_detections": tf.cast(nms.valid_detections, tf.int32),
    }


def _padded_per_class_nms(boxes: tf.Tensor, scores: tf.Tensor, config: NmsConfig) -> dict[str, tf.Tensor]:
    """The same detections as `combined_non_max_suppression` from static shapes only: each class's
    `pre_nms_top_k` best boxes, one batched `non_max_suppression_padded` over (image, class), then
    the `max_detections` best kept boxes of each image across classes."""
    num_boxes, shared, num_classes = boxes.shape[1], boxes.shape[2] == 1, scores.shape[2]
    candidates = min(config.pre_nms_top_k, num_boxes)
    per_class = min(config.max_detections_per_class, candidates)
    top = tf.math.top_k(tf.transpose(scores, [0, 2, 1]), candidates)  # [B, C, k]
    if shared:
        class_boxes = tf.gather(boxes[:, :, 0, :], top.indices, batch_dims=1)
    else:
        class_boxes = tf.gather(tf.transpose(boxes, [0, 2, 1, 3]), top.indices, batch_dims=2)  # [B, C, k, 4]
    kept, count = tf.image.non_max_suppression_padded(
        class_boxes, top.values, per_class, iou_threshold=config.iou_threshold,
        score_threshold=config.score_threshold, pad_to_max_output_size=True, canonicalized_coordinates=True)
    valid = tf.range(per_class) < count[..., tf.newaxis]  # [B, C, per_class]
    kept_boxes = tf.gather(class_boxes, kept, batch_dims=2)
    # Invalid rows score -1, below any kept box, so the top-k across classes takes them last.
    kept_scores = tf.where(valid, tf.gather(top.values, kept, batch_dims=2), -1.0)
    batch = tf.shape(scores)[0]
    classes = tf.broadcast_to(tf.range(num_classes)[:, tf.newaxis], [num_classes, per_class])
    flat_scores = tf.reshape(kept_scores, [batch, num_classes * per_class])
    shown_rows = min(config.max_detections, num_classes * per_class)
    best = tf.math.top_k(flat_scores, shown_rows)
    num_detections = tf.reduce_sum(tf.cast(best.values >= 0.0, tf.int32), axis=1)
    shown = tf.range(shown_rows) < num_detections[:, tf.newaxis]
    detections = {
        "boxes": tf.gather(tf.reshape(kept_boxes, [batch, -1, 4]), best.indices, batch_dims=1),
        "scores": best.values,
        "classes": tf.gather(tf.reshape(classes, [-1]), best.indices),
    }
    # Padding rows are zeros, as combined_non_max_suppression pads them.
    detections = {name: tf.where(shown[..., tf.newaxis] if name == "boxes" else shown, value, tf.zeros_like(value))
                  for name, value in detections.items()}
    padding = [[0, 0], [0, config.max_detections - shown_rows]]
    detections = {name: tf.pad(value, padding + [[0, 0]] * (value.shape.rank - 2))
                  for name, value in detections.items()}
    return {**detections, "num_detections": num_detections}
