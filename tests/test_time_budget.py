"""`--time-budget`: the plan from measured step times, and a real run that ends, with its
checkpoint and its schedule decayed, inside the budget."""

import json

import pytest

from boxflow.cli import main
from keras_models.training.time_budget import plan_steps
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


def test_a_budgeted_run_ends_inside_the_budget_with_its_schedule_decayed(tmp_path, capsys):
    data = prepared_synth(tmp_path, 48, 128, (16, 48), seed=5, num_shards=2, val_fraction=0.25)
    run = tmp_path / "run"
    budget_minutes = 0.5
    assert main(["train", "--data", str(data), "--out", str(run), "--image-size", "128", "--batch-size", "4",
                 "--time-budget", str(budget_minutes), "--learning-rate", "0.001", "--warmup-epochs", "0.5"]) == 0
    out, err = capsys.readouterr()
    seconds = float(out.split(" in ")[1].split("s;")[0])
    assert seconds <= budget_minutes * 60
    assert "time budget:" in err
    history = json.loads((run / "history.json").read_text())
    assert len(history) >= 2
    # Planned for the budget, the cosine is far down; planned for the epoch limit, it would be at its peak.
    assert history[-1]["learning_rate"] < 0.5 * 0.001
    assert (run / "model.weights.h5").exists() and (run / "checkpoints").is_dir()


def test_epochs_and_time_budget_exclude_each_other(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--epochs", "2",
              "--time-budget", "1"])
    assert exit_info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
