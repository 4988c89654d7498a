"""Multilayer perceptron: flatten, hidden layers (linear, optional batch norm, activation, dropout), dense head."""

from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import nn

from lit_models.layers import activation
from lit_models.registry import register_network


class MLP(nn.Module):
    def __init__(self, in_features: int, num_classes: int, hidden_sizes: Sequence[int],
                 act: str, dropout: Sequence[float], batch_norm: bool = False) -> None:
        super().__init__()
        if len(dropout) != len(hidden_sizes):
            raise ValueError(f"dropout needs one rate per hidden layer ({len(hidden_sizes)}), got {list(dropout)}")
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for hidden, rate in zip(hidden_sizes, dropout, strict=False):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"dropout rates must lie in [0, 1), got {rate}")
            layers.append(nn.Linear(width, hidden))
            if batch_norm:  # the book's place: after the affine map, before the activation
                layers.append(nn.BatchNorm1d(hidden))
            layers.append(activation(act))
            if rate > 0:
                layers.append(nn.Dropout(rate))
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images)  # (B, C, H, W) -> (B, num_classes)


@register_network("mlp")
def mlp(in_channels: int = 1, num_classes: int = 10, image_size: int = 28,
        hidden_sizes: Sequence[int] = (256,), activation: str = "relu",
        dropout: Union[float, Sequence[float]] = 0.0, batch_norm: bool = False) -> MLP:
    """The book's MLP: ``hidden_sizes=[256]``; dropout as one rate for all layers or one per layer;
    ``batch_norm`` puts a BatchNorm1d between each hidden layer's affine map and its activation."""
    rates = [float(dropout)] * len(hidden_sizes) if isinstance(dropout, (int, float)) else list(dropout)
    return MLP(in_channels * image_size * image_size, num_classes, list(hidden_sizes), activation, rates, batch_norm)


@register_network("mlp_regressor", kind="regressor")
def mlp_regressor(in_features: int = 2, num_outputs: int = 1, hidden_sizes: Sequence[int] = (64,),
                  activation: str = "relu", dropout: Union[float, Sequence[float]] = 0.0) -> MLP:
    """The MLP on a feature vector (tabular data): ``hidden_sizes`` layers, then ``num_outputs`` numbers."""
    rates = [float(dropout)] * len(hidden_sizes) if isinstance(dropout, (int, float)) else list(dropout)
    return MLP(in_features, num_outputs, list(hidden_sizes), activation, rates)
