"""Composed detection and segmentation scenes: deterministic, consistent boxes and masks, the usual splits."""

from __future__ import annotations

import pytest
import torch

from datamodules import ComposedDetection, ComposedSegmentation
from datamodules.detection import compose_scenes
from litexp.errors import LitexpError

SMALL = {"canvas_size": 32, "num_train": 40, "num_test": 12, "min_side": 10, "max_side": 16, "batch_size": 8}


def test_composition_is_a_function_of_the_seed():
    items = torch.randint(0, 256, (20, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(20) % 10
    first = compose_scenes(items, labels, 6, 32, (1, 3), (10, 16), 0.3, seed=5)
    again = compose_scenes(items, labels, 6, 32, (1, 3), (10, 16), 0.3, seed=5)
    other = compose_scenes(items, labels, 6, 32, (1, 3), (10, 16), 0.3, seed=6)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])


def test_boxes_and_masks_agree(fake_data_dir):
    data = ComposedDetection(**SMALL)
    scenes = data.composed("train")
    images, boxes, masks = scenes["images"], scenes["boxes"], scenes["masks"]
    assert images.shape == (40, 1, 32, 32) and images.dtype == torch.uint8
    assert boxes.shape == (40, 4, 5) and masks.shape == (40, 32, 32)
    real = boxes[..., 0] >= 0
    assert real.any(dim=1).all()  # every canvas holds at least one item
    assert (boxes[..., 0][real] < 10).all()
    corners = boxes[..., 1:][real]
    assert (corners >= 0).all() and (corners <= 1).all()
    assert (corners[:, 2] > corners[:, 0]).all() and (corners[:, 3] > corners[:, 1]).all()
    for image in range(len(images)):
        for label in masks[image].unique().tolist():
            if label == 0:
                continue
            # a labelled pixel lies in a box of its class
            ys, xs = (masks[image] == label).nonzero(as_tuple=True)
            rows = boxes[image][boxes[image, :, 0] == label - 1, 1:] * 32
            inside = torch.zeros_like(xs, dtype=torch.bool)
            for x1, y1, x2, y2 in rows.tolist():
                inside |= (xs >= x1) & (xs < x2) & (ys >= y1) & (ys < y2)
            assert inside.all()
        assert (images[image, 0][masks[image] > 0] > 0).all()  # masked pixels are item pixels


def test_test_canvases_differ_from_training_ones_and_are_cached(fake_data_dir):
    data = ComposedDetection(**SMALL)
    train, test = data.composed("train"), data.composed("test")
    assert len(test["images"]) == 12
    assert not torch.equal(train["images"][:12], test["images"])
    assert len(list((fake_data_dir / "litexp-cache").glob("ComposedScenes-*.pt"))) == 2
    again = ComposedDetection(**SMALL).composed("test")
    assert torch.equal(again["boxes"], test["boxes"])


def test_holdout_and_kfold_splits(fake_data_dir):
    holdout = ComposedDetection(**SMALL, val_fraction=0.25)
    holdout.setup("fit")
    assert len(holdout.val_indices) == 10 and len(holdout.train_indices) == 30
    folds = []
    for fold in range(4):
        data = ComposedSegmentation(**SMALL, num_folds=4, fold=fold)
        data.setup("fit")
        folds.append(set(data.val_indices.tolist()))
    assert set().union(*folds) == set(range(40)) and sum(map(len, folds)) == 40


def test_batches_are_cut_from_tensors(fake_data_dir):
    detection = ComposedDetection(**SMALL, val_fraction=0.25)
    detection.setup("fit")
    images, boxes = next(iter(detection.train_dataloader()))
    assert images.shape == (8, 1, 32, 32) and boxes.shape == (8, 4, 5)
    segmentation = ComposedSegmentation(**SMALL, val_fraction=0.25)
    segmentation.setup("fit")
    images, masks = segmentation.transform_batch(next(iter(segmentation.val_dataloader())), training=False)
    assert images.dtype == torch.float32 and images.max() <= 1 and masks.shape == (8, 32, 32)


def test_horizontal_flip_moves_boxes_with_pixels(fake_data_dir):
    data = ComposedDetection(**SMALL, horizontal_flip=True)
    scenes = data.composed("train")
    torch.manual_seed(0)
    images, boxes = data.transform_batch((scenes["images"][:16], scenes["boxes"][:16]), training=True)
    flipped = ~torch.isclose(images, scenes["images"][:16].float() / 255).flatten(1).all(dim=1)
    assert flipped.any() and (~flipped).any()
    segmentation = ComposedSegmentation(**SMALL)
    for image in flipped.nonzero().flatten().tolist():
        real = boxes[image, :, 0] >= 0
        original = scenes["boxes"][image, real]
        torch.testing.assert_close(boxes[image, real, 1], 1 - original[:, 3])
    masks = segmentation.flip_targets(scenes["masks"][:16], flipped)
    assert torch.equal(masks[flipped], scenes["masks"][:16][flipped].flip(-1))


@pytest.mark.parametrize("options, message", [
    ({"min_objects": 3, "max_objects": 2}, "min_objects"),
    ({"max_side": 80}, "max_side"),
    ({"max_overlap": 1.5}, "max_overlap"),
])
def test_bad_options_are_one_line(options, message):
    with pytest.raises(LitexpError, match=message):
        ComposedDetection(**{**SMALL, **options})
