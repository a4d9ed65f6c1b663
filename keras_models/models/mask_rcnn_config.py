"""`MaskRCNNConfig`: every setting of a Mask R-CNN (`models/mask_rcnn.py`)."""

from __future__ import annotations

import dataclasses
from typing import Optional

from contracts.errors import SettingError
from keras_models.models.faster_rcnn_config import FasterRCNNConfig
from keras_models.models.faster_rcnn_sizing import FPN_IMAGE_SIZE, FasterRCNNSizes

MIN_MASK_HEAD_CHANNELS, MASK_HEAD_CHANNEL_STEP = 32, 16


def fit_mask_head_channels(image_size: int, fpn_channels: int) -> int:
    """The mask head's width for square inputs of `image_size` pixels on a pyramid of
    `fpn_channels`. He et al.'s head is as wide as the pyramid at 800 px. Below, the width scales
    with the side, as the box head's does, so that the head's compute, which goes with the width
    squared on its fixed 14x14 grid, scales with the image's area as the backbone's does; to a
    multiple of 16, at least 32, at most the pyramid's width."""
    scaled = fpn_channels * min(1.0, image_size / FPN_IMAGE_SIZE)
    width = MASK_HEAD_CHANNEL_STEP * round(scaled / MASK_HEAD_CHANNEL_STEP)
    return min(fpn_channels, max(MIN_MASK_HEAD_CHANNELS, width))


@dataclasses.dataclass(frozen=True)
class MaskRCNNSizes:
    """Faster R-CNN's fitted sizes (None when the user set them all) and the fitted mask head width."""

    box_stages: Optional[FasterRCNNSizes]
    mask_head_channels: int
    head_reason: str

    @property
    def reason(self) -> str:
        head = f"mask head: {self.head_reason}"
        return f"{self.box_stages.reason}; {head}" if self.box_stages else head

    def values(self) -> dict[str, int]:
        return {**(self.box_stages.values() if self.box_stages else {}), "mask_head_channels": self.mask_head_channels}

    def describe(self) -> str:
        head = f"mask head {self.mask_head_channels} wide ({self.head_reason})"
        return f"{self.box_stages.describe()}, {head}" if self.box_stages else head


@dataclasses.dataclass(frozen=True)
class MaskRCNNConfig(FasterRCNNConfig):
    """Faster R-CNN's settings and the mask head's: its convolutions' channels (None: fitted to
    the image size, `fit_mask_head_channels`). The head reads 14x14 ROI features and predicts
    28x28 masks; it learns from every foreground slot of the sampled ROIs,
    `round(rois_per_image * foreground_fraction)` per image."""

    mask_head_channels: Optional[int] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mask_head_channels is not None and self.mask_head_channels < 1:
            raise SettingError("mask_head_channels", f"must be at least 1, got {self.mask_head_channels}")

    def sized_to(self, boxes_per_image: float) -> tuple["MaskRCNNConfig", Optional[object]]:
        """Faster R-CNN's fit, and an unset mask head width fitted to the image size."""
        sized, box_stages = super().sized_to(boxes_per_image)
        if self.mask_head_channels is not None:
            return sized, box_stages
        reason = (f"the FPN's {self.fpn_channels} channels scaled by min(1, {self.image_size}/800), "
                  f"at least {MIN_MASK_HEAD_CHANNELS}")
        return (dataclasses.replace(sized, mask_head_channels=self.head_channels()),
                MaskRCNNSizes(box_stages, self.head_channels(), reason))

    def head_channels(self) -> int:
        """The mask head's width: the setting, or the fit to the image size."""
        return self.mask_head_channels or fit_mask_head_channels(self.image_size, self.fpn_channels)
