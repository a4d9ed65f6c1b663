"""The one factory that turns `TrainSettings` into a model: the class `--model` names (from the
registry), built from the run's model config with the dataset's classes and the run's
normalization, anchors and seed."""

from __future__ import annotations

from keras_models.models.detector import Detector
from keras_models.models.registry import DETECTORS
from keras_models.ops.anchors import AnchorConfig
from keras_models.training.train_settings import TrainSettings


def trains_on_masks(settings: TrainSettings) -> bool:
    """Whether the run's model learns from instance masks (its batches must carry them)."""
    return DETECTORS[settings.model].TRAINS_ON_MASKS


def build_detector(settings: TrainSettings, num_classes: int, norm: str, anchors: AnchorConfig) -> Detector:
    """The run's model, with `anchors`' size and aspect ratios (the config's own, or fitted to the
    data). Sizes left unset (`TrainSettings.sized_to` fits them for a run) take the class's own."""
    return DETECTORS[settings.model](settings.model_config.for_run(num_classes, norm, anchors, settings.seed))
