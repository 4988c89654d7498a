"""Perceptron gates with the book's weights, the learning rule that finds them, the XOR limit of a single
perceptron, and two ways past it: a two-layer network of gates and a two-layer MLP trained by backprop."""

from __future__ import annotations

import numpy as np
import pytest

from lit_models.scratch import Adam, TwoLayerNet, and_gate, nand_gate, or_gate, train, xor_gate
from lit_models.scratch.perceptron import (
    BOOK_GATES,
    GATE_INPUTS,
    TRUTH_TABLES,
    perceptron,
    separating_weights,
    train_perceptron,
)

X1, X2 = GATE_INPUTS[:, 0], GATE_INPUTS[:, 1]


@pytest.mark.parametrize("gate, name", [(and_gate, "and"), (nand_gate, "nand"), (or_gate, "or"), (xor_gate, "xor")])
def test_gates_compute_their_truth_tables(gate, name):
    np.testing.assert_array_equal(gate(X1, X2), TRUTH_TABLES[name])
    for (x1, x2), expected in zip(GATE_INPUTS.astype(int), TRUTH_TABLES[name], strict=True):
        assert gate(x1, x2) == expected  # one pair of scalars at a time, as the book calls them


@pytest.mark.parametrize("name", ["and", "nand", "or"])
@pytest.mark.parametrize("learning_rate", [0.1, 1.0])
def test_learning_rule_finds_weights_for_separable_gates(name, learning_rate):
    weights, bias, converged = train_perceptron(GATE_INPUTS, TRUTH_TABLES[name], learning_rate, max_epochs=100)
    assert converged
    np.testing.assert_array_equal(perceptron(GATE_INPUTS, weights, bias), TRUTH_TABLES[name])


@pytest.mark.parametrize("learning_rate", [0.1, 1.0])
def test_learning_rule_never_converges_on_xor(learning_rate):
    weights, bias, converged = train_perceptron(GATE_INPUTS, TRUTH_TABLES["xor"], learning_rate, max_epochs=1000)
    assert not converged
    assert (perceptron(GATE_INPUTS, weights, bias) != TRUTH_TABLES["xor"]).any()


def test_no_weights_on_a_grid_separate_xor_but_many_separate_the_other_gates():
    grid = np.linspace(-1.0, 1.0, 41)  # step 0.05: 68,921 candidate (w1, w2, b)
    assert len(separating_weights(GATE_INPUTS, TRUTH_TABLES["xor"], grid)) == 0
    for name, (weights, bias) in BOOK_GATES.items():
        found = separating_weights(GATE_INPUTS, TRUTH_TABLES[name], grid)  # (K, 3)
        assert len(found) > 0
        # the book's hand-set weights are among those the search finds
        assert np.isclose(found, [*weights, bias]).all(axis=1).any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_layer_mlp_trained_by_backprop_solves_xor(seed):
    network = TwoLayerNet(input_size=2, hidden_size=8, output_size=2, activation="relu", seed=seed)
    targets = TRUTH_TABLES["xor"]
    assert network.accuracy(GATE_INPUTS, targets) < 1.0  # the untrained network does not already solve it
    losses = train(network, Adam(lr=0.05), GATE_INPUTS, targets, steps=300)
    np.testing.assert_array_equal(network.predict(GATE_INPUTS).argmax(axis=1), targets)  # 4/4 correct
    assert losses[-1] < 0.05 < losses[0]
