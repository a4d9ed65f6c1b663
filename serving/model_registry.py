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

from contracts.errors import BoxflowError
from contracts.export_schema import DEFAULT_SIGNATURE
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
        name = signature_name or DEFAULT_SIGNATURE
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


@dataclasses.dataclass(frozen=True)
class VersionState:
    """A version as TF Serving's status reports it: AVAILABLE while served, END once replaced or
    when it failed to load (`error` says why)."""

    version: int
    state: str
    error: str = ""


def load_version(name: str, path: str, version: int) -> LoadedVersion:
    return LoadedVersion(name, version, path, tf.saved_model.load(path), _signature_defs(path))


class ModelRegistry:
    """Thread-safe: `refresh()` runs on a watcher thread while request threads read."""

    def __init__(self, base: str, name: Optional[str] = None):
        """Serves every model folder under `base`, or only `base/name` when a name is given."""
        self.base, self.name = base, name
        self._lock = threading.Lock()
        self._latest: dict[str, LoadedVersion] = {}
        self._states: dict[str, dict[int, VersionState]] = {}
        self._labels: dict[str, dict[str, int]] = {}
        self._problems: set[tuple] = set()  # touched by the refreshing thread only

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._latest)

    def refresh(self) -> list[LoadedVersion]:
        """Loads the newest version of each model when it is newer than the one served; returns
        what was loaded. A version that fails to load, or a base that cannot be listed, is logged
        once and tried again at the next refresh (the version served stays)."""
        try:
            names = self._model_names()
        except OSError as error:
            self._report_once(("list", self.base), "cannot list the model base %s (%s); retrying", self.base, error)
            return []
        self._problems.discard(("list", self.base))
        self._refresh_labels()
        loaded = []
        for name in names:
            model_dir = os.path.join(self.base, name)
            try:
                present = model_base.versions(model_dir)
            except OSError as error:
                self._report_once(("list", model_dir), "cannot list %s (%s); retrying", model_dir, error)
                continue
            self._problems.discard(("list", model_dir))
            with self._lock:
                current = self._latest.get(name)
            if not present or (current is not None and current.version >= present[-1]):
                continue
            try:
                version = load_version(name, os.path.join(model_dir, str(present[-1])), present[-1])
            except (OSError, ValueError, tf.errors.OpError) as error:
                self._report_once((name, present[-1]), "cannot load %s version %s: %s", name, present[-1], error)
                with self._lock:
                    self._states.setdefault(name, {})[present[-1]] = VersionState(present[-1], "END", str(error))
                continue
            with self._lock:
                states = self._states.setdefault(name, {})
                if current is not None:
                    states[current.version] = VersionState(current.version, "END")
                states[version.version] = VersionState(version.version, "AVAILABLE")
                self._latest[name] = version
            loaded.append(version)
        return loaded

    def _refresh_labels(self) -> None:
        try:
            labels = model_base.version_labels(self.base)
        except (OSError, BoxflowError) as error:
            self._report_once(("labels", self.base), "cannot read the version labels (%s); keeping the last ones",
                              error)
            return
        self._problems.discard(("labels", self.base))
        with self._lock:
            self._labels = labels

    def states(self, name: str, version: Optional[int] = None, label: Optional[str] = None) -> list[VersionState]:
        """Every version of `name` this server has served or tried to load, oldest first; or the
        one `version` or `label` names."""
        with self._lock:
            known = dict(self._states.get(name, {})) if name in self._latest else {}
        if not known:
            raise NotFound(f"Servable not found for request: Latest({name})")
        if label is not None:
            version = self._labelled_version(name, label)
        if version is None:
            return [state for _, state in sorted(known.items())]
        if version not in known:
            raise NotFound(f"Servable not found for request: Specific({name}, {version})")
        return [known[version]]

    def _labelled_version(self, name: str, label: str) -> int:
        with self._lock:
            labelled = self._labels.get(name, {})
        if label not in labelled:
            raise BadRequest(f"Unrecognized servable version label: {label}")
        return labelled[label]

    def _report_once(self, problem: tuple, message: str, *arguments) -> None:
        """Logs a problem the first time it is seen, not at every poll while it lasts."""
        if problem not in self._problems:
            self._problems.add(problem)
            LOG.error(message, *arguments)

    def _model_names(self) -> list[str]:
        if not os.path.isdir(self.base):
            return []
        return [self.name] if self.name else sorted(os.listdir(self.base))

    def get(self, name: str, version: Optional[int] = None, label: Optional[str] = None) -> LoadedVersion:
        """The served version of `name` (the latest), or exactly `version`, or the version `label`
        names in models.config, when that is the one served."""
        with self._lock:
            current = self._latest.get(name)
        if label is not None:
            version = self._labelled_version(name, label)
        if current is None:
            raise NotFound(f"Servable not found for request: Latest({name})")
        if version is not None and version != current.version:
            raise NotFound(f"Servable not found for request: Specific({name}, {version})")
        return current
