"""Every registered network: right output shapes, gradients reach every parameter, no NaN."""

from __future__ import annotations

import pytest
import torch

import lit_models
from lit_models import LitexpError, build_network, list_networks, register_network
from lit_models.registry import get_network_entry

IMAGE_SHAPES = [(1, 28), (3, 32)]  # (channels, side): grey 28 px and colour 32 px inputs


@pytest.mark.parametrize("name", list_networks("image_classifier"))
@pytest.mark.parametrize("channels,side", IMAGE_SHAPES)
def test_image_classifier_shapes_and_gradients(name, channels, side):
    torch.manual_seed(0)
    network = build_network(name, in_channels=channels, num_classes=7, image_size=side)
    images = torch.randn(4, channels, side, side)
    logits = network(images)
    assert logits.shape == (4, 7)
    assert torch.isfinite(logits).all()
    logits.logsumexp(dim=1).sum().backward()
    for parameter_name, parameter in network.named_parameters():
        assert parameter.grad is not None, f"{name}: no gradient reaches {parameter_name}"
        assert torch.isfinite(parameter.grad).all(), f"{name}: non-finite gradient in {parameter_name}"
        assert parameter.grad.abs().sum() > 0, f"{name}: zero gradient in {parameter_name}"


@pytest.mark.parametrize("name", list_networks("regressor"))
def test_regressor_shapes_and_gradients(name):
    network = build_network(name, in_features=3, num_outputs=2)
    outputs = network(torch.randn(5, 3))
    assert outputs.shape == (5, 2)
    outputs.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in network.parameters())


def test_registry_lists_the_curriculum_models():
    assert {"linear_regression", "softmax_regression", "mlp", "lenet"} <= set(list_networks())


def test_duplicate_registration_is_rejected():
    with pytest.raises(ValueError, match="already registered"):
        register_network("lenet")(lambda: torch.nn.Identity())


def test_unknown_network_lists_the_valid_ones():
    with pytest.raises(LitexpError, match="unknown network 'lenett'.*lenet"):
        build_network("lenett")


def test_unknown_network_argument_names_the_accepted_ones():
    with pytest.raises(LitexpError, match="no argument 'hidden'.*hidden_sizes"):
        build_network("mlp", hidden=3)


def test_kind_filter_rejects_a_network_of_another_task():
    with pytest.raises(LitexpError):
        get_network_entry("linear_regression", kind="image_classifier")


def test_book_lenet_matches_the_book_layer_by_layer():
    network = build_network("lenet", in_channels=1, num_classes=10, image_size=28)
    layers = [type(m).__name__ for m in network.modules() if not list(m.children())]
    assert layers == ["Conv2d", "Sigmoid", "AvgPool2d", "Conv2d", "Sigmoid", "AvgPool2d", "Flatten",
                      "Linear", "Sigmoid", "Linear", "Sigmoid", "Linear"]
    assert network.forward_features(torch.zeros(1, 1, 28, 28)).shape == (1, 16, 5, 5)
    assert sum(p.numel() for p in network.parameters()) == 61706  # the book's parameter count


def test_modern_lenet_uses_batch_norm_relu_and_max_pooling():
    network = build_network("lenet", variant="modern")
    kinds = {type(m).__name__ for m in network.modules()}
    assert {"BatchNorm2d", "BatchNorm1d", "ReLU", "MaxPool2d"} <= kinds
    assert not {"Sigmoid", "AvgPool2d"} & kinds


def test_mlp_dropout_per_layer():
    network = build_network("mlp", hidden_sizes=[32, 16], dropout=[0.2, 0.5], activation="tanh")
    rates = [m.p for m in network.modules() if isinstance(m, torch.nn.Dropout)]
    assert rates == [0.2, 0.5]
    with pytest.raises(LitexpError, match="one rate per hidden layer"):
        build_network("mlp", hidden_sizes=[32, 16], dropout=[0.2])


def test_package_exports_tasks():
    assert issubclass(lit_models.ClassificationTask, lit_models.Task)


SEQ2SEQ_SMALL = {"embed_size": 6, "num_hiddens": 8, "num_layers": 2, "ffn_num_hiddens": 12, "num_heads": 2,
                 "num_blks": 2}  # each builder takes the ones it knows


@pytest.mark.parametrize("name", list_networks("seq2seq"))
def test_seq2seq_shapes_and_gradients(name):
    torch.manual_seed(0)
    accepted = get_network_entry(name, "seq2seq").arguments()
    network = build_network(name, src_vocab_size=9, tgt_vocab_size=7,
                            **{k: v for k, v in SEQ2SEQ_SMALL.items() if k in accepted})
    src, src_len, tgt_in = torch.randint(9, (3, 5)), torch.tensor([5, 2, 1]), torch.randint(7, (3, 4))
    logits = network(src, src_len, tgt_in)
    assert logits.shape == (3, 4, 7)
    assert torch.isfinite(logits).all()
    logits.logsumexp(dim=-1).sum().backward()
    for parameter_name, parameter in network.named_parameters():
        assert parameter.grad is not None, f"{name}: no gradient reaches {parameter_name}"
        assert torch.isfinite(parameter.grad).all(), f"{name}: non-finite gradient in {parameter_name}"
        assert parameter.grad.abs().sum() > 0, f"{name}: zero gradient in {parameter_name}"
