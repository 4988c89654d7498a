"""The two-layer network's backpropagation gives the gradients autograd and central differences give, its
parameters are the layers' own arrays, and it learns a small synthetic classification problem.

Tolerances: backprop against autograd to 1e-10 relative, 1e-12 absolute; against central differences below
1e-7 relative error.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lit_models.scratch import SGD, Adam, TwoLayerNet, numerical_gradient, relative_error, train

TORCH_ACTIVATIONS = {"relu": F.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}


def _batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((6, 4)), rng.integers(0, 3, size=6)  # (N, D), (N,)


def _blobs(per_class: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian clusters in the plane, centres 4 apart, unit spread: (3*per_class, 2) and labels."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [2.0, 3.5]])
    x = np.concatenate([centre + rng.standard_normal((per_class, 2)) for centre in centres])
    return x, np.repeat(np.arange(3), per_class)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_backprop_gradients_match_autograd(activation):
    network = TwoLayerNet(input_size=4, hidden_size=5, output_size=3, activation=activation, seed=1)
    x, t = _batch()
    loss, grads = network.loss_and_gradient(x, t)

    weights = {name: torch.tensor(value, requires_grad=True) for name, value in network.params.items()}
    hidden = TORCH_ACTIVATIONS[activation](torch.from_numpy(x) @ weights["W1"] + weights["b1"])
    torch_loss = F.cross_entropy(hidden @ weights["W2"] + weights["b2"], torch.from_numpy(t))
    torch_loss.backward()

    assert loss == pytest.approx(torch_loss.item(), rel=1e-12)
    assert set(grads) == {"W1", "b1", "W2", "b2"}
    for name, weight in weights.items():
        np.testing.assert_allclose(grads[name], weight.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_backprop_gradients_match_central_differences():
    network = TwoLayerNet(input_size=4, hidden_size=5, output_size=3, activation="relu", seed=1)
    x, t = _batch()
    grads = network.gradient(x, t)
    for name, param in network.params.items():
        numeric = numerical_gradient(lambda _: network.loss(x, t), param)
        assert relative_error(grads[name], numeric) < 1e-7, name


def test_params_are_the_layers_own_arrays():
    network = TwoLayerNet(input_size=2, hidden_size=3, output_size=2, seed=0)
    x = np.ones((1, 2))
    before = network.predict(x)
    network.params["b2"] += 1.0  # in place, as every optimizer updates
    np.testing.assert_allclose(network.predict(x), before + 1.0)


@pytest.mark.parametrize(
    "make_optimizer, batch_size", [(lambda: SGD(lr=0.1), None), (lambda: Adam(lr=0.02), 30)], ids=["sgd", "adam"]
)
def test_training_lowers_the_loss_and_separates_the_blobs(make_optimizer, batch_size):
    x, t = _blobs()
    network = TwoLayerNet(input_size=2, hidden_size=16, output_size=3, activation="relu", seed=0)
    initial_loss = network.loss(x, t)
    train(network, make_optimizer(), x, t, steps=200, batch_size=batch_size)
    assert network.loss(x, t) < 0.3 * initial_loss
    assert network.accuracy(x, t) >= 0.9
