"""Fully convolutional network (d2l 14.10-14.11): a zoo backbone, a 1x1 conv to classes, a transposed
convolution initialised to bilinear upsampling back to the input size."""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn

from lit_models.registry import build_network, register_network


def bilinear_kernel(in_channels: int, out_channels: int, kernel_size: int) -> torch.Tensor:
    """The book's bilinear-interpolation weight ``(in_channels, out_channels, k, k)``: channel i to channel i."""
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    steps = torch.arange(kernel_size, dtype=torch.float32)
    line = 1 - torch.abs(steps - center) / factor  # (k,)
    weight = torch.zeros(in_channels, out_channels, kernel_size, kernel_size)
    channels = torch.arange(min(in_channels, out_channels))
    weight[channels, channels] = line[:, None] * line[None, :]
    return weight


def bilinear_upsampling(channels: int, factor: int) -> nn.ConvTranspose2d:
    """A transposed convolution that scales by ``factor`` (even) and starts as bilinear interpolation."""
    upsample = nn.ConvTranspose2d(channels, channels, kernel_size=2 * factor, stride=factor, padding=factor // 2,
                                  bias=False)
    with torch.no_grad():
        upsample.weight.copy_(bilinear_kernel(channels, channels, 2 * factor))
    return upsample


def convolutional_part(network: nn.Module) -> nn.Sequential:
    """A zoo classifier's ``features`` without its final global pooling and flattening."""
    features = getattr(network, "features", None)
    if not isinstance(features, nn.Sequential):
        raise ValueError(f"{type(network).__name__} has no 'features' sequence to use as a backbone")
    layers = list(features)
    while layers and isinstance(layers[-1], (nn.Flatten, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Dropout)):
        layers.pop()
    return nn.Sequential(*layers)


class FCN(nn.Module):
    """backbone (B, C, S / f, S / f) -> 1x1 conv (B, classes, S / f, S / f) -> transposed conv (B, classes, S, S)."""

    def __init__(self, backbone: nn.Sequential, in_channels: int, num_classes: int, image_size: int) -> None:
        super().__init__()
        self.features = backbone
        with torch.no_grad():  # the backbone's channels and down-sampling factor, read off one forward pass
            probe = backbone.eval()(torch.zeros(1, in_channels, image_size, image_size))
        backbone.train()
        channels, side = probe.shape[1], probe.shape[-1]
        factor = image_size // side
        if side * factor != image_size or factor % 2:
            raise ValueError(f"the backbone turns {image_size} px into {side} px; FCN needs an even factor "
                             f"that divides the image size")
        self.factor = factor
        self.classifier = nn.Conv2d(channels, num_classes, kernel_size=1)
        self.upsample = bilinear_upsampling(num_classes, factor)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.upsample(self.classifier(self.features(images)))  # (B, num_classes, S, S)

    def summary(self) -> dict[str, Any]:
        return {"upsampling_factor": self.factor}


@register_network("fcn", kind="segmenter")
def fcn(in_channels: int = 3, num_classes: int = 21, image_size: int = 320, backbone: str = "resnet18",
        backbone_args: Optional[dict[str, Any]] = None) -> FCN:
    """FCN on a zoo classifier's convolutional part (``backbone``, e.g. resnet18 with ``{stem: small}``);
    ``num_classes`` counts the background."""
    classifier = build_network(backbone, kind="image_classifier", in_channels=in_channels, num_classes=1,
                               image_size=image_size, **(backbone_args or {}))
    return FCN(convolutional_part(classifier), in_channels, num_classes, image_size)
