"""Feature pyramid (FPN, Lin et al. 2017): top-down merging of C_min–C5, then the levels above P5,
either RetinaNet's (P6 and P7 from strided convolutions) or FPN's own (P6 subsampling P5)."""

from __future__ import annotations

import keras

from keras_models.layers import conv
from keras_models.layers.normalization import normalization_layer

CONV_TOP = "conv"  # RetinaNet: P6 = conv(C5, stride 2), P7 = conv(relu(P6), stride 2)
POOL_TOP = "max_pool"  # FPN for Faster R-CNN: P6 = P5 subsampled by 2, for the RPN's largest anchors


@keras.saving.register_keras_serializable(package="boxflow")
class FeaturePyramid(keras.layers.Layer):
    """`[C_min_level, …, C5]` → `[P_min_level, …, P7]` (`top="conv"`) or `[…, P6]` (`top="max_pool"`),
    each with `channels` channels.

    `group_norm` normalizes each lateral and output convolution with GroupNorm (Detectron's
    FPN "GN" option), which behaves the same whatever the batch per replica.
    """

    def __init__(self, channels: int = 256, group_norm: bool = False, min_level: int = 3, top: str = CONV_TOP,
                 **kwargs):
        super().__init__(**kwargs)
        if top not in (CONV_TOP, POOL_TOP):
            raise ValueError(f"top must be {CONV_TOP!r} or {POOL_TOP!r}, got {top!r}")
        self.channels, self.group_norm, self.min_level, self.top = channels, group_norm, min_level, top
        levels = range(min_level, 6)
        self.lateral = [self._conv(1, f"lateral_c{level}") for level in levels]
        self.smooth = [self._conv(3, f"output_p{level}") for level in levels]
        if top == CONV_TOP:
            self.p6 = conv.Conv2D(channels, 3, strides=2, padding="same", name="p6")
            self.p7 = conv.Conv2D(channels, 3, strides=2, padding="same", name="p7")
        self.upsample = keras.layers.UpSampling2D(2)

    @property
    def levels(self) -> range:
        return range(self.min_level, 8 if self.top == CONV_TOP else 7)

    def _conv(self, size: int, name: str):
        layer = conv.Conv2D(self.channels, size, padding="same", use_bias=not self.group_norm, name=name)
        if not self.group_norm:
            return layer
        return keras.Sequential([layer, normalization_layer("group", self.channels, name=f"{name}_norm")],
                                name=f"{name}_block")

    def call(self, features):
        merged = [self.lateral[-1](features[-1])]
        for lateral, feature in zip(reversed(self.lateral[:-1]), reversed(features[:-1])):
            merged.insert(0, lateral(feature) + self.upsample(merged[0]))
        outputs = [smooth(level) for smooth, level in zip(self.smooth, merged)]
        if self.top == CONV_TOP:
            p6 = self.p6(features[-1])
            return outputs + [p6, self.p7(keras.activations.relu(p6))]
        return outputs + [keras.ops.max_pool(outputs[-1], 1, strides=2)]

    def get_config(self) -> dict:
        return {**super().get_config(), "channels": self.channels, "group_norm": self.group_norm,
                "min_level": self.min_level, "top": self.top}
