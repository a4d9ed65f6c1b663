"""Learning-rate schedule: linear warm-up, then cosine decay to a floor."""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="boxflow")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Rises linearly from 0 to `peak` over `warmup_steps`, then follows a cosine down to
    `peak * final_fraction` at `total_steps`, and stays there.

    `total_steps` is a variable, so a time budget can re-plan the run's length while it
    trains (`set_total_steps`) without retracing the train step.
    """

    def __init__(self, peak: float, total_steps: int, warmup_steps: int = 0, final_fraction: float = 0.0):
        self.peak, self.warmup_steps, self.final_fraction = peak, warmup_steps, final_fraction
        self._total_steps = keras.Variable(float(total_steps), dtype="float32", trainable=False,
                                           name="schedule_total_steps")

    @property
    def total_steps(self) -> int:
        return int(ops.convert_to_numpy(self._total_steps))

    def set_total_steps(self, total_steps: int) -> None:
        self._total_steps.assign(float(total_steps))

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = float(max(self.warmup_steps, 1))
        decay_steps = ops.maximum(self._total_steps - self.warmup_steps, 1.0)
        progress = ops.clip((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        floor = self.peak * self.final_fraction
        cosine = floor + (self.peak - floor) * 0.5 * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < self.warmup_steps, self.peak * step / warmup, cosine)

    def get_config(self) -> dict:
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps,
                "final_fraction": self.final_fraction}
