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
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from boxflow.errors import BoxflowError
from keras_models.detectors.training_steps import DetectorSteps, global_count, without_blank_images
from keras_models.layers.backbones import backbone_features, build_backbone
from keras_models.layers.feature_pyramid import POOL_TOP, FeaturePyramid
from keras_models.layers.two_stage_heads import BoxHead, RegionProposalHead
from keras_models.ops.anchors import AnchorConfig, level_anchors
from keras_models.ops.box_coding import decode_boxes, decode_edges, edge_scales_to_pixels
from keras_models.ops.box_uncertainty import (NO_UNCERTAINTY, box_outputs, edge_distribution, split_box_predictions,
                                              target_encoder)
from keras_models.ops.detection_decoding import NmsConfig, per_class_nms
from keras_models.ops.matching import IGNORED
from keras_models.ops.proposals import ProposalConfig, generate_proposals
from keras_models.ops.roi_align import assign_levels, roi_align_for
from keras_models.detectors.faster_rcnn_sizing import FPN_SIZES
from keras_models.ops.sampling import SamplingConfig, roi_targets, rpn_targets
from keras_models.ops.two_stage_losses import roi_losses, rpn_losses
from pipeline.ragged_padding import ragged_to_padded

ROI_LEVELS = (2, 3, 4, 5)  # P6 serves the RPN only (FPN)
SINGLE_LEVEL = 4  # C4, where Ren et al. put both stages
# Added to an image's seed for the second stage's draw, so that it is independent of the RPN's.
SECOND_STAGE_SEED = (0, 1 << 20)


@keras.saving.register_keras_serializable(package="boxflow")
class FasterRCNN(DetectorSteps):
    """Images `[B, S, S, 3]` float32 in 0..255 → `{"rpn_logits", "rpn_deltas"}` (per level),
    `"proposals" [B, P, 4]`, `"proposal_valid" [B, P]`, `"class_logits" [B, P, C + 1]` and
    `"box_deltas" [B, P, C, 4]`, with the inference proposals.

    Sizes: `S` must be a multiple of 128, as for RetinaNet. The RPN's anchors on P2-P6 have
    sides `anchor_size_multiplier * stride` (FPN's 32-512 px at 8). ROIs are assigned to P2-P5 by
    FPN's equation with `roi_canonical_size` pixels on P4; it is not scaled with the input,
    which keeps every box's crop at 7-14 cells of its level whatever the image size.
    Without the pyramid, the anchors on C4 have sides `anchor_size_multiplier * 16 * (1, 2, 4)`
    (Ren et al.'s 128-512 px at 8), the RPN's convolution has `fpn_channels` channels, and every ROI
    is pooled from C4; P2-P6 become a single level `[B, S/16 * S/16 * 9]` in the outputs.
    """

    LOSS_NAMES = ("loss", "rpn_class_loss", "rpn_box_loss", "class_loss", "box_loss")
    # FPN's RPN anchors: one size per level of P2-P6, 32-512 px at 8x the stride.
    ANCHOR_LAYOUT = AnchorConfig(min_level=2, max_level=6, size_multiplier=8.0, scales=(1.0,))
    # Ren et al.'s anchors on the single level: 128, 256 and 512 px at stride 16.
    SINGLE_LEVEL_ANCHOR_LAYOUT = AnchorConfig(min_level=SINGLE_LEVEL, max_level=SINGLE_LEVEL, size_multiplier=8.0,
                                              scales=(1.0, 2.0, 4.0))

    def __init__(self, num_classes: int, image_size: int, backbone: str = "tiny", backbone_width: int = 32,
                 fpn_channels: int = 64, anchor_size_multiplier: float = 8.0,
                 anchor_aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0), box_head: str = "2fc",
                 box_head_width: int = FPN_SIZES["box_head_width"],
                 training_pre_nms: int = FPN_SIZES["training_pre_nms"],
                 training_proposals: int = FPN_SIZES["training_proposals"],
                 inference_pre_nms: int = FPN_SIZES["inference_pre_nms"],
                 inference_proposals: int = FPN_SIZES["inference_proposals"],
                 rpn_sample_size: int = FPN_SIZES["rpn_sample_size"],
                 rois_per_image: int = FPN_SIZES["rois_per_image"], foreground_fraction: float = 0.25, roi_canonical_size: float = 224.0,
                 score_threshold: float = 0.05, iou_threshold: float = 0.5, max_detections: int = 100,
                 norm: str = "batch", pyramid: bool = True, box_uncertainty: str = NO_UNCERTAINTY,
                 variance_voting: bool = False, sampling_seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if image_size % 128:
            raise BoxflowError(f"--image-size must be a multiple of 128, got {image_size}")
        self._set_box_uncertainty(box_uncertainty, variance_voting)
        self.sampling_seed = sampling_seed
        self.num_classes, self.image_size, self.backbone_name = num_classes, image_size, backbone
        self.backbone_width, self.fpn_channels, self.norm = backbone_width, fpn_channels, norm
        self.anchor_size_multiplier, self.box_head_kind, self.box_head_width = (anchor_size_multiplier, box_head,
                                                                                box_head_width)
        self.training_proposals = ProposalConfig(training_pre_nms, training_proposals)
        self.inference_proposals = ProposalConfig(inference_pre_nms, inference_proposals)
        self.rpn_sampling = SamplingConfig(rpn_sample_size, 0.5)
        self.roi_sampling = SamplingConfig(rois_per_image, foreground_fraction)
        self.roi_canonical_size = roi_canonical_size
        self.nms = NmsConfig(score_threshold=score_threshold, iou_threshold=iou_threshold,
                             max_detections=max_detections, max_detections_per_class=max_detections,
                             variance_voting=variance_voting)
        layout = self.ANCHOR_LAYOUT if pyramid else self.SINGLE_LEVEL_ANCHOR_LAYOUT
        self.anchor_config = dataclasses.replace(layout, size_multiplier=anchor_size_multiplier,
                                                 aspect_ratios=tuple(float(ratio) for ratio in anchor_aspect_ratios))
        self.level_anchors = [level_anchors(image_size, level, self.anchor_config)
                              for level in self.anchor_config.levels]
        self.anchors = tf.concat(self.level_anchors, axis=0)
        if pyramid:
            self.roi_levels = ROI_LEVELS
            self.backbone = build_backbone(backbone, image_size, backbone_width, norm, min_level=2)
            self.pyramid = FeaturePyramid(fpn_channels, min_level=2, top=POOL_TOP, name="fpn")
        else:
            self.roi_levels = (SINGLE_LEVEL,)
            self.backbone = build_backbone(backbone, image_size, backbone_width, norm, SINGLE_LEVEL, SINGLE_LEVEL)
            self.pyramid = None
        self.rpn_head = RegionProposalHead(self.anchor_config.anchors_per_location, fpn_channels, name="rpn_head")
        # A probabilistic second stage predicts each edge's location and log-scale (RPN stays as is).
        self.box_head = BoxHead(num_classes, box_head, box_head_width,
                                box_outputs=box_outputs(box_uncertainty), name="box_head")
        self._make_trackers()
        # Create every variable now, inside whatever strategy scope constructs the model.
        self(keras.ops.zeros((1, image_size, image_size, 3)))

    def _levels(self, images, training: bool) -> list:
        """The feature maps both stages read: P2-P6, or C4 alone without the pyramid."""
        features = backbone_features(self.backbone, images, training)
        return features if self.pyramid is None else self.pyramid(features)

    def call(self, images, training=False):
        levels = self._levels(images, training)
        logits, deltas = self.rpn_head(levels)
        proposals, _, valid = generate_proposals(logits, deltas, self.level_anchors, self.image_size,
                                                 self.inference_proposals, self._compiled)
        class_logits, box_deltas = self._second_stage(levels, proposals)
        return {"rpn_logits": logits, "rpn_deltas": deltas, "proposals": proposals, "proposal_valid": valid,
                "class_logits": class_logits, "box_deltas": box_deltas}

    def _second_stage(self, levels, rois):
        first, last = self.roi_levels[0], self.roi_levels[-1]
        roi_levels = assign_levels(rois, first, last, self.roi_canonical_size) - first
        crop = roi_align_for(self._compiled)
        features = crop(levels[:len(self.roi_levels)], [2 ** level for level in self.roi_levels], rois, roi_levels)
        return self.box_head(tf.cast(features, self.compute_dtype))

    def _sampling_seeds(self, batch: tf.Tensor) -> tf.Tensor:
        """`[B, 2]` seeds `(step, image's index in the global batch + sampling_seed · 2¹⁶)`: the same
        draw for the same image whether one device or several replicas train on the batch, and
        another draw for another `sampling_seed` (`--seed`; its low 15 bits)."""
        context = tf.distribute.get_replica_context()
        first = tf.cast(context.replica_id_in_sync_group, tf.int32) * batch + (self.sampling_seed % (1 << 15) << 16)
        optimizer = getattr(self, "optimizer", None)  # none before compile
        step = tf.cast(optimizer.iterations if optimizer is not None else 0, tf.int32)
        return tf.stack([tf.fill([batch], step), first + tf.range(batch)], axis=1)

    def _detection_losses(self, images, targets, training: bool) -> dict:
        boxes, classes = targets["boxes"], targets["classes"]
        if isinstance(boxes, tf.RaggedTensor):
            boxes, classes = ragged_to_padded(boxes, classes)
        seeds = self._sampling_seeds(tf.shape(images)[0])
        levels = self._levels(images, training)
        logits, deltas = self.rpn_head(levels)
        objectness, rpn_box_targets = tf.map_fn(
            lambda item: rpn_targets(self.anchors, item[0], item[1], item[2], sampling=self.rpn_sampling),
            (boxes, classes, seeds),
            fn_output_signature=(tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, 4], tf.float32)))
        objectness = without_blank_images(objectness, targets)
        proposal_config = self.training_proposals if training else self.inference_proposals
        proposals, _, valid = generate_proposals(logits, deltas, self.level_anchors, self.image_size, proposal_config,
                                                 self._compiled)
        encode = target_encoder(self.box_uncertainty)
        rois, class_targets, box_targets = tf.map_fn(
            lambda item: roi_targets(item[0], item[1], item[2], item[3], item[4] + SECOND_STAGE_SEED, self.roi_sampling,
                                     encode=encode),
            (proposals, valid, boxes, classes, seeds),
            fn_output_signature=(tf.TensorSpec([None, 4], tf.float32), tf.TensorSpec([None], tf.int32),
                                 tf.TensorSpec([None, 4], tf.float32)))
        class_targets = without_blank_images(class_targets, targets)
        class_logits, box_deltas = self._second_stage(levels, tf.stop_gradient(rois))
        losses = {
            **rpn_losses(objectness, rpn_box_targets, tf.concat(logits, axis=1), tf.concat(deltas, axis=1),
                         global_count(tf.reduce_sum(tf.cast(objectness != IGNORED, tf.float32)))),
            **roi_losses(class_targets, box_targets, class_logits, box_deltas,
                         global_count(tf.reduce_sum(tf.cast(class_targets != IGNORED, tf.float32))),
                         self.box_uncertainty),
        }
        losses["loss"] = tf.add_n(list(losses.values()))
        return losses

    def detect(self, images) -> dict:
        """`{"boxes": [B, K, 4] pixels XYXY, "scores", "classes" (from 0), "num_detections"}`, and
        `"box_stddev" [B, K, 4]` pixels with a probabilistic head."""
        outputs = self(images, training=False)
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

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_classes": self.num_classes, "image_size": self.image_size, "backbone": self.backbone_name,
            "backbone_width": self.backbone_width, "fpn_channels": self.fpn_channels,
            "anchor_size_multiplier": self.anchor_size_multiplier,
            "anchor_aspect_ratios": list(self.anchor_config.aspect_ratios), "box_head": self.box_head_kind,
            "box_head_width": self.box_head_width,
            "training_pre_nms": self.training_proposals.pre_nms_top_k,
            "training_proposals": self.training_proposals.post_nms_top_k,
            "inference_pre_nms": self.inference_proposals.pre_nms_top_k,
            "inference_proposals": self.inference_proposals.post_nms_top_k,
            "rpn_sample_size": self.rpn_sampling.sample_size, "rois_per_image": self.roi_sampling.sample_size,
            "foreground_fraction": self.roi_sampling.positive_fraction,
            "roi_canonical_size": self.roi_canonical_size, "score_threshold": self.nms.score_threshold,
            "iou_threshold": self.nms.iou_threshold, "max_detections": self.nms.max_detections, "norm": self.norm,
            "pyramid": self.pyramid is not None, "box_uncertainty": self.box_uncertainty,
            "variance_voting": self.nms.variance_voting, "sampling_seed": self.sampling_seed,
        }
