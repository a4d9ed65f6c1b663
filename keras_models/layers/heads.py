"""The class and box subnets, shared across pyramid levels."""

from __future__ import annotations

import math

import keras

from contracts.errors import BoxflowError
from keras_models.layers import conv
from keras_models.layers.normalization import normalization_layer

HEAD_NORMS = ("none", "group")  # of the FPN and the heads; batch statistics would differ per level


@keras.saving.register_keras_serializable(package="boxflow")
class PredictionHead(keras.layers.Layer):
    """`depth` 3x3 conv + ReLU layers, then a 3x3 conv to `anchors * outputs` channels; applied
    to each level, flattened to `[B, H*W*anchors, outputs]` float32 and concatenated (P3 first).

    `group_norm` puts GroupNorm between each hidden conv and its ReLU; like the convs, the
    GroupNorm layers are shared by all levels, which they can be, as they use no batch statistics.

    `prior_probability` sets the final bias so an untrained class head predicts that
    probability everywhere (RetinaNet's initialization against the background flood).
    """

    def __init__(self, anchors: int, outputs: int, depth: int = 4, channels: int = 256,
                 prior_probability: float | None = None, group_norm: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.anchors, self.outputs, self.depth, self.channels = anchors, outputs, depth, channels
        self.prior_probability, self.group_norm = prior_probability, group_norm
        self.convs = [conv.Conv2D(channels, 3, padding="same", activation=None if group_norm else "relu",
                                  use_bias=not group_norm,
                                  kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                                  name=f"conv{i}") for i in range(depth)]
        self.norms = [normalization_layer("group", channels, name=f"norm{i}")
                      for i in range(depth if group_norm else 0)]
        bias = (keras.initializers.Constant(-math.log((1 - prior_probability) / prior_probability))
                if prior_probability else "zeros")
        # float32 even under a mixed-precision policy: losses and decoding read these directly.
        self.final = conv.Conv2D(anchors * outputs, 3, padding="same", bias_initializer=bias,
                                 kernel_initializer=keras.initializers.RandomNormal(stddev=0.01), dtype="float32",
                                 name="predict")

    def call(self, levels):
        flattened = []
        for level in levels:
            x = level
            for index, hidden in enumerate(self.convs):
                x = hidden(x)
                if self.group_norm:
                    x = keras.activations.relu(self.norms[index](x))
            x = self.final(x)
            flattened.append(keras.ops.reshape(x, (keras.ops.shape(x)[0], -1, self.outputs)))
        return keras.ops.concatenate(flattened, axis=1)

    def get_config(self) -> dict:
        return {**super().get_config(), "anchors": self.anchors, "outputs": self.outputs, "depth": self.depth,
                "channels": self.channels, "prior_probability": self.prior_probability,
                "group_norm": self.group_norm}
