"""Panoptic FPN's semantic branch (Kirillov et al., CVPR 2019): every FPN level brought to stride 4 and
summed, then one logit per class and pixel.

Each level from P2 to P5 goes through as many stages of (3x3 convolution, group norm, ReLU, 2x
bilinear upsampling) as it needs to reach P2's stride 4 (P2 one stage without upsampling); the four
maps are summed and a 1x1 convolution gives the logits at stride 4, which the loss and the
prediction upsample 4x to the input.
"""

from __future__ import annotations

import keras

from keras_models.layers import conv
from keras_models.layers.normalization import normalization_layer

FIRST_LEVEL, LAST_LEVEL = 2, 5  # P2 (stride 4) to P5 (stride 32)


@keras.saving.register_keras_serializable(package="boxflow")
class SemanticFPNHead(keras.layers.Layer):
    """FPN levels `[P2, P3, P4, P5]` (`[B, S/2^l, S/2^l, C]` each) → float32 logits `[B, S/4, S/4,
    num_classes]`. `norm`: a `normalization_layer` kind (the paper's group norm by default)."""

    def __init__(self, num_classes: int, channels: int = 128, norm: str = "group", **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.channels, self.norm = num_classes, channels, norm
        self.stages = []
        for level in range(FIRST_LEVEL, LAST_LEVEL + 1):
            count = max(level - FIRST_LEVEL, 1)
            self.stages.append([(conv.Conv2D(channels, 3, padding="same", use_bias=False, name=f"p{level}_conv{k}"),
                                 normalization_layer(norm, channels, name=f"p{level}_norm{k}")) for k in range(count)])
        self.upsample = keras.layers.UpSampling2D(2, interpolation="bilinear", name="upsample")
        self.logits = conv.Conv2D(num_classes, 1, dtype="float32", name="logits")

    def call(self, levels, training=False):
        summed = None
        for level, (features, stages) in enumerate(zip(levels, self.stages), start=FIRST_LEVEL):
            x = features
            for convolution, norm in stages:
                x = keras.ops.relu(norm(convolution(x), training=training))
                if level > FIRST_LEVEL:
                    x = self.upsample(x)
            summed = x if summed is None else summed + x
        return self.logits(summed)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes, "channels": self.channels,
                "norm": self.norm}
