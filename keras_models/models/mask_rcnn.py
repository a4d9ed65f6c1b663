"""Mask R-CNN (He et al. 2017): Faster R-CNN with FPN and a third stage that predicts each
object's mask from its ROI's features.

Training adds the mask stage after the box stage (`_after_box_stage`): the foreground slots of
the sampled ROIs (a fixed number per image, static for XLA and TPUs) pool 14x14 features with the
same multilevel ROI Align, the head predicts a 28x28 logit map per class, and the map of the ROI's
ground-truth class learns, by binary cross-entropy, the matched box's mask cropped to the ROI
(`ops/mask_targets`). The loss is averaged over the foreground ROIs of the global batch.
At inference the kept detections' boxes are pooled the same way and their class's map, through a
sigmoid, is the detection's box-relative mask; `ops/mask_pasting` puts it into the image frame.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from contracts.errors import SettingError
from keras_models.layers.mask_head import MaskHead
from keras_models.models.dense_prediction_steps import global_count
from keras_models.models.faster_rcnn import BoxStage, FasterRCNN, Truth
from keras_models.models.mask_rcnn_config import MaskRCNNConfig
from keras_models.ops.mask_targets import MASK_SIZE, mask_targets
from keras_models.ops.sampling import NO_BOX

INSTANCE_MAP = "instance_map"  # the targets' key of the masks (`pipeline.dataset.make_dataset`)


@keras.saving.register_keras_serializable(package="boxflow")
class MaskRCNN(FasterRCNN):
    """Faster R-CNN's outputs and, from `detect`, `"masks" [B, K, 28, 28]` float32: each detection's
    mask probabilities over its box. Training reads `targets["instance_map"]` `[B, S, S]`."""

    CONFIG = MaskRCNNConfig
    TRAINS_ON_MASKS = True
    LOSS_NAMES = FasterRCNN.LOSS_NAMES + ("mask_loss",)

    def _make_later_stages(self, config: MaskRCNNConfig) -> None:
        slots = self.roi_sampling.positive_slots
        if (config.mask_rois_per_image or 0) > slots:
            raise SettingError("mask_rois_per_image", f"must be at most the {slots} foreground slots of "
                                                      f"the {self.roi_sampling.sample_size} ROIs sampled per image, "
                                                      f"got {config.mask_rois_per_image}")
        self.mask_rois = config.mask_rois_per_image or slots
        channels = config.mask_head_channels or config.fpn_channels
        self.mask_head = MaskHead(config.num_classes, channels, config.norm, name="mask_head")
        # Its variables now, inside whatever strategy scope constructs the model, as the rest's
        # (`call` does not reach the mask head).
        self.mask_head(keras.ops.zeros((1, 1, MASK_SIZE // 2, MASK_SIZE // 2, config.fpn_channels)))

    def _call_mask_outputs(self, levels, rois, classes, training: bool = False):
        """float32 `[B, R, 28, 28]` mask logits of `rois` `[B, R, 4]` pixels XYXY, each from its
        class's map (`classes` `[B, R]` from 0)."""
        logits = self.mask_head(self._pooled(levels, rois, MASK_SIZE // 2), training=training)  # [B, R, 28, 28, C]
        picked = tf.gather(tf.transpose(logits, [0, 1, 4, 2, 3]), tf.maximum(classes, 0)[..., tf.newaxis],
                           batch_dims=2)
        return tf.cast(picked[:, :, 0], tf.float32)

    def _after_box_stage(self, levels, box_stage: BoxStage, truth: Truth, training: bool) -> dict:
        if INSTANCE_MAP not in truth.targets:
            raise ValueError("Mask R-CNN trains on instance masks: the batches have no targets['instance_map'] "
                             "(make_dataset(with_masks=True) on a dataset prepared with masks)")
        # The sampled ROIs come foreground first: the first `mask_rois` slots hold every foreground one.
        rois = tf.stop_gradient(box_stage.rois[:, :self.mask_rois])
        classes = box_stage.class_targets[:, :self.mask_rois]
        matched = box_stage.matched_boxes[:, :self.mask_rois]
        targets = mask_targets(truth.targets[INSTANCE_MAP], rois, matched)
        # An ROI whose crop holds no pixel of its object (a box without a mask: an image prepared
        # without one) teaches nothing about the object's shape and is left out.
        learns = ((matched != NO_BOX) & (classes >= 0) & (classes < self.num_classes)
                  & (tf.reduce_max(targets, axis=[2, 3]) > 0))
        logits = self._call_mask_outputs(levels, rois, classes, training=training)
        per_roi = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(targets, logits), axis=[2, 3])
        weight = tf.cast(learns, tf.float32)
        count = global_count(tf.reduce_sum(weight))
        return {"mask_loss": tf.math.divide_no_nan(tf.reduce_sum(per_roi * weight), count)}

    def detect(self, images) -> dict:
        """Faster R-CNN's detections and `"masks" [B, K, 28, 28]`: each one's mask probabilities
        over its box (zeros for padding rows)."""
        return self._masked_detections(self._levels(images, False))

    def _masked_detections(self, levels) -> dict:
        """`detect`'s detections from the feature `levels`."""
        detections = self._box_detections(self._call_outputs(levels))
        logits = self._call_mask_outputs(levels, detections["boxes"], detections["classes"])
        shown = tf.range(tf.shape(logits)[1])[tf.newaxis, :] < detections["num_detections"][:, tf.newaxis]
        detections["masks"] = tf.where(shown[..., tf.newaxis, tf.newaxis], tf.sigmoid(logits), 0.0)
        return detections
