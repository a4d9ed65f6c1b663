"""conv.Conv2D: the plain Keras layer's results and weights, with a fusable BiasAdd in the graph."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_models.layers import conv

LAYER_ARGUMENTS = [
    dict(filters=8, kernel_size=3, padding="same", activation="relu"),
    dict(filters=8, kernel_size=3, strides=2, padding="same"),
    dict(filters=5, kernel_size=1),
    dict(filters=4, kernel_size=3, padding="valid", use_bias=False),
]


@pytest.mark.parametrize("arguments", LAYER_ARGUMENTS)
def test_forward_and_gradients_equal_the_keras_layer(arguments, rng):
    inputs = tf.constant(rng.normal(size=(2, 9, 9, 6)).astype(np.float32))
    ours, theirs = conv.Conv2D(**arguments), keras.layers.Conv2D(**arguments)
    ours.build(inputs.shape)
    theirs.build(inputs.shape)
    theirs.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in theirs.get_weights()])
    ours.set_weights(theirs.get_weights())  # same variables, so weights move between them as they are

    def outputs_and_gradients(layer):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = layer(inputs)
            loss = tf.reduce_sum(outputs * tf.cos(outputs))
        return [outputs, *tape.gradient(loss, [inputs, *layer.trainable_variables])]

    for mine, reference in zip(outputs_and_gradients(ours), outputs_and_gradients(theirs)):
        np.testing.assert_allclose(mine, reference, rtol=1e-5, atol=1e-5)


def test_the_bias_is_a_bias_add_in_the_graph():
    layer = conv.Conv2D(4, 3, padding="same", activation="relu")
    graph = tf.function(layer).get_concrete_function(tf.TensorSpec([1, 8, 8, 3])).graph
    op_types = {op.type for op in graph.get_operations()}
    assert "BiasAdd" in op_types and "AddV2" not in op_types


def test_config_round_trip():
    layer = conv.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="head_conv")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is conv.Conv2D and clone.get_config() == layer.get_config()


def test_channels_first_is_refused():
    with pytest.raises(ValueError, match="channels_last"):
        conv.Conv2D(4, 3, data_format="channels_first")
