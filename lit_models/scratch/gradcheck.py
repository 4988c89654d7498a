"""Numerical gradients by central differences, and a check of a layer's hand-written backward pass.

The central difference ``(f(x + h) - f(x - h)) / 2h`` has truncation error O(h**2) and rounding error about
``machine_eps * |f| / h``. In float64 with the default ``h = 1e-5`` both are near 1e-10 relative, so an analytic
gradient that is right agrees with it to better than about 1e-7, and one that is wrong misses by far more.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from lit_models.scratch.layers import Layer


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """The gradient of the scalar ``f(x)`` with respect to every entry of ``x``, by central differences.

    ``x`` is perturbed in place, one entry at a time, and restored, so ``f`` may read ``x`` through a layer
    that holds the same array (its parameters) rather than through its argument.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + h
        f_plus = f(x)
        x[index] = original - h
        f_minus = f(x)
        x[index] = original
        grad[index] = (f_plus - f_minus) / (2 * h)
    return grad


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """Largest entrywise difference relative to the largest entry of either array.

    Scaling by the largest entry rather than entry by entry keeps gradients that are zero or tiny (a ReLU's
    dead units, a dropped unit) from dividing rounding noise by almost nothing.
    """
    scale = max(np.abs(analytic).max(initial=0.0), np.abs(numeric).max(initial=0.0), 1e-12)
    return float(np.abs(analytic - numeric).max(initial=0.0) / scale)


def gradient_check(layer: Layer, x: np.ndarray, seed: int = 0, h: float = 1e-5, **forward_kwargs) -> float:
    """The largest relative error between ``layer.backward`` and central differences, over the input and
    every parameter.

    The scalar checked is ``sum(layer.forward(x) * dout)`` for a fixed random ``dout`` (or the layer's own
    output when it is a scalar loss), whose gradient with respect to the output is ``dout`` itself.
    ``forward_kwargs`` go to every forward call: ``train=`` for batch norm, ``t=`` for the loss, ``mask=``
    to hold a dropout mask fixed.
    """
    x = np.array(x, dtype=np.float64)  # a private copy: the input is perturbed in place
    out = layer.forward(x, **forward_kwargs)
    dout = np.random.default_rng(seed).standard_normal(np.shape(out))  # (same shape as out)
    analytic_input = layer.backward(dout)
    analytic_params = {name: grad.copy() for name, grad in layer.grads.items()}

    def loss(_: np.ndarray) -> float:
        return float(np.sum(layer.forward(x, **forward_kwargs) * dout))

    errors = [relative_error(analytic_input, numerical_gradient(loss, x, h))]
    for name, param in layer.params.items():
        errors.append(relative_error(analytic_params[name], numerical_gradient(loss, param, h)))
    return max(errors)
