"""The names of the export's outputs (DESIGN.md §6), importable without TensorFlow by clients."""

OUTPUT_NAMES = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")
# Only from a model with a probabilistic box head (`--box-uncertainty`).
STDDEV_OUTPUT = "detection_box_stddev"
