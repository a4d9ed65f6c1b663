"""Backbones built from constructors (no preset downloads), each returning C3, C4, C5.

`tiny` is a small conv net for CPU tests and the synth benchmark; `mobilenet_v2` and
`resnet50` are the Keras Applications networks with `weights=None`. A user with a
local weights file loads it with `load_backbone_weights`.
"""

from __future__ import annotations

import keras

from boxflow.errors import BoxflowError

BACKBONES = ("tiny", "mobilenet_v2", "resnet50")
_APPLICATION_FEATURES = {
    "mobilenet_v2": ("block_6_expand_relu", "block_13_expand_relu", "out_relu"),
    "resnet50": ("conv3_block4_out", "conv4_block6_out", "conv5_block3_out"),
}


def build_backbone(name: str, image_size: int, width: int = 32) -> keras.Model:
    """A model from images `[B, S, S, 3]` in 0..255 to `[C3, C4, C5]` (strides 8, 16, 32)."""
    if name == "tiny":
        return _tiny(image_size, width)
    if name not in _APPLICATION_FEATURES:
        raise BoxflowError(f"--backbone must be one of {', '.join(BACKBONES)}, got {name!r}")
    inputs = keras.Input((image_size, image_size, 3))
    if name == "mobilenet_v2":
        network = keras.applications.MobileNetV2(input_shape=(image_size, image_size, 3), include_top=False,
                                                 weights=None)
        scaled = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    else:
        network = keras.applications.ResNet50(input_shape=(image_size, image_size, 3), include_top=False,
                                              weights=None)
        scaled = keras.applications.resnet50.preprocess_input(inputs)
    features = keras.Model(network.input, [network.get_layer(n).output for n in _APPLICATION_FEATURES[name]])
    return keras.Model(inputs, features(scaled), name=f"{name}_backbone")


def load_backbone_weights(backbone: keras.Model, path: str) -> None:
    try:
        backbone.load_weights(path, skip_mismatch=False)
    except (OSError, ValueError) as error:
        raise BoxflowError(f"--weights {path}: cannot load into the backbone: {error}") from None


def _tiny(image_size: int, width: int) -> keras.Model:
    inputs = keras.Input((image_size, image_size, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    outputs = []
    for stage, (channels, blocks) in enumerate([(width // 2, 1), (width, 1), (width * 2, 2), (width * 3, 2),
                                                (width * 4, 2)]):
        x = _conv(x, channels, strides=2, name=f"stage{stage}_down")
        for block in range(blocks - 1):
            x = _conv(x, channels, strides=1, name=f"stage{stage}_block{block}")
        if stage >= 2:
            outputs.append(x)
    return keras.Model(inputs, outputs, name="tiny_backbone")


def _conv(x, channels: int, strides: int, name: str):
    x = keras.layers.Conv2D(channels, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    # Synchronized: under a distribution strategy the batch statistics (and so the moving
    # ones) are those of the global batch, identical on every replica and worker.
    x = keras.layers.BatchNormalization(synchronized=True, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)
