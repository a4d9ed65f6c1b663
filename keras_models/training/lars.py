"""LARS (You, Gitman & Ginsburg 2017, "Large Batch Training of Convolutional Networks") for Keras 3,
which has none.

Algorithm 1 of the paper, per variable (a "layer" there) with gradient `g` and weights `w`:

    local_rate = eta * ||w|| / (||g|| + weight_decay * ||w||)
    v ← momentum * v + learning_rate * local_rate * (g + weight_decay * w)
    w ← w - v

Variables of rank 0 or 1 (biases, normalization scales and offsets) are neither adapted nor
decayed: `v ← momentum * v + learning_rate * g`, the usual practice since their norms say
nothing about a layer's scale. Where `||w||` or the denominator is 0 (a fresh zero-initialized
weight) the local rate is 1.
"""

from __future__ import annotations

import keras
from keras import ops


def is_adapted(variable) -> bool:
    """Whether LARS adapts and decays `variable`: weight matrices and kernels, not vectors."""
    return len(variable.shape) > 1


@keras.saving.register_keras_serializable(package="boxflow")
class Lars(keras.optimizers.Optimizer):
    """LARS with heavy-ball momentum. `weight_decay` is LARS's own β, part of the trust ratio,
    not Keras' decoupled decay; `eta` is the trust coefficient."""

    def __init__(self, learning_rate=1.0, momentum: float = 0.9, weight_decay: float = 1e-4, eta: float = 1e-3,
                 name: str = "lars", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if momentum < 0 or weight_decay < 0 or eta <= 0:
            raise ValueError(f"LARS needs momentum >= 0, weight_decay >= 0 and eta > 0, got {momentum}, "
                             f"{weight_decay}, {eta}")
        self.momentum, self.lars_weight_decay, self.eta = momentum, weight_decay, eta

    def build(self, var_list) -> None:
        if self.built:
            return
        super().build(var_list)
        self.velocities = self.add_optimizer_variables(var_list, "velocity")

    def update_step(self, gradient, variable, learning_rate) -> None:
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        velocity = self.velocities[self._get_variable_index(variable)]
        if is_adapted(variable):
            decay = ops.cast(self.lars_weight_decay, variable.dtype)
            weight_norm = ops.sqrt(ops.sum(ops.square(variable)))
            gradient_norm = ops.sqrt(ops.sum(ops.square(gradient)))
            denominator = gradient_norm + decay * weight_norm
            trust = ops.where(ops.logical_and(weight_norm > 0, denominator > 0),
                              self.eta * weight_norm / ops.maximum(denominator, 1e-30), 1.0)
            learning_rate = learning_rate * trust
            gradient = gradient + decay * variable
        self.assign(velocity, ops.cast(self.momentum, variable.dtype) * velocity + learning_rate * gradient)
        self.assign_sub(variable, velocity)

    def get_config(self) -> dict:
        return {**super().get_config(), "momentum": self.momentum, "weight_decay": self.lars_weight_decay,
                "eta": self.eta}
