"""The versions `boxflow serve` holds, and the latest-version policy with hot swap.

Every model folder under the model base (`MODEL_BASE/NAME/VERSION/`) is served, or only the
one named (TF Serving's `--model_name`); the newest version of each is loaded and becomes the
one requests without a version go to. `refresh()` loads versions that appeared since, and only
then switches: a request holds the `LoadedVersion` it started with, so it finishes on that
version while later requests go to the new one; the old version is dropped once nothing refers
to it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from typing import Optional

import tensorflow as tf

from serving import model_base
from serving.errors import BadRequest, NotFound

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, eq=False)
class LoadedVersion:
    name: str
    version: int
    path: str
    saved_model: object  # what tf.saved_model.load returned; it owns the variables
    signature_defs: object  # tensorflow_serving SignatureDefMap proto, for metadata answers

    def signature(self, signature_name: str):
        name = signature_name or "serving_default"
        if name not in self.saved_model.signatures:
            raise BadRequest(f'Serving signature name: "{name}" not found in signature def')
        return self.saved_model.signatures[name]


def _signature_defs(path: str):
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow_serving.apis import get_model_metadata_pb2

    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for name, definition in saved_model.meta_graphs[0].signature_def.items():
        if not name.startswith("__"):  # internal entries such as __saved_model_init_op
            signature_map.signature_def[name].CopyFrom(definition)
    return signature_map


def load_version(name: str, path: str, version: int) -> LoadedVersion:
    return LoadedVersion(name, version, path, tf.saved_model.load(path), _signature_defs(path))


class ModelRegistry:
    """Thread-safe: `refresh()` runs on a watcher thread while request threads read."""

    def __init__(self, base: str, name: Optional[str] = None):
        """Serves every model folder under `base`, or only `base/name` when a name is given."""
        self.base, self.name = base, name
        self._lock = threading.Lock()
        self._latest: dict[str, LoadedVersion] = {}

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._latest)

    def refresh(self) -> list[LoadedVersion]:
        """Loads the newest version of each model when it is newer than the one served; returns
        what was loaded. A version that fails to load is logged and skipped (the old one stays)."""
        loaded = []
        for name in self._model_names():
            model_dir = os.path.join(self.base, name)
            present = model_base.versions(model_dir)
            with self._lock:
                current = self._latest.get(name)
            if not present or (current is not None and current.version >= present[-1]):
                continue
            try:
                version = load_version(name, os.path.join(model_dir, str(present[-1])), present[-1])
            except (OSError, ValueError, tf.errors.OpError) as error:
                LOG.error("cannot load %s version %s: %s", name, present[-1], error)
                continue
            with self._lock:
                self._latest[name] = version
            loaded.append(version)
        return loaded

    def _model_names(self) -> list[str]:
        if not os.path.isdir(self.base):
            return []
        return [self.name] if self.name else sorted(os.listdir(self.base))

    def get(self, name: str, version: Optional[int] = None) -> LoadedVersion:
        """The served version of `name` (the latest), or exactly `version` when it is the one served."""
        with self._lock:
            current = self._latest.get(name)
        if current is None:
            raise NotFound(f"Servable not found for request: Latest({name})")
        if version is not None and version != current.version:
            raise NotFound(f"Servable not found for request: Specific({name}, {version})")
        return current
