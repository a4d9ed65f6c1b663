"""A `keras.layers.Conv2D` whose bias add the TensorFlow graph optimizer can fuse.

Keras 3 adds a convolution's bias as a broadcast `AddV2` of a reshaped vector. Grappler's
remapper does not recognize that pattern, so on CPU every head and FPN convolution ran as a
convolution, a separate add, a separate ReLU, and a broadcast-sum for the bias gradient.
`tf.nn.bias_add` is the pattern it fuses (Conv2D + BiasAdd [+ Relu] into one oneDNN
primitive, with `BiasAddGrad` on the way back). Same variables, same results: checkpoints and
weight files of the plain layer load unchanged. `benchmarks/train_bench.py` measures the gain.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="boxflow")
class Conv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` for channels-last inputs `[B, H, W, C]`, bias added with `tf.nn.bias_add`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.data_format != "channels_last":
            raise ValueError(f"{self.name}: only channels_last is supported, got {self.data_format}")

    def call(self, inputs):
        outputs = self.convolution_op(inputs, self.kernel)
        if self.use_bias:
            outputs = tf.nn.bias_add(outputs, self.bias)
        return self.activation(outputs) if self.activation is not None else outputs
