"""The user's paths from the command line, checked where they are used: a missing or unwritable
path becomes one line naming the flag and the path (`BoxflowError`), never a traceback."""

from __future__ import annotations

import os

from contracts.errors import BoxflowError


def read_text(path: str, flag: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError as error:
        raise BoxflowError(f"{flag} {path}: cannot read it ({error.strerror})") from None


def make_folder(path: str, flag: str) -> None:
    """Creates the folder `path` (and its parents) unless it exists."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise BoxflowError(f"{flag} {path}: cannot create the folder ({error.strerror})") from None


def check_output_file(path: str, flag: str) -> None:
    """Checks, before any work, that the file `path` can be written into an existing folder."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise BoxflowError(f"{flag} {path}: the folder {folder} does not exist")
    if os.path.isdir(path):
        raise BoxflowError(f"{flag} {path}: is a folder; give a file name")
    if not os.access(folder, os.W_OK):
        raise BoxflowError(f"{flag} {path}: the folder {folder} is not writable")
