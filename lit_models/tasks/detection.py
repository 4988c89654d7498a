"""Object detection with anchors (d2l 14.7): class loss + smooth-L1 box loss, decoding + NMS, mAP.

The network returns anchors ``(A, 4)``, class logits ``(B, A, num_classes + 1)`` (background first) and
offsets ``(B, A * 4)``. Training assigns every anchor to a ground-truth box or to the background
(:func:`lit_models.boxes.multibox_target`). The loss, summed over anchors and divided by the number of
positive (assigned) anchors in the batch, as in the SSD paper:

- class loss: cross-entropy on the positives and on the hardest negatives only, at most
  ``negative_ratio`` negatives per positive in each image (hard-negative mining: the background
  anchors with the largest loss). ``negative_ratio: null`` keeps every negative (the book's choice,
  which lets ~1000 easy background anchors per image dominate);
- box loss: smooth L1 between predicted and target offsets on the positives.

Validation and test decode the predictions (softmax, offsets, class-wise NMS) and score them with
torchmetrics' ``MeanAveragePrecision``: ``<stage>/map50`` (mAP at IoU 0.5, Pascal VOC's) and
``<stage>/map`` (mean over IoU 0.5:0.95, COCO's).
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from jsonargparse.typing import PositiveFloat, PositiveInt
from torchmetrics import Metric
from torchmetrics.detection import MeanAveragePrecision

from lit_models.boxes import multibox_detection, multibox_target, padded_to_list
from lit_models.metrics import WeightedMean
from lit_models.tasks.base import Task
from litexp.errors import LitexpError

PICTURES = 16  # images of the predicted split kept for the pictures ``litexp predict`` draws


class DetectionTask(Task):
    """Anchor-based detection; logs ``loss``, ``class_loss``, ``box_loss`` and (val, test) ``map50``, ``map``."""

    kind = "detector"
    monitor = "val/map50"
    monitor_mode = "max"
    data_attributes = ("num_classes", "input_shape")

    def __init__(
        self,
        network: str = "tiny_ssd",
        network_args: Optional[dict[str, Any]] = None,
        num_classes: PositiveInt = 1,
        input_shape: tuple[int, int, int] = (3, 256, 256),
        iou_threshold: float = 0.5,
        negative_ratio: Optional[PositiveFloat] = 3.0,
        box_loss_weight: PositiveFloat = 1.0,
        nms_threshold: float = 0.5,
        score_threshold: float = 0.05,
        max_detections: PositiveInt = 100,
        **kwargs: Any,
    ) -> None:
        for name, value in (("iou_threshold", iou_threshold), ("nms_threshold", nms_threshold),
                            ("score_threshold", score_threshold)):
            if not 0.0 <= value <= 1.0:
                raise LitexpError(f"{name} must be in [0, 1], got {value}")
        if input_shape[1] != input_shape[2]:
            raise LitexpError(f"input_shape must hold square images, got {tuple(input_shape)}")
        super().__init__(network, network_args, **kwargs)
        # mAP keeps every detection of the epoch: outside the per-stage collections, val and test only
        self.val_map = MeanAveragePrecision(box_format="xyxy", iou_type="bbox")
        self.test_map = MeanAveragePrecision(box_format="xyxy", iou_type="bbox")
        self.prediction_examples: dict[str, Any] = {}

    def network_inputs(self) -> dict[str, Any]:
        channels, height, _ = self.hparams.input_shape
        return {"in_channels": channels, "num_classes": self.hparams.num_classes, "image_size": height}

    def stage_metrics(self, stage: str) -> dict[str, Metric]:
        return {**super().stage_metrics(stage), "class_loss": WeightedMean(), "box_loss": WeightedMean()}

    def losses(self, class_logits: torch.Tensor, offsets: torch.Tensor, target_offsets: torch.Tensor,
               mask: torch.Tensor, classes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(class loss, box loss), each summed over anchors and divided by the batch's positive anchors."""
        positive = classes > 0  # (B, A)
        num_positive = positive.sum().clamp(min=1)
        cross_entropy = F.cross_entropy(class_logits.flatten(0, 1), classes.flatten(), reduction="none")
        cross_entropy = cross_entropy.reshape(classes.shape)  # (B, A)
        counted = torch.ones_like(positive)
        ratio = self.hparams.negative_ratio
        if ratio is not None:  # hard negatives: per image, the background anchors with the largest loss
            negative_loss = cross_entropy.detach().masked_fill(positive, -1.0)
            rank = negative_loss.argsort(dim=1, descending=True).argsort(dim=1)  # 0 = hardest
            limit = (positive.sum(dim=1, keepdim=True) * ratio).clamp(min=1)
            counted = positive | (rank < limit)
        class_loss = (cross_entropy * counted).sum() / num_positive
        box_loss = F.smooth_l1_loss(offsets * mask, target_offsets * mask, reduction="sum") / num_positive
        return class_loss, box_loss

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        images, targets = batch  # (B, C, S, S), (B, M, 5)
        anchors, class_logits, offsets = self(images)
        target_offsets, mask, classes = multibox_target(anchors, targets, self.hparams.iou_threshold)
        class_loss, box_loss = self.losses(class_logits, offsets, target_offsets, mask, classes)
        loss = class_loss + self.hparams.box_loss_weight * box_loss
        metrics = self.metrics_of(stage)
        size = images.shape[0]
        metrics["loss"].update(loss.detach(), weight=size)
        metrics["class_loss"].update(class_loss.detach(), weight=size)
        metrics["box_loss"].update(box_loss.detach(), weight=size)
        if stage in ("val", "test"):
            detections = self.detect(anchors, class_logits, offsets)
            getattr(self, f"{stage}_map").update(detections, padded_to_list(targets))
        return loss

    def detect(self, anchors: torch.Tensor, class_logits: torch.Tensor,
               offsets: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Per image: ``boxes`` (corners, clipped to the image), ``scores``, ``labels`` after class-wise NMS."""
        hparams = self.hparams
        probs = class_logits.detach().float().softmax(dim=-1).permute(0, 2, 1)  # (B, classes + 1, A)
        detections = multibox_detection(probs, offsets.detach().float(), anchors, hparams.nms_threshold,
                                        hparams.score_threshold, hparams.max_detections)
        for detection in detections:
            detection["boxes"] = detection["boxes"].clamp(0.0, 1.0)
        return detections

    def _log_epoch(self, stage: str) -> None:
        mean_ap = getattr(self, f"{stage}_map", None)
        if mean_ap is not None and mean_ap.update_called:
            result = mean_ap.compute()
            self.log_dict({f"{stage}/map50": result["map_50"].float(), f"{stage}/map": result["map"].float()},
                          prog_bar=True, sync_dist=True)
            mean_ap.reset()
        super()._log_epoch(stage)

    def predict_step(self, batch, batch_idx):
        images, targets = batch
        detections = self.detect(*self(images))
        truth = padded_to_list(targets)
        if batch_idx == 0:  # the first images, for the pictures next to predictions.csv
            self.prediction_examples = {"kind": "detection", "images": images[:PICTURES].cpu(),
                                        "truth": [{k: v.cpu() for k, v in t.items()} for t in truth[:PICTURES]],
                                        "predicted": [{k: v.cpu() for k, v in d.items()}
                                                      for d in detections[:PICTURES]]}
        return {"objects": torch.tensor([len(t["labels"]) for t in truth]),
                "detections": [describe(detection) for detection in detections]}


def describe(detection: dict[str, torch.Tensor], limit: int = 10) -> str:
    """A CSV cell: ``class:score:x1 y1 x2 y2`` per detection (best first, at most ``limit``), ``;``-separated."""
    parts = []
    for box, score, label in zip(detection["boxes"][:limit].tolist(), detection["scores"][:limit].tolist(),
                                 detection["labels"][:limit].tolist(), strict=True):
        parts.append(f"{label}:{score:.3f}:" + " ".join(f"{v:.4f}" for v in box))
    return ";".join(parts)
