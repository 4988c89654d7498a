"""The book's synthetic linear-regression data: ``y = X w + b + noise``, X ~ N(0, 1)."""

from __future__ import annotations

from typing import Any, Sequence

import torch
from jsonargparse.typing import NonNegativeFloat, PositiveInt

from datamodules.base import DataModule


class SyntheticRegression(DataModule):
    """Features (N, len(w)) and targets (N, 1), drawn once from a seeded generator."""

    stratify = False
    num_outputs = 1

    def __init__(
        self,
        w: Sequence[float] = (2.0, -3.4),
        b: float = 4.2,
        noise: NonNegativeFloat = 0.01,
        num_train: PositiveInt = 1000,
        num_test: PositiveInt = 1000,
        data_seed: int = 0,
        batch_size: PositiveInt = 10,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            w, b, noise: the true weights, bias and noise level of ``y = X w + b + noise``.
            num_train, num_test: samples drawn for the training and the test split.
            data_seed: seed of the draw.
            batch_size: training batch size (the book's 10).
            kwargs: the other split and batch options of :class:`datamodules.base.DataModule`.
        """
        super().__init__(batch_size=batch_size, **kwargs)
        self.w = [float(value) for value in w]
        self.b = float(b)
        self.noise = float(noise)
        self.num_train = int(num_train)
        self.num_test = int(num_test)
        self.data_seed = int(data_seed)

    @property
    def in_features(self) -> int:
        return len(self.w)

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.num_train if split == "train" else self.num_test
        generator = torch.Generator().manual_seed(self.data_seed * 2 + (split == "test"))
        features = torch.randn(size, len(self.w), generator=generator)  # (N, d)
        targets = features @ torch.tensor(self.w) + self.b  # (N,)
        targets += self.noise * torch.randn(size, generator=generator)
        return features, targets.unsqueeze(-1)  # (N, d), (N, 1)

    def summary(self) -> dict:
        return {**super().summary(), "true_w": self.w, "true_b": self.b}


class PolynomialRegression(DataModule):
    """The book's polynomial (d2l 3.6): ``y = 5 + 1.2 x - 3.4 x^2/2! + 5.6 x^3/3! + noise``, x ~ N(0, 1).

    A model sees the features ``x^i / i!`` for ``i = 1..degree`` (its bias is the constant term):
    ``degree=3`` is the true form, ``degree=1`` a line that underfits, ``degree=19`` (the book's 20
    coefficients) enough freedom to fit the noise of a small training set.
    """

    stratify = False
    num_outputs = 1

    def __init__(
        self,
        degree: PositiveInt = 3,
        coefficients: Sequence[float] = (5.0, 1.2, -3.4, 5.6),
        noise: NonNegativeFloat = 0.1,
        num_train: PositiveInt = 200,
        num_test: PositiveInt = 100,
        data_seed: int = 0,
        batch_size: PositiveInt = 10,
        val_fraction: float = 0.5,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            degree: the highest power among the model's features ``x^i / i!``, i = 1..degree.
            coefficients: the true coefficients of ``x^i / i!``, i = 0, 1, ... (the rest are zero).
            noise: standard deviation of the Gaussian noise on y.
            num_train, num_test: samples drawn for the training split (validation is cut from it) and the test split.
            data_seed: seed of the draw (the same points for every degree).
            batch_size: training batch size (the book's 10).
            val_fraction: hold-out fraction of the training split (the book's 100 + 100 points).
            kwargs: the other split and batch options of :class:`datamodules.base.DataModule`.
        """
        super().__init__(batch_size=batch_size, val_fraction=val_fraction, **kwargs)
        self.degree = int(degree)
        self.coefficients = [float(value) for value in coefficients]
        self.noise = float(noise)
        self.num_train = int(num_train)
        self.num_test = int(num_test)
        self.data_seed = int(data_seed)

    @property
    def in_features(self) -> int:
        return self.degree

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.num_train if split == "train" else self.num_test
        generator = torch.Generator().manual_seed(self.data_seed * 2 + (split == "test"))
        x = torch.randn(size, 1, dtype=torch.float64, generator=generator)
        noise = self.noise * torch.randn(size, dtype=torch.float64, generator=generator)
        powers = max(self.degree, len(self.coefficients) - 1) + 1
        terms = x ** torch.arange(powers) / torch.exp(torch.lgamma(torch.arange(powers) + 1.0)).double()  # x^i/i!
        targets = terms[:, : len(self.coefficients)] @ torch.tensor(self.coefficients, dtype=torch.float64) + noise
        return terms[:, 1 : self.degree + 1].float(), targets.float().unsqueeze(-1)  # (N, degree), (N, 1)

    def summary(self) -> dict:
        return {**super().summary(), "degree": self.degree, "true_coefficients": self.coefficients}
