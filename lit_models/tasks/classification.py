"""Classification of images (or any fixed-size input) into ``num_classes``, with fine-tuning."""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from jsonargparse.typing import PositiveFloat, PositiveInt
from torchmetrics import Metric

from lit_models.finetune import backbone_parameters, load_pretrained
from lit_models.metrics import Fraction
from lit_models.optim import parameter_groups
from lit_models.tasks.base import Task
from litexp.errors import LitexpError


class ClassificationTask(Task):
    """Cross-entropy classification; logs ``<stage>/loss`` and ``<stage>/acc``.

    Fine-tuning: ``pretrained`` (a litexp checkpoint, a torchvision weights file or
    ``torchvision:<WeightsEnum>``) loads the network's feature layers and gives it a fresh
    Xavier-initialised head; the backbone trains at ``lr * backbone_lr_mult`` or not at all
    (``freeze_backbone``). See :mod:`lit_models.finetune`.
    """

    kind = "image_classifier"
    monitor = "val/acc"
    monitor_mode = "max"
    data_attributes = ("num_classes", "input_shape")

    def __init__(
        self,
        network: str = "lenet",
        network_args: Optional[dict[str, Any]] = None,
        num_classes: PositiveInt = 10,
        input_shape: tuple[int, int, int] = (1, 28, 28),
        pretrained: Optional[str] = None,
        backbone_lr_mult: PositiveFloat = 1.0,
        freeze_backbone: bool = False,
        **kwargs: Any,
    ) -> None:
        if backbone_lr_mult <= 0:
            raise LitexpError(f"backbone_lr_mult must be > 0 (use freeze_backbone to stop it), got {backbone_lr_mult}")
        channels, height, width = input_shape
        if height != width:
            raise LitexpError(f"input_shape must hold square images, got {tuple(input_shape)}")
        super().__init__(network, network_args, **kwargs)
        if pretrained:
            load_pretrained(self.network, pretrained)
        if freeze_backbone:
            for parameter in backbone_parameters(self.network):  # no features/head split: an error
                parameter.requires_grad_(False)

    def network_inputs(self) -> dict[str, Any]:
        channels, height, _ = self.hparams.input_shape
        return {"in_channels": channels, "num_classes": self.hparams.num_classes, "image_size": height}

    def stage_metrics(self, stage: str) -> dict[str, Metric]:
        # top-1 accuracy as correct / seen (see lit_models.metrics); cross_entropy checked the labels already
        return {**super().stage_metrics(stage), "acc": Fraction()}

    def optimizer_groups(self) -> list[dict]:
        if self.hparams.backbone_lr_mult == 1.0:
            return super().optimizer_groups()
        backbone = {id(parameter) for parameter in backbone_parameters(self.network)}
        named = list(self.named_parameters())
        rest = [(name, p) for name, p in named if id(p) not in backbone]
        features = [(name, p) for name, p in named if id(p) in backbone]
        backbone_lr = self.lr * self.hparams.backbone_lr_mult
        return (parameter_groups(rest, self.hparams.weight_decay)
                + [{**group, "lr": backbone_lr} for group in parameter_groups(features, self.hparams.weight_decay)])

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        images, labels = batch  # (B, C, H, W) float, (B,) int64
        logits = self(images)  # (B, num_classes)
        loss = F.cross_entropy(logits, labels)
        metrics = self.metrics_of(stage)
        metrics["loss"].update(loss.detach(), weight=labels.numel())
        metrics["acc"].update((logits.detach().argmax(dim=-1) == labels).sum(), labels.numel())
        return loss

    def predict_step(self, batch, batch_idx):
        images, labels = batch
        probabilities = self(images).softmax(dim=-1)  # (B, num_classes)
        confidence, predicted = probabilities.max(dim=-1)
        return {"label": labels, "predicted": predicted, "confidence": confidence}
