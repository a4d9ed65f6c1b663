"""The models, each a `keras.Model` built from its config dataclass, `keras_models.layers` and
`keras_models.ops`."""

# `train --model`: the models `train` builds (kept here, free of imports, for the command line).
MODELS = ("retinanet", "faster_rcnn", "mask_rcnn")
# How progress lines name each.
MODEL_NAMES = {"retinanet": "RetinaNet", "faster_rcnn": "Faster R-CNN", "mask_rcnn": "Mask R-CNN"}
