"""The models, each a `keras.Model` built from its config dataclass, `keras_models.layers` and
`keras_models.ops`."""

# `train --model`: the models `train` builds (kept here, free of imports, for the command line).
MODELS = ("retinanet", "faster_rcnn", "mask_rcnn", "semantic_fpn", "panoptic_fpn")
# How progress lines name each.
MODEL_NAMES = {"retinanet": "RetinaNet", "faster_rcnn": "Faster R-CNN", "mask_rcnn": "Mask R-CNN",
               "semantic_fpn": "semantic FPN", "panoptic_fpn": "Panoptic FPN"}
# The models that find objects (boxes, classes, scores); the others label pixels only.
DETECTOR_MODELS = ("retinanet", "faster_rcnn", "mask_rcnn", "panoptic_fpn")
