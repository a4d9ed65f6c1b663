"""What every detector adds to the shared steps: its config (`DetectorConfig`, from which it is
built and which `get_config` returns), `detect`, which `predict` and the export's in-graph
functions run, and the calibration of a probabilistic box head."""

from __future__ import annotations

import tensorflow as tf

from contracts.errors import SettingError
from keras_models.models.dense_prediction_steps import DensePredictionSteps
from keras_models.models.detector_config import DetectorConfig


class Detector(DensePredictionSteps):
    """A detector is built from its `CONFIG` class's instance alone, and defines `detect(images) ->
    {"boxes": [B, K, 4] pixels XYXY, "scores", "classes" (from 0), "num_detections"}` (and
    `"box_stddev"` with a probabilistic head). `image_size` is the square input side its in-graph
    functions letterbox to."""

    CONFIG: type[DetectorConfig] = DetectorConfig
    # Whether its training batches must carry instance masks (`make_dataset(with_masks=True)`).
    TRAINS_ON_MASKS = False

    def __init__(self, config: DetectorConfig, **kwargs):
        super().__init__(**kwargs)
        if config.num_classes is None:
            raise SettingError("num_classes", "must be set to build a model")
        self.config = config
        self.num_classes, self.image_size, self.box_uncertainty = (config.num_classes, config.image_size,
                                                                   config.box_uncertainty)
        # Multipliers of the predicted stddev per XYXY edge, fitted by `boxflow evaluate --calibrate`
        # and set from the run directory (not a config setting: config.json stays as trained).
        self.box_temperatures = (1.0, 1.0, 1.0, 1.0)

    def get_config(self) -> dict:
        return {**super().get_config(), **self.config.to_json_dict()}

    @classmethod
    def from_config(cls, config: dict) -> "Detector":
        """The model of `config` (`get_config`'s: Keras' own keys and the config's fields)."""
        own = set(cls.CONFIG.field_names())
        return cls(cls.CONFIG(**{name: value for name, value in config.items() if name in own}),
                   **{name: value for name, value in config.items() if name not in own})

    def _calibrated(self, detections: dict) -> dict:
        """`detections` with their `"box_stddev"`, if any, scaled by the temperatures."""
        if "box_stddev" in detections:
            detections["box_stddev"] *= tf.constant(self.box_temperatures, tf.float32)
        return detections

    def detect(self, images) -> dict:
        raise NotImplementedError

    def predict_outputs(self, images) -> dict:
        return self.detect(images)
