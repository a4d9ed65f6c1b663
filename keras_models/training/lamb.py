"""LAMB as published (You et al. 2019, "Large Batch Optimization for Deep Learning: Training BERT
in 76 minutes", Algorithm 2). `keras.optimizers.Lamb` differs from it: it applies the trust
ratio to biases and normalization parameters too, and adds weight decay outside the ratio.

Per variable (a "layer" there) with gradient `g`, weights `x` and step `t` from 1:

    m ← β1 m + (1 − β1) g;   v ← β2 v + (1 − β2) g²
    r = (m / (1 − β1ᵗ)) / (sqrt(v / (1 − β2ᵗ)) + ε)
    u = r + λ x                       (decoupled weight decay, inside the ratio)
    x ← x − η · ||x|| / ||u|| · u

Variables of rank 0 or 1 (biases, normalization scales and offsets) take the plain Adam step
`x ← x − η r`: no trust ratio and no decay, as LARS treats them here (`lars.is_adapted`). Where
`||x||` or `||u||` is 0 (a fresh zero-initialized weight) the ratio is 1.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_models.training.lars import is_adapted


@keras.saving.register_keras_serializable(package="boxflow")
class Lamb(keras.optimizers.Optimizer):
    """LAMB with bias-corrected moments; `weight_decay` is λ of Algorithm 2."""

    def __init__(self, learning_rate=1e-3, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-6,
                 weight_decay: float = 1e-4, name: str = "lamb", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not (0 <= beta_1 < 1 and 0 <= beta_2 < 1) or epsilon <= 0 or weight_decay < 0:
            raise ValueError(f"LAMB needs 0 <= beta_1, beta_2 < 1, epsilon > 0 and weight_decay >= 0, got "
                             f"{beta_1}, {beta_2}, {epsilon}, {weight_decay}")
        self.beta_1, self.beta_2, self.epsilon, self.lamb_weight_decay = beta_1, beta_2, epsilon, weight_decay

    def build(self, var_list) -> None:
        if self.built:
            return
        super().build(var_list)
        self.momentums = self.add_optimizer_variables(var_list, "momentum")
        self.velocities = self.add_optimizer_variables(var_list, "velocity")

    def update_step(self, gradient, variable, learning_rate) -> None:
        dtype = variable.dtype
        learning_rate = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = ops.cast(self.beta_1, dtype), ops.cast(self.beta_2, dtype)
        index = self._get_variable_index(variable)
        momentum, velocity = self.momentums[index], self.velocities[index]
        self.assign(momentum, beta_1 * momentum + (1 - beta_1) * gradient)
        self.assign(velocity, beta_2 * velocity + (1 - beta_2) * ops.square(gradient))
        corrected_momentum = momentum / (1 - ops.power(beta_1, step))
        corrected_velocity = velocity / (1 - ops.power(beta_2, step))
        update = corrected_momentum / (ops.sqrt(corrected_velocity) + ops.cast(self.epsilon, dtype))
        if is_adapted(variable):
            update = update + ops.cast(self.lamb_weight_decay, dtype) * variable
            weight_norm = ops.sqrt(ops.sum(ops.square(variable)))
            update_norm = ops.sqrt(ops.sum(ops.square(update)))
            trust = ops.where(ops.logical_and(weight_norm > 0, update_norm > 0),
                              weight_norm / ops.maximum(update_norm, 1e-30), 1.0)
            learning_rate = learning_rate * trust
        self.assign_sub(variable, learning_rate * update)

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "weight_decay": self.lamb_weight_decay}
