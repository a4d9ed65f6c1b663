"""`MaskRCNNConfig`: every setting of a Mask R-CNN (`models/mask_rcnn.py`)."""

from __future__ import annotations

import dataclasses
from typing import Optional

from contracts.errors import SettingError
from keras_models.models.faster_rcnn_config import FasterRCNNConfig


@dataclasses.dataclass(frozen=True)
class MaskRCNNConfig(FasterRCNNConfig):
    """Faster R-CNN's settings and the mask head's: its convolutions' channels (None: the
    pyramid's, `fpn_channels`; He et al.'s 256 with a full-size pyramid). The head reads 14x14
    ROI features and predicts 28x28 masks; it learns from the first `mask_rois_per_image` foreground
    slots of each image's sampled ROIs (None: all of them, `round(rois_per_image *
    foreground_fraction)`, as He et al.)."""

    mask_head_channels: Optional[int] = None
    mask_rois_per_image: Optional[int] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mask_head_channels is not None and self.mask_head_channels < 1:
            raise SettingError("mask_head_channels", f"must be at least 1, got {self.mask_head_channels}")
        if self.mask_rois_per_image is not None and self.mask_rois_per_image < 1:
            raise SettingError("mask_rois_per_image", f"must be at least 1, got {self.mask_rois_per_image}")
