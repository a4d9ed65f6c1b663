"""The heads of a two-stage detector (Faster R-CNN): the region proposal network's, shared by every
pyramid level, and the second stage's box head, applied to each ROI's pooled features."""

from __future__ import annotations

import keras

from contracts.errors import BoxflowError
from keras_models.layers import conv

BOX_HEADS = ("2fc", "4conv1fc")  # FPN's two 1024-wide layers; Detectron's 4 convolutions and one layer


def _small_normal() -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(stddev=0.01)


@keras.saving.register_keras_serializable(package="boxflow")
class RegionProposalHead(keras.layers.Layer):
    """A 3x3 convolution + ReLU shared by all levels, then 1x1 convolutions to each anchor's
    objectness logit and box deltas.

    Levels `[B, H_l, W_l, C]` → `(logits, deltas)`: per level `[B, H_l * W_l * A]` and
    `[B, H_l * W_l * A, 4]`, float32, in the anchors' order (locations row-major, then the anchors
    of a location).
    """

    def __init__(self, anchors: int, channels: int = 256, **kwargs):
        super().__init__(**kwargs)
        self.anchors, self.channels = anchors, channels
        self.conv = conv.Conv2D(channels, 3, padding="same", activation="relu", kernel_initializer=_small_normal(),
                                name="conv")
        # float32 even under a mixed-precision policy: proposals and losses read these directly.
        self.objectness = conv.Conv2D(anchors, 1, kernel_initializer=_small_normal(), dtype="float32",
                                      name="objectness")
        self.deltas = conv.Conv2D(4 * anchors, 1, kernel_initializer=_small_normal(), dtype="float32", name="deltas")

    def call(self, levels):
        logits, deltas = [], []
        for level in levels:
            hidden = self.conv(level)
            batch = keras.ops.shape(hidden)[0]
            logits.append(keras.ops.reshape(self.objectness(hidden), (batch, -1)))
            deltas.append(keras.ops.reshape(self.deltas(hidden), (batch, -1, 4)))
        return logits, deltas

    def get_config(self) -> dict:
        return {**super().get_config(), "anchors": self.anchors, "channels": self.channels}


@keras.saving.register_keras_serializable(package="boxflow")
class BoxHead(keras.layers.Layer):
    """Each ROI's pooled features `[B, R, S, S, C]` → `(class logits [B, R, num_classes + 1],
    box deltas [B, R, num_classes, box_outputs])`, float32. The last logit is the background's; the
    deltas are class-specific, encoded against the ROI (`box_coding`): 4 coordinates, or 8 for a
    probabilistic head (each edge's location, then its log-scale).

    `kind`: `"2fc"`, two fully connected layers of `width` (FPN's head), or `"4conv1fc"`, four 3x3
    convolutions of `conv_channels` then one such layer.
    """

    def __init__(self, num_classes: int, kind: str = "2fc", width: int = 1024, conv_channels: int = 256,
                 box_outputs: int = 4, **kwargs):
        super().__init__(**kwargs)
        if kind not in BOX_HEADS:
            raise BoxflowError(f"box_head must be one of {', '.join(BOX_HEADS)}, got {kind!r}")
        self.num_classes, self.kind, self.width, self.conv_channels = num_classes, kind, width, conv_channels
        self.box_outputs = box_outputs
        self.convs = [conv.Conv2D(conv_channels, 3, padding="same", activation="relu", name=f"conv{index}")
                      for index in range(4 if kind == "4conv1fc" else 0)]
        self.hidden = [keras.layers.Dense(width, activation="relu", name=f"fc{index}")
                       for index in range(2 if kind == "2fc" else 1)]
        self.classes = keras.layers.Dense(num_classes + 1, kernel_initializer=_small_normal(), dtype="float32",
                                          name="classes")
        self.boxes = keras.layers.Dense(box_outputs * num_classes, kernel_initializer=keras.initializers.RandomNormal(
            stddev=0.001), dtype="float32", name="boxes")

    def call(self, roi_features):
        shape = keras.ops.shape(roi_features)
        x = keras.ops.reshape(roi_features, (-1, *roi_features.shape[2:]))  # [B * R, S, S, C]
        for layer in self.convs:
            x = layer(x)
        x = keras.ops.reshape(x, (shape[0] * shape[1], -1))
        for layer in self.hidden:
            x = layer(x)
        logits = keras.ops.reshape(self.classes(x), (shape[0], shape[1], self.num_classes + 1))
        deltas = keras.ops.reshape(self.boxes(x), (shape[0], shape[1], self.num_classes, self.box_outputs))
        return logits, deltas

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes, "kind": self.kind, "width": self.width,
                "conv_channels": self.conv_channels, "box_outputs": self.box_outputs}
