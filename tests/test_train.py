"""`boxflow train`: the run directory, each epoch once in the history across a SIGKILL and a resume,
and clear errors for bad arguments."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from boxflow.cli import main
from tests.builders import prepared_synth


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return prepared_synth(tmp_path_factory.mktemp("train"), 40, 128, (16, 48), seed=8, num_shards=2,
                          val_fraction=0.35)


def train_args(data_dir, run_dir, epochs):
    return ["train", "--data", str(data_dir), "--out", str(run_dir), "--image-size", "128", "--epochs", str(epochs),
            "--batch-size", "4"]


def test_train_writes_the_run_directory(data_dir, tmp_path):
    assert main(train_args(data_dir, tmp_path / "run", 2)) == 0
    run = tmp_path / "run"
    assert {"config.json", "label_map.pbtxt", "history.json", "model.weights.h5", "checkpoints", "logs"} <= set(
        os.listdir(run))
    history = json.loads((run / "history.json").read_text())
    assert [entry["epoch"] for entry in history] == [1, 2]
    assert {"loss", "class_loss", "box_loss", "val_loss"} <= set(history[0])
    assert sorted(os.listdir(run / "checkpoints")) == ["epoch-001.weights.h5", "epoch-002.weights.h5"]
    config = json.loads((run / "config.json").read_text())
    assert config["settings"]["image_size"] == 128 and [c["name"] for c in config["classes"]] == [
        "circle", "square", "triangle"]


@pytest.mark.slow
def test_a_killed_run_resumes_and_lists_each_epoch_once(data_dir, tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "boxflow", *train_args(data_dir, run, 4)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (run / "checkpoints" / "epoch-001.weights.h5").exists():
        time.sleep(0.1)
    time.sleep(0.5)  # let BackupAndRestore finish its epoch-end save
    os.killpg(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "training finished before it could be killed"
    finished = len(json.loads((run / "history.json").read_text()))
    assert 1 <= finished < 4

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    history = json.loads((run / "history.json").read_text())
    assert [entry["epoch"] for entry in history] == [1, 2, 3, 4]
    # It resumed: the restarted process ran only the epochs that were missing.
    assert "Epoch 4/4" in resumed.stdout and "Epoch 1/4" not in resumed.stdout


@pytest.mark.parametrize("extra, message", [
    (["--image-size", "200"], "multiple of 128"),
    (["--backbone", "vgg"], "--backbone must be one of"),
    (["--epochs", "0"], "--epochs must be at least 1"),
])
def test_bad_train_arguments_exit_2(data_dir, tmp_path, extra, message, capsys):
    assert main(train_args(data_dir, tmp_path / "run", 1) + extra) == 2
    assert message in capsys.readouterr().err


def test_train_on_a_folder_without_a_dataset_exits_2(tmp_path, capsys):
    assert main(train_args(tmp_path, tmp_path / "run", 1)) == 2
    assert "cannot read dataset_info.json" in capsys.readouterr().err
