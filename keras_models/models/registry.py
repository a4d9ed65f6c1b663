"""`--model` names to model classes and their configs, and a run's `config.json` back to its
untrained model."""

from __future__ import annotations

from contracts.errors import BoxflowError
from keras_models.models.detector import Detector
from keras_models.models.detector_config import DetectorConfig
from keras_models.models.faster_rcnn import FasterRCNN
from keras_models.models.mask_rcnn import MaskRCNN
from keras_models.models.retinanet import RetinaNet

DETECTORS: dict[str, type[Detector]] = {"retinanet": RetinaNet, "faster_rcnn": FasterRCNN, "mask_rcnn": MaskRCNN}
# Each model's config class, by `--model` name.
MODEL_CONFIGS: dict[str, type[DetectorConfig]] = {name: detector.CONFIG for name, detector in DETECTORS.items()}
# Runs written before `--model` existed name no model: they are RetinaNets.
DEFAULT_MODEL = "retinanet"


def rebuild_detector(run_config: dict) -> Detector:
    """The untrained detector a run's `config.json` describes."""
    name = run_config.get("settings", {}).get("model", DEFAULT_MODEL)
    if name not in DETECTORS:
        raise BoxflowError(f"config.json: the run trained a {name!r}, which this boxflow does not build "
                           f"({', '.join(DETECTORS)})")
    return DETECTORS[name].from_config(run_config["model"])
