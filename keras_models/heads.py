"""The class and box subnets, shared across pyramid levels."""

from __future__ import annotations

import math

import keras

from keras_models import conv


@keras.saving.register_keras_serializable(package="boxflow")
class PredictionHead(keras.layers.Layer):
    """`depth` 3x3 conv + ReLU layers, then a 3x3 conv to `anchors * outputs` channels; applied
    to each level, flattened to `[B, H*W*anchors, outputs]` and concatenated (P3 first).

    `prior_probability` sets the final bias so an untrained class head predicts that
    probability everywhere (RetinaNet's initialization against the background flood).
    """

    def __init__(self, anchors: int, outputs: int, depth: int = 4, channels: int = 256,
                 prior_probability: float | None = None, **kwargs):
        super().__init__(**kwargs)
        self.anchors, self.outputs, self.depth, self.channels = anchors, outputs, depth, channels
        self.prior_probability = prior_probability
        self.convs = [conv.Conv2D(channels, 3, padding="same", activation="relu",
                                          kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                                          name=f"conv{i}") for i in range(depth)]
        bias = (keras.initializers.Constant(-math.log((1 - prior_probability) / prior_probability))
                if prior_probability else "zeros")
        self.final = conv.Conv2D(anchors * outputs, 3, padding="same", bias_initializer=bias,
                                         kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                                         name="predict")

    def call(self, levels):
        flattened = []
        for level in levels:
            x = level
            for conv in self.convs:
                x = conv(x)
            x = self.final(x)
            flattened.append(keras.ops.reshape(x, (keras.ops.shape(x)[0], -1, self.outputs)))
        return keras.ops.concatenate(flattened, axis=1)

    def get_config(self) -> dict:
        return {**super().get_config(), "anchors": self.anchors, "outputs": self.outputs, "depth": self.depth,
                "channels": self.channels, "prior_probability": self.prior_probability}
