"""Panoptic FPN (Kirillov et al., CVPR 2019): Mask R-CNN with the semantic FPN branch on the same
pyramid, and the two merged into one label per pixel.

The detector finds the things (every label-map class may be detected; the stuff classes have no
boxes to learn from). The semantic branch (`layers/semantic_head`, on P2-P5) labels every pixel as
background, "thing" or one of the stuff classes (`config.stuff_classes`): its targets are the
records' class maps with each thing class folded into the one "thing" class. Training adds
`semantic_loss_weight` times its loss (`semantic_loss`, reported weighted) to Mask R-CNN's.
`detect` gives Mask R-CNN's detections and the merged maps over the model input
(`ops/panoptic_merge`): `"panoptic_categories"` and `"panoptic_instances"` int32 `[B, S, S]`.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from contracts.record_schema import IGNORE_LABEL
from keras_models.layers.semantic_head import FIRST_LEVEL, LAST_LEVEL, SemanticFPNHead
from keras_models.models.dense_prediction_steps import global_count
from keras_models.models.faster_rcnn import BoxStage, Truth
from keras_models.models.mask_rcnn import MaskRCNN
from keras_models.models.panoptic_fpn_config import PanopticFPNConfig
from keras_models.ops.panoptic_merge import LABELS, merge_panoptic
from keras_models.ops.semantic_loss import semantic_loss
from pipeline.augment.pixel_maps import CLASS_MAP

PANOPTIC_CATEGORIES = "panoptic_categories"  # detect's keys: int32 [B, S, S], 0 void, else a label id
PANOPTIC_INSTANCES = "panoptic_instances"  # int32 [B, S, S], 0 stuff or void, else the detection's row + 1
BACKGROUND, THING = 0, 1  # the semantic branch's first two classes; stuff class k is 2 + k


@keras.saving.register_keras_serializable(package="boxflow")
class PanopticFPN(MaskRCNN):
    """Mask R-CNN's outputs; `detect` adds the panoptic maps. Training reads
    `targets["instance_map"]` and `targets["class_map"]` `[B, S, S]` (label ids, 255 void)."""

    CONFIG = PanopticFPNConfig
    TRAINS_ON_SEMANTIC = True
    LOSS_NAMES = MaskRCNN.LOSS_NAMES + ("semantic_loss",)

    def _make_later_stages(self, config: PanopticFPNConfig) -> None:
        super()._make_later_stages(config)
        self.semantic_loss_weight = config.semantic_loss_weight
        self.merge_config = config.merge_config
        stuff = np.array(config.stuff_classes, np.int32)
        # Label id → the branch's class (void stays void); the branch's class → stuff label id or 0.
        folded = np.full(LABELS, IGNORE_LABEL, np.int32)
        folded[0], folded[1:config.num_classes + 1] = BACKGROUND, THING
        folded[stuff] = 2 + np.arange(len(stuff))
        self.branch_class_of_label = tf.constant(folded)
        self.stuff_label_of_branch_class = tf.constant(np.concatenate([[0, 0], stuff]).astype(np.int32))
        self.semantic_head = SemanticFPNHead(2 + len(stuff), config.head_channels, name="semantic_head")
        side, channels = config.image_size, config.fpn_channels
        self.semantic_head([keras.ops.zeros((1, side >> level, side >> level, channels))
                            for level in range(FIRST_LEVEL, LAST_LEVEL + 1)])

    def _semantic_logits(self, levels, training: bool = False):
        """float32 `[B, S/4, S/4, 2 + stuff classes]` from P2-P5."""
        return self.semantic_head(levels[:LAST_LEVEL - FIRST_LEVEL + 1], training=training)

    def _after_box_stage(self, levels, box_stage: BoxStage, truth: Truth, training: bool) -> dict:
        losses = super()._after_box_stage(levels, box_stage, truth, training)
        if CLASS_MAP not in truth.targets:
            raise ValueError("Panoptic FPN trains on per-pixel labels: the batches have no targets['class_map'] "
                             "(make_dataset(with_semantic=True))")
        targets = tf.gather(self.branch_class_of_label, tf.cast(truth.targets[CLASS_MAP], tf.int32))
        loss = semantic_loss(self._semantic_logits(levels, training), targets, count=global_count)
        return {**losses, "semantic_loss": self.semantic_loss_weight * loss}

    def detect(self, images) -> dict:
        """Mask R-CNN's detections, `"panoptic_categories"` and `"panoptic_instances"`."""
        levels = self._levels(images, False)
        detections = self._masked_detections(levels)
        logits = tf.image.resize(self._semantic_logits(levels), [self.image_size, self.image_size], method="bilinear")
        stuff = tf.gather(self.stuff_label_of_branch_class, tf.argmax(logits, axis=-1, output_type=tf.int32))
        merged = merge_panoptic(detections["masks"], detections["boxes"], detections["scores"], detections["classes"],
                                detections["num_detections"], stuff, self.merge_config)
        return {**detections, PANOPTIC_CATEGORIES: merged.categories, PANOPTIC_INSTANCES: merged.instances}
