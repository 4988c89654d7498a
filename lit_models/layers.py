"""Blocks and helpers shared by several network families; families import them, never redefine."""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "gelu": nn.GELU}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def conv_bn_act(in_channels: int, out_channels: int, kernel_size: int, padding: int = 0,
                stride: int = 1, act: str = "relu") -> nn.Sequential:
    """Conv -> BatchNorm -> activation; the conv has no bias because the norm's shift replaces it."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False),
        nn.BatchNorm2d(out_channels),
        activation(act),
    )


@torch.no_grad()
def output_features(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Number of features ``module`` produces per sample, found with one dummy forward pass.

    Used at build time to size the first dense layer explicitly (no lazy layers).
    """
    was_training = module.training
    module.eval()
    features = module(torch.zeros(1, *input_shape)).flatten(1).shape[1]
    module.train(was_training)
    return features
