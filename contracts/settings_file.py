"""Settings files: YAML mappings read into frozen dataclasses (training, augmentation, model
configs), by one reader whose errors name the file and the field."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from contracts.errors import BoxflowError

Settings = TypeVar("Settings")


def read_settings_file(path: str, kind: str) -> dict:
    """The YAML mapping in `path` (empty for an empty file); `kind` names it in errors."""
    import yaml

    try:
        with open(path) as f:
            values = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as error:
        raise BoxflowError(f"{path}: cannot read {kind}: {error}") from None
    if not isinstance(values, dict):
        raise BoxflowError(f"{path}: {kind} must be a mapping of settings")
    return values


def settings_from_mapping(cls: type[Settings], values: dict, source: str, kind: str,
                          exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """`values` (parsed YAML) converted to the field types of the dataclass `cls`: the keyword
    arguments to build it with. Keys that are not fields (or are in `exclude`) and values of the
    wrong type are errors naming `source`, the `kind` of settings and the key. A field whose type
    is a dataclass takes a mapping, read the same way."""
    hints = typing.get_type_hints(cls)
    fields = [field.name for field in dataclasses.fields(cls) if field.name not in exclude]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise BoxflowError(f"{source}: unknown {kind}(s) {unknown}; known: {sorted(fields)}")
    return {name: _converted(value, hints[name], name, source) for name, value in values.items()}


def _converted(value: Any, wanted: Any, name: str, source: str) -> Any:
    optional = _optional_of(wanted)
    if optional is not None:
        return None if value is None else _converted(value, optional, name, source)
    if dataclasses.is_dataclass(wanted):
        if not isinstance(value, dict):
            raise BoxflowError(f"{source}: '{name}' must be a mapping of {name} settings")
        return wanted(**settings_from_mapping(wanted, value, f"{source} ({name})", f"{name} setting"))
    if typing.get_origin(wanted) is tuple:
        return _tuple(value, typing.get_args(wanted), name, source)
    if wanted is bool:
        if not isinstance(value, bool):
            raise BoxflowError(f"{source}: '{name}' must be true or false, got {value!r}")
        return value
    if wanted in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BoxflowError(f"{source}: '{name}' must be a number, got {value!r}")
        if wanted is int and value != int(value):
            raise BoxflowError(f"{source}: '{name}' must be a whole number, got {value!r}")
        return wanted(value)
    if wanted is str and not isinstance(value, str):
        raise BoxflowError(f"{source}: '{name}' must be text, got {value!r}")
    return value


def _tuple(value: Any, items: tuple, name: str, source: str) -> tuple:
    """A `tuple[X, ...]` of any length, or a fixed `tuple[X, Y]` (a `[low, high]` pair)."""
    any_length = len(items) == 2 and items[1] is Ellipsis
    if any_length and isinstance(value, (list, tuple)):
        return tuple(_converted(item, items[0], name, source) for item in value)
    if not isinstance(value, (list, tuple)) or len(value) != len(items) or any_length:
        expected = ("a list" if any_length else "a [low, high] pair" if len(items) == 2
                    else f"a list of {len(items)}")
        raise BoxflowError(f"{source}: '{name}' expected {expected}, got {value!r}")
    return tuple(_converted(item, wanted, name, source) for item, wanted in zip(value, items))


def _optional_of(wanted: Any) -> Any:
    """X for `Optional[X]` (or `X | None`), else None."""
    if typing.get_origin(wanted) in (typing.Union, types.UnionType):
        arguments = [argument for argument in typing.get_args(wanted) if argument is not type(None)]
        if len(arguments) == 1 and len(typing.get_args(wanted)) == 2:
            return arguments[0]
    return None
