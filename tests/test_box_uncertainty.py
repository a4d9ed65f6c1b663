"""The probabilistic box loss is the negative log-likelihood of tfp's distribution, written out by
hand here, with the Normal's robust continuation beyond the band, and its gradients are right."""

import numpy as np
import pytest
import tensorflow as tf

from keras_models.ops.box_uncertainty import (LAPLACE, NORMAL, ROBUST_BEYOND, box_negative_log_likelihood,
                                              edge_distribution)


def hand_written(targets, locations, log_scales, kind):
    """NumPy NLL per edge from the densities' formulas."""
    error, scale = np.abs(targets - locations), np.exp(log_scales)
    if kind == LAPLACE:
        return error / scale + np.log(2 * scale)
    quadratic = error ** 2 / (2 * scale ** 2) + np.log(scale) + 0.5 * np.log(2 * np.pi)
    at_band = ROBUST_BEYOND ** 2 / (2 * scale ** 2) + np.log(scale) + 0.5 * np.log(2 * np.pi)
    linear = at_band + (error - ROBUST_BEYOND) * ROBUST_BEYOND / scale ** 2
    return np.where(error <= ROBUST_BEYOND, quadratic, linear)


@pytest.mark.parametrize("kind", [LAPLACE, NORMAL])
def test_the_loss_is_the_negative_log_likelihood_written_by_hand(rng, kind):
    targets, locations = rng.normal(0, 1.5, (2, 50, 4)), rng.normal(0, 1.5, (2, 50, 4))
    log_scales = rng.uniform(-2, 1, (2, 50, 4))
    loss = box_negative_log_likelihood(targets, locations, log_scales, kind).numpy()
    np.testing.assert_allclose(loss, hand_written(targets, locations, log_scales, kind), rtol=1e-6, atol=1e-6)
    inside = np.abs(targets - locations) <= ROBUST_BEYOND
    assert 0 < inside.mean() < 1  # both branches of the Normal's loss are exercised
    tfp_nll = -edge_distribution(tf.constant(locations, tf.float32), tf.constant(log_scales, tf.float32),
                                 kind).log_prob(tf.constant(targets, tf.float32)).numpy()
    exact = inside if kind == NORMAL else np.ones_like(inside)
    np.testing.assert_allclose(loss[exact], tfp_nll[exact], rtol=1e-6, atol=1e-6)
    if kind == NORMAL:
        assert np.all(loss[~inside] < tfp_nll[~inside])  # robust: below the squared error outside the band


@pytest.mark.parametrize("kind", [LAPLACE, NORMAL])
def test_the_gradients_match_finite_differences(rng, kind):
    targets = tf.constant(rng.normal(0, 1.5, (64, 4)))
    locations = tf.Variable(rng.normal(0, 1.5, (64, 4)))
    log_scales = tf.Variable(rng.uniform(-1, 1, (64, 4)))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(box_negative_log_likelihood(targets, locations, log_scales, kind))
    gradient_locations, gradient_scales = tape.gradient(loss, [locations, log_scales])
    step = 1e-3
    for variable, gradient in ((log_scales, gradient_scales), (locations, gradient_locations)):
        base = variable.numpy()
        numeric = np.zeros_like(base)
        for index in np.ndindex(*base.shape):
            for sign in (1, -1):
                shifted = base.copy()
                shifted[index] += sign * step
                variable.assign(shifted)
                numeric[index] += sign * float(tf.reduce_sum(
                    box_negative_log_likelihood(targets, locations, log_scales, kind))) / (2 * step)
            variable.assign(base)
        # float32 inside the loss: a central difference of step 1e-3 is good to about 1e-2 here.
        np.testing.assert_allclose(gradient.numpy(), numeric, atol=2e-2 * max(1.0, np.abs(numeric).max()))

