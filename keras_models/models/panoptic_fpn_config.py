"""`PanopticFPNConfig`: every setting of a Panoptic FPN (`models/panoptic_fpn.py`)."""

from __future__ import annotations

import dataclasses
from typing import Optional

from contracts.errors import SettingError
from contracts.record_schema import IGNORE_LABEL
from keras_models.models.mask_rcnn_config import MaskRCNNConfig
from keras_models.ops.anchors import AnchorConfig
from keras_models.ops.panoptic_merge import MergeConfig


@dataclasses.dataclass(frozen=True)
class PanopticFPNConfig(MaskRCNNConfig):
    """Mask R-CNN's settings and the semantic branch's and the merge's.

    `stuff_classes`: the label ids of the dataset's stuff classes (`dataset_info.json`'s kinds),
    filled in by the run; every other id is a thing. The branch predicts background, "thing" and
    each stuff class. Its convolutions have `semantic_channels` channels (None: `fpn_channels`),
    and its loss counts `semantic_loss_weight` times (Kirillov et al.'s λ = 0.5). The merge keeps
    instances scoring at least `panoptic_score_threshold`, drops one more than
    `panoptic_overlap_threshold` hidden, and stuff regions under `stuff_min_area` of the input's
    pixels (Detectron2's 0.5, 0.5 and 4096 pixels of an 800 x 1333 input, `ops/panoptic_merge`).

    λ measured (`synth --stuff`, 90 training images at 128 px, 8 epochs from a Mask R-CNN, PQ on 30
    held out): 0.25 → PQ 0.657 (things 0.43, stuff 0.89); 0.5 → 0.677 (0.44, 0.91); 1 → 0.670 (0.43,
    0.91); 2 → 0.655 (0.38, 0.93; box AP 0.33 against 0.35). All within each other's intervals
    (±0.05); a heavier semantic loss trades the things for the stuff. 0.5 stays.
    """

    stuff_classes: tuple[int, ...] = ()
    semantic_channels: Optional[int] = None
    semantic_loss_weight: float = 0.5
    panoptic_score_threshold: float = 0.5
    panoptic_overlap_threshold: float = 0.5
    stuff_min_area: float = 0.004

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "stuff_classes", tuple(sorted(int(label) for label in self.stuff_classes)))
        if not self.pyramid:
            raise SettingError("pyramid", "Panoptic FPN's semantic branch reads the pyramid: it cannot be false")
        if self.semantic_channels is not None and self.semantic_channels < 1:
            raise SettingError("semantic_channels", f"must be at least 1, got {self.semantic_channels}")
        if self.semantic_loss_weight < 0:
            raise SettingError("semantic_loss_weight", f"must not be negative, got {self.semantic_loss_weight}")
        highest = self.num_classes if self.num_classes is not None else IGNORE_LABEL - 1
        if any(not 1 <= label <= highest for label in self.stuff_classes):
            raise SettingError("stuff_classes", f"must be label ids from 1 to {highest}, "
                                                f"got {list(self.stuff_classes)}")
        for name in ("panoptic_score_threshold", "panoptic_overlap_threshold", "stuff_min_area"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise SettingError(name, f"must lie in [0, 1], got {getattr(self, name)}")

    @property
    def head_channels(self) -> int:
        """The semantic branch's convolution channels."""
        return self.semantic_channels or self.fpn_channels

    @property
    def merge_config(self) -> MergeConfig:
        return MergeConfig(self.panoptic_score_threshold, self.panoptic_overlap_threshold, self.stuff_min_area)

    def for_run(self, num_classes: int, norm: str, anchors: AnchorConfig, seed: int,
                stuff_classes: tuple[int, ...] = ()) -> "PanopticFPNConfig":
        return dataclasses.replace(super().for_run(num_classes, norm, anchors, seed, stuff_classes),
                                   stuff_classes=tuple(stuff_classes))

    def to_json_dict(self) -> dict:
        values = super().to_json_dict()
        values["stuff_classes"] = list(self.stuff_classes)
        return values
