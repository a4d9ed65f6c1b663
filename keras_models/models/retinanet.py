"""RetinaNet (Lin et al. 2017) on the shared anchors, matching, losses and NMS modules.

`fit` takes the input pipeline's batches as they come: `(images, {"boxes", "classes"})`
with ragged targets on one device, or padded ones (class -1) under a strategy.
Training targets are assigned inside `train_step`, so the input pipeline stays
model-agnostic. `predict` returns DESIGN.md §5's padded detections.
"""

from __future__ import annotations

import keras

from keras_models.models.dense_prediction_steps import global_count, padded_targets, without_blank_images
from keras_models.models.detector import Detector
from keras_models.models.retinanet_config import RetinaNetConfig
from keras_models.ops.anchors import image_anchors
from keras_models.layers.backbones import build_backbone
from keras_models.ops.box_uncertainty import box_outputs, target_encoder
from keras_models.ops.detection_decoding import NmsConfig, decode_detections
from keras_models.layers.feature_pyramid import FeaturePyramid
from keras_models.layers.heads import PredictionHead
from keras_models.ops.losses import detection_loss, positive_anchors
from keras_models.ops.matching import assign_batch_targets

PRIOR_PROBABILITY = 0.01


@keras.saving.register_keras_serializable(package="boxflow")
class RetinaNet(Detector):
    """Images `[B, S, S, 3]` float32 in 0..255 → raw `{"box_predictions", "logits"}`.

    Built from a `RetinaNetConfig`. FPN and head width and depth are free, so a CPU-sized model is
    a narrow one rather than a different class. `norm` is the backbone's normalization
    (`keras_models.layers.normalization`); `head_norm` `"group"` adds GroupNorm to the FPN and the
    heads. `box_uncertainty` `"laplace"` or `"normal"` makes the box head probabilistic
    (`ops/box_uncertainty`): `box_predictions` is then `[B, A, 8]`, each edge's location and
    log-scale in edge coding, and `detect` adds `"box_stddev"`; `variance_voting` then refines
    each kept box from its neighbours (`ops/variance_voting`).
    """

    CONFIG = RetinaNetConfig
    LOSS_NAMES = ("loss", "class_loss", "box_loss")

    def __init__(self, config: RetinaNetConfig, **kwargs):
        super().__init__(config, **kwargs)
        self.nms = NmsConfig(score_threshold=config.score_threshold, iou_threshold=config.iou_threshold,
                             max_detections=config.max_detections, max_detections_per_class=config.max_detections,
                             variance_voting=config.variance_voting)
        self.anchor_config = config.anchor_layout()
        self.anchors = image_anchors(config.image_size, self.anchor_config)
        per_location = self.anchor_config.anchors_per_location
        self.backbone = build_backbone(config.backbone, config.image_size, config.backbone_width, config.norm)
        group_norm = config.head_norm == "group"
        self.pyramid = FeaturePyramid(config.fpn_channels, group_norm, name="fpn")
        self.class_head = PredictionHead(per_location, config.num_classes, config.head_depth, config.head_channels,
                                         PRIOR_PROBABILITY, group_norm, name="class_head")
        # A probabilistic head predicts each edge's location and log-scale.
        self.box_head = PredictionHead(per_location, box_outputs(config.box_uncertainty), config.head_depth,
                                       config.head_channels, group_norm=group_norm, name="box_head")
        self._make_trackers()
        # Create every variable now, inside whatever strategy scope constructs the model;
        # lazily built layers would otherwise make plain variables on first use.
        self(keras.ops.zeros((1, config.image_size, config.image_size, 3)))

    def call(self, images, training=False):
        levels = self.pyramid(self.backbone(images, training=training))
        return {"box_predictions": self.box_head(levels), "logits": self.class_head(levels)}

    def _losses_for(self, images, targets, training: bool) -> dict:
        boxes, classes = padded_targets(targets)
        class_targets, box_targets = assign_batch_targets(self.anchors, boxes, classes,
                                                          encode=target_encoder(self.box_uncertainty))
        class_targets = without_blank_images(class_targets, targets)
        # Normalizing by the positives of the whole global batch makes the replicas' losses
        # (and so their summed gradients) add up to exactly the one-device loss.
        positives = global_count(positive_anchors(class_targets))
        outputs = self(images, training=training)
        return detection_loss(class_targets, box_targets, outputs["logits"], outputs["box_predictions"],
                              self.config.box_loss_weight, positives, self.box_uncertainty)

    def detect(self, images) -> dict:
        """`{"boxes": [B, K, 4] pixels XYXY, "scores", "classes" (from 0), "num_detections"}`, and
        `"box_stddev" [B, K, 4]` pixels with a probabilistic head."""
        outputs = self(images, training=False)
        return self._calibrated(decode_detections(outputs["box_predictions"], outputs["logits"], self.anchors,
                                                  self.image_size, self.nms, self._compiled, self.box_uncertainty))
