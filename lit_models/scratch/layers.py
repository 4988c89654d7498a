"""Layers with their forward and backward passes written by hand, in numpy float64 (no autograd).

Every layer caches what its backward pass needs during ``forward`` and turns the gradient of the loss with
respect to its output (``dout``) into the gradient with respect to its input, storing the gradients of its
own parameters in ``grads`` under the same keys as ``params``. ``params`` holds the arrays themselves, so an
optimizer that updates them in place updates the layer.

Where *Deep Learning from Scratch* and PyTorch differ, the layer follows PyTorch (so it can be checked
against ``torch.nn.functional``) and its docstring says how the book writes it.
"""

from __future__ import annotations

import numpy as np


class Layer:
    """A layer without parameters; subclasses fill ``params`` and ``grads`` when they have some."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Affine(Layer):
    """``out = x @ W + b`` with ``W`` of shape (in_features, out_features), as in the book.

    ``torch.nn.functional.linear`` stores the transpose, (out_features, in_features). Inputs with more than
    two axes, such as (N, C, H, W) feature maps, are flattened to (N, C*H*W) and the input gradient gets the
    original shape back.
    """

    def __init__(self, weight: np.ndarray, bias: np.ndarray) -> None:
        super().__init__()
        self.params = {"W": weight, "b": bias}  # (D, M), (M,)

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        self.input_shape = x.shape
        self.x = x.reshape(x.shape[0], -1)  # (N, D)
        return self.x @ self.params["W"] + self.params["b"]  # (N, M)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {"W": self.x.T @ dout, "b": dout.sum(axis=0)}  # (D, M), (M,)
        return (dout @ self.params["W"].T).reshape(self.input_shape)  # (N, D) -> input shape


class ReLU(Layer):
    """``max(0, x)``: the gradient passes where the input was positive and is zero elsewhere."""

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        self.negative = x <= 0
        return np.where(self.negative, 0.0, x)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return np.where(self.negative, 0.0, dout)


class Sigmoid(Layer):
    """``1 / (1 + exp(-x))``, whose derivative is ``y * (1 - y)`` in terms of its own output ``y``."""

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        self.out = 1.0 / (1.0 + np.exp(-x))
        return self.out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * self.out * (1.0 - self.out)


class Tanh(Layer):
    """``tanh(x)``, whose derivative is ``1 - y**2`` in terms of its own output ``y``."""

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        self.out = np.tanh(x)
        return self.out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * (1.0 - self.out**2)


def log_softmax(scores: np.ndarray) -> np.ndarray:
    """Log-probabilities along the last axis; subtracting the row maximum keeps ``exp`` from overflowing."""
    shifted = scores - scores.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class SoftmaxWithLoss(Layer):
    """Softmax followed by the mean cross-entropy over the batch, as ``torch.nn.functional.cross_entropy``.

    Targets are class indices (N,) or class probabilities (N, K) (one-hot or soft). Together the two have the
    simple gradient ``(softmax(x) - t) / N``. The book computes ``log(softmax(x) + 1e-7)``, which shifts the
    loss by up to about 1e-7; the log-softmax here is exact and matches PyTorch.
    """

    def forward(self, x: np.ndarray, t: np.ndarray) -> float:
        log_probs = log_softmax(x)  # (N, K)
        self.probs = np.exp(log_probs)
        self.targets = np.eye(x.shape[1])[t] if t.ndim == 1 else t  # (N, K)
        return float(-(self.targets * log_probs).sum() / x.shape[0])

    def backward(self, dout: float = 1.0) -> np.ndarray:
        return dout * (self.probs - self.targets) / self.probs.shape[0]  # (N, K)


class BatchNormalization(Layer):
    """Batch normalization in PyTorch's convention, for (N, D) features or (N, C, H, W) feature maps.

    Training mode normalises with the batch mean and (biased) variance and updates the running statistics as
    ``running = (1 - momentum) * running + momentum * batch``, the running variance from the unbiased batch
    variance; inference mode normalises with the running statistics. Feature maps are normalised per channel,
    over N, H and W. The book writes ``running = momentum * running + (1 - momentum) * batch`` with
    ``momentum=0.9`` and the biased variance, and normalises feature maps per C*H*W feature, not per channel.
    """

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.params = {"gamma": np.ones(num_features), "beta": np.zeros(num_features)}  # (C,), (C,)
        self.running_mean = np.zeros(num_features)
        self.running_var = np.ones(num_features)
        self.momentum = momentum
        self.eps = eps

    @staticmethod
    def _to_rows(x: np.ndarray) -> np.ndarray:
        # (N, C, H, W) -> (N*H*W, C) so that every column is one channel; (N, D) stays as it is
        return x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1]) if x.ndim == 4 else x

    @staticmethod
    def _from_rows(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        if len(shape) == 4:
            n, c, h, w = shape
            return rows.reshape(n, h, w, c).transpose(0, 3, 1, 2)
        return rows

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        self.input_shape = x.shape
        self.train = train
        rows = self._to_rows(x)  # (M, C)
        if train:
            mean, var = rows.mean(axis=0), rows.var(axis=0)  # (C,), biased: used to normalise
            count = rows.shape[0]
            self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * mean
            self.running_var = (1 - self.momentum) * self.running_var + self.momentum * var * count / (count - 1)
        else:
            mean, var = self.running_mean, self.running_var
        self.std = np.sqrt(var + self.eps)  # (C,)
        self.normalized = (rows - mean) / self.std  # (M, C)
        out = self.params["gamma"] * self.normalized + self.params["beta"]
        return self._from_rows(out, x.shape)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout_rows = self._to_rows(dout)  # (M, C)
        self.grads = {"gamma": (dout_rows * self.normalized).sum(axis=0), "beta": dout_rows.sum(axis=0)}
        dnormalized = dout_rows * self.params["gamma"]  # (M, C)
        if self.train:
            # the batch mean and variance depend on every row, which adds two terms to the plain 1/std:
            # dx = (dxn - mean(dxn) - xn * mean(dxn * xn)) / std
            dnormalized = (
                dnormalized
                - dnormalized.mean(axis=0)
                - self.normalized * (dnormalized * self.normalized).mean(axis=0)
            )
        return self._from_rows(dnormalized / self.std, self.input_shape)


class Dropout(Layer):
    """Inverted dropout, as ``torch.nn.functional.dropout``: zero each unit with probability ``ratio`` while
    training and scale the survivors by ``1 / (1 - ratio)``, so inference is the identity.

    The book zeroes without scaling in training and multiplies by ``1 - ratio`` at inference instead; both
    keep the expected activation the same. ``forward`` draws a fresh mask from its own seeded generator unless
    it is given one (a boolean array, True where the unit is kept), which is how a test replays a mask.
    """

    def __init__(self, ratio: float = 0.5, seed: int = 0) -> None:
        super().__init__()
        self.ratio = ratio
        self.rng = np.random.default_rng(seed)

    def forward(self, x: np.ndarray, train: bool = True, mask: np.ndarray | None = None) -> np.ndarray:
        if not train:
            self.scale = np.ones_like(x)
            return x
        self.mask = self.rng.random(x.shape) >= self.ratio if mask is None else mask
        self.scale = self.mask / (1.0 - self.ratio)  # 0 where dropped, 1/(1-ratio) where kept
        return x * self.scale

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * self.scale
