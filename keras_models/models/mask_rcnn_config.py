"""`MaskRCNNConfig`: every setting of a Mask R-CNN (`models/mask_rcnn.py`)."""

from __future__ import annotations

import dataclasses
from typing import Optional

from contracts.errors import SettingError
from keras_models.models.model_config import ModelSizes
from keras_models.models.faster_rcnn_config import FasterRCNNConfig
from keras_models.models.mask_rcnn_sizing import MaskRCNNSizes, fit_mask_rois
from keras_models.ops.sampling import SamplingConfig


@dataclasses.dataclass(frozen=True)
class MaskRCNNConfig(FasterRCNNConfig):
    """Faster R-CNN's settings and the mask head's: its convolutions' channels (None: the
    pyramid's, `fpn_channels`; He et al.'s 256 with a full-size pyramid). The head reads 14x14
    ROI features and predicts 28x28 masks; it learns from the first `mask_rois_per_image` foreground
    slots of each image's sampled ROIs (None until `sized_to` fits it to a run, `mask_rcnn_sizing`;
    all of them, `round(rois_per_image * foreground_fraction)` as He et al., for a model built
    without a run)."""

    mask_head_channels: Optional[int] = None
    mask_rois_per_image: Optional[int] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mask_head_channels is not None and self.mask_head_channels < 1:
            raise SettingError("mask_head_channels", f"must be at least 1, got {self.mask_head_channels}")
        if self.mask_rois_per_image is not None and self.mask_rois_per_image < 1:
            raise SettingError("mask_rois_per_image", f"must be at least 1, got {self.mask_rois_per_image}")

    def sized_to(self, boxes_per_image: float) -> tuple["MaskRCNNConfig", Optional[ModelSizes]]:
        """Faster R-CNN's fit, then an unset `mask_rois_per_image` fitted to the foreground slots,
        the image size and `boxes_per_image` (`MaskRCNNSizes`); the fit is None when every size is set."""
        config, box_stages = super().sized_to(boxes_per_image)
        if config.mask_rois_per_image is not None:
            return config, box_stages
        slots = SamplingConfig(config.rois_per_image, config.foreground_fraction).positive_slots
        mask_rois, reason = fit_mask_rois(config.image_size, slots, boxes_per_image)
        return dataclasses.replace(config, mask_rois_per_image=mask_rois), MaskRCNNSizes(box_stages, mask_rois, reason)
