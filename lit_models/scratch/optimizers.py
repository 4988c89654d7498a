"""Optimizers written from their update rules, each matching its ``torch.optim`` counterpart step for step.

Every optimizer takes ``params`` and ``grads``, two dicts of arrays under the same keys, and updates the
parameter arrays in place (``params[key] -= ...``), so the layers that hold them see the new values. State
(velocities, accumulators, moments) starts at zero and is created on the first step. Where the book writes an
update differently from PyTorch, the docstring gives the book's form; the code follows PyTorch.
"""

from __future__ import annotations

import numpy as np


class Optimizer:
    def __init__(self, lr: float) -> None:
        self.lr = lr
        self.state: dict[str, dict[str, np.ndarray]] = {}

    def _state(self, key: str, param: np.ndarray, *names: str) -> list[np.ndarray]:
        """The named state arrays of one parameter, zeros on its first step."""
        slots = self.state.setdefault(key, {name: np.zeros_like(param) for name in names})
        return [slots[name] for name in names]

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """``p -= lr * g``; ``torch.optim.SGD(lr=lr)``."""

    def __init__(self, lr: float = 0.01) -> None:
        super().__init__(lr)

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        for key, grad in grads.items():
            params[key] -= self.lr * grad


class Momentum(Optimizer):
    """``v = momentum * v + g; p -= lr * v``; ``torch.optim.SGD(lr=lr, momentum=momentum)``.

    The book keeps the step rather than the gradient sum: ``v = momentum * v - lr * g; p += v``. With a fixed
    learning rate the two are the same sequence of parameters (the book's ``v`` is ``-lr`` times this one).
    """

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        super().__init__(lr)
        self.momentum = momentum

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        for key, grad in grads.items():
            (velocity,) = self._state(key, params[key], "velocity")
            velocity *= self.momentum
            velocity += grad
            params[key] -= self.lr * self._direction(grad, velocity)

    def _direction(self, grad: np.ndarray, velocity: np.ndarray) -> np.ndarray:
        """What the parameters move against, scaled by ``lr``: here the velocity itself."""
        return velocity


class Nesterov(Momentum):
    """``v = momentum * v + g; p -= lr * (g + momentum * v)``;
    ``torch.optim.SGD(lr=lr, momentum=momentum, nesterov=True)``.

    The step looks ahead: it applies the gradient plus the momentum the next step will carry. The book writes
    ``v = momentum * v - lr * g; p += momentum**2 * v - (1 + momentum) * lr * g``, which weighs the old
    velocity by ``momentum**3`` where PyTorch's rule weighs it by ``momentum**2``.
    """

    def _direction(self, grad: np.ndarray, velocity: np.ndarray) -> np.ndarray:
        return grad + self.momentum * velocity


class AdaGrad(Optimizer):
    """``h += g**2; p -= lr * g / (sqrt(h) + eps)``; ``torch.optim.Adagrad(lr=lr, eps=eps)``.

    Every parameter's step shrinks with the gradients it has seen. The book adds ``1e-7``; PyTorch's default
    ``eps`` is ``1e-10``, added outside the square root in both.
    """

    def __init__(self, lr: float = 0.01, eps: float = 1e-10) -> None:
        super().__init__(lr)
        self.eps = eps

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        for key, grad in grads.items():
            (squares,) = self._state(key, params[key], "sum_of_squares")
            squares += grad * grad
            params[key] -= self.lr * grad / (np.sqrt(squares) + self.eps)


class RMSProp(Optimizer):
    """``h = alpha * h + (1 - alpha) * g**2; p -= lr * g / (sqrt(h) + eps)``;
    ``torch.optim.RMSprop(lr=lr, alpha=alpha, eps=eps)``.

    AdaGrad with a moving average in place of the sum, so old gradients are forgotten. The book calls
    ``alpha`` the decay rate (0.99, as here) and adds ``1e-7`` where PyTorch adds ``1e-8``, outside the root.
    """

    def __init__(self, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8) -> None:
        super().__init__(lr)
        self.alpha = alpha
        self.eps = eps

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        for key, grad in grads.items():
            (mean_square,) = self._state(key, params[key], "mean_square")
            mean_square *= self.alpha
            mean_square += (1 - self.alpha) * grad * grad
            params[key] -= self.lr * grad / (np.sqrt(mean_square) + self.eps)


class Adadelta(Optimizer):
    """``torch.optim.Adadelta(lr=lr, rho=rho, eps=eps)``, whose default ``lr`` is 1.0:

    ``s = rho * s + (1 - rho) * g**2``
    ``delta = sqrt(u + eps) / sqrt(s + eps) * g``  (eps inside both roots)
    ``u = rho * u + (1 - rho) * delta**2``
    ``p -= lr * delta``

    The ratio of the two running root-mean-squares gives the step its units, so no learning rate is needed
    (``lr`` only rescales it). The book (*Dive into Deep Learning*) writes the same rule without ``lr``.
    """

    def __init__(self, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6) -> None:
        super().__init__(lr)
        self.rho = rho
        self.eps = eps

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        for key, grad in grads.items():
            mean_square, mean_square_delta = self._state(key, params[key], "mean_square", "mean_square_delta")
            mean_square *= self.rho
            mean_square += (1 - self.rho) * grad * grad
            delta = np.sqrt(mean_square_delta + self.eps) / np.sqrt(mean_square + self.eps) * grad
            mean_square_delta *= self.rho
            mean_square_delta += (1 - self.rho) * delta * delta
            params[key] -= self.lr * delta


class Adam(Optimizer):
    """``torch.optim.Adam(lr=lr, betas=(beta1, beta2), eps=eps)``:

    ``m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g**2``
    ``p -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)``

    Momentum on the gradient and RMSProp on its square, both corrected for starting at zero. The book folds
    both corrections into the learning rate, ``lr * sqrt(1 - beta2**t) / (1 - beta1**t) * m / (sqrt(v) +
    1e-7)``, which puts ``eps`` before the correction instead of after it.
    """

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        super().__init__(lr)
        self.beta1, self.beta2 = beta1, beta2
        self.eps = eps
        self.step = 0

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.step += 1
        correction1 = 1 - self.beta1**self.step
        correction2 = 1 - self.beta2**self.step
        for key, grad in grads.items():
            first, second = self._state(key, params[key], "first_moment", "second_moment")
            first *= self.beta1
            first += (1 - self.beta1) * grad
            second *= self.beta2
            second += (1 - self.beta2) * grad * grad
            params[key] -= self.lr / correction1 * first / (np.sqrt(second) / np.sqrt(correction2) + self.eps)
