"""The optimizers of `--optimizer`, each with its own default learning rate and scaling, and the
rate scaled to the global batch (`--lr-scaling`)."""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

import keras

from keras_models.training.lamb import Lamb
from keras_models.training.lars import Lars, is_adapted

OPTIMIZERS = ("adamw", "sgd", "lamb", "lars")
LR_SCALINGS = ("none", "linear", "sqrt")
# A base rate is the rate for a global batch of this many images; the scaling takes it to the
# batch in use: linearly (Goyal et al. 2017, with SGD and LARS) or by the square root (the usual
# rule for adaptive optimizers such as LAMB).
BASE_BATCH = 16


@dataclasses.dataclass(frozen=True)
class RateDefault:
    """An optimizer's base rate at `BASE_BATCH` images and its scaling, when the user names neither."""

    base: float
    scaling: str


# Measured on the tiny RetinaNet, 160 synthetic images at 128 px, 3 epochs at batch 8 and 16: the
# first epoch's loss falls by 29-36% (LARS, LAMB, AdamW) and 18-22% (SGD) by the third. At
# AdamW's 0.001 LARS and LAMB barely move (their steps are relative to each layer's norm).
DEFAULT_RATES = {
    "adamw": RateDefault(1e-3, "none"),  # Adam's steps hardly depend on the batch size
    "sgd": RateDefault(0.02, "linear"),  # Detectron's 0.02 at 16 images
    "lamb": RateDefault(0.01, "sqrt"),  # steps of 1% of each layer's norm at 16 images
    "lars": RateDefault(1.0, "linear"),  # with eta 0.001 and momentum 0.9
}


@dataclasses.dataclass(frozen=True)
class LearningRate:
    """The peak rate of a run and where it came from."""

    base: float
    scaling: str
    global_batch: int
    source: str  # e.g. "lamb's defaults", "learning_rate as set, sgd's default scaling"

    @property
    def peak(self) -> float:
        return scaled_learning_rate(self.base, self.global_batch, self.scaling)

    def describe(self) -> str:
        scaled = "" if self.scaling == "none" else f" ({self.base:g} at {BASE_BATCH} images, {self.scaling} scaling)"
        return f"peak rate {self.peak:g}{scaled} from {self.source}"

    def to_json_dict(self) -> dict:
        return {"base": self.base, "base_batch": BASE_BATCH, "global_batch": self.global_batch,
                "scaling": self.scaling, "peak": self.peak, "source": self.source}


def learning_rate_for(optimizer: str, global_batch: int, base: Optional[float] = None,
                      scaling: Optional[str] = None) -> LearningRate:
    """The run's rate: `base` and `scaling` where given, else `optimizer`'s defaults."""
    default = DEFAULT_RATES[optimizer]
    if base is None and scaling is None:
        source = f"{optimizer}'s defaults"
    else:
        source = ", ".join(("learning_rate as set" if base is not None else f"{optimizer}'s default rate",
                            "lr_scaling as set" if scaling is not None else f"{optimizer}'s default scaling"))
    return LearningRate(base if base is not None else default.base, scaling or default.scaling, global_batch, source)


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
    `trainable_variables`) are left out of weight decay, and by LARS and LAMB out of their trust
    ratios too."""
    if name == "lamb":
        return Lamb(learning_rate, weight_decay=weight_decay, global_clipnorm=clip_norm)
    if name == "lars":
        return Lars(learning_rate, momentum=momentum, weight_decay=weight_decay, global_clipnorm=clip_norm)
    if name == "adamw":
        optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay, global_clipnorm=clip_norm)
    else:
        optimizer = keras.optimizers.SGD(learning_rate, momentum=momentum, weight_decay=weight_decay,
                                         global_clipnorm=clip_norm)
    optimizer.exclude_from_weight_decay(var_list=[v for v in trainable_variables if not is_adapted(v)])
    return optimizer
