"""AlexNet (d2l 8.1): five conv layers, three max pools, two 4096-unit dense layers with dropout.

Architecture as data: ``CONV_LAYERS`` lists (out_channels, kernel, stride, padding, pool).
The book trains it on Fashion-MNIST resized to 224 px with the ImageNet stem (11x11, stride 4);
below 64 px the stem is a 3x3 conv followed by a 2x2 pool, so 28/32 px inputs keep enough pixels.
"""

from __future__ import annotations

import torch
from torch import nn

from lit_models.layers import Stem, choose_stem, dropout_dense_head, he_initialised, output_features
from lit_models.registry import register_network

# (out_channels, kernel, stride, padding, pool): pool is the side of a stride-2 max pool after
# the conv (0: none). The first row is the stem; SMALL_STEM replaces it below 64 px.
CONV_LAYERS = ((96, 11, 4, 1, 3), (256, 5, 1, 2, 3), (384, 3, 1, 1, 0), (384, 3, 1, 1, 0), (256, 3, 1, 1, 3))
SMALL_STEM = (96, 3, 1, 1, 2)


class AlexNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, image_size: int, conv_layers: tuple,
                 hidden: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for out_channels, kernel, stride, padding, pool in conv_layers:
            layers += [nn.Conv2d(channels, out_channels, kernel, stride=stride, padding=padding), nn.ReLU()]
            if pool:
                layers.append(nn.MaxPool2d(pool, stride=2))
            channels = out_channels
        self.features = nn.Sequential(*layers)
        width = output_features(self.features, (in_channels, image_size, image_size))  # 6400 at 224 px
        self.head = dropout_dense_head(width, hidden, num_classes, dropout)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images)  # (B, 256, 5, 5) at 224 px, (B, 256, 2, 2) at 28 px

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(images))  # (B, num_classes)


@register_network("alexnet")
def alexnet(in_channels: int = 1, num_classes: int = 10, image_size: int = 224, stem: Stem = "auto",
            width_divisor: int = 1, hidden: int = 4096, dropout: float = 0.5) -> AlexNet:
    """The book's AlexNet; ``width_divisor`` narrows every conv layer (small-image configs use 4)."""
    if width_divisor < 1:
        raise ValueError(f"width_divisor must be >= 1, got {width_divisor}")
    rows = ((SMALL_STEM if choose_stem(stem, image_size) == "small" else CONV_LAYERS[0]),
            *CONV_LAYERS[1:])
    rows = tuple((max(1, c // width_divisor), *rest) for c, *rest in rows)
    return he_initialised(AlexNet(in_channels, num_classes, image_size, rows, hidden, dropout))
