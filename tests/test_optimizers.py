"""`--optimizer` and `--lr-scaling`: each optimizer built, vectors kept out of weight decay, and the
peak rate scaled from the documented base batch of 16."""

import keras
import numpy as np
import pytest

from keras_models.training.lamb import Lamb
from keras_models.training.lars import Lars
from keras_models.training.optimizers import BASE_BATCH, make_optimizer, scaled_learning_rate


@pytest.mark.parametrize("scaling, batch, expected", [
    ("none", 256, 0.1), ("linear", 256, 1.6), ("sqrt", 256, 0.4), ("linear", 16, 0.1), ("sqrt", 4, 0.05),
])
def test_learning_rate_scaling_from_the_base_batch(scaling, batch, expected):
    assert BASE_BATCH == 16
    assert scaled_learning_rate(0.1, batch, scaling) == pytest.approx(expected)


@pytest.mark.parametrize("name, kind", [("adamw", keras.optimizers.AdamW), ("sgd", keras.optimizers.SGD),
                                        ("lamb", Lamb), ("lars", Lars)])
def test_each_optimizer_decays_kernels_and_not_biases(name, kind):
    kernel = keras.Variable(np.ones((2, 2), np.float32), name="kernel")
    bias = keras.Variable(np.ones((2,), np.float32), name="bias")
    optimizer = make_optimizer(name, 0.1, weight_decay=0.5, momentum=0.0, clip_norm=10.0,
                               trainable_variables=[kernel, bias])
    assert isinstance(optimizer, kind)
    # Zero gradients: whatever moves is weight decay.
    optimizer.apply_gradients([(np.zeros((2, 2), np.float32), kernel), (np.zeros((2,), np.float32), bias)])
    assert float(np.asarray(kernel).max()) < 1.0
    np.testing.assert_array_equal(np.asarray(bias), np.ones(2))
