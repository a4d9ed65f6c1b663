"""The model base TF Serving serves: `MODEL_BASE/NAME/VERSION/` plus the server's config files.

MODEL_BASE/models.config              model_config_list, one entry per model name
MODEL_BASE/batching_parameters.txt    server-side batching (--enable_batching)
MODEL_BASE/NAME/1/, 2/, ...           SavedModels; assets.extra/ holds the label map and warm-up
"""

from __future__ import annotations

import os

from google.protobuf import text_format

from contracts.atomic_file import write_text_atomically
from contracts.errors import BoxflowError

MODELS_CONFIG = "models.config"
BATCHING_PARAMETERS = "batching_parameters.txt"
# Where the README's `docker run` mounts MODEL_BASE inside the tensorflow/serving container.
CONTAINER_MODEL_BASE = "/models"
BATCHING = {"max_batch_size": 32, "batch_timeout_micros": 2000, "max_enqueued_batches": 100,
            "num_batch_threads": 4}


def split_model_dir(model_dir: str) -> tuple[str, str]:
    """`MODEL_BASE/NAME` → `(MODEL_BASE, NAME)`; NAME must be a plain name TF Serving accepts."""
    base, name = os.path.split(os.path.normpath(model_dir))
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise BoxflowError(f"--out {model_dir}: must be MODEL_BASE/NAME with NAME of letters, digits, '-' or '_'")
    return base or ".", name


def versions(model_dir: str) -> list[int]:
    """The version numbers present under `MODEL_BASE/NAME`, ascending (staging folders excluded)."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(entry) for entry in os.listdir(model_dir)
                  if entry.isdigit() and os.path.isdir(os.path.join(model_dir, entry)))


def next_version(model_dir: str) -> int:
    present = versions(model_dir)
    return present[-1] + 1 if present else 1


def read_models_config(base: str):
    """`MODEL_BASE/models.config` as a `ModelServerConfig` (empty when there is none)."""
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    path = os.path.join(base, MODELS_CONFIG)
    if os.path.exists(path):
        with open(path) as f:
            try:
                text_format.Parse(f.read(), config)
            except text_format.ParseError as error:
                raise BoxflowError(f"{path}: not a TF Serving model config: {error}") from None
    return config


def version_labels(base: str) -> dict[str, dict[str, int]]:
    """Each model's `version_labels` in `models.config`: name → {label: version}."""
    return {entry.name: dict(entry.version_labels)
            for entry in read_models_config(base).model_config_list.config if entry.version_labels}


def write_server_files(base: str, name: str) -> None:
    """Adds `name` to `models.config` unless it is listed (other models and an existing entry are
    kept as they are), and writes the batching parameters."""
    config = read_models_config(base)
    path = os.path.join(base, MODELS_CONFIG)
    entries = config.model_config_list.config
    if not any(entry.name == name for entry in entries):  # a user's entry keeps its labels and policy
        entries.add(name=name, base_path=f"{CONTAINER_MODEL_BASE}/{name}", model_platform="tensorflow")
    write_text_atomically(path, text_format.MessageToString(config))
    write_text_atomically(os.path.join(base, BATCHING_PARAMETERS),
                      "".join(f"{key} {{ value: {value} }}\n" for key, value in BATCHING.items()))


