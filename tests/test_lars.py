"""LARS: the update equals a NumPy transcription of You et al. 2017, Algorithm 1, over several steps,
with biases left out of adaptation and decay."""

import keras
import numpy as np
import pytest

from keras_models.training.lars import Lars
from tests.builders import optimized, optimizer_case


def numpy_lars(weights: dict, gradients: list[dict], learning_rate: float, momentum: float, decay: float,
               eta: float) -> dict:
    """Algorithm 1 of the paper, written from it: for each layer l,
    λ = η ||w|| / (||∇L(w)|| + β ||w||);  v ← m v + γ λ (∇L(w) + β w);  w ← w − v.
    Vectors (biases) take a plain momentum step."""
    weights = {name: w.astype(np.float64) for name, w in weights.items()}
    velocities = {name: np.zeros_like(w) for name, w in weights.items()}
    for step_gradients in gradients:
        for name, w in weights.items():
            g = step_gradients[name].astype(np.float64)
            if w.ndim > 1:
                local = eta * np.linalg.norm(w) / (np.linalg.norm(g) + decay * np.linalg.norm(w))
                velocities[name] = momentum * velocities[name] + learning_rate * local * (g + decay * w)
            else:
                velocities[name] = momentum * velocities[name] + learning_rate * g
            weights[name] = w - velocities[name]
    return weights


def test_lars_matches_the_papers_algorithm_over_several_steps():
    start, gradients = optimizer_case(np.random.default_rng(0))
    weights = optimized(Lars(learning_rate=2.0, momentum=0.9, weight_decay=5e-4, eta=1e-3), start, gradients)
    expected = numpy_lars(start, gradients, 2.0, 0.9, 5e-4, 1e-3)
    for name in start:
        np.testing.assert_allclose(weights[name], expected[name], atol=1e-6, rtol=1e-6)
        # Each moved by more than the tolerance, so the comparison says something.
        assert np.abs(expected[name] - start[name]).max() > 1e-4


def test_a_zero_weight_takes_the_plain_learning_rate():
    variable = keras.Variable(np.zeros((2, 2), np.float32))
    Lars(learning_rate=0.1, momentum=0.0).apply_gradients([(np.ones((2, 2), np.float32), variable)])
    np.testing.assert_allclose(np.asarray(variable), -0.1 * np.ones((2, 2)), rtol=1e-6)


def test_config_round_trip_and_bad_arguments():
    optimizer = Lars(learning_rate=0.5, momentum=0.8, weight_decay=1e-3, eta=2e-3)
    restored = Lars.from_config(optimizer.get_config())
    assert (restored.momentum, restored.lars_weight_decay, restored.eta) == (0.8, 1e-3, 2e-3)
    with pytest.raises(ValueError, match="LARS needs"):
        Lars(eta=0.0)
