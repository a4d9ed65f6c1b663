"""Files written whole or not at all: a reader (or a crash) never sees half a report."""

from __future__ import annotations

import json
import os
from typing import Any


def write_text_atomically(path: str, text: str) -> None:
    """Writes `text` beside `path`, then renames it over `path` (atomic on one filesystem)."""
    temporary = f"{path}.tmp"
    with open(temporary, "w") as f:
        f.write(text)
    os.replace(temporary, path)


def write_json_atomically(path: str, value: Any, indent: int = 2) -> None:
    write_text_atomically(path, json.dumps(value, indent=indent))
