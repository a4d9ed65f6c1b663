"""The detectors, each a `keras.Model` built from `keras_models.layers` and `keras_models.ops`."""

# `train --model`: the detectors `train` builds (kept here, free of imports, for the command line).
MODELS = ("retinanet", "faster_rcnn")
