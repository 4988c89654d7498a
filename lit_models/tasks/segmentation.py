"""Semantic segmentation (d2l 14.9-14.11): per-pixel cross-entropy, pixel accuracy and mean IoU."""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from jsonargparse.typing import PositiveInt
from torchmetrics import Metric
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from lit_models.tasks.base import Task
from litexp.errors import LitexpError

IGNORE = 255  # mask value of pixels no loss or metric counts (Pascal VOC's object borders)
PICTURES = 16  # images of the predicted split kept for the pictures ``litexp predict`` draws


class SegmentationTask(Task):
    """Masks ``(B, H, W)`` hold 0 for background and ``class + 1`` for an object's pixels (255: ignored);
    the network predicts ``num_classes + 1`` channels. Logs ``loss``, ``pixel_acc`` and ``miou`` (IoU averaged over
    the background and every class, from the epoch's confusion counts)."""

    kind = "segmenter"
    monitor = "val/miou"
    monitor_mode = "max"
    data_attributes = ("num_classes", "input_shape")

    def __init__(
        self,
        network: str = "fcn",
        network_args: Optional[dict[str, Any]] = None,
        num_classes: PositiveInt = 20,
        input_shape: tuple[int, int, int] = (3, 320, 320),
        **kwargs: Any,
    ) -> None:
        if input_shape[1] != input_shape[2]:
            raise LitexpError(f"input_shape must hold square images, got {tuple(input_shape)}")
        super().__init__(network, network_args, **kwargs)
        self.prediction_examples: dict[str, Any] = {}

    @property
    def num_labels(self) -> int:
        return int(self.hparams.num_classes) + 1  # the background is label 0

    def network_inputs(self) -> dict[str, Any]:
        channels, height, _ = self.hparams.input_shape
        return {"in_channels": channels, "num_classes": self.num_labels, "image_size": height}

    def stage_metrics(self, stage: str) -> dict[str, Metric]:
        return {**super().stage_metrics(stage),
                "pixel_acc": MulticlassAccuracy(self.num_labels, average="micro", ignore_index=IGNORE,
                                                validate_args=False),
                "miou": MulticlassJaccardIndex(self.num_labels, average="macro", ignore_index=IGNORE,
                                               validate_args=False)}

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        images, masks = batch  # (B, C, H, W) float, (B, H, W) uint8
        masks = masks.long()
        logits = self(images)  # (B, classes + 1, H, W)
        if logits.shape[-2:] != masks.shape[-2:]:
            raise LitexpError(f"masks are {tuple(masks.shape[-2:])} but the network predicts "
                              f"{tuple(logits.shape[-2:])}; masks must have the images' size")
        loss = F.cross_entropy(logits, masks, ignore_index=IGNORE)
        metrics = self.metrics_of(stage)
        metrics["loss"].update(loss.detach(), weight=masks.shape[0])
        predicted = logits.detach().argmax(dim=1)
        metrics["pixel_acc"].update(predicted, masks)
        metrics["miou"].update(predicted, masks)
        return loss

    def predict_step(self, batch, batch_idx):
        images, masks = batch
        predicted = self(images).argmax(dim=1)  # (B, H, W)
        masks = masks.long()
        if batch_idx == 0:  # the first images, for the pictures next to predictions.csv
            self.prediction_examples = {"kind": "segmentation", "images": images[:PICTURES].cpu(),
                                        "truth": masks[:PICTURES].cpu(), "predicted": predicted[:PICTURES].cpu()}
        counted = (masks != IGNORE).flatten(1)
        correct = ((predicted == masks).flatten(1) & counted).sum(dim=1) / counted.sum(dim=1).clamp(min=1)
        return {"pixel_acc": correct, "object_pixels": (masks > 0).flatten(1).sum(dim=1),
                "predicted_object_pixels": (predicted > 0).flatten(1).sum(dim=1)}
