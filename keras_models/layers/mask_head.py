"""Mask R-CNN's mask head (He et al. 2017, with FPN): each ROI's pooled features, four 3x3
convolutions with normalization and ReLU, a 2x transposed convolution, and one sigmoid logit map
per class."""

from __future__ import annotations

import keras

from keras_models.layers import conv
from keras_models.layers.normalization import normalization_layer

MASK_HEAD_CONVOLUTIONS = 4


@keras.saving.register_keras_serializable(package="boxflow")
class MaskHead(keras.layers.Layer):
    """ROI features `[B, R, S, S, C]` → mask logits `[B, R, 2S, 2S, num_classes]`, float32 (box
    relative: the map covers the ROI). `norm`: a `normalization_layer` kind, as the backbone's."""

    def __init__(self, num_classes: int, channels: int = 256, norm: str = "batch", **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.channels, self.norm = num_classes, channels, norm
        self.convs = [conv.Conv2D(channels, 3, padding="same", use_bias=False, name=f"conv{index}")
                      for index in range(MASK_HEAD_CONVOLUTIONS)]
        self.norms = [normalization_layer(norm, channels, name=f"norm{index}")
                      for index in range(MASK_HEAD_CONVOLUTIONS)]
        self.upsample = keras.layers.Conv2DTranspose(channels, 2, strides=2, activation="relu", name="upsample")
        self.logits = conv.Conv2D(num_classes, 1, kernel_initializer=keras.initializers.RandomNormal(stddev=0.001),
                                  dtype="float32", name="logits")

    def call(self, roi_features, training=False):
        shape = keras.ops.shape(roi_features)
        x = keras.ops.reshape(roi_features, (-1, *roi_features.shape[2:]))  # [B * R, S, S, C]
        for convolution, norm in zip(self.convs, self.norms):
            x = keras.ops.relu(norm(convolution(x), training=training))
        logits = self.logits(self.upsample(x))
        return keras.ops.reshape(logits, (shape[0], shape[1], *logits.shape[1:]))

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes, "channels": self.channels,
                "norm": self.norm}
