"""`--weights FILE`: Keras Applications weight files loaded into a backbone.

Two layouts are read, both as Keras Applications writes them for a network without its top:
- the legacy h5 layout of the published files (`*_weights_tf_dim_ordering_tf_kernels_notop.h5`):
  one group per layer name, holding its weights by name;
- Keras 3's `.weights.h5`, saved from the application itself: `layers/<key>/vars/<i>`, where
  the key is the layer's class name in snake case, numbered in layer order (Keras' saving
  library names layers so, since their own names need not be reproducible).

The file is checked layer by layer against the plain application, then copied by layer name
into the backbone, whose normalization layers may have been replaced (`--norm`): the
BatchNorm variants share BatchNorm's four variables.
"""

from __future__ import annotations

import keras
import numpy as np

from contracts.errors import SettingError
from keras_models.layers.backbones import NETWORK_LAYER, plain_application
from keras_models.layers.normalization import GroupNormalization

LEGACY_LAYER_NAMES = "layer_names"
KERAS3_LAYERS = "layers"


def load_backbone_weights(backbone: keras.Model, backbone_name: str, image_size: int, path: str) -> None:
    """Loads `path` into `backbone` (from `build_backbone`), or raises BoxflowError naming the file
    and the first layer that does not fit."""
    if backbone_name == "tiny":
        try:
            backbone.load_weights(path)
        except (OSError, ValueError) as error:
            raise SettingError("weights", f"{path}: cannot load into the tiny backbone: {error}") from None
        return
    network = backbone.get_layer(NETWORK_LAYER)
    # A backbone that ends below C5 (Faster R-CNN without its pyramid) has no layers above its end.
    built = {layer.name for layer in network.layers}
    for layer_name, values in read_application_weights(path, backbone_name, image_size).items():
        if layer_name not in built:
            continue
        layer = network.get_layer(layer_name)
        if isinstance(layer, GroupNormalization):
            raise SettingError("weights", f"{path}: layer '{layer_name}' holds BatchNorm statistics, which "
                               "GroupNorm cannot use; choose norm frozen_batch, batch or sync_batch",
                               mentions=("norm",))
        layer.set_weights(values)


def read_application_weights(path: str, backbone_name: str, image_size: int) -> dict[str, list[np.ndarray]]:
    """`{layer name: its weights in the layer's order}` for every layer of the application that
    has weights, read from `path` and checked against the application's shapes."""
    import h5py

    application = plain_application(backbone_name, image_size)
    try:
        with h5py.File(path, "r") as file:
            root = file["model_weights"] if "model_weights" in file else file
            if LEGACY_LAYER_NAMES in root.attrs:
                return _read_legacy(root, application, path, backbone_name)
            if KERAS3_LAYERS in root:
                return _read_keras3(root[KERAS3_LAYERS], application, path, backbone_name)
    except OSError as error:
        raise SettingError("weights", f"{path}: cannot read it as an h5 weights file: {error}") from None
    raise SettingError("weights", f"{path}: neither Keras' legacy h5 layout nor a Keras 3 .weights.h5 file")


def _read_legacy(root, application: keras.Model, path: str, backbone_name: str) -> dict[str, list[np.ndarray]]:
    file_layers = [_text(name) for name in root.attrs[LEGACY_LAYER_NAMES]]
    values = {}
    for layer in _layers_with_weights(application):
        if layer.name not in root:
            raise SettingError("weights", f"{path}: no weights for layer '{layer.name}' of {backbone_name}; is it a "
                               f"{backbone_name} weights file?")
        group = root[layer.name]
        by_name = {_text(name).split("/")[-1].split(":")[0]: group[_text(name)][()]
                   for name in group.attrs.get("weight_names", [])}
        values[layer.name] = [_checked(by_name.get(variable.name), variable, layer, path, backbone_name)
                              for variable in layer.weights]
    application_names = {layer.name for layer in application.layers}
    for name in file_layers:
        if name not in application_names and len(root[name].attrs.get("weight_names", [])):
            raise SettingError("weights", f"{path}: layer '{name}' is not in {backbone_name} without its "
                               "classification top; use the *_notop.h5 file")
    return values


def _read_keras3(layers_group, application: keras.Model, path: str,
                 backbone_name: str) -> dict[str, list[np.ndarray]]:
    values = {}
    keys = _saving_keys(application)
    for layer in application.layers:
        group = layers_group.get(keys[layer.name])
        stored = group.get("vars") if group is not None else None
        arrays = [stored[str(i)][()] for i in range(len(stored))] if stored is not None else []
        if len(arrays) != len(layer.weights):
            raise SettingError("weights", f"{path}: layer '{layer.name}' of {backbone_name} has {len(layer.weights)} "
                               f"weights, the file has {len(arrays)} at '{keys[layer.name]}'; is it a "
                               f"{backbone_name} weights file without the top?")
        if arrays:
            values[layer.name] = [_checked(array, variable, layer, path, backbone_name)
                                  for array, variable in zip(arrays, layer.weights)]
    extra = sorted(set(layers_group) - set(keys.values()))
    if any(len(layers_group[key].get("vars", {})) for key in extra):
        raise SettingError("weights", f"{path}: the file has layers that {backbone_name} without its classification "
                           f"top does not ({', '.join(extra)}); save the application with include_top=False")
    return values


def _saving_keys(model: keras.Model) -> dict[str, str]:
    """Layer name → the key Keras 3's saving library stores it under: its class in snake case,
    numbered `_1`, `_2`, … among earlier layers of the same class."""
    from keras.src.utils.naming import to_snake_case

    used: dict[str, int] = {}
    keys = {}
    for layer in model.layers:
        base = to_snake_case(layer.__class__.__name__)
        count = used.get(base, -1) + 1
        used[base] = count
        keys[layer.name] = base if count == 0 else f"{base}_{count}"
    return keys


def _checked(array, variable, layer, path: str, backbone_name: str) -> np.ndarray:
    if array is None:
        raise SettingError("weights", f"{path}: layer '{layer.name}' of {backbone_name} has no '{variable.name}' in "
                           "the file")
    if tuple(array.shape) != tuple(variable.shape):
        raise SettingError("weights", f"{path}: layer '{layer.name}' does not match {backbone_name}: "
                           f"'{variable.name}' is {tuple(array.shape)} in the file, {tuple(variable.shape)} in the "
                           "network")
    return array


def _layers_with_weights(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if layer.weights]


def _text(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)
