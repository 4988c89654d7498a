"""Fine-tuning: feature layers from a checkpoint or a torchvision file, a fresh head, backbone lr."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pytest
import torch
import torchvision

from datamodules.vision import DEBIAN_FASHION_MNIST
from experiments.bench_finetune import fine_tune, pretrain
from lit_models import ClassificationTask, LitexpError

SMALL_RESNET = {"network": "resnet18", "network_args": {"width": 4}}


def save_task(task: ClassificationTask, path: Path) -> str:
    torch.save({"state_dict": task.state_dict(), "hyper_parameters": dict(task.hparams)}, path)
    return str(path)


def test_features_come_from_the_checkpoint_and_the_head_is_new_and_xavier(tmp_path):
    torch.manual_seed(0)
    source = ClassificationTask(**SMALL_RESNET, num_classes=5)
    checkpoint = save_task(source, tmp_path / "source.ckpt")
    target = ClassificationTask(**SMALL_RESNET, num_classes=3, pretrained=checkpoint)
    for (name, theirs), ours in zip(source.network.features.state_dict().items(),
                                    target.network.features.state_dict().values(), strict=True):
        assert torch.equal(theirs, ours), name
    head = target.network.head
    assert head.out_features == 3 and torch.count_nonzero(head.bias) == 0
    bound = math.sqrt(6 / (head.in_features + head.out_features))  # Xavier-uniform range
    assert head.weight.abs().max() <= bound and head.weight.std() > bound / 4


def test_a_checkpoint_of_another_network_shape_is_a_clear_error(tmp_path):
    checkpoint = save_task(ClassificationTask(**SMALL_RESNET), tmp_path / "narrow.ckpt")
    with pytest.raises(LitexpError, match="does not fit this network's feature layers.*same network_args"):
        ClassificationTask(network="resnet18", network_args={"width": 8}, pretrained=checkpoint)


def test_torchvision_weights_file_loads_into_our_resnet(tmp_path):
    torch.manual_seed(0)
    reference = torchvision.models.resnet18()
    weights = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), weights)
    task = ClassificationTask(network="resnet18", num_classes=4, input_shape=(3, 96, 96), pretrained=str(weights))
    features = task.network.features
    assert torch.equal(features[0][0].weight, reference.conv1.weight)
    assert torch.equal(features[-3].body[1][1].running_var, reference.layer4[1].bn2.running_var)
    assert torch.equal(features[-3].shortcut.weight if hasattr(features[-3].shortcut, "weight")
                       else features[-4].shortcut[0].weight, reference.layer4[0].downsample[0].weight)
    assert task.network.head.out_features == 4
    reference.eval(), task.network.eval()
    images = torch.randn(2, 3, 96, 96)
    with torch.no_grad():  # same weights, same layers: same features
        expected = torch.flatten(reference.avgpool(reference.layer4(reference.layer3(reference.layer2(
            reference.layer1(reference.maxpool(reference.relu(reference.bn1(reference.conv1(images))))))))), 1)
        assert torch.allclose(task.network.forward_features(images), expected, atol=1e-5)


def test_imagenet_weights_on_a_grey_network_is_a_clear_error(tmp_path):
    weights = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    with pytest.raises(LitexpError, match="do not fit: conv1.weight.*in_channels"):
        ClassificationTask(network="resnet18", input_shape=(1, 96, 96), pretrained=str(weights))


def test_files_that_need_code_to_load_are_refused(tmp_path):
    unsafe = tmp_path / "unsafe.ckpt"
    torch.save({"state_dict": {}, "options": argparse.Namespace(x=1)}, unsafe)
    with pytest.raises(LitexpError, match="cannot read pretrained weights"):
        ClassificationTask(**SMALL_RESNET, pretrained=str(unsafe))
    with pytest.raises(LitexpError, match="not found"):
        ClassificationTask(**SMALL_RESNET, pretrained=str(tmp_path / "missing.ckpt"))


def test_backbone_learning_rate_and_freezing():
    task = ClassificationTask(network="lenet", lr=0.2, backbone_lr_mult=0.1)
    backbone = {id(p) for p in task.network.features.parameters()}
    for group in task.configure_optimizers().param_groups:
        in_backbone = {id(p) in backbone for p in group["params"]}
        assert len(in_backbone) == 1  # a group is all backbone or all head
        assert group["lr"] == pytest.approx(0.02 if in_backbone == {True} else 0.2)
    frozen = ClassificationTask(network="lenet", freeze_backbone=True)
    assert not any(p.requires_grad for p in frozen.network.features.parameters())
    trained = {id(p) for group in frozen.optimizer_groups() for p in group["params"]}
    assert trained == {id(p) for p in frozen.network.head.parameters()}
    with pytest.raises(LitexpError, match="no 'features' and 'head'"):
        ClassificationTask(network="mlp", freeze_backbone=True)


@pytest.mark.skipif(not Path(DEBIAN_FASHION_MNIST).exists(), reason="real Fashion-MNIST not installed")
def test_fine_tuning_on_new_classes_end_to_end(tmp_path, monkeypatch):
    # pretrain on T-shirt..coat (classes 0-4), fine-tune on sandal..ankle boot (5-9); how it compares with
    # training from scratch is a benchmark: python -m experiments.bench_finetune
    monkeypatch.setenv("LITEXP_DATA_DIR", str(tmp_path / "data"))
    checkpoint = pretrain(tmp_path, batches=20)
    tuned = fine_tune(tmp_path, checkpoint, batches=4)
    assert tuned["data"]["classes"] == [5, 6, 7, 8, 9]
    assert tuned["test"]["metrics"]["test/acc"] > 0.4  # chance on five classes is 0.2
