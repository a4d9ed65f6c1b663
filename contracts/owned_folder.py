"""Folders a command may replace: only those it wrote itself, never a user's.

A command that rewrites a whole folder (`synth --out`, `demo --workdir`) leaves a marker file in
it. On a later run it replaces the folder only when the folder is missing, empty, or carries that
marker; anything else, `--out .` or a folder of photos, is refused.
"""

from __future__ import annotations

import os

from contracts.errors import BoxflowError

MARKER_FILE = ".written-by-boxflow"


def check_replaceable(path: str, flag: str, command: str) -> None:
    """Raises `BoxflowError` unless `path` is missing, an empty folder, or marked by `command`."""
    if not os.path.exists(path):
        return
    if not os.path.isdir(path):
        raise BoxflowError(f"{flag} {path}: exists and is not a folder")
    if not os.listdir(path) or _marked_by(path) == command:
        return
    raise BoxflowError(f"{flag} {path}: the folder has files that boxflow {command} did not write; "
                       "choose a new or empty folder (nothing was changed)")


def mark(path: str, command: str) -> None:
    """Records that `command` wrote the folder `path`, so that it may replace it later."""
    with open(os.path.join(path, MARKER_FILE), "w") as f:
        f.write(command + "\n")


def _marked_by(path: str) -> str:
    try:
        with open(os.path.join(path, MARKER_FILE)) as f:
            return f.read().strip()
    except OSError:
        return ""
