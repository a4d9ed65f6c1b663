"""RetinaNet (Lin et al. 2017) on the shared anchors, matching, losses and NMS modules.

`fit` takes the input pipeline's batches as they come: `(images, {"boxes", "classes"})`
with ragged targets on one device, or padded ones (class -1) under a strategy.
Training targets are assigned inside `train_step`, so the input pipeline stays
model-agnostic. `predict` returns DESIGN.md §5's padded detections.
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from boxflow.errors import BoxflowError
from keras_models.detectors.training_steps import DetectorSteps, global_count, without_blank_images
from keras_models.ops.anchors import AnchorConfig, image_anchors
from keras_models.layers.backbones import build_backbone
from keras_models.ops.box_uncertainty import NO_UNCERTAINTY, box_outputs, target_encoder
from keras_models.ops.detection_decoding import NmsConfig, decode_detections
from keras_models.layers.feature_pyramid import FeaturePyramid
from keras_models.layers.heads import PredictionHead, check_head_norm
from keras_models.ops.losses import detection_loss, positive_anchors
from keras_models.ops.matching import assign_batch_targets
from pipeline.ragged_padding import ragged_to_padded

PRIOR_PROBABILITY = 0.01


@keras.saving.register_keras_serializable(package="boxflow")
class RetinaNet(DetectorSteps):
    """Images `[B, S, S, 3]` float32 in 0..255 → raw `{"box_predictions", "logits"}`.

    Sizes: `S` must be a multiple of 128 (the P7 stride). FPN and head width and depth
    are free, so a CPU-sized model is a narrow one rather than a different class.
    `norm` is the backbone's normalization (`keras_models.layers.normalization`); `head_norm`
    `"group"` adds GroupNorm to the FPN and the heads. `box_uncertainty` `"laplace"` or
    `"normal"` makes the box head probabilistic (`ops/box_uncertainty`): `box_predictions` is then
    `[B, A, 8]`, each edge's location and log-scale in edge coding, and `detect` adds
    `"box_stddev"`; `variance_voting` then refines each kept box from its neighbours
    (`ops/variance_voting`).
    """

    LOSS_NAMES = ("loss", "class_loss", "box_loss")
    ANCHOR_LAYOUT = AnchorConfig()  # P3-P7, 3 scales x 3 ratios, sides 4x the stride

    def __init__(self, num_classes: int, image_size: int, backbone: str = "tiny", backbone_width: int = 32,
                 fpn_channels: int = 64, head_depth: int = 2, head_channels: int = 64,
                 anchor_size_multiplier: float = 4.0, anchor_aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0),
                 score_threshold: float = 0.05, iou_threshold: float = 0.5,
                 max_detections: int = 100, box_loss_weight: float = 1.0, norm: str = "batch",
                 head_norm: str = "none", box_uncertainty: str = NO_UNCERTAINTY, variance_voting: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        if image_size % 128:
            raise BoxflowError(f"--image-size must be a multiple of 128 for P3–P7, got {image_size}")
        self.num_classes, self.image_size, self.backbone_name = num_classes, image_size, backbone
        self.backbone_width, self.fpn_channels = backbone_width, fpn_channels
        self.head_depth, self.head_channels = head_depth, head_channels
        self.anchor_size_multiplier, self.box_loss_weight = anchor_size_multiplier, box_loss_weight
        check_head_norm(head_norm)
        self._set_box_uncertainty(box_uncertainty, variance_voting)
        self.norm, self.head_norm = norm, head_norm
        self.nms = NmsConfig(score_threshold=score_threshold, iou_threshold=iou_threshold,
                             max_detections=max_detections, max_detections_per_class=max_detections,
                             variance_voting=variance_voting)
        self.anchor_config = dataclasses.replace(self.ANCHOR_LAYOUT, size_multiplier=anchor_size_multiplier,
                                                 aspect_ratios=tuple(float(ratio) for ratio in anchor_aspect_ratios))
        self.anchors = image_anchors(image_size, self.anchor_config)
        per_location = self.anchor_config.anchors_per_location
        self.backbone = build_backbone(backbone, image_size, backbone_width, norm)
        group_norm = head_norm == "group"
        self.pyramid = FeaturePyramid(fpn_channels, group_norm, name="fpn")
        self.class_head = PredictionHead(per_location, num_classes, head_depth, head_channels, PRIOR_PROBABILITY,
                                         group_norm, name="class_head")
        # A probabilistic head predicts each edge's location and log-scale.
        self.box_head = PredictionHead(per_location, box_outputs(box_uncertainty), head_depth, head_channels,
                                       group_norm=group_norm, name="box_head")
        self._make_trackers()
        # Create every variable now, inside whatever strategy scope constructs the model;
        # lazily built layers would otherwise make plain variables on first use.
        self(keras.ops.zeros((1, image_size, image_size, 3)))

    def call(self, images, training=False):
        levels = self.pyramid(self.backbone(images, training=training))
        return {"box_predictions": self.box_head(levels), "logits": self.class_head(levels)}

    def _detection_losses(self, images, targets, training: bool) -> dict:
        boxes, classes = targets["boxes"], targets["classes"]
        if isinstance(boxes, tf.RaggedTensor):
            boxes, classes = ragged_to_padded(boxes, classes)
        class_targets, box_targets = assign_batch_targets(self.anchors, boxes, classes,
                                                          encode=target_encoder(self.box_uncertainty))
        class_targets = without_blank_images(class_targets, targets)
        # Normalizing by the positives of the whole global batch makes the replicas' losses
        # (and so their summed gradients) add up to exactly the one-device loss.
        positives = global_count(positive_anchors(class_targets))
        outputs = self(images, training=training)
        return detection_loss(class_targets, box_targets, outputs["logits"], outputs["box_predictions"],
                              self.box_loss_weight, positives, self.box_uncertainty)

    def detect(self, images) -> dict:
        """`{"boxes": [B, K, 4] pixels XYXY, "scores", "classes" (from 0), "num_detections"}`, and
        `"box_stddev" [B, K, 4]` pixels with a probabilistic head."""
        outputs = self(images, training=False)
        return self._calibrated(decode_detections(outputs["box_predictions"], outputs["logits"], self.anchors,
                                                  self.image_size, self.nms, self._compiled, self.box_uncertainty))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_classes": self.num_classes, "image_size": self.image_size, "backbone": self.backbone_name,
            "backbone_width": self.backbone_width, "fpn_channels": self.fpn_channels,
            "head_depth": self.head_depth, "head_channels": self.head_channels,
            "anchor_size_multiplier": self.anchor_size_multiplier,
            "anchor_aspect_ratios": list(self.anchor_config.aspect_ratios),
            "score_threshold": self.nms.score_threshold, "iou_threshold": self.nms.iou_threshold,
            "max_detections": self.nms.max_detections, "box_loss_weight": self.box_loss_weight,
            "box_uncertainty": self.box_uncertainty, "variance_voting": self.nms.variance_voting,
            "norm": self.norm, "head_norm": self.head_norm,
        }
