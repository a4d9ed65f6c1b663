"""Feature pyramid (FPN) over C3–C5, with P6 and P7 from strided convolutions (RetinaNet)."""

from __future__ import annotations

import keras

from keras_models.layers import conv
from keras_models.layers.normalization import normalization_layer


@keras.saving.register_keras_serializable(package="boxflow")
class FeaturePyramid(keras.layers.Layer):
    """`[C3, C4, C5]` → `[P3, P4, P5, P6, P7]`, each with `channels` channels.

    `group_norm` normalizes each lateral and output convolution with GroupNorm (Detectron's
    FPN "GN" option), which behaves the same whatever the batch per replica.
    """

    def __init__(self, channels: int = 256, group_norm: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.group_norm = channels, group_norm
        self.lateral = [self._conv(1, f"lateral_c{level}") for level in (3, 4, 5)]
        self.smooth = [self._conv(3, f"output_p{level}") for level in (3, 4, 5)]
        self.p6 = conv.Conv2D(channels, 3, strides=2, padding="same", name="p6")
        self.p7 = conv.Conv2D(channels, 3, strides=2, padding="same", name="p7")
        self.upsample = keras.layers.UpSampling2D(2)

    def _conv(self, size: int, name: str):
        layer = conv.Conv2D(self.channels, size, padding="same", use_bias=not self.group_norm, name=name)
        if not self.group_norm:
            return layer
        return keras.Sequential([layer, normalization_layer("group", self.channels, name=f"{name}_norm")],
                                name=f"{name}_block")

    def call(self, features):
        c3, c4, c5 = features
        p5 = self.lateral[2](c5)
        p4 = self.lateral[1](c4) + self.upsample(p5)
        p3 = self.lateral[0](c3) + self.upsample(p4)
        p3, p4, p5 = (smooth(p) for smooth, p in zip(self.smooth, (p3, p4, p5)))
        p6 = self.p6(c5)
        p7 = self.p7(keras.activations.relu(p6))
        return [p3, p4, p5, p6, p7]

    def get_config(self) -> dict:
        return {**super().get_config(), "channels": self.channels, "group_norm": self.group_norm}
