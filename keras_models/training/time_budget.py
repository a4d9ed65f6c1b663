"""`--time-budget`: fit a training run, schedule included, into a wall-clock budget.

The plan is made from measured times, not guessed: after the first few steps (tracing
excluded) the seconds per step give how many steps fit before the deadline, and the
schedule's length is set to that, rounded down to whole epochs when at least one fits.
Each epoch end re-plans with the measured per-epoch overhead (validation, checkpoints).
Training stops at the planned step, or earlier if the clock says so, leaving `reserve`
seconds for the final checkpoint.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

import keras

from keras_models.training.schedule import WarmupCosine


@dataclasses.dataclass(frozen=True)
class StepPlan:
    stop_step: int
    epochs: float


def plan_steps(step: int, seconds_left: float, seconds_per_step: float, overhead_per_epoch: float,
               steps_per_epoch: int) -> StepPlan:
    """Where to stop, seen from global `step` with `seconds_left` (reserve excluded).

    Whole epochs when the current epoch can still finish; otherwise as many steps as fit.
    """
    per_step = seconds_per_step + overhead_per_epoch / steps_per_epoch
    reachable = step + max(int(seconds_left / per_step), 0)
    whole_epochs_end = reachable - reachable % steps_per_epoch
    current_epoch_end = step - step % steps_per_epoch + steps_per_epoch
    stop = whole_epochs_end if whole_epochs_end >= current_epoch_end else reachable
    return StepPlan(stop_step=stop, epochs=stop / steps_per_epoch)


class TimeBudget(keras.callbacks.Callback):
    """Stops training by `deadline` (a `clock()` reading), re-planning `schedule` to end there.

    Until an epoch has been measured, an epoch's end (validation, the mAP callback,
    checkpoints) is guessed: validation batches at a third of a training step each, plus
    the one-off tracing of the validation and evaluation functions at half the first
    training step (which is mostly the tracing of the train function). Measured here:
    first step 11-16 s, validation and evaluation tracing 4 s.
    """

    def __init__(self, deadline: float, schedule: WarmupCosine, steps_per_epoch: int, validation_share: float,
                 reserve: float, progress: Callable[[str], None], clock: Callable[[], float] = time.monotonic,
                 calibration_steps: int = 8, skipped_steps: int = 2):
        super().__init__()
        self.deadline, self.schedule, self.steps_per_epoch = deadline, schedule, steps_per_epoch
        self.validation_share, self.reserve, self.progress, self.clock = validation_share, reserve, progress, clock
        self.calibration_steps, self.skipped_steps = calibration_steps, skipped_steps
        self.seconds_per_step: float | None = None
        self.overhead_per_epoch: float | None = None
        self.stop_step: int | None = None
        self.ran_out = False
        self._batches_seen = 0
        self._first_step_seconds = 0.0
        self._epoch_started: float | None = None
        self._batch_started = 0.0
        self._epoch_batch_seconds: list[float] = []  # this epoch's steps, the traced first ones left out
        self._epoch_step_seconds = 0.0  # every step of this epoch
        self._measured_steps: list[float] = []
        self._measured_overheads: list[float] = []

    def _step(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def _epoch_end_seconds(self) -> float:
        if self.overhead_per_epoch is not None:
            return self.overhead_per_epoch
        validation = self.validation_share * self.steps_per_epoch * (self.seconds_per_step or 0.0) / 3
        return validation + 0.5 * self._first_step_seconds

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        now = self.clock()
        if self._epoch_started is not None and self._epoch_batch_seconds:
            # The previous epoch, now wholly measured: its steps, and everything around them.
            self._measured_steps += self._epoch_batch_seconds
            self._measured_overheads.append(max(now - self._epoch_started - self._epoch_step_seconds, 0.0))
            # Averages over every measured epoch keep the plan (and so the schedule) steady; the
            # first epoch's overhead, which includes one-off tracing, counts only until others exist.
            overheads = self._measured_overheads[1:] or self._measured_overheads
            self.seconds_per_step = sum(self._measured_steps) / len(self._measured_steps)
            self._plan(sum(overheads) / len(overheads))
        self._epoch_started, self._epoch_batch_seconds, self._epoch_step_seconds = now, [], 0.0

    def on_train_batch_begin(self, batch: int, logs=None) -> None:
        self._batch_started = self.clock()

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        now = self.clock()
        seconds = now - self._batch_started
        self._batches_seen += 1
        self._epoch_step_seconds += seconds
        if self._batches_seen == 1:
            self._first_step_seconds = seconds
        if self._batches_seen > self.skipped_steps:
            self._epoch_batch_seconds.append(seconds)
        if self.seconds_per_step is None and len(self._epoch_batch_seconds) >= self.calibration_steps:
            self.seconds_per_step = sum(self._epoch_batch_seconds) / len(self._epoch_batch_seconds)
            self._plan(self._epoch_end_seconds())
        planned_stop = self.stop_step is not None and self._step() >= self.stop_step
        self.ran_out = now + self._epoch_end_seconds() > self.deadline - self.reserve
        if self.ran_out and not planned_stop:
            self.progress(f"[train] time budget: stopping at step {self._step()}, ahead of the plan (the steps ran "
                          "slower than measured)")
        if planned_stop or self.ran_out:
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if self.stop_step is not None and self._step() >= self.stop_step:
            self.model.stop_training = True

    def _plan(self, overhead_per_epoch: float) -> None:
        self.overhead_per_epoch = overhead_per_epoch
        plan = plan_steps(self._step(), self.deadline - self.reserve - self.clock(), self.seconds_per_step,
                          overhead_per_epoch, self.steps_per_epoch)
        if plan.stop_step != self.stop_step:
            self.schedule.set_total_steps(max(plan.stop_step, self.schedule.warmup_steps + 1))
            self.progress(f"[train] time budget: {self.seconds_per_step:.2f}s per step, "
                          f"{overhead_per_epoch:.0f}s per epoch besides; training to step {plan.stop_step} "
                          f"({plan.epochs:.1f} epochs)")
        self.stop_step = plan.stop_step
