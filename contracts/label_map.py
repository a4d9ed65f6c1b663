"""Reading and writing TF Object Detection API label maps (`label_map.pbtxt`).

A label map lists the classes of a dataset with ids counted from 1, e.g.::

    item { id: 1 name: 'raccoon' }

The format is a protobuf text file (`StringIntLabelMap`); its schema is small and
fixed, so it is parsed here with a tokenizer rather than by pulling in the whole
TF Object Detection API for one proto.
"""

from __future__ import annotations

import re
from typing import Sequence

from contracts.errors import BoxflowError

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<comment>\#[^\n]*)
      | (?P<brace>[{}])
      | (?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*:
      | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<number>-?\d+)
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)


def format_label_map(class_names: Sequence[str]) -> str:
    """Returns the label map text for `class_names`, the class with id 1 first."""
    items = []
    for label_id, name in enumerate(class_names, start=1):
        escaped = name.replace("\\", "\\\\").replace("'", "\\'")
        items.append(f"item {{\n  id: {label_id}\n  name: '{escaped}'\n}}\n")
    return "".join(items)


def parse_label_map(text: str, source: str = "label map") -> list[str]:
    """Parses label map text into class names ordered by id (id 1 first).

    Ids must be exactly 1..N: a gap would make a class id that no name explains.
    Raises `BoxflowError` naming `source` for anything else.
    """
    by_id: dict[int, str] = {}
    item: dict[str, object] | None = None
    key: str | None = None
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            if text[position:].strip() == "":
                break
            raise BoxflowError(f"{source}: cannot parse label map near {text[position:position + 30]!r}")
        position = match.end()
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "comment":
            continue
        if kind == "word" and item is None and value == "item":
            continue
        if kind == "brace":
            if value == "{" and item is None:
                item = {}
            elif value == "}" and item is not None:
                _add_item(by_id, item, source)
                item = None
            else:
                raise BoxflowError(f"{source}: unbalanced braces in label map")
            continue
        if item is None:
            raise BoxflowError(f"{source}: unexpected {value!r} outside an item")
        if kind == "key":
            key = value
            continue
        if key is None:
            raise BoxflowError(f"{source}: value {value!r} without a field name")
        if kind == "string":
            item[key] = bytes(value[1:-1], "utf-8").decode("unicode_escape")
        elif kind == "number":
            item[key] = int(value)
        else:
            item[key] = value
        key = None
    if item is not None:
        raise BoxflowError(f"{source}: unterminated item in label map")
    if not by_id:
        raise BoxflowError(f"{source}: label map has no items")
    expected = list(range(1, len(by_id) + 1))
    if sorted(by_id) != expected:
        raise BoxflowError(f"{source}: label map ids must be 1..{len(by_id)}, got {sorted(by_id)}")
    return [by_id[label_id] for label_id in expected]


def _add_item(by_id: dict[int, str], item: dict[str, object], source: str) -> None:
    label_id = item.get("id")
    name = item.get("name", item.get("display_name"))
    if not isinstance(label_id, int) or not isinstance(name, str):
        raise BoxflowError(f"{source}: every item needs an integer 'id' and a string 'name', got {item}")
    if label_id in by_id:
        raise BoxflowError(f"{source}: label map id {label_id} appears twice")
    by_id[label_id] = name
