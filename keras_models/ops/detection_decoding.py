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


def decode_detections(box_predictions: tf.Tensor, logits: tf.Tensor, anchors: tf.Tensor, image_size: int,
                      config: NmsConfig = NmsConfig()) -> dict[str, tf.Tensor]:
    """Per-class NMS over decoded boxes.

    Args:
      box_predictions: `[B, A, 4]` encoded. logits: `[B, A, C]`. anchors: `[A, 4]` pixels XYXY.
    Returns `{"boxes": [B, K, 4] pixels XYXY, "scores": [B, K], "classes": [B, K] int32 from 0,
    "num_detections": [B] int32}`, padded to K = `max_detections` (DESIGN.md §5).
    """
    boxes = decode_boxes(tf.cast(box_predictions, tf.float32), anchors)
    return per_class_nms(boxes[:, :, tf.newaxis, :], tf.sigmoid(tf.cast(logits, tf.float32)), image_size, config)


def per_class_nms(boxes: tf.Tensor, scores: tf.Tensor, image_size: int, config: NmsConfig) -> dict[str, tf.Tensor]:
    """`boxes [B, N, Q, 4]` pixels XYXY (Q = 1: shared by the classes; Q = C: one per class), `scores
    [B, N, C]` → DESIGN.md §5's padded detections, boxes clipped to the image."""
    # combined_non_max_suppression only needs one consistent corner order; ours is XYXY.
    nms = tf.image.combined_non_max_suppression(
        tf.clip_by_value(boxes, 0.0, float(image_size)), scores,
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
