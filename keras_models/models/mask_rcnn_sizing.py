"""Mask R-CNN's sizes fitted to the run: Faster R-CNN's (`faster_rcnn_sizing`) and how many
foreground ROIs per image the mask head learns from.

He et al. (2017) train the mask head on every foreground ROI sampled at 800 px: a quarter of 512
per image. That is used as it is at 800 px and above. Below, the head learns from
`MASK_ROIS_PER_OBJECT` ROIs per object (the training split's mean, rounded up), at most the
foreground slots: the foreground ROIs of one object overlap it by IoU >= 0.5 and so teach nearly the
same mask, while the mask stage's cost grows with every ROI it pools, convolves and upsamples.

Measured at 256 px on 2 cores (`synth --masks`, tiny backbone), side by side: on 400 images,
Faster R-CNN trained 29.5 images/s, Mask R-CNN 16.2 with all its 16 foreground slots, 20.5 with 8
and 23.9 with 4. In benchmarks/mask_quality.py (15 minutes, 2 shapes per image, so 4 mask ROIs)
this rule took Mask R-CNN's step from 1.69x Faster R-CNN's to 1.42x, its box mAP from 0.94x
Faster R-CNN's to 0.95x, and kept its mask mAP50 at 0.96.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

from keras_models.models.faster_rcnn_sizing import FPN_IMAGE_SIZE, FasterRCNNSizes

MASK_ROIS_PER_OBJECT = 2


@dataclasses.dataclass(frozen=True)
class MaskRCNNSizes:
    """The fit of a Mask R-CNN: `box_stages`, Faster R-CNN's (None when the user set every one of
    them), and `mask_rois_per_image`."""

    box_stages: Optional[FasterRCNNSizes]
    mask_rois_per_image: int
    mask_reason: str

    def values(self) -> dict[str, int]:
        box_values = self.box_stages.values() if self.box_stages else {}
        return {**box_values, "mask_rois_per_image": self.mask_rois_per_image}

    @property
    def reason(self) -> str:
        return "; ".join(([self.box_stages.reason] if self.box_stages else []) + [self.mask_reason])

    def describe(self) -> str:
        masks = f"the mask head learns from {self.mask_rois_per_image} foreground ROIs per image ({self.mask_reason})"
        return f"{self.box_stages.describe()}; {masks}" if self.box_stages else masks


def fit_mask_rois(image_size: int, slots: int, boxes_per_image: float) -> tuple[int, str]:
    """The foreground ROIs per image the mask head learns from, of the `slots` there are, for square
    inputs of `image_size` pixels and `boxes_per_image` objects on average; and why."""
    if image_size >= FPN_IMAGE_SIZE:
        return slots, f"all {slots} foreground slots, as He et al. at {FPN_IMAGE_SIZE} px and above"
    objects = max(1, math.ceil(boxes_per_image))
    return (min(slots, MASK_ROIS_PER_OBJECT * objects),
            f"{MASK_ROIS_PER_OBJECT} per object for {boxes_per_image:.2g} boxes per image, "
            f"at most the {slots} foreground slots")
