"""`--init-from RUN_DIR | WEIGHTS_FILE`: start a detector from an earlier run's weights, like the
TF Object Detection API's `fine_tune_checkpoint`.

Every weight whose name and shape match takes the earlier run's value; the rest start fresh:
a class head trained for another number of classes, or layers the earlier model did not have.
The earlier model is rebuilt from its run's `config.json`, so the two models may differ in
classes, head and FPN sizes, or backbone normalization.
"""

from __future__ import annotations

import dataclasses
import json
import os

import keras
import numpy as np

from contracts.errors import BoxflowError, SettingError
from keras_models.runs.run_directory import CONFIG_FILE, load_trained_model

INIT_FROM_FILE = "init_from.json"


@dataclasses.dataclass(frozen=True)
class Initialization:
    """What `--init-from` did: the weights file read, and the weights (by name) taken and left fresh."""

    source: str
    taken: tuple[str, ...]
    fresh: tuple[str, ...]

    def summary(self, listed: int = 8) -> str:
        more = f" and {len(self.fresh) - listed} more" if len(self.fresh) > listed else ""
        fresh = f"; started fresh: {', '.join(self.fresh[:listed])}{more}" if self.fresh else ""
        total = len(self.taken) + len(self.fresh)
        return f"--init-from {self.source}: took {len(self.taken)} of {total} weights{fresh}"

    def write(self, run_dir: str) -> None:
        with open(os.path.join(run_dir, INIT_FROM_FILE), "w") as f:
            json.dump(dataclasses.asdict(self), f, indent=1)


def initialize_from(model: keras.Model, source: str) -> Initialization:
    """Copies into `model` every weight of the run at `source` (a run directory, or a weights
    file inside one) with the same name and shape."""
    run_dir = _run_directory(source)
    try:
        earlier = load_trained_model(run_dir, weights=None if os.path.isdir(source) else source)
    except BoxflowError as error:
        raise SettingError("init_from", f"{source}: {error}") from None
    values = {weight_name(variable, earlier.model): np.asarray(variable) for variable in earlier.model.weights}
    taken, fresh = [], []
    for variable in model.weights:
        name = weight_name(variable, model)
        value = values.get(name)
        if value is not None and tuple(value.shape) == tuple(variable.shape):
            variable.assign(value)
            taken.append(name)
        else:
            fresh.append(name)
    if not taken:
        raise SettingError("init_from", f"{source}: no weight of that run fits this model (another backbone?)")
    return Initialization(earlier.weights_path, tuple(taken), tuple(fresh))


def _run_directory(source: str) -> str:
    """The run directory of `source`: itself, or the folder holding the weights file (its
    checkpoints/ folder's parent for an epoch checkpoint)."""
    if os.path.isdir(source):
        return source
    if not os.path.isfile(source):
        raise SettingError("init_from", f"{source}: no such run directory or weights file")
    folder = os.path.dirname(os.path.abspath(source))
    for candidate in (folder, os.path.dirname(folder)):
        if os.path.exists(os.path.join(candidate, CONFIG_FILE)):
            return candidate
    raise SettingError("init_from", f"{source}: no {CONFIG_FILE} beside it or above it; give the run directory "
                       "that boxflow train wrote")


def weight_name(variable, model: keras.Model) -> str:
    """The variable's path without the model's own (auto-numbered) name in front."""
    prefix = f"{model.name}/"
    return variable.path[len(prefix):] if variable.path.startswith(prefix) else variable.path
