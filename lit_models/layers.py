"""Blocks and helpers shared by several network families; families import them, never redefine."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from lit_models.init import init_weights

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "gelu": nn.GELU, "identity": nn.Identity}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


SMALL_IMAGE = 64  # below this side length, networks built for ImageNet use a small-image stem
Stem = Literal["auto", "imagenet", "small"]


def choose_stem(stem: str, image_size: int) -> str:
    """``auto`` picks the ImageNet stem (large strided conv, pooling) from 64 px up, else the small one.

    The small stem (3x3, stride 1) keeps 28/32 px inputs from shrinking to nothing before the last stage.
    """
    if stem not in ("auto", "imagenet", "small"):
        raise ValueError(f"unknown stem {stem!r}; choose 'auto', 'imagenet' or 'small'")
    if stem == "auto":
        return "small" if image_size < SMALL_IMAGE else "imagenet"
    return stem


def conv_bn_act(in_channels: int, out_channels: int, kernel_size: int, padding: int = 0,
                stride: int = 1, act: str = "relu") -> nn.Sequential:
    """Conv -> BatchNorm -> activation; the conv has no bias because the norm's shift replaces it."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False),
        nn.BatchNorm2d(out_channels),
        activation(act),
    )


def he_initialised(network: nn.Module) -> nn.Module:
    """He-normal weights, zero biases: deep ReLU networks without batch norm (AlexNet, VGG, NiN,
    GoogLeNet) keep their activation scale instead of dying out under PyTorch's default init."""
    init_weights(network, "he")
    return network


@torch.no_grad()
def output_features(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Number of features ``module`` produces per sample, found with one dummy forward pass.

    Used at build time to size the first dense layer explicitly (no lazy layers).
    """
    was_training = module.training
    module.eval()
    try:
        features = module(torch.zeros(1, *input_shape)).flatten(1).shape[1]
    except RuntimeError as error:  # a pool or conv left with less than one pixel
        raise ValueError(f"input {tuple(input_shape)} is too small for these layers ({error})") from error
    finally:
        module.train(was_training)
    return features


def dropout_dense_head(in_features: int, hidden: int, num_classes: int, dropout: float) -> nn.Sequential:
    """AlexNet's and VGG's classifier: flatten, two ReLU dense layers with dropout, then the logits."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    )
