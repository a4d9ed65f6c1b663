"""Reading a YAML file of settings (training, augmentation) with errors that name the file."""

from __future__ import annotations

from boxflow.errors import BoxflowError


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
