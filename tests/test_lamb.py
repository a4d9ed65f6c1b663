"""LAMB: the update equals a NumPy transcription of You et al. 2019, Algorithm 2, over several steps,
with biases left out of the trust ratio and of decay; and it is not Keras' own Lamb."""

import keras
import numpy as np
import pytest

from keras_models.training.lamb import Lamb
from tests.builders import optimized, optimizer_case


def numpy_lamb(weights: dict, gradients: list[dict], learning_rate: float, beta_1: float, beta_2: float,
               epsilon: float, decay: float) -> dict:
    """Algorithm 2 of the paper, written from it: for each layer i at step t,
    m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;  m̂ = m/(1−β1ᵗ);  v̂ = v/(1−β2ᵗ);  r = m̂/(√v̂ + ε);
    x ← x − η φ(||x||)/||r + λx|| (r + λx), with φ the identity.
    Vectors (biases) take the plain step x ← x − η r."""
    weights = {name: w.astype(np.float64) for name, w in weights.items()}
    first = {name: np.zeros_like(w) for name, w in weights.items()}
    second = {name: np.zeros_like(w) for name, w in weights.items()}
    for t, step_gradients in enumerate(gradients, start=1):
        for name, x in weights.items():
            g = step_gradients[name].astype(np.float64)
            first[name] = beta_1 * first[name] + (1 - beta_1) * g
            second[name] = beta_2 * second[name] + (1 - beta_2) * g ** 2
            r = (first[name] / (1 - beta_1 ** t)) / (np.sqrt(second[name] / (1 - beta_2 ** t)) + epsilon)
            if x.ndim > 1:
                update = r + decay * x
                weights[name] = x - learning_rate * np.linalg.norm(x) / np.linalg.norm(update) * update
            else:
                weights[name] = x - learning_rate * r
    return weights


def test_lamb_matches_the_papers_algorithm_over_several_steps():
    start, gradients = optimizer_case(np.random.default_rng(0))
    weights = optimized(Lamb(learning_rate=0.01, beta_1=0.9, beta_2=0.99, epsilon=1e-6, weight_decay=0.05), start, gradients)
    expected = numpy_lamb(start, gradients, 0.01, 0.9, 0.99, 1e-6, 0.05)
    for name in start:
        np.testing.assert_allclose(weights[name], expected[name], atol=1e-6, rtol=1e-5)
        # Each moved by more than the tolerance, so the comparison says something.
        assert np.abs(expected[name] - start[name]).max() > 1e-3


def test_a_bias_takes_adams_step_where_keras_lamb_applies_its_ratio():
    """One step on a bias of norm 10: Adam's first step moves each entry by the rate; Keras' Lamb
    multiplies it by ||x|| / ||r|| = 10 / 2 (the issue's bias that moved 0.1 where Adam moved 0.01)."""
    start = np.array([6.0, 8.0, 0.0, 0.0], np.float32)
    gradient = np.array([1.0, -1.0, 2.0, -3.0], np.float32)
    ours, theirs = keras.Variable(start), keras.Variable(start)
    Lamb(learning_rate=0.01, weight_decay=0.1).apply_gradients([(gradient, ours)])
    keras.optimizers.Lamb(learning_rate=0.01).apply_gradients([(gradient, theirs)])
    np.testing.assert_allclose(np.asarray(ours) - start, -0.01 * np.sign(gradient), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(theirs) - start, -0.05 * np.sign(gradient), rtol=1e-4)


def test_a_zero_weight_takes_the_plain_learning_rate():
    variable = keras.Variable(np.zeros((2, 2), np.float32))
    Lamb(learning_rate=0.1).apply_gradients([(np.ones((2, 2), np.float32), variable)])
    np.testing.assert_allclose(np.asarray(variable), -0.1 * np.ones((2, 2)), rtol=1e-5)


def test_config_round_trip_and_bad_arguments():
    optimizer = Lamb(learning_rate=0.5, beta_1=0.8, beta_2=0.95, epsilon=1e-5, weight_decay=1e-2)
    restored = Lamb.from_config(optimizer.get_config())
    assert (restored.beta_1, restored.beta_2, restored.epsilon, restored.lamb_weight_decay) == (0.8, 0.95, 1e-5, 1e-2)
    with pytest.raises(ValueError, match="LAMB needs"):
        Lamb(beta_1=1.0)
