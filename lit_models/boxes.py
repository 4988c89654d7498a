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
    """Index of the ground-truth box (``(G, 4)``) each anchor is assigned to, ``-1`` for none: ``(A,)``."""
    valid = torch.ones(1, ground_truth.shape[0], dtype=torch.bool, device=anchors.device)
    return assign_anchors_batch(ground_truth.unsqueeze(0), valid, anchors, iou_threshold)[0]


def assign_anchors_batch(boxes: torch.Tensor, valid: torch.Tensor, anchors: torch.Tensor,
                         iou_threshold: float = 0.5) -> torch.Tensor:
    """Assignment for a batch: ``boxes (B, M, 4)``, ``valid (B, M)`` (False on padding) -> ``(B, A)``, -1 for none.

    The book's rule: repeatedly take the largest IoU left in the (anchors x boxes) matrix and assign
    that pair, discarding its row and column, so every box gets its best anchor; every other anchor
    takes its best box when their IoU is at least ``iou_threshold``. The greedy steps run for all
    images at once (at most M steps).
    """
    batch, num_boxes = boxes.shape[:2]
    num_anchors = anchors.shape[0]
    if num_boxes == 0:
        return torch.full((batch, num_anchors), -1, dtype=torch.long, device=anchors.device)
    iou = box_iou(anchors, boxes.reshape(-1, 4)).reshape(num_anchors, batch, num_boxes).transpose(0, 1)
    iou = iou.masked_fill(~valid[:, None, :], -1.0)  # (B, A, M); padding never matches
    best_iou, best_box = iou.max(dim=2)  # (B, A)
    assigned = torch.where(best_iou >= iou_threshold, best_box, torch.full_like(best_box, -1))
    remaining = iou.clone()
    images = torch.arange(batch, device=anchors.device)
    for _ in range(min(num_anchors, num_boxes)):
        value, flat = remaining.flatten(1).max(dim=1)  # (B,) the largest IoU left in each image
        found = value >= 0  # images whose boxes all have their anchor are done
        if not bool(found.any()):
            break
        image, anchor, box = images[found], flat[found] // num_boxes, flat[found] % num_boxes
        assigned[image, anchor] = box
        remaining[image, :, box] = -1.0
        remaining[image, anchor, :] = -1.0
    return assigned


def offset_boxes(anchors: torch.Tensor, boxes: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Offsets of ``boxes`` from ``anchors`` (both ``(..., 4)`` corners), the book's scaled form: ``(..., 4)``."""
    anchor_c = box_convert(anchors, "xyxy", "cxcywh")
    box_c = box_convert(boxes, "xyxy", "cxcywh")
    xy = CENTER_SCALE * (box_c[..., :2] - anchor_c[..., :2]) / anchor_c[..., 2:]
    wh = SIZE_SCALE * torch.log(eps + box_c[..., 2:] / anchor_c[..., 2:])
    return torch.cat([xy, wh], dim=-1)


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
    batch = targets.shape[0]
    assigned = assign_anchors_batch(targets[..., 1:], targets[..., 0] >= 0, anchors, iou_threshold)  # (B, A)
    positive = assigned >= 0
    rows = targets.gather(1, assigned.clamp(min=0).unsqueeze(-1).expand(-1, -1, 5))  # (B, A, 5)
    classes = torch.where(positive, rows[..., 0].long() + 1, torch.zeros_like(assigned))
    mask = positive.unsqueeze(-1).expand(-1, -1, 4).to(anchors.dtype)  # (B, A, 4)
    offsets = offset_boxes(anchors.expand(batch, -1, -1), rows[..., 1:].where(positive.unsqueeze(-1), anchors))
    return (offsets * mask).reshape(batch, -1), mask.reshape(batch, -1), classes


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
