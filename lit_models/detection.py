"""Object detectors (d2l 14.7-14.8): the book's tiny multiscale SSD, and a Fast R-CNN-style RoI head.

Both return ``(anchors (A, 4), class_logits (B, A, num_classes + 1), offsets (B, A * 4))``: every
anchor (SSD) or proposal (Fast R-CNN) gets class scores, background first, and box offsets in the
book's scaled form (:mod:`lit_models.boxes`), so one task trains and decodes both.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torchvision.ops import roi_align, roi_pool

from lit_models.boxes import multibox_prior
from lit_models.layers import conv_bn_act
from lit_models.registry import register_network

# the book's five scales: sizes grow from 0.2 to 0.96 of the image, ratios 1, 2, 0.5 at every scale
BOOK_SIZES = ((0.2, 0.272), (0.37, 0.447), (0.54, 0.619), (0.71, 0.79), (0.88, 0.961))
BOOK_RATIOS = (1.0, 2.0, 0.5)


def down_sample_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 conv-BN-ReLU, then a 2x2 max pool: halves the side (d2l 14.7.1.3)."""
    return nn.Sequential(conv_bn_act(in_channels, out_channels, 3, padding=1),
                         conv_bn_act(out_channels, out_channels, 3, padding=1), nn.MaxPool2d(2))


class AnchorCache:
    """Anchors of one feature-map shape, computed once per (shape, device) and reused."""

    def __init__(self, sizes: Sequence[float], ratios: Sequence[float]) -> None:
        self.sizes, self.ratios = tuple(sizes), tuple(ratios)
        self._anchors: dict[tuple, torch.Tensor] = {}

    @property
    def per_cell(self) -> int:
        return len(self.sizes) + len(self.ratios) - 1

    def __call__(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        key = (height, width, str(device))
        if key not in self._anchors:
            self._anchors[key] = multibox_prior(height, width, self.sizes, self.ratios, device=device)
        return self._anchors[key]


class TinySSD(nn.Module):
    """Base network (three down-sampling blocks, side / 8), three more down-sampling blocks and a global
    max pool: five scales, each with a 3x3 class predictor and a 3x3 box predictor."""

    def __init__(self, in_channels: int, num_classes: int, image_size: int, widths: Sequence[int] = (16, 32, 64),
                 scale_channels: int = 128, sizes: Sequence[Sequence[float]] = BOOK_SIZES,
                 ratios: Sequence[float] = BOOK_RATIOS) -> None:
        super().__init__()
        if image_size < 64:
            raise ValueError(f"TinySSD needs images of at least 64 px (five scales from side / 8), got {image_size}")
        self.num_classes = num_classes
        base, channels = [], in_channels
        for width in widths:
            base.append(down_sample_block(channels, width))
            channels = width
        stages: list[nn.Module] = [nn.Sequential(*base)]
        stage_channels = [channels]
        for _ in range(len(sizes) - 2):
            stages.append(down_sample_block(channels, scale_channels))
            channels = scale_channels
            stage_channels.append(channels)
        stages.append(nn.AdaptiveMaxPool2d((1, 1)))
        stage_channels.append(channels)
        self.stages = nn.ModuleList(stages)
        self.anchors = [AnchorCache(scale, ratios) for scale in sizes]
        per_cell = self.anchors[0].per_cell
        self.class_predictors = nn.ModuleList(nn.Conv2d(c, per_cell * (num_classes + 1), 3, padding=1)
                                              for c in stage_channels)
        self.box_predictors = nn.ModuleList(nn.Conv2d(c, per_cell * 4, 3, padding=1) for c in stage_channels)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        anchors, class_logits, offsets = [], [], []
        features = images
        for stage, anchor_cache, classify, locate in zip(self.stages, self.anchors, self.class_predictors,
                                                         self.box_predictors, strict=True):
            features = stage(features)  # (B, C, h, w)
            anchors.append(anchor_cache(features.shape[-2], features.shape[-1], features.device))
            # (B, cells * (classes + 1), h, w) -> (B, h, w, cells * (classes + 1)): one anchor's scores together
            class_logits.append(classify(features).permute(0, 2, 3, 1).flatten(1))
            offsets.append(locate(features).permute(0, 2, 3, 1).flatten(1))
        batch = images.shape[0]
        return (torch.cat(anchors), torch.cat(class_logits, dim=1).reshape(batch, -1, self.num_classes + 1),
                torch.cat(offsets, dim=1))  # (A, 4), (B, A, classes + 1), (B, A * 4)


@register_network("tiny_ssd", kind="detector")
def tiny_ssd(in_channels: int = 3, num_classes: int = 1, image_size: int = 256,
             widths: Sequence[int] = (16, 32, 64), scale_channels: int = 128) -> TinySSD:
    """The book's TinySSD (d2l 14.7): base widths 16-32-64, 128 channels at the four coarser scales."""
    return TinySSD(in_channels, num_classes, image_size, widths, scale_channels)


class RoIDetector(nn.Module):
    """Fast R-CNN-style detection (d2l 14.8.2): a CNN's feature map, RoI pooling of fixed proposals,
    then fully connected class and box heads per proposal.

    The proposals are the multibox anchors of a ``proposal_grid x proposal_grid`` grid (in place of
    selective search, which has no batched form): the same proposals for every image, so the task
    treats them like SSD's anchors. ``pooling`` picks ``roi_pool`` (max over bins, the book's) or
    ``roi_align`` (bilinear samples).
    """

    def __init__(self, in_channels: int, num_classes: int, image_size: int, widths: Sequence[int] = (16, 32, 64),
                 pooled: int = 4, hidden: int = 256, proposal_grid: int = 8,
                 sizes: Sequence[float] = (0.25, 0.4, 0.55), ratios: Sequence[float] = (1.0, 2.0, 0.5),
                 pooling: str = "roi_pool") -> None:
        super().__init__()
        if pooling not in ("roi_pool", "roi_align"):
            raise ValueError(f"pooling must be 'roi_pool' or 'roi_align', got {pooling!r}")
        layers, channels = [], in_channels
        for width in widths:
            layers.append(down_sample_block(channels, width))
            channels = width
        self.backbone = nn.Sequential(*layers)  # (B, C, S / 2**len(widths), ...)
        self.spatial_scale = 1.0 / 2 ** len(widths)
        self.image_size = image_size
        self.num_classes = num_classes
        self.pooled = pooled
        self.pooling = pooling
        self.register_buffer("proposals", multibox_prior(proposal_grid, proposal_grid, sizes, ratios).clamp(0, 1),
                             persistent=False)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(channels * pooled * pooled, hidden), nn.ReLU())
        self.classify = nn.Linear(hidden, num_classes + 1)
        self.locate = nn.Linear(hidden, 4)

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B * P, C, pooled, pooled): every proposal of every image, in pixels of the input."""
        batch = features.shape[0]
        boxes = [self.proposals * self.image_size] * batch
        if self.pooling == "roi_pool":
            return roi_pool(features, boxes, self.pooled, self.spatial_scale)
        return roi_align(features, boxes, self.pooled, self.spatial_scale, sampling_ratio=2, aligned=True)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch, num_proposals = images.shape[0], self.proposals.shape[0]
        hidden = self.head(self.pool(self.backbone(images)))  # (B * P, hidden)
        class_logits = self.classify(hidden).reshape(batch, num_proposals, self.num_classes + 1)
        offsets = self.locate(hidden).reshape(batch, num_proposals * 4)
        return self.proposals, class_logits, offsets


@register_network("fast_rcnn", kind="detector")
def fast_rcnn(in_channels: int = 3, num_classes: int = 1, image_size: int = 256, widths: Sequence[int] = (16, 32, 64),
              pooled: int = 4, hidden: int = 256, proposal_grid: int = 8, pooling: str = "roi_pool") -> RoIDetector:
    """Fast R-CNN-style head on RoI pooling over a grid of proposals (``pooling``: roi_pool or roi_align)."""
    return RoIDetector(in_channels, num_classes, image_size, widths, pooled, hidden, proposal_grid, pooling=pooling)
