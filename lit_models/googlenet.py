"""GoogLeNet (d2l 8.4): a stem, nine Inception blocks in three stages, global average pooling.

An Inception block runs four paths side by side and concatenates them along channels:
1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | 3x3 max pool -> 1x1. Architecture as data: ``STAGES`` lists the
blocks' (c1, (c2_reduce, c2), (c3_reduce, c3), c4) per stage; a 3x3 stride-2 max pool follows
every stage but the last. Below 64 px the 7x7 stride-2 conv and its pool become one 3x3 conv.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from lit_models.layers import SMALL_IMAGE, Stem, choose_stem, he_initialised
from lit_models.registry import register_network

STAGES = (
    ((64, (96, 128), (16, 32), 32), (128, (128, 192), (32, 96), 64)),
    ((192, (96, 208), (16, 48), 64), (160, (112, 224), (24, 64), 64), (128, (128, 256), (24, 64), 64),
     (112, (144, 288), (32, 64), 64), (256, (160, 320), (32, 128), 128)),
    ((256, (160, 320), (32, 128), 128), (384, (192, 384), (48, 128), 128)),
)
STEM_CHANNELS = (64, 192)


class Inception(nn.Module):
    def __init__(self, in_channels: int, c1: int, c2: Sequence[int], c3: Sequence[int], c4: int) -> None:
        super().__init__()
        self.path1 = nn.Sequential(nn.Conv2d(in_channels, c1, 1), nn.ReLU())
        self.path2 = nn.Sequential(nn.Conv2d(in_channels, c2[0], 1), nn.ReLU(),
                                   nn.Conv2d(c2[0], c2[1], 3, padding=1), nn.ReLU())
        self.path3 = nn.Sequential(nn.Conv2d(in_channels, c3[0], 1), nn.ReLU(),
                                   nn.Conv2d(c3[0], c3[1], 5, padding=2), nn.ReLU())
        self.path4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), nn.Conv2d(in_channels, c4, 1), nn.ReLU())
        self.out_channels = c1 + c2[1] + c3[1] + c4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        paths = (self.path1(x), self.path2(x), self.path3(x), self.path4(x))
        return torch.cat(paths, dim=1)  # (B, c1 + c2 + c3 + c4, H, W)


def stem(in_channels: int, kind: str, channels: Sequence[int]) -> nn.Sequential:
    first, second = channels
    if kind == "imagenet":
        head = [nn.Conv2d(in_channels, first, 7, stride=2, padding=3), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1)]
    else:
        head = [nn.Conv2d(in_channels, first, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*head, nn.Conv2d(first, first, 1), nn.ReLU(),
                         nn.Conv2d(first, second, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1))


class GoogLeNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, stem_kind: str, stem_channels: Sequence[int],
                 stages: Sequence) -> None:
        super().__init__()
        layers: list[nn.Module] = [stem(in_channels, stem_kind, stem_channels)]
        channels = stem_channels[1]
        for index, blocks in enumerate(stages):
            for c1, c2, c3, c4 in blocks:
                block = Inception(channels, c1, c2, c3, c4)
                layers.append(block)
                channels = block.out_channels
            if index < len(stages) - 1:
                layers.append(nn.MaxPool2d(3, 2, padding=1))
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, num_classes)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images)  # (B, 1024) with the book's widths

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(images))  # (B, num_classes)


def _narrow(value, divisor: int):
    if isinstance(value, (tuple, list)):
        return tuple(_narrow(v, divisor) for v in value)
    return max(1, int(value) // divisor)


@register_network("googlenet")
def googlenet(in_channels: int = 1, num_classes: int = 10, image_size: int = 96, stem: Stem = "auto",
              width_divisor: Optional[int] = None) -> GoogLeNet:
    """The book's GoogLeNet (no batch norm, no auxiliary heads); ``width_divisor`` narrows every path
    (default 1, the book's widths; 4 below 64 px, the small-image variant)."""
    if width_divisor is None:
        width_divisor = 1 if image_size >= SMALL_IMAGE else 4
    if width_divisor < 1:
        raise ValueError(f"width_divisor must be >= 1, got {width_divisor}")
    return he_initialised(GoogLeNet(in_channels, num_classes, choose_stem(stem, image_size),
                                     _narrow(STEM_CHANNELS, width_divisor), _narrow(STAGES, width_divisor)))
