"""ResNet (d2l 8.6): residual stages of basic blocks (ResNet-18/34) or bottleneck blocks (ResNet-50).

Architecture as data: blocks per stage (``[2, 2, 2, 2]`` for ResNet-18); stage widths double from
``width`` and every stage but the first halves the side. The layout follows torchvision's ResNet
(v1.5: the bottleneck strides in its 3x3 conv), so parameter counts match it. Below 64 px the
7x7 stride-2 stem and its max pool become one 3x3 stride-1 conv.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from torch import nn

from lit_models.layers import SMALL_IMAGE, Stem, choose_stem, conv_bn_act
from lit_models.registry import register_network


class Residual(nn.Module):
    """``relu(body(x) + shortcut(x))``; the shortcut is a strided 1x1 conv when the shape changes."""

    def __init__(self, body: nn.Sequential, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut(in_channels, out_channels, stride)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))  # (B, out_channels, H / stride, W / stride)


def basic_block(in_channels: int, channels: int, stride: int) -> Residual:
    """3x3 -> 3x3 (ResNet-18/34)."""
    body = nn.Sequential(conv_bn_act(in_channels, channels, 3, padding=1, stride=stride),
                         conv_bn_act(channels, channels, 3, padding=1, act="identity"))
    return Residual(body, in_channels, channels, stride)


def bottleneck(in_channels: int, channels: int, stride: int) -> Residual:
    """1x1 reduce -> 3x3 (strided) -> 1x1 expand by 4 (ResNet-50)."""
    out_channels = channels * 4
    body = nn.Sequential(conv_bn_act(in_channels, channels, 1),
                         conv_bn_act(channels, channels, 3, padding=1, stride=stride),
                         conv_bn_act(channels, out_channels, 1, act="identity"))
    return Residual(body, in_channels, out_channels, stride)


def shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return conv_bn_act(in_channels, out_channels, 1, stride=stride, act="identity")


class ResNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, image_size: int, block: Callable[[int, int, int], Residual],
                 blocks_per_stage: Sequence[int], width: int, stem: str) -> None:
        super().__init__()
        if choose_stem(stem, image_size) == "imagenet":
            layers: list[nn.Module] = [conv_bn_act(in_channels, width, 7, padding=3, stride=2),
                                       nn.MaxPool2d(3, stride=2, padding=1)]
        else:
            layers = [conv_bn_act(in_channels, width, 3, padding=1)]
        channels = width
        for index, num_blocks in enumerate(blocks_per_stage):
            stage_width = width * 2**index
            for position in range(int(num_blocks)):
                stride = 2 if index > 0 and position == 0 else 1
                residual = block(channels, stage_width, stride)
                layers.append(residual)
                channels = residual.out_channels
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, num_classes)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images)  # (B, 8 * width * expansion)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(images))  # (B, num_classes)


def _check(width: Optional[int], image_size: int) -> int:
    """``None``: the book's 64 from 64 px up; 16 below, the small-image variant (1/16 of the compute)."""
    if width is None:
        return 64 if image_size >= SMALL_IMAGE else 16
    if int(width) < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    return int(width)


@register_network("resnet18")
def resnet18(in_channels: int = 1, num_classes: int = 10, image_size: int = 96, stem: Stem = "auto",
             width: Optional[int] = None) -> ResNet:
    """ResNet-18: basic blocks [2, 2, 2, 2]; ``width`` is the first stage's channel count
    (default 64, the book's; 16 below 64 px)."""
    return ResNet(in_channels, num_classes, image_size, basic_block, (2, 2, 2, 2), _check(width, image_size), stem)


@register_network("resnet34")
def resnet34(in_channels: int = 1, num_classes: int = 10, image_size: int = 96, stem: Stem = "auto",
             width: Optional[int] = None) -> ResNet:
    """ResNet-34: basic blocks [3, 4, 6, 3]."""
    return ResNet(in_channels, num_classes, image_size, basic_block, (3, 4, 6, 3), _check(width, image_size), stem)


@register_network("resnet50")
def resnet50(in_channels: int = 1, num_classes: int = 10, image_size: int = 96, stem: Stem = "auto",
             width: Optional[int] = None) -> ResNet:
    """ResNet-50: bottleneck blocks [3, 4, 6, 3] (1x1 reduce, 3x3, 1x1 expand by 4)."""
    return ResNet(in_channels, num_classes, image_size, bottleneck, (3, 4, 6, 3), _check(width, image_size), stem)
