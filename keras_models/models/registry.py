"""`--model` names to model classes and their configs, and a run's `config.json` back to its
untrained model."""

from __future__ import annotations

from contracts.errors import BoxflowError
from keras_models.models.dense_prediction_steps import DensePredictionSteps
from keras_models.models.faster_rcnn import FasterRCNN
from keras_models.models.mask_rcnn import MaskRCNN
from keras_models.models.model_config import ModelConfig
from keras_models.models.panoptic_fpn import PanopticFPN
from keras_models.models.retinanet import RetinaNet
from keras_models.models.semantic_fpn import SemanticFPN

MODEL_CLASSES: dict[str, type[DensePredictionSteps]] = {
    "retinanet": RetinaNet, "faster_rcnn": FasterRCNN, "mask_rcnn": MaskRCNN, "semantic_fpn": SemanticFPN,
    "panoptic_fpn": PanopticFPN}
# Each model's config class, by `--model` name.
MODEL_CONFIGS: dict[str, type[ModelConfig]] = {name: model.CONFIG for name, model in MODEL_CLASSES.items()}
# Runs written before `--model` existed name no model: they are RetinaNets.
DEFAULT_MODEL = "retinanet"


def rebuild_model(run_config: dict) -> DensePredictionSteps:
    """The untrained model a run's `config.json` describes."""
    name = run_config.get("settings", {}).get("model", DEFAULT_MODEL)
    if name not in MODEL_CLASSES:
        raise BoxflowError(f"config.json: the run trained a {name!r}, which this boxflow does not build "
                           f"({', '.join(MODEL_CLASSES)})")
    return MODEL_CLASSES[name].from_config(run_config["model"])
