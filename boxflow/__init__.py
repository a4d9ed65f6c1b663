"""boxflow: an object-detection pipeline on TensorFlow/Keras.

This package holds what every stage shares (the on-disk record schema, the label
map, user-facing errors) and the `boxflow` command line. The stages themselves live
in the top-level packages `beam_jobs`, `pipeline`, `keras_models` and `serving`.
"""
