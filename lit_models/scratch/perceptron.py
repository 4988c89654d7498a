"""Perceptron gates, the perceptron learning rule, and why one perceptron cannot compute XOR.

A perceptron fires (outputs 1) when ``w . x + b > 0`` and stays silent (0) otherwise. The book sets the
weights of AND, NAND and OR by hand; ``train_perceptron`` finds weights that compute the same truth table
from examples. XOR is not linearly separable: no line splits {(0,1), (1,0)} from {(0,0), (1,1)}, so the
learning rule never converges on it and a search over a grid of weights finds none. Stacking two layers of
gates does compute it: XOR(x1, x2) = AND(NAND(x1, x2), OR(x1, x2)).
"""

from __future__ import annotations

import numpy as np

# The four inputs of a two-input gate, one row each, and the gates' truth tables on them.
GATE_INPUTS = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float64)  # (4, 2)
TRUTH_TABLES = {
    "and": np.array([0, 0, 0, 1]),
    "nand": np.array([1, 1, 1, 0]),
    "or": np.array([0, 1, 1, 1]),
    "xor": np.array([0, 1, 1, 0]),
}

# The book's hand-set weights and biases: AND fires only when both inputs push 0.5 past the -0.7 bias;
# NAND is AND with every sign flipped; OR needs only one input to beat the -0.2 bias.
BOOK_GATES = {
    "and": (np.array([0.5, 0.5]), -0.7),
    "nand": (np.array([-0.5, -0.5]), 0.7),
    "or": (np.array([0.5, 0.5]), -0.2),
}


def perceptron(inputs: np.ndarray, weights: np.ndarray, bias: float) -> np.ndarray:
    """Step activation of ``inputs @ weights + bias``: 1 where it is positive, else 0.

    ``inputs`` is (N, D) or a single (D,) vector; the result is (N,) or a scalar array of 0/1 ints.
    """
    return (np.asarray(inputs, dtype=np.float64) @ weights + bias > 0).astype(np.int64)


def _gate(name: str, x1, x2) -> np.ndarray:
    weights, bias = BOOK_GATES[name]
    return perceptron(np.stack([np.asarray(x1), np.asarray(x2)], axis=-1), weights, bias)


def and_gate(x1, x2) -> np.ndarray:
    return _gate("and", x1, x2)


def nand_gate(x1, x2) -> np.ndarray:
    return _gate("nand", x1, x2)


def or_gate(x1, x2) -> np.ndarray:
    return _gate("or", x1, x2)


def xor_gate(x1, x2) -> np.ndarray:
    """XOR as a two-layer network of perceptrons: NAND and OR side by side, then AND of the two."""
    return and_gate(nand_gate(x1, x2), or_gate(x1, x2))


def train_perceptron(
    inputs: np.ndarray, targets: np.ndarray, learning_rate: float = 0.1, max_epochs: int = 100
) -> tuple[np.ndarray, float, bool]:
    """Rosenblatt's rule: after each wrong answer move the weights by ``learning_rate * (target - output) * x``.

    Starts from zero weights and sweeps the examples in order. Returns ``(weights, bias, converged)``;
    ``converged`` is True once a whole epoch passes without a mistake, which the perceptron convergence
    theorem guarantees for linearly separable data and which never happens for XOR.
    """
    inputs = np.asarray(inputs, dtype=np.float64)  # (N, D)
    weights, bias = np.zeros(inputs.shape[1]), 0.0
    for _ in range(max_epochs):
        mistakes = 0
        for x, target in zip(inputs, targets, strict=True):
            error = target - perceptron(x, weights, bias)  # -1, 0 or +1
            if error != 0:
                weights = weights + learning_rate * error * x
                bias += learning_rate * error
                mistakes += 1
        if mistakes == 0:
            return weights, bias, True
    return weights, bias, False


def separating_weights(
    inputs: np.ndarray, targets: np.ndarray, grid: np.ndarray = np.linspace(-1.0, 1.0, 21)
) -> np.ndarray:
    """Every ``(w1, w2, b)`` on ``grid`` x ``grid`` x ``grid`` whose perceptron reproduces ``targets``.

    Returns a (K, 3) array, empty when no weights on the grid compute the truth table (as for XOR).
    """
    w1, w2, b = np.meshgrid(grid, grid, grid, indexing="ij")
    candidates = np.stack([w1.ravel(), w2.ravel(), b.ravel()], axis=1)  # (G^3, 3)
    # every candidate on every input at once: (G^3, 2) @ (2, N) + (G^3, 1) -> (G^3, N)
    outputs = (candidates[:, :2] @ np.asarray(inputs, dtype=np.float64).T + candidates[:, 2:] > 0).astype(np.int64)
    return candidates[(outputs == np.asarray(targets)).all(axis=1)]
