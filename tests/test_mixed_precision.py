"""`--mixed-precision` and `--bfloat16`: one step moves the weights as float32's does (the loss is
scaled in `train_step`, which Keras' LossScaleOptimizer unscales), an overflow skips the step and
halves the scale without tripping the NaN stop, and outputs stay float32."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_models.models.retinanet import RetinaNet

from keras_models.models.retinanet_config import RetinaNetConfig
from keras_models.training.train_callbacks import StopOnNaN

IMAGES = np.random.default_rng(0).uniform(0, 255, (2, 128, 128, 3)).astype(np.float32)
TARGETS = {"boxes": np.array([[[10, 10, 60, 60], [70, 20, 120, 90]]] * 2, np.float32),
           "classes": np.array([[0, 1]] * 2, np.int32)}


@pytest.fixture
def policy():
    """Sets Keras' global dtype policy for one test and restores float32 after it."""
    yield keras.mixed_precision.set_global_policy
    keras.mixed_precision.set_global_policy("float32")


def tiny_model(policy_name: str, set_policy) -> RetinaNet:
    set_policy(policy_name)
    keras.utils.set_random_seed(1)
    model = RetinaNet(RetinaNetConfig(num_classes=3, image_size=128, fpn_channels=32, head_depth=1, head_channels=32))
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    return model


def one_step(model: RetinaNet, callbacks=()) -> list[np.ndarray]:
    """The change of every trainable weight after one training step."""
    before = [np.array(w) for w in model.trainable_weights]
    data = tf.data.Dataset.from_tensors((IMAGES, TARGETS))
    model.fit(data, epochs=1, verbose=0, callbacks=list(callbacks))
    return [np.array(w) - b for w, b in zip(model.trainable_weights, before)]


@pytest.mark.parametrize("policy_name, tolerance", [("mixed_float16", 0.03), ("mixed_bfloat16", 0.08)])
def test_one_reduced_precision_step_moves_the_weights_like_float32(policy, policy_name, tolerance):
    reference = one_step(tiny_model("float32", policy))
    model = tiny_model(policy_name, policy)
    outputs = model(IMAGES[:1])
    assert outputs["logits"].dtype == "float32" and outputs["box_predictions"].dtype == "float32"
    assert model.backbone.layers[2].compute_dtype == policy_name.split("_")[1]
    change = one_step(model)
    largest = max(float(np.abs(d).max()) for d in reference)
    difference = max(float(np.abs(a - b).max()) for a, b in zip(reference, change))
    # Measured: float16 1.1% of the largest change, bfloat16 (8-bit mantissa) 3.0%; without loss scaling
    # float16 moved the weights 2^15 times too little.
    assert largest > 1e-3 and difference < tolerance * largest, (difference, largest)


def test_an_overflow_skips_the_step_and_halves_the_loss_scale(policy):
    model = tiny_model("mixed_float16", policy)
    optimizer = model.optimizer
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    optimizer.build(model.trainable_variables)
    optimizer.dynamic_scale.assign(2.0 ** 40)  # float16 gradients overflow at this scale
    stop_on_nan = StopOnNaN()
    change = one_step(model, [stop_on_nan])
    assert float(optimizer.dynamic_scale) == 2.0 ** 39
    assert all(not np.any(d) for d in change), "the overflowing step was applied"
    assert stop_on_nan.message is None and not model.stop_training
