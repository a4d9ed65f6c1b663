"""The `--augmentation FILE.yaml` flag shared by prepare, show and train."""

from __future__ import annotations

from typing import Optional


def augmentation_config(path: Optional[str]):
    """The `AugmentationConfig` read from `path`, or the built-in recipe when no file is given."""
    from pipeline.augment.config import AugmentationConfig, load_augmentation_config

    return load_augmentation_config(path) if path else AugmentationConfig()
