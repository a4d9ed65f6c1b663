"""`made_once`: a session fixture's paths made once for the whole test session, however many
pytest-xdist workers run it: the first worker to ask builds them under a file lock while the
others wait, then every worker reads the same paths. Alone, pytest builds them in its own temp."""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
from typing import Callable, Union

import filelock
import pytest

Made = Union[pathlib.Path, tuple[pathlib.Path, ...]]


def made_once(tmp_path_factory: pytest.TempPathFactory, name: str,
              build: Callable[[pathlib.Path], Made]) -> Made:
    """`build(folder)`'s path or tuple of paths, built in a fresh `folder` by the first worker of the
    session that asks for `name`. A build that fails records nothing, so the next asker builds again
    (and fails its own tests the same way)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's folder, above each worker's own
    record = root / f"{name}.json"
    with filelock.FileLock(str(root / f"{name}.lock")):
        if record.exists():
            paths = [pathlib.Path(path) for path in json.loads(record.read_text())]
            return paths[0] if len(paths) == 1 else tuple(paths)
        made = build(pathlib.Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root)))
        paths = [made] if isinstance(made, pathlib.Path) else list(made)
        record.write_text(json.dumps([str(path) for path in paths]))
    return made
