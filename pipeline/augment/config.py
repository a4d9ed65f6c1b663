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

    def to_json_dict(self) -> dict:
        return dataclasses.asdict(self)
