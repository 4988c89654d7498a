"""Linear regression and softmax regression: the book's first two models, one layer each."""

from __future__ import annotations

import torch
from torch import nn

from lit_models.registry import register_network


class LinearRegression(nn.Linear):
    """``y = x w + b``; reports the learned ``w`` and ``b`` so a run can compare them to the truth."""

    def summary(self) -> dict:
        return {"w": self.weight.detach().squeeze(0).tolist(), "b": self.bias.detach().squeeze(0).tolist()}


class SoftmaxRegression(nn.Module):
    """Flatten the image, one dense layer to class logits (softmax lives in the loss)."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.classifier = nn.Linear(in_features, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(images.flatten(1))  # (B, C*H*W) -> (B, num_classes)


@register_network("linear_regression", kind="regressor")
def linear_regression(in_features: int = 2, num_outputs: int = 1) -> LinearRegression:
    return LinearRegression(in_features, num_outputs)


@register_network("softmax_regression")
def softmax_regression(in_channels: int = 1, num_classes: int = 10, image_size: int = 28) -> SoftmaxRegression:
    return SoftmaxRegression(in_channels * image_size * image_size, num_classes)
