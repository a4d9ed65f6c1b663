"""The one factory that turns `TrainSettings` into a detector, and a run's `config.json` back into
it: which class `--model` names, its anchor layout, and which settings each detector reads."""

from __future__ import annotations

import dataclasses

from boxflow.errors import BoxflowError
from keras_models.detectors.faster_rcnn import FasterRCNN
from keras_models.detectors.retinanet import RetinaNet
from keras_models.detectors.training_steps import DetectorSteps
from keras_models.ops.anchors import AnchorConfig
from keras_models.training.train_settings import MODEL_FIELDS, TrainSettings

DETECTORS: dict[str, type[DetectorSteps]] = {"retinanet": RetinaNet, "faster_rcnn": FasterRCNN}
# Runs written before `--model` existed name no model: they are RetinaNets.
DEFAULT_MODEL = "retinanet"


def anchor_layout(settings: TrainSettings) -> AnchorConfig:
    """The model's anchor layout, its size multiplier taken from the settings when they set one."""
    layout = DETECTORS[settings.model].ANCHOR_LAYOUT
    if settings.model == "faster_rcnn" and not settings.pyramid:
        layout = FasterRCNN.SINGLE_LEVEL_ANCHOR_LAYOUT
    if settings.anchor_size_multiplier is None:
        return layout
    return dataclasses.replace(layout, size_multiplier=settings.anchor_size_multiplier)


def build_detector(settings: TrainSettings, num_classes: int, norm: str, anchors: AnchorConfig) -> DetectorSteps:
    """The run's detector with `anchors`' size and aspect ratios and the settings its class reads.
    Sizes left unset (`TrainSettings.sized_to` fits them for a run) take the class's own defaults."""
    common = dict(num_classes=num_classes, image_size=settings.image_size, backbone=settings.backbone,
                  backbone_width=settings.backbone_width, fpn_channels=settings.fpn_channels,
                  anchor_size_multiplier=anchors.size_multiplier, anchor_aspect_ratios=anchors.aspect_ratios,
                  norm=norm, box_uncertainty=settings.box_uncertainty, variance_voting=settings.variance_voting)
    own = {name: getattr(settings, name) for name in MODEL_FIELDS[settings.model] if getattr(settings, name) is not None}
    if settings.model == "faster_rcnn":
        own["sampling_seed"] = settings.seed  # which anchors and ROIs each step samples
    return DETECTORS[settings.model](**common, **own)


def rebuild_detector(run_config: dict) -> DetectorSteps:
    """The untrained detector a run's `config.json` describes."""
    name = run_config.get("settings", {}).get("model", DEFAULT_MODEL)
    if name not in DETECTORS:
        raise BoxflowError(f"config.json: the run trained a {name!r}, which this boxflow does not build "
                           f"({', '.join(DETECTORS)})")
    return DETECTORS[name].from_config(run_config["model"])
