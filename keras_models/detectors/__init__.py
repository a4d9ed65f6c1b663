"""The detectors, each a `keras.Model` built from `keras_models.layers` and `keras_models.ops`."""
