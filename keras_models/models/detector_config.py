"""`DetectorConfig`: the settings every detector shares; each model's config adds its own and its
rules (input stride, pyramid levels, anchor layout). A model is built from its config alone, and
`get_config` is the config as a dict."""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional, Protocol

from contracts.errors import SettingError
from keras_models.layers.backbones import BACKBONES
from keras_models.layers.normalization import NORMALIZATIONS
from keras_models.ops.anchors import AnchorConfig
from keras_models.ops.box_uncertainty import BOX_UNCERTAINTIES, NO_UNCERTAINTY


class ModelSizes(Protocol):
    """A model's sizes fitted to a run: what `sized_to` chose (`values`), the rule (`reason`), and
    a line for the user (`describe`)."""

    reason: str

    def values(self) -> dict[str, int]: ...

    def describe(self) -> str: ...


@dataclasses.dataclass(frozen=True)
class DetectorConfig:
    """`num_classes` None: the dataset's, filled in when a run builds the model. `image_size` is
    the square input side in pixels; `anchor_size_multiplier` anchor sides in strides."""

    num_classes: Optional[int] = None
    image_size: int = 256
    backbone: str = "tiny"
    backbone_width: int = 32
    fpn_channels: int = 64
    anchor_size_multiplier: float = 4.0
    anchor_aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    score_threshold: float = 0.05
    iou_threshold: float = 0.5
    max_detections: int = 100
    norm: str = "batch"
    box_uncertainty: str = NO_UNCERTAINTY  # or laplace, normal: a probabilistic box head
    variance_voting: bool = False  # with box_uncertainty: kept boxes voted from their neighbours

    # The input side must be a multiple of the coarsest stride the model reads.
    INPUT_STRIDE: ClassVar[int] = 128
    # The model's anchors; `anchor_size_multiplier` and `anchor_aspect_ratios` replace its own.
    ANCHOR_LAYOUT: ClassVar[AnchorConfig] = AnchorConfig()

    def __post_init__(self) -> None:
        object.__setattr__(self, "anchor_aspect_ratios", tuple(float(ratio) for ratio in self.anchor_aspect_ratios))
        if self.num_classes is not None and self.num_classes < 1:
            raise SettingError("num_classes", f"must be at least 1, got {self.num_classes}")
        if self.image_size % self.INPUT_STRIDE:
            raise SettingError("image_size", f"must be a multiple of {self.INPUT_STRIDE} for this model's pyramid, "
                                             f"got {self.image_size}")
        for name, allowed in (("backbone", BACKBONES), ("norm", NORMALIZATIONS),
                              ("box_uncertainty", BOX_UNCERTAINTIES)):
            if getattr(self, name) not in allowed:
                raise SettingError(name, f"must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.variance_voting and self.box_uncertainty == NO_UNCERTAINTY:
            raise SettingError("variance_voting", "weighs boxes by their predicted variance: it needs "
                                                  "box_uncertainty laplace or normal", mentions=("box_uncertainty",))
        if self.anchor_size_multiplier <= 0:
            raise SettingError("anchor_size_multiplier", f"must be positive, got {self.anchor_size_multiplier}")
        for name in ("backbone_width", "fpn_channels", "max_detections"):
            if getattr(self, name) < 1:
                raise SettingError(name, f"must be at least 1, got {getattr(self, name)}")

    def anchor_layout(self) -> AnchorConfig:
        """The model's anchors with this config's size multiplier and aspect ratios."""
        return dataclasses.replace(self.ANCHOR_LAYOUT, size_multiplier=self.anchor_size_multiplier,
                                   aspect_ratios=self.anchor_aspect_ratios)

    def for_run(self, num_classes: int, norm: str, anchors: AnchorConfig, seed: int) -> "DetectorConfig":
        """The config a run builds: the dataset's classes, the chosen normalization and anchors; a
        model that samples draws with `seed`."""
        return dataclasses.replace(self, num_classes=num_classes, norm=norm,
                                   anchor_size_multiplier=anchors.size_multiplier,
                                   anchor_aspect_ratios=anchors.aspect_ratios)

    def sized_to(self, boxes_per_image: float) -> tuple["DetectorConfig", Optional[ModelSizes]]:
        """The config with the sizes its model fits to a run's data (`boxes_per_image` on average)
        filled in, and the fit; None when the model fits nothing."""
        return self, None

    def to_json_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["anchor_aspect_ratios"] = list(self.anchor_aspect_ratios)
        return values

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(field.name for field in dataclasses.fields(cls))
