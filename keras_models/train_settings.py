"""The settings of one `boxflow train` run, checked once where they are made."""

from __future__ import annotations

import dataclasses
from typing import Optional

from boxflow.errors import BoxflowError
from keras_models.backbones import BACKBONES
from keras_models.strategy import STRATEGIES
from pipeline.augment.config import AugmentationConfig

OPTIMIZERS = ("adamw", "sgd")


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    data_dir: str
    run_dir: str
    backbone: str = "tiny"
    image_size: int = 256
    weights: Optional[str] = None
    epochs: int = 10
    batch_size: int = 16
    strategy: str = "auto"
    mixed_precision: bool = False
    optimizer: str = "adamw"
    learning_rate: float = 1e-3
    warmup_epochs: float = 1.0
    clip_norm: float = 10.0
    seed: int = 0
    max_boxes: int = 100
    backbone_width: int = 32
    fpn_channels: int = 64
    head_depth: int = 2
    head_channels: int = 64
    anchor_size_multiplier: float = 4.0
    augmentation: AugmentationConfig = AugmentationConfig()

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise BoxflowError(f"--backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}")
        if self.strategy not in STRATEGIES:
            raise BoxflowError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.optimizer not in OPTIMIZERS:
            raise BoxflowError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.image_size % 128:
            raise BoxflowError(f"--image-size must be a multiple of 128 for P3–P7, got {self.image_size}")
        for name in ("epochs", "batch_size", "max_boxes"):
            if getattr(self, name) < 1:
                raise BoxflowError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise BoxflowError(f"learning_rate must be positive, got {self.learning_rate}")

    def to_json_dict(self) -> dict:
        return dataclasses.asdict(self)
