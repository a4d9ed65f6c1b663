"""The augmentation recipe, free of TensorFlow so the Beam job can read it without loading TF."""

from __future__ import annotations

import dataclasses
from typing import Optional


@dataclasses.dataclass(frozen=True)
class AugmentationConfig:
    """Which ops run and how strongly. A probability of 0 (or a `None` range) turns an op off."""

    flip_probability: float = 0.5
    scale_range: Optional[tuple[float, float]] = (0.75, 1.25)
    min_visible_fraction: float = 0.5
    rotate90_probability: float = 0.0
    brightness: float = 0.2
    contrast: tuple[float, float] = (0.8, 1.2)
    saturation: tuple[float, float] = (0.8, 1.2)
    hue: float = 0.05
    colour_probability: float = 0.5
    jpeg_quality_range: tuple[int, int] = (50, 95)
    jpeg_probability: float = 0.1
    cutout_size_range: tuple[float, float] = (0.1, 0.3)
    cutout_probability: float = 0.25
    mosaic_probability: float = 0.0

    def __post_init__(self) -> None:
        from contracts.errors import BoxflowError

        for name in ("flip_probability", "rotate90_probability", "colour_probability", "jpeg_probability",
                     "cutout_probability", "mosaic_probability", "min_visible_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise BoxflowError(f"augmentation '{name}' must be in [0, 1], got {getattr(self, name)}")
        ranges = [("contrast", self.contrast), ("saturation", self.saturation),
                  ("jpeg_quality_range", self.jpeg_quality_range), ("cutout_size_range", self.cutout_size_range)]
        if self.scale_range is not None:
            ranges.append(("scale_range", self.scale_range))
        for name, (low, high) in ranges:
            if not 0 < low <= high:
                raise BoxflowError(f"augmentation '{name}' must satisfy 0 < low <= high, got {(low, high)}")

    def to_json_dict(self) -> dict:
        return dataclasses.asdict(self)


def augmentation_from_mapping(values: dict, source: str = "augmentation config") -> AugmentationConfig:
    """An `AugmentationConfig` from a mapping (e.g. parsed YAML); unknown or ill-typed keys are errors."""
    from contracts.settings_file import settings_from_mapping

    return AugmentationConfig(**settings_from_mapping(AugmentationConfig, values, source, "augmentation setting"))


def load_augmentation_config(path: str) -> AugmentationConfig:
    """Reads a YAML file of `AugmentationConfig` fields; missing fields keep their defaults."""
    from contracts.settings_file import read_settings_file

    return augmentation_from_mapping(read_settings_file(path, "augmentation config"), source=path)
