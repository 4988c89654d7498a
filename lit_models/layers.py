"""Blocks and helpers shared by several network families; families import them, never redefine."""

from __future__ import annotations

import math
from typing import Literal, Optional

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


# -- attention ---------------------------------------------------------------------------------------
# Shared by the translation networks (Bahdanau decoder, Transformer). Shapes: queries (B, Q, d),
# keys (B, K, d), values (B, K, v); ``valid_lens`` (B,) masks keys per example, (B, Q) per query.
def masked_softmax(scores: torch.Tensor, valid_lens: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Softmax over the last axis where keys at positions >= the valid length get exactly zero weight.

    ``scores`` is (B, Q, K); ``valid_lens`` is None (no mask), (B,) (same length for every query) or (B, Q)
    (per query, e.g. causal masking). A fully masked row yields all-zero weights rather than NaN, so padded
    queries or empty sources never poison the gradients.
    """
    if valid_lens is None:
        return scores.softmax(dim=-1)
    lens = valid_lens[:, None, None] if valid_lens.dim() == 1 else valid_lens[:, :, None]  # (B, 1|Q, 1)
    mask = torch.arange(scores.shape[-1], device=scores.device) < lens  # (B, 1|Q, K)
    filled = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)  # finite: an all-masked row stays finite
    return filled.softmax(dim=-1) * mask  # the product makes masked weights exactly 0, full-mask rows 0


class DotProductAttention(nn.Module):
    """Scaled dot-product attention; dividing by sqrt(d) keeps the score variance near 1 for any width."""

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.attention_weights: Optional[torch.Tensor] = None  # (B, Q, K), from the last call

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                valid_lens: Optional[torch.Tensor] = None) -> torch.Tensor:
        scores = queries @ keys.transpose(1, 2) / math.sqrt(queries.shape[-1])  # (B, Q, K)
        self.attention_weights = masked_softmax(scores, valid_lens)
        return self.dropout(self.attention_weights) @ values  # (B, Q, v)


class AdditiveAttention(nn.Module):
    """Bahdanau's attention: a one-hidden-layer tanh network scores each (query, key) pair, so queries and
    keys may have different sizes."""

    def __init__(self, key_size: int, query_size: int, num_hiddens: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.W_k = nn.Linear(key_size, num_hiddens, bias=False)
        self.W_q = nn.Linear(query_size, num_hiddens, bias=False)
        self.w_v = nn.Linear(num_hiddens, 1, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.attention_weights: Optional[torch.Tensor] = None  # (B, Q, K), from the last call

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                valid_lens: Optional[torch.Tensor] = None) -> torch.Tensor:
        features = torch.tanh(self.W_q(queries)[:, :, None] + self.W_k(keys)[:, None])  # (B, Q, K, h)
        scores = self.w_v(features).squeeze(-1)  # (B, Q, K)
        self.attention_weights = masked_softmax(scores, valid_lens)
        return self.dropout(self.attention_weights) @ values  # (B, Q, v)


class MultiHeadAttention(nn.Module):
    """``num_heads`` scaled dot-product attentions over learned projections, run as one batched call.

    Queries, keys and values all have ``num_hiddens`` features; each head sees ``num_hiddens / num_heads``.
    """

    def __init__(self, num_hiddens: int, num_heads: int, dropout: float = 0.0, bias: bool = False) -> None:
        super().__init__()
        if num_hiddens % num_heads:
            raise ValueError(f"num_hiddens ({num_hiddens}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.attention = DotProductAttention(dropout)
        self.W_q = nn.Linear(num_hiddens, num_hiddens, bias=bias)
        self.W_k = nn.Linear(num_hiddens, num_hiddens, bias=bias)
        self.W_v = nn.Linear(num_hiddens, num_hiddens, bias=bias)
        self.W_o = nn.Linear(num_hiddens, num_hiddens, bias=bias)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape  # (B, n, d) -> (B * heads, n, d / heads)
        return x.reshape(batch, length, self.num_heads, -1).transpose(1, 2).reshape(batch * self.num_heads, length, -1)

    def _merge_heads(self, x: torch.Tensor) -> torch.Tensor:
        _, length, size = x.shape  # (B * heads, n, d / heads) -> (B, n, d)
        return x.reshape(-1, self.num_heads, length, size).transpose(1, 2).reshape(-1, length, self.num_heads * size)

    @property
    def attention_weights(self) -> Optional[torch.Tensor]:
        """(B, heads, Q, K) from the last call."""
        weights = self.attention.attention_weights
        return None if weights is None else weights.reshape(-1, self.num_heads, *weights.shape[1:])

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                valid_lens: Optional[torch.Tensor] = None) -> torch.Tensor:
        if valid_lens is not None:  # one copy per head, in the (B * heads) order of _split_heads
            valid_lens = valid_lens.repeat_interleave(self.num_heads, dim=0)
        output = self.attention(self._split_heads(self.W_q(queries)), self._split_heads(self.W_k(keys)),
                                self._split_heads(self.W_v(values)), valid_lens)  # (B * heads, Q, d / heads)
        return self.W_o(self._merge_heads(output))  # (B, Q, d)


class PositionalEncoding(nn.Module):
    """The book's sinusoidal positional encoding: P[i, 2j] = sin(i / 10000^(2j/d)), P[i, 2j+1] = cos(...).

    Fixed, not learned, so it is a non-persistent buffer: it follows ``.to(device)`` but stays out of
    checkpoints. ``start`` shifts the positions for step-by-step decoding.
    """

    def __init__(self, num_hiddens: int, dropout: float = 0.0, max_len: int = 1000) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        positions = torch.arange(max_len, dtype=torch.float32)[:, None]  # (max_len, 1)
        angles = positions / torch.pow(10000, torch.arange(0, num_hiddens, 2, dtype=torch.float32) / num_hiddens)
        encoding = torch.zeros(1, max_len, num_hiddens)
        encoding[0, :, 0::2] = torch.sin(angles)
        encoding[0, :, 1::2] = torch.cos(angles[:, : num_hiddens // 2])
        self.register_buffer("P", encoding, persistent=False)  # (1, max_len, d)

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        end = start + x.shape[1]
        if end > self.P.shape[1]:
            raise ValueError(f"sequence reaches position {end}, beyond max_len={self.P.shape[1]}")
        return self.dropout(x + self.P[:, start:end].to(x.dtype))  # (B, T, d)
