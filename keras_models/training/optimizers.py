"""The optimizers of `--optimizer`, and the learning rate scaled to the global batch (`--lr-scaling`)."""

from __future__ import annotations

import math

import keras

from keras_models.training.lars import Lars, is_adapted

OPTIMIZERS = ("adamw", "sgd", "lamb", "lars")
LR_SCALINGS = ("none", "linear", "sqrt")
# `--learning-rate` is the rate for a global batch of this many images; `--lr-scaling` scales
# it to the batch in use: linearly (Goyal et al. 2017, with SGD) or by the square root
# (the usual rule for adaptive optimizers such as LAMB).
BASE_BATCH = 16


def scaled_learning_rate(learning_rate: float, global_batch: int, scaling: str) -> float:
    """The peak rate for `global_batch` images, from `learning_rate` at `BASE_BATCH`."""
    if scaling == "linear":
        return learning_rate * global_batch / BASE_BATCH
    if scaling == "sqrt":
        return learning_rate * math.sqrt(global_batch / BASE_BATCH)
    return learning_rate


def make_optimizer(name: str, learning_rate, weight_decay: float, momentum: float, clip_norm: float,
                   trainable_variables: list) -> keras.optimizers.Optimizer:
    """`learning_rate`: a float or a schedule. Biases and normalization parameters (the rank-1
    `trainable_variables`) are left out of weight decay, and by LARS out of its adaptation too."""
    if name == "adamw":
        optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay, global_clipnorm=clip_norm)
    elif name == "lamb":
        optimizer = keras.optimizers.Lamb(learning_rate, weight_decay=weight_decay, global_clipnorm=clip_norm)
    elif name == "lars":
        return Lars(learning_rate, momentum=momentum, weight_decay=weight_decay, global_clipnorm=clip_norm)
    else:
        optimizer = keras.optimizers.SGD(learning_rate, momentum=momentum, weight_decay=weight_decay,
                                         global_clipnorm=clip_norm)
    optimizer.exclude_from_weight_decay(var_list=[v for v in trainable_variables if not is_adapted(v)])
    return optimizer
