"""DeepLab v3's atrous spatial pyramid pooling (Chen et al. 2017) and v3+'s decoder (Chen et al.
2018): the `semantic_head: aspp` choice of the semantic branch.

ASPP looks at the deepest features (C5) through parallel branches: a 1x1 convolution, three 3x3
convolutions dilated by `rates`, and the image's mean (global pooling, a 1x1 convolution, spread
back over the map), concatenated and mixed by a 1x1 convolution. DeepLab's rates 6, 12, 18 are for
features at stride 16; at stride s they scale by 16 / s (`rates_for_stride`), so that each branch
sees the same share of the image. The v3+ decoder upsamples that to the stride of the low-level
features (C2, stride 4), concatenates them, reduced to 48 channels, and refines with two 3x3
convolutions before one logit per class.
"""

from __future__ import annotations

import keras

from keras_models.layers import conv
from keras_models.layers.normalization import normalization_layer

DEEPLAB_RATES = (6, 12, 18)  # at output stride 16
DEEPLAB_STRIDE = 16
LOW_LEVEL_CHANNELS = 48


def rates_for_stride(stride: int, rates: tuple[int, ...] = DEEPLAB_RATES) -> tuple[int, ...]:
    """DeepLab's dilation rates for features at `stride` (at least 1 each)."""
    return tuple(max(1, round(rate * DEEPLAB_STRIDE / stride)) for rate in rates)


def _conv_norm(channels: int, kernel: int, norm: str, name: str, dilation: int = 1) -> list:
    return [conv.Conv2D(channels, kernel, padding="same", dilation_rate=dilation, use_bias=False, name=f"{name}_conv"),
            normalization_layer(norm, channels, name=f"{name}_norm")]


def _apply(layers: list, x, training: bool):
    convolution, norm = layers
    return keras.ops.relu(norm(convolution(x), training=training))


@keras.saving.register_keras_serializable(package="boxflow")
class AtrousSpatialPyramidPooling(keras.layers.Layer):
    """`[B, h, w, C]` features → `[B, h, w, channels]`, from five branches (1x1, three dilated 3x3,
    image pooling)."""

    def __init__(self, channels: int = 256, rates: tuple[int, ...] = DEEPLAB_RATES, norm: str = "batch", **kwargs):
        super().__init__(**kwargs)
        self.channels, self.rates, self.norm = channels, tuple(rates), norm
        self.branches = [_conv_norm(channels, 1, norm, "1x1")] + [
            _conv_norm(channels, 3, norm, f"rate{rate}", dilation=rate) for rate in self.rates]
        self.pooled = _conv_norm(channels, 1, norm, "image_pooling")
        self.project = _conv_norm(channels, 1, norm, "project")

    def call(self, features, training=False):
        outputs = [_apply(branch, features, training) for branch in self.branches]
        mean = keras.ops.mean(features, axis=(1, 2), keepdims=True)
        pooled = _apply(self.pooled, mean, training)
        outputs.append(keras.ops.broadcast_to(pooled, keras.ops.shape(outputs[0])))
        return _apply(self.project, keras.ops.concatenate(outputs, axis=-1), training)

    def get_config(self) -> dict:
        return {**super().get_config(), "channels": self.channels, "rates": list(self.rates), "norm": self.norm}


@keras.saving.register_keras_serializable(package="boxflow")
class DeepLabV3PlusHead(keras.layers.Layer):
    """`(low_level [B, S/4, S/4, C2], deep [B, S/s, S/s, C5])` → float32 logits `[B, S/4, S/4,
    num_classes]`: ASPP on the deep features (rates scaled to `deep_stride`), upsampled to the
    low-level features' stride and refined with them."""

    def __init__(self, num_classes: int, channels: int = 256, deep_stride: int = 32, norm: str = "batch",
                 **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.channels, self.deep_stride, self.norm = num_classes, channels, deep_stride, norm
        self.aspp = AtrousSpatialPyramidPooling(channels, rates_for_stride(deep_stride), norm, name="aspp")
        self.low_level = _conv_norm(LOW_LEVEL_CHANNELS, 1, norm, "low_level")
        self.refine = [_conv_norm(channels, 3, norm, f"refine{k}") for k in range(2)]
        self.upsample = keras.layers.UpSampling2D(deep_stride // 4, interpolation="bilinear", name="upsample")
        self.logits = conv.Conv2D(num_classes, 1, dtype="float32", name="logits")

    def call(self, inputs, training=False):
        low_level, deep = inputs
        x = keras.ops.concatenate([self.upsample(self.aspp(deep, training=training)),
                                   _apply(self.low_level, low_level, training)], axis=-1)
        for layers in self.refine:
            x = _apply(layers, x, training)
        return self.logits(x)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes, "channels": self.channels,
                "deep_stride": self.deep_stride, "norm": self.norm}
