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
