"""What every detector adds to the shared steps: `detect`, which `predict` and the export's in-graph
functions run, and the calibration of a probabilistic box head."""

from __future__ import annotations

import tensorflow as tf

from keras_models.models.dense_prediction_steps import DensePredictionSteps
from keras_models.models.detector_config import DetectorConfig


class Detector(DensePredictionSteps):
    """A detector, built from a `DetectorConfig`, defines `detect(images) -> {"boxes": [B, K, 4]
    pixels XYXY, "scores", "classes" (from 0), "num_detections"}` (and `"box_stddev"` with a
    probabilistic head)."""

    CONFIG: type[DetectorConfig] = DetectorConfig
    FINDS_OBJECTS = True

    def __init__(self, config: DetectorConfig, **kwargs):
        super().__init__(config, **kwargs)
        self.box_uncertainty = config.box_uncertainty
        # Multipliers of the predicted stddev per XYXY edge, fitted by `boxflow evaluate --calibrate`
        # and set from the run directory (not a config setting: config.json stays as trained).
        self.box_temperatures = (1.0, 1.0, 1.0, 1.0)

    def _calibrated(self, detections: dict) -> dict:
        """`detections` with their `"box_stddev"`, if any, scaled by the temperatures."""
        if "box_stddev" in detections:
            detections["box_stddev"] *= tf.constant(self.box_temperatures, tf.float32)
        return detections

    def detect(self, images) -> dict:
        raise NotImplementedError

    def predict_outputs(self, images) -> dict:
        return self.detect(images)
