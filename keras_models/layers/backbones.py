"""Backbones built from constructors (no preset downloads), each returning C3, C4, C5, or the
levels a detector asks for (Faster R-CNN's FPN starts at C2; without the pyramid it reads C4 only).

`tiny` is a small conv net for CPU tests and the synth benchmark; `mobilenet_v2` and
`resnet50` are the Keras Applications networks with `weights=None`, their BatchNorm layers
replaced by the chosen normalization. A user with Keras Applications' weight files loads
them with `keras_models.layers.backbone_weights.load_backbone_weights`.
"""

from __future__ import annotations

import keras

from contracts.errors import BoxflowError, SettingError
from keras_models.layers.normalization import normalization_layer, with_normalization

BACKBONES = ("tiny", "mobilenet_v2", "resnet50")
# The application network inside an application backbone, between preprocessing and C3–C5.
NETWORK_LAYER = "network"
_APPLICATIONS = {
    "mobilenet_v2": keras.applications.MobileNetV2,
    "resnet50": keras.applications.ResNet50,
}
# The layer whose output is C_level (stride 2**level), for levels 2-5.
APPLICATION_FEATURES = {
    "mobilenet_v2": {2: "block_3_expand_relu", 3: "block_6_expand_relu", 4: "block_13_expand_relu", 5: "out_relu"},
    "resnet50": {2: "conv2_block3_out", 3: "conv3_block4_out", 4: "conv4_block6_out", 5: "conv5_block3_out"},
}
LEVELS = (2, 3, 4, 5)


def check_backbone(name: str) -> None:
    if name not in BACKBONES:
        raise SettingError("backbone", f"must be one of {', '.join(BACKBONES)}, got {name!r}")


def plain_application(name: str, image_size: int) -> keras.Model:
    """The Keras Applications network of `name` without its top, as Keras builds it."""
    return _APPLICATIONS[name](input_shape=(image_size, image_size, 3), include_top=False, weights=None)


def build_backbone(name: str, image_size: int, width: int = 32, norm: str = "batch",
                   min_level: int = 3, max_level: int = 5) -> keras.Model:
    """A model from images `[B, S, S, 3]` in 0..255 to `[C_min_level, …, C_max_level]` (strides
    `2**min_level` … `2**max_level`), levels within 2-5; call it through `backbone_features`,
    since Keras returns a one-level list as a bare tensor. The network ends at C_max_level: the
    layers above it are not built.

    `norm` (`keras_models.layers.normalization.NORMALIZATIONS`) is used for every normalization layer.
    """
    check_backbone(name)
    if not LEVELS[0] <= min_level <= max_level <= LEVELS[-1]:
        raise BoxflowError(f"a backbone's features are levels within C2-C5, not C{min_level}-C{max_level}")
    if name == "tiny":
        return _tiny(image_size, width, norm, min_level, max_level)
    network = plain_application(name, image_size)
    if norm != "batch":
        network = with_normalization(network, norm)
    layers = [APPLICATION_FEATURES[name][level] for level in range(min_level, max_level + 1)]
    features = keras.Model(network.input, [network.get_layer(layer).output for layer in layers], name=NETWORK_LAYER)
    inputs = keras.Input((image_size, image_size, 3))
    if name == "mobilenet_v2":
        scaled = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    else:
        scaled = keras.applications.resnet50.preprocess_input(inputs)
    return keras.Model(inputs, features(scaled), name=f"{name}_backbone")


def backbone_features(backbone: keras.Model, images, training: bool = False) -> list:
    """`backbone`'s levels as a list, also when it has one."""
    features = backbone(images, training=training)
    return list(features) if isinstance(features, (list, tuple)) else [features]


def _tiny(image_size: int, width: int, norm: str, min_level: int, max_level: int) -> keras.Model:
    inputs = keras.Input((image_size, image_size, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    outputs = []
    stages = [(width // 2, 1), (width, 1), (width * 2, 2), (width * 3, 2), (width * 4, 2)]
    for stage, (channels, blocks) in enumerate(stages[:max_level]):
        x = _conv(x, channels, 2, norm, name=f"stage{stage}_down")
        for block in range(blocks - 1):
            x = _conv(x, channels, 1, norm, name=f"stage{stage}_block{block}")
        if stage + 1 >= min_level:  # stage s ends at stride 2**(s + 1)
            outputs.append(x)
    return keras.Model(inputs, outputs, name="tiny_backbone")


def _conv(x, channels: int, strides: int, norm: str, name: str):
    x = keras.layers.Conv2D(channels, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = normalization_layer(norm, channels, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)
