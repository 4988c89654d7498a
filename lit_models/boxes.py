"""Boxes and anchors (d2l 14.3-14.4, 14.7): multibox anchors, assignment, offsets, class-wise NMS.

IoU, NMS and box conversions are torchvision.ops; this file adds what the book builds on them.
Boxes are corner coordinates ``(x1, y1, x2, y2)`` normalised to [0, 1] by the image side unless a
function says otherwise. Ground truth of a batch is one padded tensor ``(B, M, 5)`` of rows
``(class, x1, y1, x2, y2)``; a row with class ``-1`` is padding (images hold different numbers of objects).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torchvision.ops import batched_nms, box_convert, box_iou

#: the book's scaling of anchor offsets: centres divided by 0.1, log-sizes by 0.2
CENTER_SCALE = 10.0
SIZE_SCALE = 5.0


def multibox_prior(height: int, width: int, sizes: Sequence[float], ratios: Sequence[float],
                   device: torch.device | None = None) -> torch.Tensor:
    """Anchors centred on every cell of a ``height x width`` feature map: ``(H * W * (n + m - 1), 4)``.

    Per cell, as the book: every size with the first ratio, then the first size with every other ratio
    (``n + m - 1`` anchors, not ``n * m``). Widths carry ``height / width`` so that an anchor of size
    ``s`` and ratio 1 is square in pixels on a non-square image.
    """
    sizes_t = torch.as_tensor(sizes, dtype=torch.float32, device=device)
    ratios_t = torch.as_tensor(ratios, dtype=torch.float32, device=device)
    center_h = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height
    center_w = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width
    shift_y, shift_x = torch.meshgrid(center_h, center_w, indexing="ij")
    shift_y, shift_x = shift_y.reshape(-1), shift_x.reshape(-1)  # (H * W,)
    # (n + m - 1,) widths and heights of one cell's anchors
    w = torch.cat((sizes_t * torch.sqrt(ratios_t[0]), sizes_t[0] * torch.sqrt(ratios_t[1:]))) * height / width
    h = torch.cat((sizes_t / torch.sqrt(ratios_t[0]), sizes_t[0] / torch.sqrt(ratios_t[1:])))
    half = torch.stack((-w, -h, w, h)).T / 2  # (n + m - 1, 4)
    centres = torch.stack([shift_x, shift_y, shift_x, shift_y], dim=1)  # (H * W, 4)
    return (centres[:, None, :] + half[None, :, :]).reshape(-1, 4)


def assign_anchors(ground_truth: torch.Tensor, anchors: torch.Tensor, iou_threshold: float = 0.5) -> torch.Tensor:
    """Index of the ground-truth box each anchor is assigned to, ``-1`` for none: ``(A,)``.

    The book's rule: repeatedly take the largest IoU left in the (anchors x boxes) matrix and assign
    that pair, discarding its row and column, so every box gets its best anchor; every other anchor
    takes its best box when their IoU is at least ``iou_threshold``.
    """
    num_anchors, num_boxes = anchors.shape[0], ground_truth.shape[0]
    assigned = torch.full((num_anchors,), -1, dtype=torch.long, device=anchors.device)
    if num_boxes == 0:
        return assigned
    iou = box_iou(anchors, ground_truth)  # (A, G)
    best_iou, best_box = iou.max(dim=1)
    keep = best_iou >= iou_threshold
    assigned[keep] = best_box[keep]
    remaining = iou.clone()
    for _ in range(min(num_anchors, num_boxes)):
        flat = int(torch.argmax(remaining))
        anchor, box = divmod(flat, num_boxes)
        if remaining[anchor, box] < 0:
            break  # every box already has its anchor
        assigned[anchor] = box
        remaining[:, box] = -1
        remaining[anchor, :] = -1
    return assigned


def offset_boxes(anchors: torch.Tensor, boxes: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Offsets of ``boxes`` from ``anchors`` (both ``(A, 4)`` corners), the book's scaled form: ``(A, 4)``."""
    anchor_c = box_convert(anchors, "xyxy", "cxcywh")
    box_c = box_convert(boxes, "xyxy", "cxcywh")
    xy = CENTER_SCALE * (box_c[:, :2] - anchor_c[:, :2]) / anchor_c[:, 2:]
    wh = SIZE_SCALE * torch.log(eps + box_c[:, 2:] / anchor_c[:, 2:])
    return torch.cat([xy, wh], dim=1)


def offset_inverse(anchors: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Boxes (corners) from anchors and predicted offsets: the inverse of :func:`offset_boxes`."""
    anchor_c = box_convert(anchors, "xyxy", "cxcywh")
    xy = offsets[..., :2] * anchor_c[..., 2:] / CENTER_SCALE + anchor_c[..., :2]
    wh = torch.exp(offsets[..., 2:] / SIZE_SCALE) * anchor_c[..., 2:]
    return box_convert(torch.cat([xy, wh], dim=-1), "cxcywh", "xyxy")


def multibox_target(anchors: torch.Tensor, targets: torch.Tensor,
                    iou_threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Training targets of every anchor for a batch.

    Args:
        anchors: ``(A, 4)`` corners.
        targets: ``(B, M, 5)`` rows ``(class, x1, y1, x2, y2)``; class ``-1`` rows are padding.
    Returns:
        offsets ``(B, A * 4)``, their mask ``(B, A * 4)`` (1 on anchors assigned to a box), and anchor
        classes ``(B, A)`` int64 with 0 for background and ``class + 1`` for an assigned anchor.
    """
    offsets, masks, classes = [], [], []
    for rows in targets:  # images differ in their number of boxes: one at a time
        rows = rows[rows[:, 0] >= 0]
        assigned = assign_anchors(rows[:, 1:], anchors, iou_threshold)
        positive = assigned >= 0
        mask = positive.float().unsqueeze(1).repeat(1, 4)  # (A, 4)
        anchor_class = torch.zeros(anchors.shape[0], dtype=torch.long, device=anchors.device)
        boxes = torch.zeros_like(anchors)
        anchor_class[positive] = rows[assigned[positive], 0].long() + 1
        boxes[positive] = rows[assigned[positive], 1:]
        offsets.append((offset_boxes(anchors, boxes) * mask).reshape(-1))
        masks.append(mask.reshape(-1))
        classes.append(anchor_class)
    return torch.stack(offsets), torch.stack(masks), torch.stack(classes)


def multibox_detection(class_probs: torch.Tensor, offsets: torch.Tensor, anchors: torch.Tensor,
                       nms_threshold: float = 0.5, score_threshold: float = 0.01,
                       max_detections: int = 100) -> list[dict[str, torch.Tensor]]:
    """Detections per image from anchor predictions, after class-wise NMS.

    Args:
        class_probs: ``(B, num_classes + 1, A)`` probabilities, background first (the book's layout).
        offsets: ``(B, A * 4)`` predicted offsets.
        anchors: ``(A, 4)``.
    Returns:
        one dict per image: ``boxes (D, 4)``, ``scores (D,)``, ``labels (D,)`` (object classes from 0),
        best score first. Each anchor proposes its most likely object class; NMS runs per class
        (``batched_nms``), so boxes of different classes never suppress each other.
    """
    results = []
    for probs, offset in zip(class_probs, offsets, strict=True):
        scores, labels = probs[1:].max(dim=0)  # (A,) best object class of every anchor
        boxes = offset_inverse(anchors, offset.reshape(-1, 4))
        keep = scores > score_threshold
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        kept = batched_nms(boxes, scores, labels, nms_threshold)[:max_detections]  # sorted by score
        results.append({"boxes": boxes[kept], "scores": scores[kept], "labels": labels[kept]})
    return results


def padded_to_list(targets: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """``(B, M, 5)`` padded ground truth -> one ``{"boxes", "labels"}`` dict per image (torchmetrics' form)."""
    return [{"boxes": rows[rows[:, 0] >= 0, 1:], "labels": rows[rows[:, 0] >= 0, 0].long()} for rows in targets]
