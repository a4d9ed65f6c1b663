"""In-graph inference: detections from encoded images, pixels or `tf.train.Example`s, as the
export and evaluation both run them."""
