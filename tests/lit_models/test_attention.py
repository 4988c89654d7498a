"""Attention layers: masking is exact, multi-head matches PyTorch's kernel, positional encoding values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lit_models.layers import (
    AdditiveAttention,
    DotProductAttention,
    MultiHeadAttention,
    PositionalEncoding,
    masked_softmax,
)


def test_masked_softmax_zeroes_positions_beyond_the_valid_length():
    torch.manual_seed(0)
    weights = masked_softmax(torch.randn(3, 2, 5), torch.tensor([2, 5, 1]))
    for b, length in enumerate([2, 5, 1]):
        assert (weights[b, :, length:] == 0).all()
        assert (weights[b, :, :length] > 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 2))


def test_masked_softmax_without_lengths_is_the_plain_softmax():
    scores = torch.randn(2, 3, 4)
    torch.testing.assert_close(masked_softmax(scores, None), scores.softmax(-1))


def test_masked_softmax_per_query_lengths():
    lens = torch.tensor([[1, 2, 3], [3, 1, 2]])  # (B, Q)
    weights = masked_softmax(torch.randn(2, 3, 4), lens)
    mask = torch.arange(4) < lens[:, :, None]
    assert (weights[~mask] == 0).all() and (weights[mask] > 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3))


def test_fully_masked_rows_give_zero_weights_and_finite_gradients():
    scores = torch.randn(2, 3, 4, requires_grad=True)
    weights = masked_softmax(scores, torch.tensor([[0, 2, 0], [4, 0, 1]]))
    assert torch.isfinite(weights).all()
    assert (weights[0, 0] == 0).all() and (weights[1, 1] == 0).all()
    torch.testing.assert_close(weights[0, 1].sum(), torch.tensor(1.0))
    (weights * torch.randn_like(weights)).sum().backward()
    assert torch.isfinite(scores.grad).all()
    # and a whole layer on an empty key set
    attention = DotProductAttention()
    out = attention(torch.randn(2, 1, 4), torch.randn(2, 3, 4), torch.randn(2, 3, 6), torch.tensor([0, 3]))
    assert torch.isfinite(out).all() and (out[0] == 0).all()


def test_dot_product_attention_is_the_scaled_formula():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 8), torch.randn(2, 5, 8), torch.randn(2, 5, 4)
    lens = torch.tensor([5, 2])
    attention = DotProductAttention(dropout=0.5).eval()
    out = attention(q, k, v, lens)
    mask = torch.arange(5) < lens[:, None, None]
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.expand(2, 3, 5))
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    assert attention.attention_weights.shape == (2, 3, 5)
    assert (attention.attention_weights[1, :, 2:] == 0).all()


def test_additive_attention_masks_and_mixes_values():
    torch.manual_seed(0)
    attention = AdditiveAttention(key_size=6, query_size=4, num_hiddens=5).eval()
    q, k, v = torch.randn(2, 1, 4), torch.randn(2, 7, 6), torch.randn(2, 7, 3)
    out = attention(q, k, v, torch.tensor([3, 7]))
    weights = attention.attention_weights
    assert out.shape == (2, 1, 3) and weights.shape == (2, 1, 7)
    assert (weights[0, :, 3:] == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 1))
    torch.testing.assert_close(out, weights @ v)
    # by hand: w_v . tanh(W_q q + W_k k)
    scores = attention.w_v(torch.tanh(attention.W_q(q)[:, :, None] + attention.W_k(k)[:, None])).squeeze(-1)
    torch.testing.assert_close(weights[1], scores[1].softmax(-1))


@pytest.mark.parametrize("per_query", [False, True])
def test_multi_head_attention_matches_torch_sdpa_per_head(per_query):
    torch.manual_seed(0)
    batch, heads, d, nq, nk = 2, 4, 16, 3, 5
    mha = MultiHeadAttention(d, heads, dropout=0.3, bias=True).eval()
    q, kv = torch.randn(batch, nq, d), torch.randn(batch, nk, d)
    lens = torch.tensor([[1, 3, 5], [2, 2, 4]]) if per_query else torch.tensor([4, 2])
    out = mha(q, kv, kv, lens)

    def split(x):  # (B, n, d) -> (B, heads, n, d / heads)
        return x.reshape(batch, x.shape[1], heads, -1).transpose(1, 2)

    mask = torch.arange(nk) < (lens[:, :, None] if per_query else lens[:, None, None])  # (B, Q|1, K)
    per_head = F.scaled_dot_product_attention(split(mha.W_q(q)), split(mha.W_k(kv)), split(mha.W_v(kv)),
                                              attn_mask=mask[:, None].expand(batch, heads, nq, nk))
    expected = mha.W_o(per_head.transpose(1, 2).reshape(batch, nq, d))
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    weights = mha.attention_weights
    assert weights.shape == (batch, heads, nq, nk)
    assert (weights[~mask[:, None].expand_as(weights)] == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(batch, heads, nq))


def test_multi_head_attention_rejects_indivisible_heads():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 4)


def test_positional_encoding_values():
    d = 8
    encoding = PositionalEncoding(d, dropout=0.5, max_len=50).eval()
    out = encoding(torch.zeros(1, 20, d))  # adds P to zeros: P itself
    assert out.shape == (1, 20, d)
    for position in (0, 1, 7, 19):
        for j in range(d // 2):
            angle = position / 10000 ** (2 * j / d)
            assert out[0, position, 2 * j].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert out[0, position, 2 * j + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    torch.testing.assert_close(encoding(torch.zeros(1, 3, d), start=7), out[:, 7:10])
    assert "P" not in encoding.state_dict()
    with pytest.raises(ValueError, match="max_len"):
        encoding(torch.zeros(1, 51, d))


def test_positional_encoding_odd_width():
    out = PositionalEncoding(5, max_len=4)(torch.zeros(2, 4, 5))
    assert out.shape == (2, 4, 5) and torch.isfinite(out).all()
