"""Faster R-CNN's sizes fitted to the run: how many proposals, samples and ROIs, and how wide a box
head, for this input size and this many objects per image.

FPN's published numbers (Lin et al. 2017; Detectron) are for 800 px: 2,000 proposals per level
before NMS and 2,000 after it in training (1,000 and 1,000 at inference), 256 RPN samples, 512
ROIs per image, a 1,024-wide box head. They are used as they are at 800 px and above. Below,

- the counts scale with the image's area, `a = (S / 800)²`: the anchors, and so the candidate
  boxes, grow with the area, while the objects of a dataset keep their share of the image;
- each count keeps a floor that follows the objects per image `n` (the training split's mean,
  rounded up): 50 proposals and 16 ROIs per object, so crowded images keep enough of both, and
  never fewer than 100 proposals (the detections a model returns) or 64 ROIs;
- no count exceeds FPN's;
- the box head's width scales with the side, `1024 · S / 800`, to a multiple of 64, at least 256:
  its two fully connected layers on every ROI are most of the second stage's compute;
- the RPN's 256 sampled anchors stay: they cost one loss term, not a layer pass.

Measured at 256 px on 2 cores (batch 16, 2.3 shapes per image), side by side under the same load:
FPN's numbers trained 8.9 images/s, these 31.6, RetinaNet 54.1. Alone (benchmarks/detector_quality.py,
14 minutes): these 51.2 images/s and mAP50 0.975, RetinaNet 95.3 images/s (a step 1.86x shorter).
The class's own defaults (`FasterRCNN`) are FPN's numbers, `FPN_SIZES`.
"""

from __future__ import annotations

import dataclasses
import math

FPN_IMAGE_SIZE = 800
# FPN's numbers at 800 px.
FPN_SIZES = dict(training_pre_nms=2000, training_proposals=2000, inference_pre_nms=1000, inference_proposals=1000,
                 rpn_sample_size=256, rois_per_image=512, box_head_width=1024)
MIN_PROPOSALS, PROPOSALS_PER_OBJECT = 100, 50
MIN_ROIS, ROIS_PER_OBJECT = 64, 16
MIN_BOX_HEAD_WIDTH, WIDTH_STEP = 256, 64
# The settings this module chooses, each left to it when the user sets none.
SIZED_FIELDS = tuple(FPN_SIZES)


@dataclasses.dataclass(frozen=True)
class FasterRCNNSizes:
    training_pre_nms: int
    training_proposals: int
    inference_pre_nms: int
    inference_proposals: int
    rpn_sample_size: int
    rois_per_image: int
    box_head_width: int
    reason: str

    def values(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in SIZED_FIELDS}

    def describe(self) -> str:
        return (f"proposals {self.training_pre_nms} per level before NMS and {self.training_proposals} after it in "
                f"training ({self.inference_pre_nms} and {self.inference_proposals} at inference), "
                f"{self.rpn_sample_size} RPN samples, {self.rois_per_image} ROIs per image, box head "
                f"{self.box_head_width} wide ({self.reason})")


def fit_faster_rcnn(image_size: int, boxes_per_image: float) -> FasterRCNNSizes:
    """The sizes for square inputs of `image_size` pixels and `boxes_per_image` objects on average."""
    if image_size >= FPN_IMAGE_SIZE:
        return FasterRCNNSizes(**FPN_SIZES, reason=f"FPN's numbers, for {FPN_IMAGE_SIZE} px and above")
    area = (image_size / FPN_IMAGE_SIZE) ** 2
    objects = max(1, math.ceil(boxes_per_image))

    def count(name: str, floor: int) -> int:
        return min(FPN_SIZES[name], max(floor, math.ceil(FPN_SIZES[name] * area)))

    proposal_floor = max(MIN_PROPOSALS, PROPOSALS_PER_OBJECT * objects)
    width = WIDTH_STEP * round(FPN_SIZES["box_head_width"] * image_size / FPN_IMAGE_SIZE / WIDTH_STEP)
    return FasterRCNNSizes(
        training_pre_nms=count("training_pre_nms", proposal_floor),
        training_proposals=count("training_proposals", proposal_floor),
        inference_pre_nms=count("inference_pre_nms", proposal_floor),
        inference_proposals=count("inference_proposals", proposal_floor),
        rpn_sample_size=FPN_SIZES["rpn_sample_size"],
        rois_per_image=count("rois_per_image", max(MIN_ROIS, ROIS_PER_OBJECT * objects)),
        box_head_width=max(MIN_BOX_HEAD_WIDTH, width),
        reason=f"FPN's at 800 px scaled by the area (({image_size}/800)² = {area:.3g}), with floors for "
               f"{boxes_per_image:.2g} boxes per image")
