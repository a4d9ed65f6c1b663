"""`--time-budget`: the plan from measured step times, the callback re-planning a `fit` on a
simulated clock, and a real run that ends, with its checkpoint, inside the budget."""

import json

import keras
import numpy as np
import pytest

from boxflow.cli import main
from keras_models.training.schedule import WarmupCosine
from keras_models.training.time_budget import TimeBudget, plan_steps
from tests.builders import prepared_synth


@pytest.mark.parametrize("step, seconds_left, overhead, expected_stop", [
    (0, 100.0, 0.0, 1000),   # 1000 steps fit: 20 whole epochs of 50
    (0, 103.0, 0.0, 1000),   # 1030 fit: rounded down to whole epochs
    (0, 100.0, 5.0, 500),    # 5 s of validation per epoch costs a tenth of a second per step
    (10, 2.0, 0.0, 30),      # the first epoch cannot finish: stop where the time runs out
    (50, 3.0, 0.0, 80),      # after an epoch, a part of the next one still fits
    (120, -1.0, 0.0, 120),   # past the deadline: stop now
])
def test_plan_steps(step, seconds_left, overhead, expected_stop):
    plan = plan_steps(step, seconds_left, seconds_per_step=0.1, overhead_per_epoch=overhead, steps_per_epoch=50)
    assert plan.stop_step == expected_stop and plan.epochs == pytest.approx(expected_stop / 50)


class SimulatedSeconds(keras.callbacks.Callback):
    """A clock that `fit` moves: each step takes `step_seconds` (the first `first_step_seconds`, its
    tracing), each epoch end `epoch_end_seconds` (the first one `first_epoch_extra` more). From
    `slow_from_epoch` on, steps take `slow_step_seconds`. Placed before the budget, it moves the
    clock before the budget reads it."""

    def __init__(self, step_seconds=0.5, first_step_seconds=6.0, epoch_end_seconds=3.0, first_epoch_extra=4.0,
                 slow_from_epoch=None, slow_step_seconds=2.0):
        super().__init__()
        self.now, self.steps, self.epoch = 0.0, 0, 0
        self.step_seconds, self.first_step_seconds = step_seconds, first_step_seconds
        self.epoch_end_seconds, self.first_epoch_extra = epoch_end_seconds, first_epoch_extra
        self.slow_from_epoch, self.slow_step_seconds = slow_from_epoch, slow_step_seconds

    def __call__(self) -> float:
        return self.now

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        slow = self.slow_from_epoch is not None and self.epoch >= self.slow_from_epoch
        self.now += (self.first_step_seconds if self.steps == 1
                     else self.slow_step_seconds if slow else self.step_seconds)

    def on_epoch_end(self, epoch, logs=None):
        self.now += self.epoch_end_seconds + (self.first_epoch_extra if epoch == 0 else 0.0)


def _budgeted_fit(clock: SimulatedSeconds, deadline: float = 60.0, reserve: float = 5.0):
    """A one-weight model fit on 40 samples in batches of 4 (10 steps an epoch) under a budget."""
    schedule = WarmupCosine(0.1, total_steps=1000, warmup_steps=5)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="mse")
    messages: list[str] = []
    budget = TimeBudget(deadline, schedule, steps_per_epoch=10, validation_share=0.25, reserve=reserve,
                        progress=messages.append, clock=clock)
    history = model.fit(np.zeros((40, 1)), np.zeros((40, 1)), batch_size=4, epochs=100, verbose=0,
                        callbacks=[clock, budget])
    return model, schedule, messages, len(history.epoch)


def test_the_budget_replans_from_each_measured_epoch_and_stops_on_the_plan():
    clock = SimulatedSeconds()
    model, schedule, messages, epochs = _budgeted_fit(clock)
    # Worked by hand from plan_steps with 55 s usable (60 less the 5 s reserve):
    #  - step 10, t = 10.5: 0.5 s a step (the two traced steps left out), the epoch end guessed at
    #    0.42 s of validation + 3 s of tracing: 0.84 s a step, so 52 more steps, whole epochs: 60;
    #  - epoch 2 begins at t = 17.5: the first epoch end measured at 7 s: 1.2 s a step, 31 more: 40;
    #  - epoch 3 begins at t = 25.5: the second's 3 s now stands for every epoch end: 36 more: 50,
    #    which epochs 4 and 5 confirm.
    plans = [message.split("training to step ")[1].split(" ")[0] for message in messages]
    assert plans == ["60", "40", "50"]
    assert epochs == 5 and int(model.optimizer.iterations.numpy()) == 50
    assert schedule.total_steps == 50
    assert clock.now == pytest.approx(49.5)  # inside the 55 s the reserve leaves
    # The schedule ends where the run ends: the last step's rate is the cosine's floor.
    assert float(schedule(50)) == pytest.approx(0.0)


def test_steps_that_slow_down_after_the_plan_stop_the_run_ahead_of_it_inside_the_budget():
    clock = SimulatedSeconds(slow_from_epoch=3)
    model, _, messages, epochs = _budgeted_fit(clock)
    # Planned for step 50 at epoch 3's start, the steps then take 2 s. Epoch 4 re-plans at t = 48.5
    # from the average step so far (1.04 s): 4 more steps. They take 2 s each, so with 3 s of epoch
    # end foreseen the step that ends past 52 s stops the run: step 32, at t = 52.5.
    assert messages[-2].endswith("training to step 34 (3.4 epochs)")
    assert "stopping at step 32, ahead of the plan" in messages[-1]
    assert int(model.optimizer.iterations.numpy()) == 32 and epochs == 4
    assert clock.now == pytest.approx(55.5) and clock.now <= 60.0


def test_a_budgeted_run_ends_inside_the_budget_with_its_checkpoint(tmp_path, capsys):
    data = prepared_synth(tmp_path, 48, 128, (16, 48), seed=5, num_shards=2, val_fraction=0.25)
    run = tmp_path / "run"
    # A minute: under CI's load the traced first step and the first epoch's end (validation, the
    # mAP callback, checkpoints) alone took 29 s, so half a minute could not be kept at all.
    budget_minutes = 1.0
    assert main(["train", "--data", str(data), "--out", str(run), "--image-size", "128", "--batch-size", "4",
                 "--time-budget", str(budget_minutes), "--learning-rate", "0.001", "--warmup-epochs", "0.5"]) == 0
    out, err = capsys.readouterr()
    seconds = float(out.split(" in ")[1].split("s;")[0])
    assert seconds <= budget_minutes * 60, err
    assert "time budget:" in err
    # How many epochs fit depends on this machine's speed; the plan's arithmetic is tested above on
    # a simulated clock.
    assert len(json.loads((run / "history.json").read_text())) >= 1
    assert (run / "model.weights.h5").exists() and (run / "checkpoints").is_dir()


def test_epochs_and_time_budget_exclude_each_other(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--epochs", "2",
              "--time-budget", "1"])
    assert exit_info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
