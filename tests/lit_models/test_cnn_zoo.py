"""The CNN zoo: book architectures, torchvision-equal parameter counts, small-image stems."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision
from torch import nn

from experiments.cli import CONFIG_DIR
from experiments.zoo import ENTRIES as ZOO_ROWS
from lit_models import LitexpError, build_network, list_networks
from lit_models.googlenet import Inception
from lit_models.resnet import Residual

ZOO = ("alexnet", "vgg", "vgg11", "vgg11_narrow", "nin", "googlenet", "resnet18", "resnet34", "resnet50", "densenet")


def parameters(network: nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())


def conv_channels(network: nn.Module) -> list[int]:
    return [m.out_channels for m in network.modules() if isinstance(m, nn.Conv2d)]


def first_conv(network: nn.Module) -> nn.Conv2d:
    return next(m for m in network.modules() if isinstance(m, nn.Conv2d))


def test_the_zoo_is_registered():
    assert set(ZOO) <= set(list_networks("image_classifier"))


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50"])
def test_parameter_count_equals_torchvision(name):
    ours = build_network(name, in_channels=3, num_classes=1000, image_size=224)
    assert parameters(ours) == parameters(getattr(torchvision.models, name)())


@pytest.mark.parametrize("name,side,features", [
    ("alexnet", 224, (256, 5, 5)), ("vgg11_narrow", 224, (128, 7, 7)), ("nin", 224, (384, 5, 5)),
    ("googlenet", 96, (1024,)), ("resnet18", 96, (512,)), ("resnet50", 96, (2048,)), ("densenet", 96, (248,)),
])
@torch.no_grad()
def test_book_input_sizes_give_the_book_feature_shapes(name, side, features):
    network = build_network(name, in_channels=1, num_classes=10, image_size=side).eval()
    images = torch.zeros(1, 1, side, side)
    assert network.forward_features(images).shape == (1, *features)
    assert network(images).shape == (1, 10)
    if not name.startswith("vgg"):  # VGG has no stem: 3x3 convs throughout
        assert first_conv(network).kernel_size[0] > 3  # the ImageNet stem: 11x11 or 7x7


@pytest.mark.parametrize("name", ["alexnet", "nin", "googlenet", "resnet18", "densenet"])
def test_small_images_get_a_3x3_stride_1_stem(name):
    conv = first_conv(build_network(name, in_channels=1, num_classes=10, image_size=28))
    assert conv.kernel_size == (3, 3) and conv.stride == (1, 1)
    if name in ("alexnet", "nin"):  # flattened features: 28 px is too small for the ImageNet stem
        with pytest.raises(LitexpError, match="too small"):
            build_network(name, in_channels=1, num_classes=10, image_size=28, stem="imagenet")
    else:  # global average pooling copes with any size
        forced = first_conv(build_network(name, in_channels=1, num_classes=10, image_size=28, stem="imagenet"))
        assert forced.kernel_size[0] > 3


def test_vgg11_is_its_table_and_the_narrow_variant_divides_channels_by_4():
    assert conv_channels(build_network("vgg11")) == [64, 128, 256, 256, 512, 512, 512, 512]
    assert conv_channels(build_network("vgg11_narrow")) == [16, 32, 64, 64, 128, 128, 128, 128]
    with_bn = build_network("vgg11_narrow", image_size=28, batch_norm=True)
    assert conv_channels(with_bn) == [16, 32, 64, 64, 128, 128, 128, 128]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in with_bn.modules()) == 8
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in build_network("vgg11_narrow").modules())


def test_vgg_takes_its_architecture_as_data():
    assert conv_channels(build_network("vgg")) == conv_channels(build_network("vgg11"))
    vgg8 = build_network("vgg", image_size=28, conv_arch=[[1, 8], [2, 16], [1, 32]], hidden=64)
    assert conv_channels(vgg8) == [8, 16, 16, 32]
    assert sum(isinstance(m, nn.MaxPool2d) for m in vgg8.modules()) == 3
    assert vgg8.forward_features(torch.zeros(2, 1, 28, 28)).shape == (2, 32, 3, 3)
    for bad in ([], 5, [[1]], [[0, 8]], [[1, -4]], [[1, 8.5]], [["1", 8]], [[True, 8]]):
        with pytest.raises(LitexpError, match="conv_arch"):
            build_network("vgg", image_size=28, conv_arch=bad)


def test_nin_has_no_dense_layer():
    network = build_network("nin", in_channels=1, num_classes=10, image_size=28)
    assert not any(isinstance(m, nn.Linear) for m in network.modules())
    assert any(isinstance(m, nn.AdaptiveAvgPool2d) for m in network.head.modules())


def test_googlenet_has_nine_four_path_inception_blocks():
    network = build_network("googlenet", in_channels=1, num_classes=10, image_size=28, width_divisor=4)
    blocks = [m for m in network.modules() if isinstance(m, Inception)]
    assert len(blocks) == 9
    x = torch.zeros(2, blocks[0].path1[0].in_channels, 7, 7)
    paths = [blocks[0].path1(x), blocks[0].path2(x), blocks[0].path3(x), blocks[0].path4(x)]
    assert blocks[0](x).shape[1] == sum(p.shape[1] for p in paths) == blocks[0].out_channels


def test_resnet_blocks_basic_and_bottleneck():
    def residuals(name):
        return [m for m in build_network(name, width=8).modules() if isinstance(m, Residual)]

    assert len(residuals("resnet18")) == 8 and len(residuals("resnet34")) == 16
    bottlenecks = residuals("resnet50")
    assert len(bottlenecks) == 16
    kernels = [m.kernel_size[0] for m in bottlenecks[0].body.modules() if isinstance(m, nn.Conv2d)]
    assert kernels == [1, 3, 1]  # 1x1 reduce, 3x3, 1x1 expand
    assert bottlenecks[0].out_channels == 4 * 8


def test_densenet_growth_rate_and_transitions():
    network = build_network("densenet", in_channels=1, num_classes=10, image_size=28, blocks=[2, 3],
                            growth_rate=5, base_channels=8)
    # 8 + 2*5 = 18 -> transition halves to 9 -> 9 + 3*5 = 24 features
    assert network.forward_features(torch.zeros(2, 1, 28, 28)).shape == (2, 24)
    assert sum(isinstance(m, nn.AvgPool2d) for m in network.modules()) == 1


@pytest.mark.parametrize("name,args", [("alexnet", {"width_divisor": 0}), ("resnet18", {"width": 0}),
                                       ("googlenet", {"stem": "huge"}), ("densenet", {"growth_rate": 0})])
def test_bad_architecture_arguments_are_user_errors(name, args):
    with pytest.raises(LitexpError, match=f"cannot build network '{name}'"):
        build_network(name, **args)


def test_every_zoo_network_has_small_and_book_configs():
    configs = {p.stem for p in (CONFIG_DIR / "fashion_mnist").glob("*.yaml")}
    for model in ("alexnet", "vgg", "nin", "googlenet", "resnet18", "densenet"):
        assert {model, f"{model}_book"} <= configs
    assert {"resnet34", "resnet50"} <= configs
    assert "resize: 224" in (CONFIG_DIR / "fashion_mnist/vgg_book.yaml").read_text()
    assert "resize: 96" in (CONFIG_DIR / "fashion_mnist/resnet18_book.yaml").read_text()


def test_zoo_report_merges_rows_and_marks_the_unmeasured(tmp_path, capsys):
    from experiments.zoo import main as zoo_main

    row = {"parameters": 62136, "epochs": 2, "epoch_time_s": 10.0, "images_per_s": 5400, "train_acc": 0.9,
           "val_acc": 0.88, "test_acc": 0.87, "device": "cpu", "batch_size": 256}
    (tmp_path / "zoo.json").write_text(json.dumps({"bn_lenet": row, "lenet": {**row, "test_acc": 0.7}}))
    assert zoo_main(["--render-only", "--report-dir", str(tmp_path)]) == 0
    report = (tmp_path / "zoo.md").read_text()
    assert "| BN-LeNet" in report and "0.870 | 0.897 / 0.836 | meets |" in report
    assert "0.700 | 0.831 / 0.789 | below |" in report
    assert report.count("not measured") == len(ZOO_ROWS) - 2
    assert (tmp_path / "zoo.png").stat().st_size > 0
    assert zoo_main(["--models", "lenet,resnet99", "--report-dir", str(tmp_path)]) == 2
    assert "unknown zoo model resnet99" in capsys.readouterr().err
