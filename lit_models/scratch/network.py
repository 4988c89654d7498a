"""A two-layer network, Affine -> activation -> Affine -> SoftmaxWithLoss, trained by hand-written backprop.

Backpropagation is the layers' backward passes called in reverse order, starting from the loss's gradient of
1; each layer leaves its parameter gradients in ``grads``. The network's ``params`` are the layers' own
arrays under names like ``W1`` and ``b2``, so an optimizer from ``optimizers`` trains the layers directly.
"""

from __future__ import annotations

import numpy as np

from lit_models.scratch.layers import Affine, Layer, ReLU, Sigmoid, SoftmaxWithLoss, Tanh
from lit_models.scratch.optimizers import Optimizer

ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh}


class TwoLayerNet:
    """``input_size -> hidden_size -> output_size`` class scores, with a softmax cross-entropy loss.

    Weights start as ``weight_init_std * N(0, 1)`` from a generator seeded by ``seed`` and biases at zero,
    as in the book. The book's ``weight_init_std=0.01`` suits its 784 MNIST inputs; the small problems here
    (two inputs for XOR) learn far faster from 0.5.
    """

    def __init__(
        self,
        input_size: int = 2,
        hidden_size: int = 8,
        output_size: int = 2,
        activation: str = "relu",
        weight_init_std: float = 0.5,
        seed: int = 0,
    ) -> None:
        rng = np.random.default_rng(seed)
        self.layers: list[Layer] = [
            Affine(weight_init_std * rng.standard_normal((input_size, hidden_size)), np.zeros(hidden_size)),
            ACTIVATIONS[activation](),
            Affine(weight_init_std * rng.standard_normal((hidden_size, output_size)), np.zeros(output_size)),
        ]
        self.loss_layer = SoftmaxWithLoss()
        self.params = self._numbered("params")  # the affine layers' own arrays: W1, b1, W2, b2

    def _numbered(self, attribute: str) -> dict[str, np.ndarray]:
        """The affine layers' ``params`` or ``grads`` in one dict, numbered from the input: W1, b1, W2, b2."""
        affines = [layer for layer in self.layers if isinstance(layer, Affine)]
        return {
            f"{name}{number}": array
            for number, layer in enumerate(affines, start=1)
            for name, array in getattr(layer, attribute).items()
        }

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class scores (N, output_size) before the softmax."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def loss(self, x: np.ndarray, t: np.ndarray) -> float:
        return self.loss_layer.forward(self.predict(x), t)

    def accuracy(self, x: np.ndarray, t: np.ndarray) -> float:
        return float((self.predict(x).argmax(axis=1) == t).mean())

    def gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """The gradient of ``loss(x, t)`` with respect to every entry of ``params``, by backpropagation."""
        return self.loss_and_gradient(x, t)[1]

    def loss_and_gradient(self, x: np.ndarray, t: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        loss = self.loss(x, t)
        dout = self.loss_layer.backward(1.0)  # (N, output_size)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return loss, self._numbered("grads")


def train(
    network: TwoLayerNet,
    optimizer: Optimizer,
    x: np.ndarray,
    t: np.ndarray,
    steps: int = 100,
    batch_size: int | None = None,
    seed: int = 0,
) -> list[float]:
    """Full-batch (or seeded minibatch) training; returns the loss of every step, measured before its update."""
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(steps):
        batch = slice(None) if batch_size is None else rng.choice(len(x), batch_size, replace=False)
        loss, grads = network.loss_and_gradient(x[batch], t[batch])
        losses.append(loss)
        optimizer.update(network.params, grads)
    return losses
