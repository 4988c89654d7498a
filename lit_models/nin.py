"""Network in Network (d2l 8.3): NiN blocks (a conv then two 1x1 convs), no dense layers at all.

The last NiN block has ``num_classes`` channels and global average pooling turns it into logits.
Architecture as data: ``NIN_BLOCKS`` lists (out_channels, kernel, stride, padding); a 3x3 stride-2
max pool follows every block but the last (dropout precedes the last, as in the book). Below 64 px
the 11x11 stride-4 stem becomes a 3x3 stride-1 conv.
"""

from __future__ import annotations

import torch
from torch import nn

from lit_models.layers import Stem, choose_stem, he_initialised, output_features
from lit_models.registry import register_network

NIN_BLOCKS = ((96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1))  # the classifier block follows
SMALL_STEM = (96, 3, 1, 1)


def nin_block(in_channels: int, out_channels: int, kernel: int, stride: int, padding: int,
              last_relu: bool = True) -> nn.Sequential:
    """A spatial conv then two 1x1 convs: a small per-pixel MLP across channels."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, 1), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, 1), nn.ReLU() if last_relu else nn.Identity(),
    )


class NiN(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, image_size: int, blocks: tuple, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for out_channels, kernel, stride, padding in blocks:
            layers += [nin_block(channels, out_channels, kernel, stride, padding), nn.MaxPool2d(3, stride=2)]
            channels = out_channels
        self.features = nn.Sequential(*layers, nn.Dropout(dropout))
        output_features(self.features, (in_channels, image_size, image_size))  # fails early if too small
        # the head is the classifier NiN block: one channel per class, averaged over the image. Its
        # last ReLU is left out (the book keeps it): a class whose map is all negative would
        # otherwise get logit 0 and no gradient at all.
        classifier = nin_block(channels, num_classes, 3, 1, 1, last_relu=False)
        self.head = nn.Sequential(classifier, nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images)  # (B, 384, 5, 5) at 224 px, (B, 384, 2, 2) at 28 px

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(images))  # (B, num_classes)


@register_network("nin")
def nin(in_channels: int = 1, num_classes: int = 10, image_size: int = 224, stem: Stem = "auto",
        width_divisor: int = 1, dropout: float = 0.5) -> NiN:
    """The book's NiN; ``width_divisor`` narrows every block (small-image configs use 2)."""
    if width_divisor < 1:
        raise ValueError(f"width_divisor must be >= 1, got {width_divisor}")
    rows = ((SMALL_STEM if choose_stem(stem, image_size) == "small" else NIN_BLOCKS[0]), *NIN_BLOCKS[1:])
    rows = tuple((max(1, c // width_divisor), *rest) for c, *rest in rows)
    return he_initialised(NiN(in_channels, num_classes, image_size, rows, dropout))
