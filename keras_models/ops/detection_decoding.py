"""From head outputs to detections: decode boxes against anchors, then per-class NMS in the graph."""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from keras_models.ops.box_coding import decode_boxes, decode_edges, edge_scales_to_pixels
from keras_models.ops.box_uncertainty import NO_UNCERTAINTY, edge_distribution, split_box_predictions
from keras_models.ops.variance_voting import variance_voting


@dataclasses.dataclass(frozen=True)
class NmsConfig:
    score_threshold: float = 0.05
    iou_threshold: float = 0.5
    max_detections: int = 100
    max_detections_per_class: int = 100
    # With box stddev: each kept box becomes its neighbours' inverse-variance weighted average.
    variance_voting: bool = False
    # The XLA form's candidates per class, chosen by score before NMS: it needs a static bound.
    pre_nms_top_k: int = 1000


def decode_detections(box_predictions: tf.Tensor, logits: tf.Tensor, anchors: tf.Tensor, image_size: int,
                      config: NmsConfig = NmsConfig(), xla_compatible: bool = False,
                      box_uncertainty: str = NO_UNCERTAINTY) -> dict[str, tf.Tensor]:
    """Per-class NMS over decoded boxes.

    Args:
      box_predictions: `[B, A, 4]` centre-size coded, or with a `box_uncertainty` distribution
        `[B, A, 8]`: edge-coded locations, then log-scales. logits: `[B, A, C]`. anchors: `[A, 4]`
        pixels XYXY.
    Returns `{"boxes": [B, K, 4] pixels XYXY, "scores": [B, K], "classes": [B, K] int32 from 0,
    "num_detections": [B] int32}`, padded to K = `max_detections` (DESIGN.md §5); with a
    distribution also `"box_stddev": [B, K, 4]`, each edge's standard deviation in pixels.
    """
    scores = tf.sigmoid(tf.cast(logits, tf.float32))
    if box_uncertainty == NO_UNCERTAINTY:
        boxes = decode_boxes(tf.cast(box_predictions, tf.float32), anchors)
        return per_class_nms(boxes[:, :, tf.newaxis, :], scores, image_size, config, xla_compatible)
    locations, log_scales = split_box_predictions(box_predictions)
    stddev = edge_distribution(locations, log_scales, box_uncertainty).stddev()
    return per_class_nms(decode_edges(locations, anchors)[:, :, tf.newaxis, :], scores, image_size, config,
                         xla_compatible, edge_scales_to_pixels(stddev, anchors)[:, :, tf.newaxis, :])


def per_class_nms(boxes: tf.Tensor, scores: tf.Tensor, image_size: int, config: NmsConfig,
                  xla_compatible: bool = False, box_stddev: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
    """`boxes [B, N, Q, 4]` pixels XYXY (Q = 1: shared by the classes; Q = C: one per class), `scores
    [B, N, C]` → DESIGN.md §5's padded detections, boxes clipped to the image. `box_stddev`, shaped
    as `boxes`, follows its boxes into the output as `"box_stddev" [B, K, 4]`.

    `xla_compatible` selects a form XLA compiles (`predict` under `jit_compile`, TPUs):
    `combined_non_max_suppression` has no XLA kernel. That form is also the one that can carry
    `box_stddev`, as it knows which input box each output is.
    """
    boxes = tf.clip_by_value(boxes, 0.0, float(image_size))
    if xla_compatible or box_stddev is not None:
        return _padded_per_class_nms(boxes, scores, config, box_stddev)
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


def _padded_per_class_nms(boxes: tf.Tensor, scores: tf.Tensor, config: NmsConfig,
                          box_stddev: tf.Tensor | None) -> dict[str, tf.Tensor]:
    """The same detections as `combined_non_max_suppression` from static shapes only: each class's
    `pre_nms_top_k` best boxes, one batched `non_max_suppression_padded` over (image, class), then
    the `max_detections` best kept boxes of each image across classes."""
    num_boxes, shared, num_classes = boxes.shape[1], boxes.shape[2] == 1, scores.shape[2]
    candidates = min(config.pre_nms_top_k, num_boxes)
    per_class = min(config.max_detections_per_class, candidates)
    top = tf.math.top_k(tf.transpose(scores, [0, 2, 1]), candidates)  # [B, C, k]

    def per_class_candidates(values):  # [B, N, Q, 4] → [B, C, k, 4]
        if shared:
            return tf.gather(values[:, :, 0, :], top.indices, batch_dims=1)
        return tf.gather(tf.transpose(values, [0, 2, 1, 3]), top.indices, batch_dims=2)

    class_boxes = per_class_candidates(boxes)
    kept, count = tf.image.non_max_suppression_padded(
        class_boxes, top.values, per_class, iou_threshold=config.iou_threshold,
        score_threshold=config.score_threshold, pad_to_max_output_size=True, canonicalized_coordinates=True)
    valid = tf.range(per_class) < count[..., tf.newaxis]  # [B, C, per_class]
    # Invalid rows score -1, below any kept box, so the top-k across classes takes them last.
    kept_scores = tf.where(valid, tf.gather(top.values, kept, batch_dims=2), -1.0)
    batch = tf.shape(scores)[0]
    classes = tf.broadcast_to(tf.range(num_classes)[:, tf.newaxis], [num_classes, per_class])
    flat_scores = tf.reshape(kept_scores, [batch, num_classes * per_class])
    shown_rows = min(config.max_detections, num_classes * per_class)
    best = tf.math.top_k(flat_scores, shown_rows)
    num_detections = tf.reduce_sum(tf.cast(best.values >= 0.0, tf.int32), axis=1)
    shown = tf.range(shown_rows) < num_detections[:, tf.newaxis]

    def best_of(kept_values):  # [B, C, per_class, 4] → the shown rows, best first: [B, shown_rows, 4]
        return tf.gather(tf.reshape(kept_values, [batch, -1, 4]), best.indices, batch_dims=1)

    shown_boxes = best_of(tf.gather(class_boxes, kept, batch_dims=2))
    class_stddev = None if box_stddev is None else per_class_candidates(box_stddev)
    if class_stddev is not None and config.variance_voting:
        # Only the shown boxes vote, each among its own class's candidates: memory B·K·k·4, not B·C·K·k·4.
        shown_class = best.indices // per_class  # [B, shown_rows]

        def of_shown_class(values):  # [B, C, k, ...] → [B, shown_rows, k, ...]
            return tf.gather(values, shown_class, batch_dims=1)

        shown_boxes = variance_voting(shown_boxes[:, :, tf.newaxis, :], of_shown_class(class_boxes),
                                      of_shown_class(class_stddev),
                                      of_shown_class(top.values > config.score_threshold))[:, :, 0, :]
    detections = {"boxes": shown_boxes, "scores": best.values,
                  "classes": tf.gather(tf.reshape(classes, [-1]), best.indices)}
    if class_stddev is not None:
        # A voted box keeps its own stddev: its neighbours are not independent measurements.
        detections["box_stddev"] = best_of(tf.gather(class_stddev, kept, batch_dims=2))
    # Padding rows are zeros, as combined_non_max_suppression pads them.
    detections = {name: tf.where(shown[..., tf.newaxis] if value.shape.rank == 3 else shown, value,
                                 tf.zeros_like(value))
                  for name, value in detections.items()}
    padding = [[0, 0], [0, config.max_detections - shown_rows]]
    detections = {name: tf.pad(value, padding + [[0, 0]] * (value.shape.rank - 2))
                  for name, value in detections.items()}
    return {**detections, "num_detections": num_detections}
