"""LeNet-5: the book's version (sigmoid, average pooling), the book's batch-norm version (the same with
batch norm before every sigmoid, d2l 8.5) and a modern one (BN, ReLU, max pooling).

Architecture as data: two conv stages (channels, kernel), then dense layers (120, 84).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from lit_models.layers import activation, conv_bn_act, output_features
from lit_models.registry import register_network

CONV_STAGES = ((6, 5), (16, 5))  # (out_channels, kernel_size)
DENSE_SIZES = (120, 84)


class LeNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, image_size: int, modern: bool,
                 batch_norm: bool = False) -> None:
        super().__init__()
        act = "relu" if modern else "sigmoid"
        batch_norm = batch_norm or modern
        stages: list[nn.Module] = []
        channels = in_channels
        for index, (out_channels, kernel) in enumerate(CONV_STAGES):
            padding = 2 if index == 0 else 0  # the book pads the first conv: 28x28 stays 28x28
            if batch_norm:
                stages.append(conv_bn_act(channels, out_channels, kernel, padding=padding, act=act))
            else:
                stages += [nn.Conv2d(channels, out_channels, kernel, padding=padding), activation(act)]
            stages.append(nn.MaxPool2d(2) if modern else nn.AvgPool2d(2))
            channels = out_channels
        self.features = nn.Sequential(*stages)
        width = output_features(self.features, (in_channels, image_size, image_size))  # 16*5*5 at 28 px
        dense: list[nn.Module] = [nn.Flatten()]
        for size in DENSE_SIZES:
            dense.append(nn.Linear(width, size))
            if batch_norm:
                dense.append(nn.BatchNorm1d(size))
            dense.append(activation(act))
            width = size
        dense.append(nn.Linear(width, num_classes))
        self.head = nn.Sequential(*dense)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images)  # (B, 16, 5, 5) for 28x28 inputs

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(images))  # (B, num_classes)


@register_network("lenet")
def lenet(in_channels: int = 1, num_classes: int = 10, image_size: int = 28,
          variant: Literal["book", "batch_norm", "modern"] = "book") -> LeNet:
    """LeNet-5 as the book builds it; ``variant="batch_norm"`` adds batch norm before every sigmoid (the
    book's BN-LeNet); ``variant="modern"`` has batch norm, ReLU and max pooling."""
    if variant not in ("book", "batch_norm", "modern"):
        raise ValueError(f"unknown LeNet variant {variant!r}; choose 'book', 'batch_norm' or 'modern'")
    return LeNet(in_channels, num_classes, image_size, modern=variant == "modern", batch_norm=variant == "batch_norm")
