"""`boxflow train`: the run directory, each epoch once in the history across a SIGKILL and a resume,
and clear errors for bad arguments."""

import json
import math
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


@pytest.fixture(scope="module")
def two_epoch_run(data_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("two_epochs") / "run"
    assert main(train_args(data_dir, run, 2)) == 0
    return run


def test_train_writes_the_run_directory(two_epoch_run):
    run = two_epoch_run
    assert {"config.json", "label_map.pbtxt", "history.json", "model.weights.h5", "checkpoints", "logs"} <= set(
        os.listdir(run))
    history = json.loads((run / "history.json").read_text())
    assert [entry["epoch"] for entry in history] == [1, 2]
    assert {"loss", "class_loss", "box_loss", "val_loss", "val_mAP", "val_mAP50", "learning_rate"} <= set(history[0])
    assert 0.0 <= history[-1]["val_mAP50"] <= 1.0
    assert sorted(os.listdir(run / "checkpoints")) == ["epoch-001.weights.h5", "epoch-002.weights.h5"]
    config = json.loads((run / "config.json").read_text())
    assert config["settings"]["image_size"] == 128 and [c["name"] for c in config["classes"]] == [
        "circle", "square", "triangle"]
    assert config["model"]["image_size"] == 128 and config["model"]["num_classes"] == 3


def tensorboard_tags(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"images": 0, "tensors": 0})
    events.Reload()
    return set(events.Tags()["tensors"]) | set(events.Tags()["images"])


def test_tensorboard_has_learning_rate_validation_map_and_detection_images(two_epoch_run):
    logs = two_epoch_run / "logs"
    assert {"epoch_loss", "epoch_learning_rate"} <= tensorboard_tags(logs / "train")
    assert {"epoch_mAP", "epoch_mAP50", "epoch_loss"} <= tensorboard_tags(logs / "validation")
    assert any(tag.startswith("detections/") for tag in tensorboard_tags(logs / "images"))


def test_config_file_sets_model_sizes_and_flags_override_it(data_dir, tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text("epochs: 5\nfpn_channels: 32\nhead_depth: 1\noptimizer: sgd\nlearning_rate: 0.01\n"
                      "augmentation:\n  flip_probability: 0.0\n")
    run = tmp_path / "run"
    assert main(train_args(data_dir, run, 1) + ["--config", str(config), "--eval-every", "0"]) == 0
    saved = json.loads((run / "config.json").read_text())
    assert saved["settings"]["epochs"] == 1, "the flag wins over the file"
    assert saved["settings"]["optimizer"] == "sgd" and saved["settings"]["augmentation"]["flip_probability"] == 0.0
    assert saved["model"]["fpn_channels"] == 32 and saved["model"]["head_depth"] == 1
    assert "val_mAP" not in json.loads((run / "history.json").read_text())[0]


@pytest.mark.parametrize("text, message", [
    ("fpn_width: 3\n", "unknown training setting(s) ['fpn_width']"),
    ("head_depth: two\n", "'head_depth' must be a number"),
    ("xla: 1\n", "'xla' must be true or false"),
    ("augmentation: 3\n", "'augmentation' must be a mapping"),
    ("- a list\n", "must be a mapping of settings"),
])
def test_bad_config_files_exit_2_naming_the_file_and_key(data_dir, tmp_path, text, message, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    assert main(train_args(data_dir, tmp_path / "run", 1) + ["--config", str(config)]) == 2
    error = capsys.readouterr().err
    assert str(config) in error and message in error


@pytest.mark.slow
def test_xla_flag_compiles_the_train_step(data_dir, tmp_path, capsys):
    # That XLA computes the same loss and gradients is checked in test_retinanet.py.
    run = tmp_path / "run"
    assert main(train_args(data_dir, run, 1) + ["--xla", "--eval-every", "0"]) == 0
    assert ", XLA" in capsys.readouterr().err
    assert json.loads((run / "config.json").read_text())["settings"]["xla"] is True
    assert math.isfinite(json.loads((run / "history.json").read_text())[0]["loss"])


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
    assert "[train] epoch 4/4" in resumed.stderr and "[train] epoch 1/4" not in resumed.stderr


@pytest.mark.parametrize("extra, message", [
    (["--image-size", "200"], "multiple of 128"),
    (["--backbone", "vgg"], "--backbone must be one of"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--optimizer", "adam"], "optimizer must be one of adamw, sgd"),
    (["--clip-norm", "0"], "--clip-norm must be positive"),
])
def test_bad_train_arguments_exit_2(data_dir, tmp_path, extra, message, capsys):
    assert main(train_args(data_dir, tmp_path / "run", 1) + extra) == 2
    assert message in capsys.readouterr().err


def test_train_on_a_folder_without_a_dataset_exits_2(tmp_path, capsys):
    assert main(train_args(tmp_path, tmp_path / "run", 1)) == 2
    assert "cannot read dataset_info.json" in capsys.readouterr().err


def test_a_nan_loss_stops_with_a_message_and_leaves_no_broken_checkpoint(data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    # AdamW moves each weight by about the learning rate: 1e30 overflows at once.
    assert main(train_args(data_dir, run, 2) + ["--learning-rate", "1e30", "--warmup-epochs", "0",
                                                 "--eval-every", "0"]) == 2
    error = capsys.readouterr().err
    assert "the loss became nan at batch" in error and "no epoch finished before it" in error
    assert not (run / "model.weights.h5").exists()
    assert not list((run / "checkpoints").glob("*.weights.h5"))
