"""DenseNet (d2l 8.7): dense blocks whose conv blocks see every earlier output, and transition layers.

A conv block is BN -> ReLU -> 3x3 conv producing ``growth_rate`` channels, concatenated to its
input; a transition layer (BN -> ReLU -> 1x1 conv halving the channels -> 2x2 average pool) sits
between dense blocks. Architecture as data: conv blocks per dense block (``(4, 4, 4, 4)``) and the
growth rate. Below 64 px the 7x7 stride-2 stem and its max pool become one 3x3 conv.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from lit_models.layers import Stem, choose_stem, conv_bn_act
from lit_models.registry import register_network


def bn_relu_conv(in_channels: int, out_channels: int, kernel: int) -> nn.Sequential:
    """Pre-activation conv: DenseNet normalises the concatenated input before each conv."""
    return nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(),
                         nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2))


class DenseBlock(nn.Module):
    def __init__(self, in_channels: int, num_convs: int, growth_rate: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(bn_relu_conv(in_channels + i * growth_rate, growth_rate, 3)
                                   for i in range(num_convs))
        self.out_channels = in_channels + num_convs * growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = torch.cat((x, conv(x)), dim=1)  # (B, C + growth_rate, H, W)
        return x


def transition(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(bn_relu_conv(in_channels, out_channels, 1), nn.AvgPool2d(2))


class DenseNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, image_size: int, blocks: Sequence[int],
                 growth_rate: int, base_channels: int, stem: str) -> None:
        super().__init__()
        if choose_stem(stem, image_size) == "imagenet":
            layers: list[nn.Module] = [conv_bn_act(in_channels, base_channels, 7, padding=3, stride=2),
                                       nn.MaxPool2d(3, stride=2, padding=1)]
        else:
            layers = [conv_bn_act(in_channels, base_channels, 3, padding=1)]
        channels = base_channels
        for index, num_convs in enumerate(blocks):
            block = DenseBlock(channels, int(num_convs), growth_rate)
            layers.append(block)
            channels = block.out_channels
            if index < len(blocks) - 1:
                layers.append(transition(channels, channels // 2))
                channels //= 2
        layers += [nn.BatchNorm2d(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, num_classes)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images)  # (B, 248) with the book's settings

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(images))  # (B, num_classes)


@register_network("densenet")
def densenet(in_channels: int = 1, num_classes: int = 10, image_size: int = 96, stem: Stem = "auto",
             blocks: Sequence[int] = (4, 4, 4, 4), growth_rate: int = 32, base_channels: int = 64) -> DenseNet:
    """The book's DenseNet: four dense blocks of four conv blocks, growth rate 32."""
    if not blocks or min(int(b) for b in blocks) < 1 or growth_rate < 1 or base_channels < 2:
        raise ValueError("blocks must be positive conv counts, growth_rate >= 1 and base_channels >= 2")
    return DenseNet(in_channels, num_classes, image_size, tuple(blocks), int(growth_rate), int(base_channels), stem)
