"""The one factory that turns `TrainSettings` into a model: the class `--model` names (from the
registry), built from the run's model config with the dataset's classes and the run's
normalization, anchors and seed."""

from __future__ import annotations

from typing import Optional

from keras_models.models.dense_prediction_steps import DensePredictionSteps
from keras_models.models.registry import MODEL_CLASSES
from keras_models.ops.anchors import AnchorConfig
from keras_models.training.train_settings import TrainSettings


def trains_on_masks(settings: TrainSettings) -> bool:
    """Whether the run's model learns from instance masks (its batches must carry them)."""
    return MODEL_CLASSES[settings.model].TRAINS_ON_MASKS


def trains_on_semantic(settings: TrainSettings) -> bool:
    """Whether the run's model learns from per-pixel class labels (its batches must carry them)."""
    return MODEL_CLASSES[settings.model].TRAINS_ON_SEMANTIC


def build_model(settings: TrainSettings, num_classes: int, norm: str, anchors: Optional[AnchorConfig],
                stuff_classes: tuple[int, ...] = ()) -> DensePredictionSteps:
    """The run's model; a detector with `anchors`' size and aspect ratios (the config's own, or
    fitted to the data), a panoptic model with the label ids of the dataset's `stuff_classes`.
    Sizes left unset (`TrainSettings.sized_to` fits them for a run) take the class's own."""
    config = settings.model_config.for_run(num_classes, norm, anchors, settings.seed, stuff_classes)
    return MODEL_CLASSES[settings.model](config)
