"""Epoch means of per-batch values, as torchmetrics ``Metric`` states: summed across DDP ranks in ``compute``.

Every task logs its loss as the mean over the epoch's examples (or tokens): each batch's mean loss
weighted by the batch's count. ``torchmetrics.MeanMetric`` has the arithmetic, but not at the price a
training step can pay on every batch:

- with ``nan_strategy="disable"``, the one setting that does not read a NaN flag back to the host on
  every update (a device sync on a GPU), it drops the weights and returns the unweighted mean of the
  batch means (torchmetrics issue #3434, open in 1.9);
- its input checks and broadcasts are about ten small tensor operations per update: 0.2 ms of a
  23 ms LeNet step on a CPU (measured in the loop, where small operations run cold).

:class:`WeightedMean` is two operations per update and no sync; a diverged loss shows as NaN.
:class:`Perplexity` is the exponential of the token-weighted mean cross-entropy the step already
computed. torchmetrics' ``Perplexity`` takes the logits and computes a second softmax over the
vocabulary: as long as the loss itself (25 ms per step for 1,120 tokens over 10,000 words).
:class:`Fraction` counts hits over trials: classification accuracy as ``update((predicted == labels).sum(),
labels.numel())``, exact integer counts in three operations where ``MulticlassAccuracy``'s generic
stat-scores update takes fifteen (0.19 ms of the same LeNet step, 0.09 ms after).
All three equal their torchmetrics counterparts (``tests/lit_models/test_metrics.py``).
"""

from __future__ import annotations

from typing import Any, Union

import torch
from torch import Tensor
from torchmetrics import Metric

_UPDATE_ATTRIBUTES = frozenset({"total", "weight", "_computed", "_update_count"})


class WeightedMean(Metric):
    """``sum(value * weight) / sum(weight)`` over the updates: ``update(batch_mean_loss, batch_size)``."""

    full_state_update = False
    is_differentiable = False
    higher_is_better = False
    total: Tensor
    weight: Tensor

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("total", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("weight", default=torch.tensor(0.0), dist_reduce_fx="sum")

    def __setattr__(self, name: str, value: Any) -> None:
        # an update writes four attributes (the two states, torchmetrics' ``_computed`` and ``_update_count``):
        # plain attributes, never a parameter, module or buffer, so set without ``nn.Module``'s search for
        # one (2 us each)
        if name in _UPDATE_ATTRIBUTES:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def update(self, value: Tensor, weight: Union[int, float, Tensor]) -> None:
        """``value``: a batch's mean (a scalar tensor); ``weight``: how many examples (or tokens) it averages."""
        self.total += value.detach() * weight
        self.weight += weight

    def compute(self) -> Tensor:
        return self.total / self.weight


class Perplexity(WeightedMean):
    """``exp`` of the token-weighted mean cross-entropy: ``update(batch_mean_nll, batch_tokens)``."""

    def compute(self) -> Tensor:
        return torch.exp(self.total / self.weight)


class Fraction(WeightedMean):
    """``sum(hits) / sum(trials)`` over the updates: accuracy is ``update(correct_count, batch_size)``."""

    higher_is_better = True

    def update(self, hits: Union[int, Tensor], trials: Union[int, Tensor]) -> None:  # type: ignore[override]
        self.total += hits
        self.weight += trials
