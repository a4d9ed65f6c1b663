"""`ModelConfig`: the settings every model shares (its classes, input side, backbone, pyramid and
normalization); each model's config adds its own and its rules. A model is built from its config
alone, and `get_config` is the config as a dict."""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional, Protocol

from contracts.errors import SettingError
from keras_models.layers.backbones import BACKBONES
from keras_models.layers.normalization import NORMALIZATIONS
from keras_models.ops.anchors import AnchorConfig


class ModelSizes(Protocol):
    """A model's sizes fitted to a run: what `sized_to` chose (`values`), the rule (`reason`), and
    a line for the user (`describe`)."""

    reason: str

    def values(self) -> dict[str, int]: ...

    def describe(self) -> str: ...


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """`num_classes` None: the dataset's, filled in when a run builds the model. `image_size` is
    the square input side in pixels."""

    num_classes: Optional[int] = None
    image_size: int = 256
    backbone: str = "tiny"
    backbone_width: int = 32
    fpn_channels: int = 64
    norm: str = "batch"

    # The input side must be a multiple of the coarsest stride the model reads.
    INPUT_STRIDE: ClassVar[int] = 128

    def __post_init__(self) -> None:
        if self.num_classes is not None and self.num_classes < 1:
            raise SettingError("num_classes", f"must be at least 1, got {self.num_classes}")
        if self.image_size % self.INPUT_STRIDE:
            raise SettingError("image_size", f"must be a multiple of {self.INPUT_STRIDE} for this model's pyramid, "
                                             f"got {self.image_size}")
        for name, allowed in (("backbone", BACKBONES), ("norm", NORMALIZATIONS)):
            if getattr(self, name) not in allowed:
                raise SettingError(name, f"must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        for name in ("backbone_width", "fpn_channels"):
            if getattr(self, name) < 1:
                raise SettingError(name, f"must be at least 1, got {getattr(self, name)}")

    def anchor_layout(self) -> Optional[AnchorConfig]:
        """The model's anchors; None for a model without any."""
        return None

    def for_run(self, num_classes: int, norm: str, anchors: Optional[AnchorConfig], seed: int,
                stuff_classes: tuple[int, ...] = ()) -> "ModelConfig":
        """The config a run builds: the dataset's classes and the chosen normalization; a detector
        also takes `anchors` (its own, or fitted to the data), a model that samples `seed`, and a
        panoptic model the label ids of the dataset's stuff classes."""
        return dataclasses.replace(self, num_classes=num_classes, norm=norm)

    def sized_to(self, boxes_per_image: float) -> tuple["ModelConfig", Optional[ModelSizes]]:
        """The config with the sizes its model fits to a run's data (`boxes_per_image` on average)
        filled in, and the fit; None when the model fits nothing."""
        return self, None

    def to_json_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(field.name for field in dataclasses.fields(cls))
