"""VGG (d2l 8.2): blocks of 3x3 convs then a 2x2 max pool, then three dense layers.

The architecture is data: ``conv_arch`` lists (num_convs, out_channels) per block. VGG-11 is
``VGG11_ARCH``; the book's narrow variant divides every channel count by 4. A block halves the side
only while it is at least 2 px, so the same five blocks run on 28/32 px inputs (the last pool is
skipped) and on the book's 224 px inputs (7x7 features, as torchvision's VGG-11).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from lit_models.layers import conv_bn_act, dropout_dense_head, he_initialised, output_features
from lit_models.registry import register_network

VGG11_ARCH = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))
NARROW_RATIO = 4  # the book's small VGG: channels // 4, "sufficient for training on Fashion-MNIST"


def vgg_block(num_convs: int, in_channels: int, out_channels: int, pool: bool,
              batch_norm: bool = False) -> nn.Sequential:
    """``num_convs`` 3x3 convs with ReLU (conv-BN-ReLU with ``batch_norm``, as torchvision's ``vgg11_bn``)."""
    layers: list[nn.Module] = []
    for _ in range(num_convs):
        if batch_norm:
            layers.append(conv_bn_act(in_channels, out_channels, 3, padding=1))
        else:
            layers += [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU()]
        in_channels = out_channels
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class VGG(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, image_size: int,
                 conv_arch: Sequence[Sequence[int]], hidden: int, dropout: float, batch_norm: bool = False) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        channels, side = in_channels, image_size
        for num_convs, out_channels in conv_arch:
            pool = side >= 2
            blocks.append(vgg_block(int(num_convs), channels, int(out_channels), pool, batch_norm))
            channels, side = int(out_channels), side // 2 if pool else side
        self.features = nn.Sequential(*blocks)
        width = output_features(self.features, (in_channels, image_size, image_size))  # 512*7*7 at 224 px
        self.head = dropout_dense_head(width, hidden, num_classes, dropout)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images)  # (B, C_last, side / 32, side / 32)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(images))  # (B, num_classes)


def _check_arch(conv_arch: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """The table as (num_convs, channels) pairs of positive ints; anything else is an error, not truncated."""
    message = f"conv_arch must be a list of (num_convs, channels) pairs of positive ints, got {conv_arch}"
    try:
        rows = [tuple(row) for row in conv_arch]
    except TypeError as error:
        raise ValueError(message) from error
    for row in rows:
        if len(row) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in row):
            raise ValueError(message)
    if not rows:
        raise ValueError(message)
    return rows


@register_network("vgg")
def vgg(in_channels: int = 1, num_classes: int = 10, image_size: int = 224,
        conv_arch: Sequence[Sequence[int]] = VGG11_ARCH, hidden: int = 4096, dropout: float = 0.5,
        batch_norm: bool = False) -> VGG:
    """Any VGG from its table: ``conv_arch`` lists (num_convs, channels) per block, e.g. from YAML
    ``conv_arch: [[1, 32], [1, 64], [2, 128]]``. The default table is VGG-11; ``batch_norm`` adds BN."""
    return he_initialised(VGG(in_channels, num_classes, image_size, _check_arch(conv_arch), hidden, dropout,
                              batch_norm))


@register_network("vgg11")
def vgg11(in_channels: int = 1, num_classes: int = 10, image_size: int = 224, hidden: int = 4096,
          dropout: float = 0.5, batch_norm: bool = False) -> VGG:
    """VGG-11 (configuration A of Simonyan & Zisserman), as the book builds it."""
    return vgg(in_channels, num_classes, image_size, VGG11_ARCH, hidden, dropout, batch_norm)


@register_network("vgg11_narrow")
def vgg11_narrow(in_channels: int = 1, num_classes: int = 10, image_size: int = 224, hidden: int = 4096,
                 dropout: float = 0.5, batch_norm: bool = False) -> VGG:
    """The book's narrow VGG-11: every channel count divided by 4 (what d2l trains on Fashion-MNIST)."""
    arch = tuple((num_convs, channels // NARROW_RATIO) for num_convs, channels in VGG11_ARCH)
    return vgg(in_channels, num_classes, image_size, arch, hidden, dropout, batch_norm)
