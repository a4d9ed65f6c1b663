"""The `boxflow train` run directory: its file names, and the trained model it describes.

RUN_DIR/config.json         {"settings": TrainSettings, "classes": [...], "model": the detector's get_config()}
RUN_DIR/label_map.pbtxt     copied from the dataset
RUN_DIR/checkpoints/epoch-NNN.weights.h5
RUN_DIR/model.weights.h5    written when training ends
RUN_DIR/history.json, logs/ (TensorBoard), backup/ (BackupAndRestore, removed at the end)
RUN_DIR/box_calibration.json  per-edge stddev temperatures from `boxflow evaluate --calibrate`
RUN_DIR/workers/worker-N/   the same files of the other workers of a multi-worker run
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
from typing import Optional

from contracts.atomic_file import write_json_atomically
from contracts.errors import BoxflowError
from contracts.export_schema import BOX_CALIBRATION_FILE
from keras_models.models.dense_prediction_steps import DensePredictionSteps
from keras_models.models.registry import rebuild_model

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
FINAL_WEIGHTS = "model.weights.h5"
CHECKPOINTS_DIR = "checkpoints"
CHECKPOINT_PATTERN = "epoch-{epoch:03d}.weights.h5"
LOGS_DIR = "logs"
BACKUP_DIR = "backup"
WORKERS_DIR = "workers"  # non-chief workers' own checkpoints and backups under multi-worker training


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    model: DensePredictionSteps
    class_names: tuple[str, ...]
    weights_path: str


def read_run_config(run_dir: str) -> dict:
    path = os.path.join(run_dir, CONFIG_FILE)
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, ValueError) as error:
        raise BoxflowError(f"--run {run_dir}: cannot read {CONFIG_FILE} ({error}); is it a boxflow train run "
                           "directory?") from None
    if "model" not in config or "classes" not in config:
        raise BoxflowError(f"{path}: no 'model' or 'classes' entry; it was not written by boxflow train")
    return config


def latest_weights(run_dir: str) -> str:
    """The final weights when training finished, else the newest epoch checkpoint."""
    final = os.path.join(run_dir, FINAL_WEIGHTS)
    if os.path.exists(final):
        return final
    checkpoints = sorted(glob.glob(os.path.join(run_dir, CHECKPOINTS_DIR, "epoch-*.weights.h5")))
    if not checkpoints:
        raise BoxflowError(f"--run {run_dir}: no {FINAL_WEIGHTS} and no checkpoint yet")
    return checkpoints[-1]


def load_trained_model(run_dir: str, weights: Optional[str] = None, calibrated: bool = True) -> TrainedModel:
    """Rebuilds the run's model from `config.json` and loads `weights` (default: its latest), with
    the box uncertainty's temperatures of `box_calibration.json` when there is one and `calibrated`."""
    config = read_run_config(run_dir)
    model = rebuild_model(config)
    calibration = os.path.join(run_dir, BOX_CALIBRATION_FILE)
    if calibrated and os.path.exists(calibration):
        with open(calibration) as f:
            model.box_temperatures = tuple(float(value) for value in json.load(f)["temperatures"])
    weights = weights or latest_weights(run_dir)
    try:
        model.load_weights(weights)
    except (OSError, ValueError) as error:
        raise BoxflowError(f"{weights}: cannot load into the model of {CONFIG_FILE}: {error}") from None
    classes = sorted(config["classes"], key=lambda entry: entry["id"])  # dataset_info.json's {"id", "name"}
    return TrainedModel(model, tuple(entry["name"] for entry in classes), weights)


def write_box_calibration(run_dir: str, calibration: dict) -> str:
    """Writes `calibration` (with its "temperatures") as the run's `box_calibration.json`, atomically."""
    path = os.path.join(run_dir, BOX_CALIBRATION_FILE)
    write_json_atomically(path, calibration)
    return path
