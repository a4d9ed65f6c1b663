"""Faster R-CNN (Ren et al. 2015) with FPN (Lin et al. 2017) on the shared backbone, pyramid,
anchors, matching, box coding and NMS.

Stage one, the RPN, scores every anchor of P2-P6 (one size per level, three aspect ratios) and
proposes boxes (`ops/proposals`). Stage two pools each proposal from its pyramid level with ROI
Align (`ops/roi_align`) and classifies it, refining its box per class (`layers/two_stage_heads`).
With `pyramid=False` the model is the original single-level Faster R-CNN: both stages read the
backbone's C4 (stride 16), whose anchors have 3 sizes x 3 aspect ratios.
Training samples anchors and ROIs inside `train_step` (`ops/sampling`), so the input pipeline
stays model-agnostic, and normalizes each loss by its sample count over the global batch.
`predict` returns DESIGN.md §5's padded detections.

A training step runs in stages, as Model Garden's Mask R-CNN does: `_rpn_stage` gives the RPN's
losses and proposals; `_box_stage` samples ROIs from them, each with its matched ground-truth
box, and gives the box head's losses; `_after_box_stage` is where a later stage (Mask R-CNN's
masks) takes those ROIs and boxes. At inference `_call_box_outputs` runs the box head on ROIs.
"""

from __future__ import annotations

from typing import NamedTuple

import keras
import tensorflow as tf

from keras_models.models.dense_prediction_steps import global_count, padded_targets, without_blank_images
from keras_models.models.detector import Detector
from keras_models.models.faster_rcnn_config import SINGLE_LEVEL, FasterRCNNConfig
from keras_models.layers.backbones import backbone_features, build_backbone
from keras_models.layers.feature_pyramid import POOL_TOP, FeaturePyramid
from keras_models.layers.two_stage_heads import BoxHead, RegionProposalHead
from keras_models.ops.anchors import level_anchors
from keras_models.ops.box_coding import decode_boxes, decode_edges, edge_scales_to_pixels
from keras_models.ops.box_uncertainty import (NO_UNCERTAINTY, box_outputs, edge_distribution, split_box_predictions,
                                              target_encoder)
from keras_models.ops.detection_decoding import NmsConfig, per_class_nms
from keras_models.ops.matching import IGNORED
from keras_models.ops.proposals import ProposalConfig, generate_proposals
from keras_models.ops.roi_align import OUTPUT_SIZE, assign_levels, roi_align_for
from keras_models.ops.sampling import RoiTargets, SamplingConfig, roi_targets, rpn_targets
from keras_models.ops.two_stage_losses import roi_losses, rpn_losses

ROI_LEVELS = (2, 3, 4, 5)  # P6 serves the RPN only (FPN)
# Added to an image's seed for the second stage's draw, so that it is independent of the RPN's.
SECOND_STAGE_SEED = (0, 1 << 20)


class Truth(NamedTuple):
    """What every training stage reads of a batch: `boxes [B, M, 4]` pixels XYXY and `classes
    [B, M]` (-1 padding), padded; `seeds [B, 2]`, each image's sampling seed; `targets`, the batch's
    target dict (for its blank-image mask)."""

    boxes: tf.Tensor
    classes: tf.Tensor
    seeds: tf.Tensor
    targets: dict


class RpnStage(NamedTuple):
    """The first stage of a training step: its losses (`rpn_class_loss`, `rpn_box_loss`) and its
    proposals `[B, P, 4]` pixels XYXY with `proposal_valid [B, P]` (False: padding)."""

    losses: dict
    proposals: tf.Tensor
    proposal_valid: tf.Tensor


class BoxStage(NamedTuple):
    """The second stage of a training step: its losses (`class_loss`, `box_loss`) and the ROIs it
    sampled, `rois [B, R, 4]` pixels XYXY (foreground first), with `class_targets [B, R]` and
    `matched_boxes [B, R]` (each foreground ROI's row in `Truth.boxes`, `sampling.NO_BOX` else)."""

    losses: dict
    rois: tf.Tensor
    class_targets: tf.Tensor
    matched_boxes: tf.Tensor


@keras.saving.register_keras_serializable(package="boxflow")
class FasterRCNN(Detector):
    """Images `[B, S, S, 3]` float32 in 0..255 → `{"rpn_logits", "rpn_deltas"}` (per level),
    `"proposals" [B, P, 4]`, `"proposal_valid" [B, P]`, `"class_logits" [B, P, C + 1]` and
    `"box_deltas" [B, P, C, 4]`, with the inference proposals.

    Built from a `FasterRCNNConfig`. Sizes: `S` must be a multiple of 128, as for RetinaNet. The
    RPN's anchors on P2-P6 have sides `anchor_size_multiplier * stride` (FPN's 32-512 px at 8).
    ROIs are assigned to P2-P5 by FPN's equation with `roi_canonical_size` pixels on P4; it is not
    scaled with the input, which keeps every box's crop at 7-14 cells of its level whatever the
    image size.
    Without the pyramid, the anchors on C4 have sides `anchor_size_multiplier * 16 * (1, 2, 4)`
    (Ren et al.'s 128-512 px at 8), the RPN's convolution has `fpn_channels` channels, and every ROI
    is pooled from C4; P2-P6 become a single level `[B, S/16 * S/16 * 9]` in the outputs.
    """

    CONFIG = FasterRCNNConfig
    LOSS_NAMES = ("loss", "rpn_class_loss", "rpn_box_loss", "class_loss", "box_loss")

    def __init__(self, config: FasterRCNNConfig, **kwargs):
        # A model built without a run takes FPN's numbers for the sizes a run would fit.
        config = config.with_fpn_sizes()
        super().__init__(config, **kwargs)
        self.sampling_seed = config.sampling_seed
        self.training_proposals = ProposalConfig(config.training_pre_nms, config.training_proposals)
        self.inference_proposals = ProposalConfig(config.inference_pre_nms, config.inference_proposals)
        self.rpn_sampling = SamplingConfig(config.rpn_sample_size, 0.5)
        self.roi_sampling = SamplingConfig(config.rois_per_image, config.foreground_fraction)
        self.roi_canonical_size = config.roi_canonical_size
        self.nms = NmsConfig(score_threshold=config.score_threshold, iou_threshold=config.iou_threshold,
                             max_detections=config.max_detections, max_detections_per_class=config.max_detections,
                             variance_voting=config.variance_voting)
        self.anchor_config = config.anchor_layout()
        self.level_anchors = [level_anchors(config.image_size, level, self.anchor_config)
                              for level in self.anchor_config.levels]
        self.anchors = tf.concat(self.level_anchors, axis=0)
        if config.pyramid:
            self.roi_levels = ROI_LEVELS
            self.backbone = build_backbone(config.backbone, config.image_size, config.backbone_width, config.norm,
                                           min_level=2)
            self.pyramid = FeaturePyramid(config.fpn_channels, min_level=2, top=POOL_TOP, name="fpn")
        else:
            self.roi_levels = (SINGLE_LEVEL,)
            self.backbone = build_backbone(config.backbone, config.image_size, config.backbone_width, config.norm,
                                           SINGLE_LEVEL, SINGLE_LEVEL)
            self.pyramid = None
        self.rpn_head = RegionProposalHead(self.anchor_config.anchors_per_location, config.fpn_channels,
                                           name="rpn_head")
        # A probabilistic second stage predicts each edge's location and log-scale (RPN stays as is).
        self.box_head = BoxHead(config.num_classes, config.box_head, config.box_head_width,
                                box_outputs=box_outputs(config.box_uncertainty), name="box_head")
        self._make_later_stages(config)
        self._make_trackers()
        # Create every variable now, inside whatever strategy scope constructs the model.
        self(keras.ops.zeros((1, config.image_size, config.image_size, 3)))

    def _make_later_stages(self, config: FasterRCNNConfig) -> None:
        """Builds the heads of the stages after the box stage: none in Faster R-CNN."""

    def _levels(self, images, training: bool) -> list:
        """The feature maps both stages read: P2-P6, or C4 alone without the pyramid."""
        features = backbone_features(self.backbone, images, training)
        return features if self.pyramid is None else self.pyramid(features)

    def call(self, images, training=False):
        return self._call_outputs(self._levels(images, training))

    def _call_outputs(self, levels) -> dict:
        """`call`'s outputs from the feature `levels`."""
        logits, deltas = self.rpn_head(levels)
        proposals, _, valid = generate_proposals(logits, deltas, self.level_anchors, self.image_size,
                                                 self.inference_proposals, self._compiled)
        class_logits, box_deltas = self._call_box_outputs(levels, proposals)
        return {"rpn_logits": logits, "rpn_deltas": deltas, "proposals": proposals, "proposal_valid": valid,
                "class_logits": class_logits, "box_deltas": box_deltas}

    def _call_box_outputs(self, levels, rois):
        """`(class_logits [B, R, C + 1], box_deltas [B, R, C, 4])` of `rois` `[B, R, 4]` pixels XYXY,
        each pooled from its pyramid level."""
        return self.box_head(self._pooled(levels, rois))

    def _pooled(self, levels, rois, output_size: int = OUTPUT_SIZE):
        """`[B, R, output_size, output_size, C]` ROI Align features of `rois` `[B, R, 4]` pixels
        XYXY, each from its FPN level, in the model's compute dtype."""
        first, last = self.roi_levels[0], self.roi_levels[-1]
        roi_levels = assign_levels(rois, first, last, self.roi_canonical_size) - first
        crop = roi_align_for(self._compiled)
        features = crop(levels[:len(self.roi_levels)], [2 ** level for level in self.roi_levels], rois, roi_levels,
                        output_size=output_size)
        return tf.cast(features, self.compute_dtype)

    def _sampling_seeds(self, batch: tf.Tensor) -> tf.Tensor:
        """`[B, 2]` seeds `(step, image's index in the global batch + sampling_seed · 2¹⁶)`: the same
        draw for the same image whether one device or several replicas train on the batch, and
        another draw for another `sampling_seed` (`--seed`; its low 15 bits)."""
        context = tf.distribute.get_replica_context()
        first = tf.cast(context.replica_id_in_sync_group, tf.int32) * batch + (self.sampling_seed % (1 << 15) << 16)
        optimizer = getattr(self, "optimizer", None)  # none before compile
        step = tf.cast(optimizer.iterations if optimizer is not None else 0, tf.int32)
        return tf.stack([tf.fill([batch], step), first + tf.range(batch)], axis=1)

    def _losses_for(self, images, targets, training: bool) -> dict:
        boxes, classes = padded_targets(targets)
        truth = Truth(boxes, classes, self._sampling_seeds(tf.shape(images)[0]), targets)
        levels = self._levels(images, training)
        rpn = self._rpn_stage(levels, truth, training)
        box_stage = self._box_stage(levels, rpn, truth)
        losses = {**rpn.losses, **box_stage.losses, **self._after_box_stage(levels, box_stage, truth, training)}
        losses["loss"] = tf.add_n(list(losses.values()))
        return losses

    def _rpn_stage(self, levels, truth: Truth, training: bool) -> RpnStage:
        logits, deltas = self.rpn_head(levels)
        objectness, box_targets = tf.map_fn(
            lambda item: rpn_targets(self.anchors, item[0], item[1], item[2], sampling=self.rpn_sampling),
            (truth.boxes, truth.classes, truth.seeds),
            fn_output_signature=(tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, 4], tf.float32)))
        objectness = without_blank_images(objectness, truth.targets)
        losses = rpn_losses(objectness, box_targets, tf.concat(logits, axis=1), tf.concat(deltas, axis=1),
                            global_count(tf.reduce_sum(tf.cast(objectness != IGNORED, tf.float32))))
        proposal_config = self.training_proposals if training else self.inference_proposals
        proposals, _, valid = generate_proposals(logits, deltas, self.level_anchors, self.image_size, proposal_config,
                                                 self._compiled)
        return RpnStage(losses, proposals, valid)

    def _box_stage(self, levels, rpn: RpnStage, truth: Truth) -> BoxStage:
        encode = target_encoder(self.box_uncertainty)
        sampled = tf.map_fn(
            lambda item: roi_targets(item[0], item[1], item[2], item[3], item[4] + SECOND_STAGE_SEED, self.roi_sampling,
                                     encode=encode),
            (rpn.proposals, rpn.proposal_valid, truth.boxes, truth.classes, truth.seeds),
            fn_output_signature=RoiTargets(tf.TensorSpec([None, 4], tf.float32), tf.TensorSpec([None], tf.int32),
                                           tf.TensorSpec([None, 4], tf.float32), tf.TensorSpec([None], tf.int32)))
        class_targets = without_blank_images(sampled.class_targets, truth.targets)
        class_logits, box_deltas = self._call_box_outputs(levels, tf.stop_gradient(sampled.rois))
        losses = roi_losses(class_targets, sampled.box_targets, class_logits, box_deltas,
                            global_count(tf.reduce_sum(tf.cast(class_targets != IGNORED, tf.float32))),
                            self.box_uncertainty)
        return BoxStage(losses, sampled.rois, class_targets, sampled.matched_boxes)

    def _after_box_stage(self, levels, box_stage: BoxStage, truth: Truth, training: bool) -> dict:
        """The losses of the stages that follow the box stage, from its ROIs and their matched
        boxes: none in Faster R-CNN; Mask R-CNN's mask stage goes here."""
        return {}

    def detect(self, images) -> dict:
        """`{"boxes": [B, K, 4] pixels XYXY, "scores", "classes" (from 0), "num_detections"}`, and
        `"box_stddev" [B, K, 4]` pixels with a probabilistic head."""
        return self._box_detections(self(images, training=False))

    def _box_detections(self, outputs: dict) -> dict:
        """`detect`'s detections from `call`'s `outputs`."""
        rois = outputs["proposals"][:, :, tf.newaxis, :]  # against every class's deltas
        probabilities = tf.nn.softmax(tf.cast(outputs["class_logits"], tf.float32))[..., :self.num_classes]
        scores = probabilities * tf.cast(outputs["proposal_valid"], tf.float32)[..., tf.newaxis]
        if self.box_uncertainty == NO_UNCERTAINTY:
            boxes = decode_boxes(tf.cast(outputs["box_deltas"], tf.float32), rois)
            return per_class_nms(boxes, scores, self.image_size, self.nms, self._compiled)
        locations, log_scales = split_box_predictions(outputs["box_deltas"])
        stddev = edge_distribution(locations, log_scales, self.box_uncertainty).stddev()
        return self._calibrated(per_class_nms(decode_edges(locations, rois), scores, self.image_size, self.nms,
                                              self._compiled, edge_scales_to_pixels(stddev, rois)))
