"""`FasterRCNNConfig`: every setting of a Faster R-CNN (`models/faster_rcnn.py`)."""

from __future__ import annotations

import dataclasses
from typing import Optional

from contracts.errors import SettingError
from keras_models.layers.two_stage_heads import BOX_HEADS
from keras_models.models.detector_config import DetectorConfig
from keras_models.models.faster_rcnn_sizing import FPN_SIZES, SIZED_FIELDS, FasterRCNNSizes, fit_faster_rcnn
from keras_models.ops.anchors import AnchorConfig

SINGLE_LEVEL = 4  # C4, where Ren et al. put both stages


@dataclasses.dataclass(frozen=True)
class FasterRCNNConfig(DetectorConfig):
    """The shared detector settings, and Faster R-CNN's own: its box head, its proposals and samples
    (`SIZED_FIELDS`: None until `sized_to` fits them to a run, FPN's numbers for a model built
    without a run), the foreground share of sampled ROIs, FPN's canonical ROI size, whether it has
    the pyramid, and the seed of its sampling. Anchor sides are `anchor_size_multiplier` times the
    stride (8: FPN's 32-512 px on P2-P6)."""

    anchor_size_multiplier: float = 8.0
    box_head: str = "2fc"
    box_head_width: Optional[int] = None
    training_pre_nms: Optional[int] = None
    training_proposals: Optional[int] = None
    inference_pre_nms: Optional[int] = None
    inference_proposals: Optional[int] = None
    rpn_sample_size: Optional[int] = None
    rois_per_image: Optional[int] = None
    foreground_fraction: float = 0.25
    roi_canonical_size: float = 224.0
    pyramid: bool = True  # False: both stages on C4 alone, 3 anchor sizes x 3 ratios
    sampling_seed: int = 0

    # FPN's RPN anchors: one size per level of P2-P6.
    ANCHOR_LAYOUT = AnchorConfig(min_level=2, max_level=6, size_multiplier=8.0, scales=(1.0,))
    # Ren et al.'s anchors on the single level: 128, 256 and 512 px at stride 16.
    SINGLE_LEVEL_ANCHOR_LAYOUT = AnchorConfig(min_level=SINGLE_LEVEL, max_level=SINGLE_LEVEL, size_multiplier=8.0,
                                              scales=(1.0, 2.0, 4.0))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.box_head not in BOX_HEADS:
            raise SettingError("box_head", f"must be one of {', '.join(BOX_HEADS)}, got {self.box_head!r}")
        for name in SIZED_FIELDS:
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise SettingError(name, f"must be at least 1, got {getattr(self, name)}")
        if not 0 < self.foreground_fraction <= 1:
            raise SettingError("foreground_fraction", f"must be in (0, 1], got {self.foreground_fraction}")

    def anchor_layout(self) -> AnchorConfig:
        layout = self.ANCHOR_LAYOUT if self.pyramid else self.SINGLE_LEVEL_ANCHOR_LAYOUT
        return dataclasses.replace(layout, size_multiplier=self.anchor_size_multiplier,
                                   aspect_ratios=self.anchor_aspect_ratios)

    def for_run(self, num_classes: int, norm: str, anchors: AnchorConfig, seed: int,
                stuff_classes: tuple[int, ...] = ()) -> "FasterRCNNConfig":
        return dataclasses.replace(super().for_run(num_classes, norm, anchors, seed, stuff_classes),
                                   sampling_seed=seed)

    def sized_to(self, boxes_per_image: float) -> tuple["FasterRCNNConfig", Optional[FasterRCNNSizes]]:
        """The config with its unset sizes fitted to the image size and `boxes_per_image`, and the
        fit (None when every size is set)."""
        unset = [name for name in SIZED_FIELDS if getattr(self, name) is None]
        if not unset:
            return self, None
        sizes = fit_faster_rcnn(self.image_size, boxes_per_image)
        return dataclasses.replace(self, **{name: getattr(sizes, name) for name in unset}), sizes

    def with_fpn_sizes(self) -> "FasterRCNNConfig":
        """The config with FPN's published numbers for the sizes left unset: a model built directly."""
        return dataclasses.replace(self, **{name: FPN_SIZES[name] for name in SIZED_FIELDS
                                            if getattr(self, name) is None})
