"""The settings of one `boxflow train` run, checked once where they are made: the run's own, and
the chosen model's config (`keras_models/models/*_config.py`), which the run builds its model from.

A settings file and the factory's keyword arguments name fields flat, as the command line does:
`fpn_channels: 96` and `optimizer: sgd` alike. The factory gives each to the run or to the model's
config, and refuses a field that only another model reads.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

from contracts.errors import BoxflowError, SettingError
from contracts.settings_file import read_settings_file, settings_from_mapping
from keras_models.layers.normalization import check_normalization
from keras_models.models import MODELS
from keras_models.models.model_config import ModelConfig, ModelSizes
from keras_models.models.registry import MODEL_CONFIGS
from keras_models.models.retinanet_config import RetinaNetConfig
from keras_models.ops.anchor_fitting import ANCHOR_CHOICES
from keras_models.training.optimizers import LR_SCALINGS, OPTIMIZERS, LearningRate, learning_rate_for
from keras_models.training.strategy import STRATEGIES
from pipeline.augment.config import AugmentationConfig
from pipeline.ragged_padding import padded_box_count

# The models' config fields a run fills in itself: the dataset's classes and which are stuff, the
# run's normalization (`TrainSettings.norm`, None: by the strategy) and its seed.
FILLED_BY_THE_RUN = ("num_classes", "stuff_classes", "norm", "sampling_seed")
# TensorFlow's variable for its intra-op pool; the input pipeline follows it unless set itself.
THREADS_VARIABLE = "TF_NUM_INTRAOP_THREADS"
# The fields a settings file or the factory's keywords may name besides the run's own.
MODEL_FIELDS = tuple(dict.fromkeys(name for config in MODEL_CONFIGS.values() for name in config.field_names()
                                   if name not in FILLED_BY_THE_RUN))


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    data_dir: str
    run_dir: str
    model: str = "retinanet"
    # The chosen model's config, of its class (`MODEL_CONFIGS[model]`); its number of classes is
    # the dataset's, filled in when the run builds the model.
    model_config: ModelConfig = RetinaNetConfig()
    weights: Optional[str] = None
    init_from: Optional[str] = None
    epochs: int = 10
    time_budget_minutes: Optional[float] = None
    batch_size: int = 16
    strategy: str = "auto"
    # None: sync_batch under several replicas, batch on one (normalization.default_normalization).
    norm: Optional[str] = None
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
    # The CPU threads the input pipeline takes (`make_dataset(threads=...)`). None: every core,
    # unless TF_NUM_INTRAOP_THREADS bounds TensorFlow's own pools, then as many (the factory reads it).
    input_threads: Optional[int] = None
    # The boxes per image padded batches hold (several replicas, XLA). None: fitted to the data
    # (ragged_padding.padded_box_count of dataset_info.json's max_boxes_per_image).
    max_boxes: Optional[int] = None
    anchors: str = "default"  # or "auto": fitted to the dataset's boxes (keras_models.ops.anchor_fitting)
    augmentation: AugmentationConfig = AugmentationConfig()

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise SettingError("strategy", f"must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        for name, allowed in (("model", MODELS), ("optimizer", OPTIMIZERS), ("lr_scaling", LR_SCALINGS),
                              ("anchors", ANCHOR_CHOICES)):
            if getattr(self, name) not in allowed and not (name == "lr_scaling" and self.lr_scaling is None):
                raise SettingError(name, f"must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if type(self.model_config) is not MODEL_CONFIGS[self.model]:
            raise SettingError("model_config", f"must be a {MODEL_CONFIGS[self.model].__name__} for model "
                                               f"{self.model}, got a {type(self.model_config).__name__}")
        if self.norm is not None:
            check_normalization(self.norm)
        if self.anchors == "auto" and self.model_config.anchor_layout() is None:
            raise SettingError("anchors", f"auto fits a detector's anchors to the boxes; --model {self.model} has "
                                          "no anchors")
        if self.weights and self.init_from:
            raise BoxflowError("--weights (a backbone) and --init-from (a whole detector) exclude each other")
        if self.mixed_precision and self.bfloat16:
            raise BoxflowError("--mixed-precision (float16) and --bfloat16 exclude each other; choose one")
        if self.norm == "group" and self.weights and self.model_config.backbone != "tiny":
            raise SettingError("weights", f"{self.weights}: {self.model_config.backbone}'s published weights hold "
                               "BatchNorm statistics, which GroupNorm cannot use; choose norm frozen_batch, batch "
                               "or sync_batch", mentions=("norm",))
        if self.norm == "frozen_batch" and not (self.weights or self.init_from):
            raise SettingError("norm", "frozen_batch keeps the backbone's stored BatchNorm statistics fixed, and "
                               "without weights or init_from they are random; set one, or choose norm batch, "
                               "sync_batch or group", mentions=("weights", "init_from", "norm"))
        for name in ("epochs", "batch_size", "max_boxes", "input_threads"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise SettingError(name, f"must be at least 1, got {getattr(self, name)}")
        for name in ("learning_rate", "clip_norm"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise SettingError(name, f"must be positive, got {getattr(self, name)}")
        if self.time_budget_minutes is not None and self.time_budget_minutes <= 0:
            raise SettingError("time_budget_minutes", f"must be positive minutes, got {self.time_budget_minutes}")
        if self.eval_every < 0 or self.weight_decay < 0 or self.warmup_epochs < 0:
            raise BoxflowError("--eval-every, weight_decay and warmup_epochs cannot be negative")

    @property
    def image_size(self) -> int:
        """The square input side the run trains at, in pixels: its model's."""
        return self.model_config.image_size

    def sized_to(self, boxes_per_image: float) -> tuple["TrainSettings", Optional[ModelSizes]]:
        """The settings with the sizes the model fits to the data (`boxes_per_image` on average) filled
        in, and the fit (None when the model fits nothing, or every size is set)."""
        config, sizes = self.model_config.sized_to(boxes_per_image)
        return dataclasses.replace(self, model_config=config), sizes

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
        """Flat, as a settings file names the fields: the run's and its model config's (config.json)."""
        values = dataclasses.asdict(self)
        model_config = values.pop("model_config")
        return {**values, **{name: value for name, value in model_config.items() if name not in FILLED_BY_THE_RUN}}


def train_settings(data_dir: str, run_dir: str, config_path: Optional[str] = None, **overrides) -> TrainSettings:
    """The one factory: defaults, then the YAML file's values, then `overrides` that are not None.

    Both name fields flat: the run's (`optimizer: sgd`), the model's config's (`fpn_channels: 96`)
    and `augmentation:` as a mapping of `AugmentationConfig` fields.
    """
    values: dict[str, object] = {}
    if config_path:
        values = _read_config(config_path)
    values.update({name: value for name, value in overrides.items() if value is not None})
    values.setdefault("input_threads", _threads_from_environment())
    model = values.get("model", TrainSettings.model)
    if model not in MODEL_CONFIGS:
        raise SettingError("model", f"must be one of {', '.join(MODELS)}, got {model!r}")
    config_class = MODEL_CONFIGS[model]
    own = set(config_class.field_names()) - set(FILLED_BY_THE_RUN)
    others = [name for name in MODEL_FIELDS if name in values and name not in own]
    if others:
        readers = sorted({name for name, other in MODEL_CONFIGS.items() for field in others
                          if field in other.field_names()})
        raise BoxflowError(f"{', '.join(others)} set, but only --model {' or '.join(readers)} reads "
                           f"{'it' if len(others) == 1 else 'them'}; this run trains {model}")
    model_config = config_class(**{name: values.pop(name) for name in list(values) if name in own})
    return TrainSettings(data_dir=data_dir, run_dir=run_dir, model_config=model_config, **values)


def _threads_from_environment() -> Optional[int]:
    """TensorFlow's intra-op thread count as TF_NUM_INTRAOP_THREADS sets it; None when unset or 0
    (TensorFlow's "every core")."""
    value = os.environ.get(THREADS_VARIABLE, "").strip()
    if not value:
        return None
    try:
        threads = int(value)
    except ValueError:
        raise BoxflowError(f"{THREADS_VARIABLE}={value!r}: must be a whole number of threads") from None
    return threads if threads > 0 else None


def _read_config(path: str) -> dict[str, object]:
    """The file's fields, each converted to its type: the run's, or the models' configs' by name."""
    raw = read_settings_file(path, "training config")
    run_fields = set(field.name for field in dataclasses.fields(TrainSettings)) - {"data_dir", "run_dir",
                                                                                   "model_config"}
    unknown = sorted(set(raw) - run_fields - set(MODEL_FIELDS))
    if unknown:
        raise BoxflowError(f"{path}: unknown training setting(s) {unknown}; known: "
                           f"{sorted(run_fields | set(MODEL_FIELDS))}")
    values = settings_from_mapping(TrainSettings, {name: value for name, value in raw.items() if name in run_fields},
                                   path, "training setting")
    for config_class in MODEL_CONFIGS.values():
        mine = {name: value for name, value in raw.items()
                if name in MODEL_FIELDS and name in config_class.field_names()}
        values.update(settings_from_mapping(config_class, mine, path, "training setting"))
    return values
