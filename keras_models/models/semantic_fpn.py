"""Semantic segmentation on a feature pyramid: Panoptic FPN's semantic branch alone (Kirillov et al.
2019), or DeepLab v3+'s ASPP head (Chen et al. 2018) as a config choice of the same model.

Every pixel gets one of `num_classes + 1` classes: background (0) or a label-map id. The head's
logits are at stride 4; the loss (`ops/semantic_loss`) upsamples them bilinearly to the input,
`inference/segmentation_functions` to the original images. Void pixels (`IGNORE_LABEL`: unlabelled,
or the letterbox's padding) teach nothing.
"""

from __future__ import annotations

import keras

from keras_models.layers.aspp import DeepLabV3PlusHead
from keras_models.layers.backbones import backbone_features, build_backbone
from keras_models.layers.feature_pyramid import POOL_TOP, FeaturePyramid
from keras_models.layers.semantic_head import FIRST_LEVEL, LAST_LEVEL, SemanticFPNHead
from keras_models.models.dense_prediction_steps import DensePredictionSteps, global_count
from keras_models.models.semantic_fpn_config import FPN_HEAD, SemanticFPNConfig
from keras_models.ops.semantic_loss import semantic_loss
from pipeline.augment.pixel_maps import CLASS_MAP

SEMANTIC_LOGITS = "semantic_logits"  # predict_outputs' key (DESIGN.md §5)


@keras.saving.register_keras_serializable(package="boxflow")
class SemanticFPN(DensePredictionSteps):
    """Images `[B, S, S, 3]` float32 in 0..255 → float32 logits `[B, S/4, S/4, num_classes + 1]`.
    Training reads `targets["class_map"]` `[B, S, S]` (label-map ids, 0 background, 255 void)."""

    CONFIG = SemanticFPNConfig
    TRAINS_ON_SEMANTIC = True

    def __init__(self, config: SemanticFPNConfig, **kwargs):
        super().__init__(config, **kwargs)
        classes = config.num_classes + 1
        self.backbone = build_backbone(config.backbone, config.image_size, config.backbone_width, config.norm,
                                       min_level=FIRST_LEVEL)
        if config.semantic_head == FPN_HEAD:
            self.pyramid = FeaturePyramid(config.fpn_channels, min_level=FIRST_LEVEL, top=POOL_TOP, name="fpn")
            self.head = SemanticFPNHead(classes, config.head_channels, name="semantic_head")
        else:
            self.pyramid = None
            self.head = DeepLabV3PlusHead(classes, config.head_channels, deep_stride=2 ** LAST_LEVEL,
                                          norm=config.norm, name="aspp_head")
        self._make_trackers()
        # Create every variable now, inside whatever strategy scope constructs the model.
        self(keras.ops.zeros((1, config.image_size, config.image_size, 3)))

    def call(self, images, training=False):
        features = backbone_features(self.backbone, images, training)
        if self.pyramid is None:
            return self.head((features[0], features[-1]), training=training)
        levels = self.pyramid(features)[:LAST_LEVEL - FIRST_LEVEL + 1]
        return self.head(levels, training=training)

    def _losses_for(self, images, targets, training: bool) -> dict:
        if CLASS_MAP not in targets:
            raise ValueError("a semantic model trains on per-pixel labels: the batches have no "
                             "targets['class_map'] (make_dataset(with_semantic=True))")
        return {"loss": semantic_loss(self(images, training=training), targets[CLASS_MAP], count=global_count,
                                      hard_pixel_fraction=self.config.hard_pixel_fraction)}

    def predict_outputs(self, images) -> dict:
        """`{"semantic_logits": float32 [B, S/4, S/4, num_classes + 1]}`."""
        return {SEMANTIC_LOGITS: self(images, training=False)}
