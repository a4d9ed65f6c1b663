"""`boxflow train`: the run directory, each epoch once in the history across a SIGKILL and a resume,
and clear errors for bad arguments."""

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from boxflow.cli import main
from contracts.errors import BoxflowError
from keras_models.training.train_job import fit_datasets
from keras_models.training.train_settings import train_settings
from pipeline.augment.config import AugmentationConfig
from pipeline.dataset import read_dataset_info
from pipeline.ragged_padding import padded_box_count
from tests.builders import prepared_synth


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return prepared_synth(tmp_path_factory.mktemp("train"), 40, 128, (16, 48), seed=8, num_shards=2,
                          val_fraction=0.35)


def train_args(data_dir, run_dir, epochs):
    return ["train", "--data", str(data_dir), "--out", str(run_dir), "--image-size", "128", "--epochs", str(epochs),
            "--batch-size", "4"]


@pytest.fixture(scope="module")
def deterministic_config(tmp_path_factory):
    """A training config with the same batches in the same order on every run."""
    path = tmp_path_factory.mktemp("config") / "deterministic.yaml"
    path.write_text("deterministic_input: true\n")
    return path


@pytest.fixture(scope="module")
def three_epoch_run(data_dir, deterministic_config, tmp_path_factory):
    run = tmp_path_factory.mktemp("three_epochs") / "run"
    assert main(train_args(data_dir, run, 3) + ["--config", str(deterministic_config)]) == 0
    return run


def test_train_writes_the_run_directory(three_epoch_run):
    run = three_epoch_run
    assert {"config.json", "label_map.pbtxt", "history.json", "model.weights.h5", "checkpoints", "logs"} <= set(
        os.listdir(run))
    history = json.loads((run / "history.json").read_text())
    assert [entry["epoch"] for entry in history] == [1, 2, 3]
    assert {"loss", "class_loss", "box_loss", "val_loss", "val_mAP", "val_mAP50", "learning_rate"} <= set(history[0])
    assert sorted(os.listdir(run / "checkpoints")) == [f"epoch-00{n}.weights.h5" for n in (1, 2, 3)]
    config = json.loads((run / "config.json").read_text())
    assert config["settings"]["deterministic_input"] is True
    assert config["settings"]["image_size"] == 128 and [c["name"] for c in config["classes"]] == [
        "circle", "square", "triangle"]
    assert config["model"]["image_size"] == 128 and config["model"]["num_classes"] == 3
    assert config["model"]["norm"] == "batch"  # one replica
    assert config["learning_rate"] == {"base": 0.001, "base_batch": 16, "global_batch": 4, "scaling": "none",
                                       "peak": 0.001, "source": "adamw's defaults"}


@pytest.mark.slow
def test_training_finds_the_shapes(tiny_run):
    history = json.loads((tiny_run[1] / "history.json").read_text())
    assert [entry["epoch"] for entry in history if "val_mAP50" in entry] == [4, 8, 12, 16]  # --eval-every 4
    assert history[-1]["loss"] < 0.6 * history[0]["loss"]  # its AP50 floor: test_quality_floors.py


def test_mixed_precision_learns_like_float32(data_dir, deterministic_config, three_epoch_run, tmp_path, capsys):
    # Both runs see the same batches in the same order, so what differs is the precision.
    run = tmp_path / "run"
    assert main(train_args(data_dir, run, 3) + ["--mixed-precision", "--config", str(deterministic_config),
                                              "--eval-every", "0"]) == 0
    assert "mixed_float16" in capsys.readouterr().err
    float32 = json.loads((three_epoch_run / "history.json").read_text())
    float16 = json.loads((run / "history.json").read_text())
    assert float16[-1]["loss"] < 0.8 * float16[0]["loss"], "it learned"
    assert abs(float16[-1]["loss"] - float32[-1]["loss"]) <= 0.1 * float32[-1]["loss"], (float16, float32)
    # The run's weights are float32 and its model config carries no policy: it serves in float32.
    assert "dtype" not in json.loads((run / "config.json").read_text())["model"]


def settings_of(*flags: str, config=None):
    """The TrainSettings `boxflow train FLAGS` would run with, read by the command line itself."""
    from boxflow.cli import parse_arguments
    from boxflow.commands.train import settings_from

    args, _ = parse_arguments(["train", "--data", "data", "--out", "run", *flags,
                               *(["--config", str(config)] if config else [])])
    return settings_from(args)


@pytest.mark.parametrize("flags, expected", [
    (["--model", "retinanet", "--optimizer", "lars", "--learning-rate", "0.4", "--lr-scaling", "linear", "--norm",
      "frozen_batch", "--init-from", "an_earlier_run", "--bfloat16", "--batch-size", "4"],
     {"rate": "peak rate 0.1 (0.4 at 16 images, linear scaling) from learning_rate as set, lr_scaling as set",
      "norm": "frozen_batch", "precision": "mixed_bfloat16"}),
    (["--optimizer", "lamb", "--learning-rate", "0.002", "--lr-scaling", "sqrt", "--norm", "group", "--batch-size",
      "4"], {"rate": "peak rate 0.001 (0.002 at 16 images, sqrt scaling) from learning_rate as set, "
                     "lr_scaling as set", "norm": "group", "precision": None}),
])
def test_optimizer_normalization_precision_and_scaling_flags_reach_the_settings_and_model(flags, expected):
    # One flag alone, end to end, is test_default_recipes.py's; here each reaches what it sets.
    from keras_models.training.model_factory import build_model
    from keras_models.training.optimizers import make_optimizer

    settings = settings_of(*flags)
    assert settings.learning_rate_plan.describe() == expected["rate"]
    assert settings.precision_policy == expected["precision"]
    small = dataclasses.replace(settings, model_config=dataclasses.replace(settings.model_config, image_size=128))
    model = build_model(small, 3, settings.norm, small.model_config.anchor_layout())
    assert model.config.norm == expected["norm"]
    optimizer = make_optimizer(settings.optimizer, settings.learning_rate_plan.peak, settings.weight_decay,
                               settings.momentum, settings.clip_norm, model.trainable_variables)
    assert type(optimizer).__name__ == settings.optimizer.capitalize()


def tensorboard_tags(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"images": 0, "tensors": 0})
    events.Reload()
    return set(events.Tags()["tensors"]) | set(events.Tags()["images"])


def test_tensorboard_has_learning_rate_validation_map_and_detection_images(three_epoch_run):
    logs = three_epoch_run / "logs"
    assert {"epoch_loss", "epoch_learning_rate"} <= tensorboard_tags(logs / "train")
    assert {"epoch_mAP", "epoch_mAP50", "epoch_loss"} <= tensorboard_tags(logs / "validation")
    assert any(tag.startswith("detections/") for tag in tensorboard_tags(logs / "images"))


def test_config_file_sets_model_sizes_and_flags_override_it(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text("epochs: 5\nfpn_channels: 32\nhead_depth: 1\noptimizer: sgd\nlearning_rate: 0.01\n"
                      "augmentation:\n  flip_probability: 0.0\n")
    settings = settings_of("--epochs", "1", config=config)
    assert settings.epochs == 1, "the flag wins over the file"
    assert (settings.optimizer, settings.learning_rate, settings.augmentation.flip_probability) == ("sgd", 0.01, 0.0)
    assert (settings.model_config.fpn_channels, settings.model_config.head_depth) == (32, 1)


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


def test_the_input_pipeline_takes_as_many_threads_as_tensorflow_is_given(data_dir, tmp_path, monkeypatch):
    def pools(*flags, config=None):
        settings = dataclasses.replace(settings_of(*flags, config=config), data_dir=str(data_dir))
        train, validation, _ = fit_datasets(settings, tf.distribute.get_strategy(), val_images=1)
        return {stream.options().threading.private_threadpool_size for stream in (train, validation)}

    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "1")
    assert pools() == {1}
    config = tmp_path / "threads.yaml"
    config.write_text("input_threads: 3\n")
    assert pools(config=config) == {3}, "the settings file wins over TensorFlow's variable"
    for unbounded in ("", "0"):  # TensorFlow's "every core"
        monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", unbounded)
        assert settings_of().input_threads is None and pools() == {None}


@pytest.mark.parametrize("variable, text, message", [
    ("two", "", "TF_NUM_INTRAOP_THREADS='two': must be a whole number of threads"),
    ("1", "input_threads: 0\n", "input_threads must be at least 1, got 0"),
])
def test_a_bad_thread_count_exits_2_naming_where_it_is_set(data_dir, tmp_path, monkeypatch, capsys, variable, text,
                                                           message):
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", variable)
    config = tmp_path / "threads.yaml"
    config.write_text(text or "{}\n")
    assert main(train_args(data_dir, tmp_path / "run", 1) + ["--config", str(config)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_xla_flag_compiles_the_train_step(data_dir, tmp_path, capsys):
    # That XLA computes the same loss and gradients is checked in test_retinanet.py.
    run = tmp_path / "run"
    assert main(train_args(data_dir, run, 1) + ["--xla", "--eval-every", "0"]) == 0
    assert ", XLA" in capsys.readouterr().err
    settings = json.loads((run / "config.json").read_text())["settings"]
    assert settings["xla"] is True
    # Padded to the data's most boxes in one image, as prepare counted them, so no box is cut.
    most = max(split["max_boxes_per_image"] for split in read_dataset_info(str(data_dir))["splits"].values())
    assert settings["max_boxes"] == padded_box_count(most)
    assert math.isfinite(json.loads((run / "history.json").read_text())[0]["loss"])


def test_a_max_boxes_that_would_cut_boxes_is_refused_in_one_line(data_dir, tmp_path, capsys):
    most = max(split["max_boxes_per_image"] for split in read_dataset_info(str(data_dir))["splits"].values())
    config = tmp_path / "few.yaml"
    config.write_text(f"max_boxes: {most - 1}\n")
    assert main(train_args(data_dir, tmp_path / "run", 1) + ["--config", str(config)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"boxflow train: error: max_boxes {most - 1}: padded batches would cut boxes, as an image of {data_dir} "
        f"has {most}; set at least {most}, or leave it unset to fit the data"]
    settings = train_settings("d", "r", augmentation=AugmentationConfig(mosaic_probability=0.5))
    assert settings.padded_to(10).max_boxes == 40  # a mosaic tiles four images into one
    with pytest.raises(BoxflowError, match="a mosaic of four such images 40; set at least 40"):
        dataclasses.replace(settings, max_boxes=39).padded_to(10)
    assert dataclasses.replace(settings, max_boxes=40).padded_to(10).max_boxes == 40


def backed_up_epochs(run) -> int:
    """The epochs BackupAndRestore has finished saving (its metadata is written after the weights)."""
    try:
        return json.loads((run / "backup" / "training_metadata.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.slow
def test_a_killed_run_resumes_and_lists_each_epoch_once(data_dir, tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "boxflow", *train_args(data_dir, run, 4)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and backed_up_epochs(run) < 2:
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "training finished before it could be killed"
    finished = len(json.loads((run / "history.json").read_text()))
    assert 2 <= finished < 4
    # As a kill in the middle of writing the backup leaves it: the resumed run falls back on the
    # backup before it.
    backup = run / "backup" / "latest.weights.h5"
    backup.write_bytes(backup.read_bytes()[:1000])

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
    (["--optimizer", "adam"], "--optimizer must be one of adamw, sgd, lamb, lars"),
    (["--norm", "layer"], "--norm must be one of batch, sync_batch, frozen_batch, group"),
    (["--lr-scaling", "cubic"], "--lr-scaling must be one of none, linear, sqrt"),
    (["--anchors", "kmeans"], "--anchors must be one of default, auto"),
    (["--clip-norm", "0"], "--clip-norm must be positive"),
    (["--norm", "frozen_batch"], "--norm frozen_batch keeps the backbone's stored BatchNorm statistics fixed, and "
                                 "without --weights or --init-from they are random"),
])
def test_bad_train_arguments_exit_2(data_dir, tmp_path, extra, message, capsys):
    assert main(train_args(data_dir, tmp_path / "run", 1) + extra) == 2
    assert message in capsys.readouterr().err


def test_a_model_train_does_not_build_is_refused(data_dir, tmp_path, capsys):
    config = tmp_path / "train.yaml"
    config.write_text("model: yolo\n")
    assert main(train_args(data_dir, tmp_path / "run", 1) + ["--config", str(config)]) == 2
    assert "--model must be one of retinanet, faster_rcnn, mask_rcnn, semantic_fpn, panoptic_fpn, got 'yolo'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(train_args(data_dir, tmp_path / "run", 1) + ["--model", "yolo"])
    assert "invalid choice: 'yolo'" in capsys.readouterr().err


def test_float16_and_bfloat16_exclude_each_other(data_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_status:
        main(train_args(data_dir, tmp_path / "run", 1) + ["--mixed-precision", "--bfloat16"])
    assert exit_status.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    config = tmp_path / "train.yaml"
    config.write_text("mixed_precision: true\n")
    assert main(train_args(data_dir, tmp_path / "run", 1) + ["--config", str(config), "--bfloat16"]) == 2
    assert "--mixed-precision (float16) and --bfloat16 exclude each other" in capsys.readouterr().err


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
