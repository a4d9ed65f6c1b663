"""`DetectorConfig`: the settings every detector adds to `ModelConfig`'s: anchors, NMS and the box
head's uncertainty; each detector's config adds its own and its rules (pyramid levels, anchor
layout)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from contracts.errors import SettingError
from keras_models.models.model_config import ModelConfig
from keras_models.ops.anchors import AnchorConfig
from keras_models.ops.box_uncertainty import BOX_UNCERTAINTIES, NO_UNCERTAINTY


@dataclasses.dataclass(frozen=True)
class DetectorConfig(ModelConfig):
    """`anchor_size_multiplier`: anchor sides in strides."""

    anchor_size_multiplier: float = 4.0
    anchor_aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    score_threshold: float = 0.05
    iou_threshold: float = 0.5
    max_detections: int = 100
    box_uncertainty: str = NO_UNCERTAINTY  # or laplace, normal: a probabilistic box head
    variance_voting: bool = False  # with box_uncertainty: kept boxes voted from their neighbours

    # The model's anchors; `anchor_size_multiplier` and `anchor_aspect_ratios` replace its own.
    ANCHOR_LAYOUT: ClassVar[AnchorConfig] = AnchorConfig()

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "anchor_aspect_ratios", tuple(float(ratio) for ratio in self.anchor_aspect_ratios))
        if self.box_uncertainty not in BOX_UNCERTAINTIES:
            raise SettingError("box_uncertainty", f"must be one of {', '.join(BOX_UNCERTAINTIES)}, "
                                                  f"got {self.box_uncertainty!r}")
        if self.variance_voting and self.box_uncertainty == NO_UNCERTAINTY:
            raise SettingError("variance_voting", "weighs boxes by their predicted variance: it needs "
                                                  "box_uncertainty laplace or normal", mentions=("box_uncertainty",))
        if self.anchor_size_multiplier <= 0:
            raise SettingError("anchor_size_multiplier", f"must be positive, got {self.anchor_size_multiplier}")
        if self.max_detections < 1:
            raise SettingError("max_detections", f"must be at least 1, got {self.max_detections}")

    def anchor_layout(self) -> AnchorConfig:
        """The model's anchors with this config's size multiplier and aspect ratios."""
        return dataclasses.replace(self.ANCHOR_LAYOUT, size_multiplier=self.anchor_size_multiplier,
                                   aspect_ratios=self.anchor_aspect_ratios)

    def for_run(self, num_classes: int, norm: str, anchors: AnchorConfig, seed: int,
                stuff_classes: tuple[int, ...] = ()) -> "DetectorConfig":
        return dataclasses.replace(super().for_run(num_classes, norm, anchors, seed, stuff_classes),
                                   anchor_size_multiplier=anchors.size_multiplier,
                                   anchor_aspect_ratios=anchors.aspect_ratios)

    def to_json_dict(self) -> dict:
        values = super().to_json_dict()
        values["anchor_aspect_ratios"] = list(self.anchor_aspect_ratios)
        return values
