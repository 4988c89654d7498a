"""Detectors (TinySSD, RoI pooling), FCN's bilinear transposed convolution, and the tasks' losses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import roi_pool

from lit_models import DetectionTask, LitexpError, SegmentationTask, build_network, list_networks
from lit_models.segmentation import bilinear_upsampling


def test_detectors_are_registered():
    assert {"tiny_ssd", "fast_rcnn"} <= set(list_networks("detector"))
    assert "fcn" in list_networks("segmenter")


def test_tiny_ssd_predicts_for_every_anchor_of_five_scales():
    network = build_network("tiny_ssd", kind="detector", in_channels=1, num_classes=10, image_size=64)
    anchors, class_logits, offsets = network(torch.zeros(2, 1, 64, 64))
    cells = 8 * 8 + 4 * 4 + 2 * 2 + 1 + 1  # base network side / 8, then halved three times, then a global pool
    assert anchors.shape == (cells * 4, 4)  # 2 sizes + 3 ratios - 1 anchors per cell
    assert class_logits.shape == (2, cells * 4, 11) and offsets.shape == (2, cells * 4 * 4)


def test_tiny_ssd_refuses_too_small_images():
    with pytest.raises(LitexpError, match="at least 64 px"):
        build_network("tiny_ssd", kind="detector", in_channels=1, num_classes=2, image_size=32)


@pytest.mark.parametrize("pooling", ["roi_pool", "roi_align"])
def test_roi_detector_shapes(pooling):
    network = build_network("fast_rcnn", kind="detector", in_channels=3, num_classes=4, image_size=64, pooling=pooling)
    proposals, class_logits, offsets = network(torch.zeros(2, 3, 64, 64))
    assert class_logits.shape == (2, len(proposals), 5) and offsets.shape == (2, len(proposals) * 4)
    assert (proposals >= 0).all() and (proposals <= 1).all()


def test_roi_detector_pools_like_the_books_example():
    # d2l 14.8.2: a 4x4 feature map, two regions on a 40 px image at spatial scale 0.1, 2x2 bins
    network = build_network("fast_rcnn", kind="detector", in_channels=1, num_classes=2, image_size=40)
    network.spatial_scale = 0.1
    network.pooled = 2
    network.proposals = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.0, 0.25, 0.75, 0.75]])
    features = torch.arange(16.0).reshape(1, 1, 4, 4)
    pooled = network.pool(features)
    expected = torch.tensor([[[[5.0, 6.0], [9.0, 10.0]]], [[[9.0, 11.0], [13.0, 15.0]]]])
    torch.testing.assert_close(pooled, expected)
    rois = torch.tensor([[0, 0, 0, 20, 20], [0, 0, 10, 30, 30]], dtype=torch.float32)
    torch.testing.assert_close(pooled, roi_pool(features, rois, output_size=(2, 2), spatial_scale=0.1))


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_bilinear_transposed_convolution_matches_interpolate(factor):
    upsample = bilinear_upsampling(3, factor)
    images = torch.rand(2, 3, 6, 6, generator=torch.Generator().manual_seed(factor))
    with torch.no_grad():
        upsampled = upsample(images)
    reference = F.interpolate(images, scale_factor=factor, mode="bilinear", align_corners=False)
    assert upsampled.shape == reference.shape == (2, 3, 6 * factor, 6 * factor)
    inner = slice(factor, -factor)  # the borders differ: the convolution pads with zeros, interpolate clamps
    torch.testing.assert_close(upsampled[..., inner, inner], reference[..., inner, inner], atol=1e-5, rtol=0)


def test_fcn_on_a_zoo_backbone_keeps_the_image_size():
    network = build_network("fcn", kind="segmenter", in_channels=1, num_classes=11, image_size=32,
                            backbone_args={"stem": "small", "width": 4})
    assert network.factor == 8
    assert network(torch.zeros(2, 1, 32, 32)).shape == (2, 11, 32, 32)


def test_fcn_rejects_an_unknown_backbone():
    with pytest.raises(LitexpError, match="unknown network"):
        build_network("fcn", kind="segmenter", in_channels=1, num_classes=3, image_size=32, backbone="nope")


def detection_task(**options) -> DetectionTask:
    return DetectionTask(network="tiny_ssd", num_classes=2, input_shape=(1, 64, 64), **options)


def test_hard_negatives_keep_ratio_negatives_per_positive():
    task = detection_task(negative_ratio=2.0)
    classes = torch.zeros(1, 10, dtype=torch.long)
    classes[0, 0] = 1  # one positive anchor
    logits = torch.zeros(1, 10, 3)
    logits[0, 1:, 1] = torch.arange(9.0)  # negatives' losses grow with their index: the hardest are the last two
    zeros = torch.zeros(1, 40)
    class_loss, box_loss = task.losses(logits, zeros, zeros, zeros, classes)
    ce = F.cross_entropy(logits[0], classes[0], reduction="none")
    torch.testing.assert_close(class_loss, ce[0] + ce[8] + ce[9])
    assert box_loss == 0
    everything, _ = detection_task(negative_ratio=None).losses(logits, zeros, zeros, zeros, classes)
    torch.testing.assert_close(everything, ce.sum())


def test_detection_step_scores_a_perfect_detector():
    task = detection_task()
    targets = torch.tensor([[[1, 0.1, 0.1, 0.5, 0.6], [-1, 0, 0, 0, 0]]])
    anchors = torch.tensor([[0.1, 0.1, 0.5, 0.6], [0.6, 0.6, 0.9, 0.9]])
    logits = torch.tensor([[[-9.0, -9.0, 9.0], [9.0, -9.0, -9.0]]])  # anchor 0 is class 1, anchor 1 background
    detections = task.detect(anchors, logits, torch.zeros(1, 8))
    task.val_map.update(detections, [{"boxes": targets[0, :1, 1:], "labels": torch.tensor([1])}])
    assert float(task.val_map.compute()["map_50"]) == pytest.approx(1.0)


def test_segmentation_refuses_masks_of_another_size():
    task = SegmentationTask(network="fcn", network_args={"backbone_args": {"stem": "small", "width": 4}},
                            num_classes=2, input_shape=(1, 32, 32))
    with pytest.raises(LitexpError, match="masks must have the images' size"):
        task._step((torch.zeros(2, 1, 32, 32), torch.zeros(2, 16, 16, dtype=torch.uint8)), "train")
