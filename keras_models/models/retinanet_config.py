"""`RetinaNetConfig`: every setting of a RetinaNet (`models/retinanet.py`)."""

from __future__ import annotations

import dataclasses

from contracts.errors import SettingError
from keras_models.layers.heads import HEAD_NORMS
from keras_models.models.detector_config import DetectorConfig


@dataclasses.dataclass(frozen=True)
class RetinaNetConfig(DetectorConfig):
    """The shared detector settings, and RetinaNet's heads: `head_depth` 3×3 convolutions of
    `head_channels` before each head's output, `head_norm` "group" for GroupNorm in the FPN and the
    heads, and the box loss's weight against the focal loss. Anchors: P3-P7, 3 scales × 3 aspect
    ratios, sides `anchor_size_multiplier` times the stride (4: 32-512 px)."""

    head_depth: int = 2
    head_channels: int = 64
    head_norm: str = "none"
    box_loss_weight: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.head_norm not in HEAD_NORMS:
            raise SettingError("head_norm", f"must be one of {', '.join(HEAD_NORMS)}, got {self.head_norm!r}")
        for name in ("head_depth", "head_channels"):
            if getattr(self, name) < 1:
                raise SettingError(name, f"must be at least 1, got {getattr(self, name)}")
