"""The settings of one `boxflow train` run, checked once where they are made."""

from __future__ import annotations

import dataclasses
from typing import Optional

from boxflow.errors import BoxflowError
from boxflow.settings_file import read_settings_file
from keras_models.detectors import MODELS
from keras_models.detectors.faster_rcnn_sizing import SIZED_FIELDS, FasterRCNNSizes, fit_faster_rcnn
from keras_models.ops.anchor_fitting import ANCHOR_CHOICES
from keras_models.ops.box_uncertainty import BOX_UNCERTAINTIES, NO_UNCERTAINTY
from keras_models.layers.backbones import BACKBONES
from keras_models.layers.heads import HEAD_NORMS
from keras_models.layers.two_stage_heads import BOX_HEADS
from keras_models.layers.normalization import check_normalization
from keras_models.training.optimizers import LR_SCALINGS, OPTIMIZERS, LearningRate, learning_rate_for
from keras_models.training.strategy import STRATEGIES
from pipeline.augment.config import AugmentationConfig, augmentation_from_mapping
from pipeline.ragged_padding import padded_box_count


# The settings only one detector reads, passed to its class as arguments of the same names; a run
# of another detector refuses them unless they keep their defaults.
MODEL_FIELDS = {
    "retinanet": ("head_depth", "head_channels", "head_norm"),
    "faster_rcnn": ("box_head", "box_head_width", "training_pre_nms", "training_proposals", "inference_pre_nms",
                    "inference_proposals", "rpn_sample_size", "rois_per_image", "foreground_fraction", "pyramid"),
}


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    data_dir: str
    run_dir: str
    model: str = "retinanet"
    backbone: str = "tiny"
    image_size: int = 256
    weights: Optional[str] = None
    init_from: Optional[str] = None
    epochs: int = 10
    time_budget_minutes: Optional[float] = None
    batch_size: int = 16
    strategy: str = "auto"
    # None: sync_batch under several replicas, batch on one (normalization.default_normalization).
    norm: Optional[str] = None
    head_norm: str = "none"
    mixed_precision: bool = False
    bfloat16: bool = False
    xla: bool = False
    optimizer: str = "adamw"
    # None: the optimizer's own (optimizers.DEFAULT_RATES)
    learning_rate: Optional[float] = None
    lr_scaling: Optional[str] = None
    weight_decay: float = 1e-4
    momentum: float = 0.9
    warmup_epochs: float = 1.0
    clip_norm: float = 10.0
    eval_every: int = 1
    seed: int = 0
    # The same batches in the same order on every run (at some cost in input speed): for comparing
    # runs that differ in one setting, such as precision.
    deterministic_input: bool = False
    # The boxes per image padded batches hold (several replicas, XLA). None: fitted to the data
    # (ragged_padding.padded_box_count of dataset_info.json's max_boxes_per_image).
    max_boxes: Optional[int] = None
    backbone_width: int = 32
    fpn_channels: int = 64
    box_uncertainty: str = NO_UNCERTAINTY  # or laplace, normal: a probabilistic box head
    variance_voting: bool = False  # with box_uncertainty: kept boxes voted from their neighbours
    # RetinaNet's heads (MODEL_FIELDS)
    head_depth: int = 2
    head_channels: int = 64
    # Faster R-CNN's second stage, proposals and samples (MODEL_FIELDS)
    # None: sized to the image size and the boxes per image (detectors.faster_rcnn_sizing)
    box_head: str = "2fc"
    box_head_width: Optional[int] = None
    training_pre_nms: Optional[int] = None
    training_proposals: Optional[int] = None
    inference_pre_nms: Optional[int] = None
    inference_proposals: Optional[int] = None
    rpn_sample_size: Optional[int] = None
    rois_per_image: Optional[int] = None
    foreground_fraction: float = 0.25
    pyramid: bool = True  # False: Faster R-CNN on C4 alone, 3 anchor sizes x 3 ratios
    # None: the model's layout (4 for RetinaNet, 8 for Faster R-CNN)
    anchor_size_multiplier: Optional[float] = None
    anchors: str = "default"  # or "auto": fitted to the dataset's boxes (keras_models.ops.anchor_fitting)
    augmentation: AugmentationConfig = AugmentationConfig()

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise BoxflowError(f"--backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}")
        if self.strategy not in STRATEGIES:
            raise BoxflowError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        for name, allowed in (("model", MODELS), ("optimizer", OPTIMIZERS), ("lr_scaling", LR_SCALINGS),
                              ("head_norm", HEAD_NORMS), ("anchors", ANCHOR_CHOICES), ("box_head", BOX_HEADS),
                              ("box_uncertainty", BOX_UNCERTAINTIES)):
            if getattr(self, name) not in allowed and not (name == "lr_scaling" and self.lr_scaling is None):
                raise BoxflowError(f"--{name.replace('_', '-')} must be one of {', '.join(allowed)}, "
                                   f"got {getattr(self, name)!r}")
        if self.norm is not None:
            check_normalization(self.norm)
        self._check_model_fields()
        if self.variance_voting and self.box_uncertainty == NO_UNCERTAINTY:
            raise BoxflowError("--variance-voting weighs boxes by their predicted variance: it needs "
                               "--box-uncertainty laplace or normal")
        if self.weights and self.init_from:
            raise BoxflowError("--weights (a backbone) and --init-from (a whole detector) exclude each other")
        if self.mixed_precision and self.bfloat16:
            raise BoxflowError("--mixed-precision (float16) and --bfloat16 exclude each other; choose one")
        if self.norm == "group" and self.weights and self.backbone != "tiny":
            raise BoxflowError(f"--weights {self.weights}: {self.backbone}'s published weights hold BatchNorm "
                               "statistics, which GroupNorm cannot use; choose --norm frozen_batch, batch or "
                               "sync_batch")
        if self.norm == "frozen_batch" and not (self.weights or self.init_from):
            raise BoxflowError("--norm frozen_batch keeps the backbone's stored BatchNorm statistics fixed, and "
                               "without --weights or --init-from they are random; load weights, or choose "
                               "--norm batch, sync_batch or group")
        if self.image_size % 128:
            raise BoxflowError(f"--image-size must be a multiple of 128 for P3–P7, got {self.image_size}")
        for name in ("epochs", "batch_size", "max_boxes", "box_head_width", "training_pre_nms", "training_proposals",
                     "inference_pre_nms", "inference_proposals", "rpn_sample_size", "rois_per_image"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise BoxflowError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not 0 < self.foreground_fraction <= 1:
            raise BoxflowError(f"--foreground-fraction must be in (0, 1], got {self.foreground_fraction}")
        for name in ("learning_rate", "clip_norm", "anchor_size_multiplier"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise BoxflowError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.time_budget_minutes is not None and self.time_budget_minutes <= 0:
            raise BoxflowError(f"--time-budget must be positive minutes, got {self.time_budget_minutes}")
        if self.eval_every < 0 or self.weight_decay < 0 or self.warmup_epochs < 0:
            raise BoxflowError("--eval-every, weight_decay and warmup_epochs cannot be negative")

    def _check_model_fields(self) -> None:
        defaults = {field.name: field.default for field in dataclasses.fields(self)}
        for model, names in MODEL_FIELDS.items():
            changed = [name for name in names if model != self.model and getattr(self, name) != defaults[name]]
            if changed:
                raise BoxflowError(f"{', '.join(changed)} set, but only --model {model} reads "
                                   f"{'it' if len(changed) == 1 else 'them'}; this run trains {self.model}")

    def sized_to(self, boxes_per_image: float) -> tuple["TrainSettings", Optional[FasterRCNNSizes]]:
        """The settings with Faster R-CNN's unset sizes fitted to the image size and
        `boxes_per_image`, and the fit (None for other models, or when every size is set)."""
        unset = [name for name in SIZED_FIELDS if getattr(self, name) is None]
        if self.model != "faster_rcnn" or not unset:
            return self, None
        sizes = fit_faster_rcnn(self.image_size, boxes_per_image)
        return dataclasses.replace(self, **{name: getattr(sizes, name) for name in unset}), sizes

    def padded_to(self, most_boxes_per_image: int) -> "TrainSettings":
        """The settings with an unset `max_boxes` fitted to `most_boxes_per_image`, the data's most
        boxes in one image (four images' worth with mosaic, which tiles four into one). A set value
        that would cut boxes is refused: none is dropped silently."""
        holds = most_boxes_per_image * (4 if self.augmentation.mosaic_probability > 0 else 1)
        if self.max_boxes is None:
            return dataclasses.replace(self, max_boxes=padded_box_count(holds))
        if self.max_boxes < holds:
            mosaic = f", and a mosaic of four such images {holds}" if holds > most_boxes_per_image else ""
            raise BoxflowError(f"max_boxes {self.max_boxes}: padded batches would cut boxes, as an image of "
                               f"{self.data_dir} has {most_boxes_per_image}{mosaic}; set at least {holds}, "
                               "or leave it unset to fit the data")
        return self

    @property
    def learning_rate_plan(self) -> LearningRate:
        """The peak rate for the global batch: the set rate and scaling, else the optimizer's defaults."""
        return learning_rate_for(self.optimizer, self.batch_size, self.learning_rate, self.lr_scaling)

    @property
    def precision_policy(self) -> Optional[str]:
        """The Keras dtype policy the run trains under, None for float32."""
        if self.mixed_precision:
            return "mixed_float16"
        return "mixed_bfloat16" if self.bfloat16 else None

    def to_json_dict(self) -> dict:
        return dataclasses.asdict(self)


_OPTIONAL_TYPES = {"weights": str, "init_from": str, "time_budget_minutes": float, "norm": str, "max_boxes": int,
                   "anchor_size_multiplier": float, "learning_rate": float, "lr_scaling": str,
                   **{name: int for name in SIZED_FIELDS}}


def _converted(name: str, value: object, default: object, source: str) -> object:
    wanted = _OPTIONAL_TYPES.get(name, type(default))
    if value is None and name in _OPTIONAL_TYPES:
        return None
    if wanted is bool:
        if not isinstance(value, bool):
            raise BoxflowError(f"{source}: '{name}' must be true or false, got {value!r}")
        return value
    if wanted in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise BoxflowError(f"{source}: '{name}' must be a number, got {value!r}")
    if wanted is int and value != int(value):
        raise BoxflowError(f"{source}: '{name}' must be a whole number, got {value!r}")
    return wanted(value)


def train_settings(data_dir: str, run_dir: str, config_path: Optional[str] = None, **overrides) -> TrainSettings:
    """The one factory: defaults, then the YAML file's values, then `overrides` that are not None.

    The YAML file holds `TrainSettings` fields by name (`fpn_channels: 96`, `optimizer: sgd`,
    ...), and `augmentation:` as a mapping of `AugmentationConfig` fields.
    """
    values: dict[str, object] = {}
    if config_path:
        values = _read_config(config_path)
    values.update({name: value for name, value in overrides.items() if value is not None})
    return TrainSettings(data_dir=data_dir, run_dir=run_dir, **values)


def _read_config(path: str) -> dict[str, object]:
    raw = read_settings_file(path, "training config")
    fields = {field.name: field for field in dataclasses.fields(TrainSettings)
              if field.name not in ("data_dir", "run_dir")}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise BoxflowError(f"{path}: unknown training setting(s) {unknown}; known: {sorted(fields)}")
    values = {}
    for name, value in raw.items():
        if name == "augmentation":
            if not isinstance(value, dict):
                raise BoxflowError(f"{path}: 'augmentation' must be a mapping of augmentation settings")
            values[name] = augmentation_from_mapping(value, source=f"{path} (augmentation)")
        else:
            values[name] = _converted(name, value, fields[name].default, path)
    return values
