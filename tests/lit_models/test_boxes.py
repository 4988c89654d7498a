"""Anchors, assignment, offsets and NMS against the book's small worked examples and brute force."""

from __future__ import annotations

import itertools

import pytest
import torch
from torchvision.ops import box_iou

from lit_models.boxes import (
    assign_anchors,
    multibox_detection,
    multibox_prior,
    multibox_target,
    offset_boxes,
    offset_inverse,
    padded_to_list,
)

# d2l 14.4.3: five anchors, a dog (class 0) and a cat (class 1) on a normalised image
BOOK_ANCHORS = torch.tensor([[0, 0.1, 0.2, 0.3], [0.15, 0.2, 0.4, 0.4], [0.63, 0.05, 0.88, 0.98],
                             [0.66, 0.45, 0.8, 0.8], [0.57, 0.3, 0.92, 0.9]])
BOOK_TRUTH = torch.tensor([[0, 0.1, 0.08, 0.52, 0.92], [1, 0.55, 0.2, 0.9, 0.88]])


def test_multibox_prior_matches_the_books_example():
    # d2l 14.4.1: a 561 x 728 image, sizes (0.75, 0.5, 0.25), ratios (1, 2, 0.5)
    anchors = multibox_prior(561, 728, sizes=[0.75, 0.5, 0.25], ratios=[1, 2, 0.5])
    assert anchors.shape == (561 * 728 * 5, 4)
    boxes = anchors.reshape(561, 728, 5, 4)
    torch.testing.assert_close(boxes[250, 250, 0], torch.tensor([0.06, 0.07, 0.63, 0.82]), atol=0.005, rtol=0)


def test_multibox_prior_cells_and_shapes():
    anchors = multibox_prior(2, 2, sizes=[0.5, 0.25], ratios=[1, 4]).reshape(2, 2, 3, 4)
    centres = (anchors[..., :2] + anchors[..., 2:]) / 2
    torch.testing.assert_close(centres[1, 0, 0], torch.tensor([0.25, 0.75]))  # row 1, column 0
    sides = anchors[..., 2:] - anchors[..., :2]
    torch.testing.assert_close(sides[0, 0], torch.tensor([[0.5, 0.5], [0.25, 0.25], [1.0, 0.25]]))


def test_assignment_and_targets_match_the_books_example():
    offsets, mask, classes = multibox_target(BOOK_ANCHORS, BOOK_TRUTH.unsqueeze(0))
    assert classes.tolist() == [[0, 1, 2, 0, 2]]
    assert mask.tolist() == [[0] * 4 + [1] * 8 + [0] * 4 + [1] * 4]
    expected = torch.tensor([0, 0, 0, 0, 1.40, 10.0, 2.59, 7.18, -1.20, 0.269, 1.68, -1.57,
                             0, 0, 0, 0, -0.571, -1.00, 0.0, 0.626])
    torch.testing.assert_close(offsets[0], expected, atol=0.01, rtol=0)


def brute_force_assignment(truth: torch.Tensor, anchors: torch.Tensor, threshold: float) -> list[int]:
    """The book's rule written with plain Python loops over every IoU."""
    iou = [[float(box_iou(a[None], b[None])) for b in truth] for a in anchors]
    assigned = [max(range(len(truth)), key=lambda j: row[j]) if max(row) >= threshold else -1 for row in iou]
    free_anchors, free_boxes = set(range(len(anchors))), set(range(len(truth)))
    for _ in range(min(len(anchors), len(truth))):
        anchor, box = max(itertools.product(free_anchors, free_boxes), key=lambda pair: iou[pair[0]][pair[1]])
        assigned[anchor] = box
        free_anchors.discard(anchor)
        free_boxes.discard(box)
    return assigned


@pytest.mark.parametrize("seed", range(5))
def test_assignment_agrees_with_brute_force(seed):
    generator = torch.Generator().manual_seed(seed)

    def random_boxes(count):
        corners = torch.rand(count, 2, 2, generator=generator)
        return torch.cat([corners.min(dim=1).values, corners.max(dim=1).values], dim=1)

    anchors, truth = random_boxes(30), random_boxes(4)
    assert assign_anchors(truth, anchors, 0.3).tolist() == brute_force_assignment(truth, anchors, 0.3)


def test_no_ground_truth_assigns_nothing():
    assert assign_anchors(torch.zeros(0, 4), BOOK_ANCHORS).tolist() == [-1] * 5
    padding = torch.full((1, 3, 5), -1.0)
    offsets, mask, classes = multibox_target(BOOK_ANCHORS, padding)
    assert classes.sum() == 0 and mask.sum() == 0 and offsets.abs().sum() == 0


def test_offsets_invert():
    boxes = torch.tensor([[0.1, 0.2, 0.5, 0.9], [0.3, 0.3, 0.4, 0.35]])
    anchors = torch.tensor([[0.0, 0.1, 0.6, 0.8], [0.25, 0.2, 0.5, 0.4]])
    torch.testing.assert_close(offset_inverse(anchors, offset_boxes(anchors, boxes)), boxes, atol=1e-5, rtol=0)


def test_detection_matches_the_books_nms_example():
    # d2l 14.4.4: three overlapping dog boxes and one cat box, zero offsets
    anchors = torch.tensor([[0.1, 0.08, 0.52, 0.92], [0.08, 0.2, 0.56, 0.95],
                            [0.15, 0.3, 0.62, 0.91], [0.55, 0.2, 0.9, 0.88]])
    probs = torch.tensor([[0.0] * 4, [0.9, 0.8, 0.7, 0.1], [0.1, 0.2, 0.3, 0.9]])
    (result,) = multibox_detection(probs.unsqueeze(0), torch.zeros(1, 16), anchors, nms_threshold=0.5)
    assert result["labels"].tolist() == [0, 1]
    torch.testing.assert_close(result["scores"], torch.tensor([0.9, 0.9]))
    torch.testing.assert_close(result["boxes"], anchors[[0, 3]])


def test_nms_is_class_wise():
    # two nearly equal boxes of different classes both survive; of one class only the better one
    anchors = torch.tensor([[0.1, 0.1, 0.5, 0.5], [0.11, 0.1, 0.5, 0.5]])
    different = torch.tensor([[0.0, 0.0], [0.9, 0.0], [0.0, 0.8]])
    (result,) = multibox_detection(different.unsqueeze(0), torch.zeros(1, 8), anchors)
    assert sorted(result["labels"].tolist()) == [0, 1]
    same = torch.tensor([[0.0, 0.0], [0.9, 0.8], [0.0, 0.0]])
    (result,) = multibox_detection(same.unsqueeze(0), torch.zeros(1, 8), anchors)
    assert result["labels"].tolist() == [0]


def test_padded_targets_to_torchmetrics_form():
    padded = torch.tensor([[[2, 0.1, 0.1, 0.2, 0.2], [-1, 0, 0, 0, 0]], [[-1, 0, 0, 0, 0], [-1, 0, 0, 0, 0]]])
    first, second = padded_to_list(padded)
    assert first["labels"].tolist() == [2] and first["boxes"].shape == (1, 4)
    assert second["labels"].numel() == 0 and second["boxes"].shape == (0, 4)


def brute_force_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, threshold: float) -> set:
    """Greedy NMS per class with plain loops: keep the best box, drop same-class boxes overlapping it."""
    kept = set()
    for label in labels.unique().tolist():
        order = sorted((i for i in range(len(boxes)) if labels[i] == label), key=lambda i: -float(scores[i]))
        while order:
            best = order.pop(0)
            kept.add(best)
            order = [i for i in order if float(box_iou(boxes[best][None], boxes[i][None])) <= threshold]
    return kept


@pytest.mark.parametrize("seed", range(3))
def test_class_wise_nms_agrees_with_brute_force(seed):
    generator = torch.Generator().manual_seed(seed)
    anchors = multibox_prior(3, 3, sizes=[0.4, 0.6], ratios=[1, 2])  # 18 heavily overlapping boxes
    probs = torch.rand(1, 4, len(anchors), generator=generator).softmax(dim=1)
    (result,) = multibox_detection(probs, torch.zeros(1, len(anchors) * 4), anchors, nms_threshold=0.4,
                                   score_threshold=0.0)
    scores, labels = probs[0, 1:].max(dim=0)
    expected = brute_force_nms(anchors, scores, labels, 0.4)
    assert len(result["boxes"]) == len(expected)
    # zero offsets give back the anchors (up to rounding in the centre-size round trip)
    found = {int(torch.cdist(box[None], anchors).argmin()) for box in result["boxes"]}
    assert found == expected
    assert result["scores"].tolist() == sorted(result["scores"].tolist(), reverse=True)
