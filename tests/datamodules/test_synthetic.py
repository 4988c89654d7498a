"""The book's synthetic data: the polynomial's features are x^i/i! of one fixed draw for every degree."""

from __future__ import annotations

import math

import torch

from datamodules import PolynomialRegression


def test_polynomial_features_and_targets_follow_the_book():
    cubic = PolynomialRegression(degree=3, noise=0.0)
    features, targets = cubic.load("train")
    assert features.shape == (200, 3) and targets.shape == (200, 1) and cubic.in_features == 3
    x = features[:, 0]
    for power in (2, 3):
        assert torch.allclose(features[:, power - 1], x ** power / math.factorial(power), rtol=1e-5, atol=1e-6)
    expected = 5.0 + 1.2 * x - 3.4 * x ** 2 / 2 + 5.6 * x ** 3 / 6
    assert torch.allclose(targets[:, 0], expected, rtol=1e-4, atol=1e-4)


def test_every_degree_sees_the_same_points_and_test_is_another_draw():
    line, wide = PolynomialRegression(degree=1), PolynomialRegression(degree=19)
    (x_line, y_line), (x_wide, y_wide) = line.load("train"), wide.load("train")
    assert x_wide.shape == (200, 19) and torch.equal(x_line[:, 0], x_wide[:, 0]) and torch.equal(y_line, y_wide)
    assert not torch.equal(line.load("test")[0][:100, 0], x_line[:100, 0])
    wide.setup("fit")
    assert len(wide.train_indices) == 100 and len(wide.val_indices) == 100  # the book's 100 + 100
