"""The book's Transformer encoder-decoder for translation (post-norm, sinusoidal positions).

It follows the seq2seq interface described in ``seq2seq.py``. Step-by-step decoding keeps, per decoder
block, the block's inputs at every step so far (B, t, d) in the state (``cache_0`` ... ``cache_{n-1}``): they
are the keys and values of that block's self-attention, so one step costs one new query instead of
re-running the whole prefix. The positions decoded so far are ``cache_0.shape[1]``.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from lit_models.layers import MultiHeadAttention, PositionalEncoding
from lit_models.registry import register_network

State = dict[str, torch.Tensor]


class PositionWiseFFN(nn.Module):
    """The same two-layer ReLU network applied at every position."""

    def __init__(self, num_hiddens: int, ffn_num_hiddens: int) -> None:
        super().__init__()
        self.dense1 = nn.Linear(num_hiddens, ffn_num_hiddens)
        self.relu = nn.ReLU()
        self.dense2 = nn.Linear(ffn_num_hiddens, num_hiddens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense2(self.relu(self.dense1(x)))  # (B, T, d)


class AddNorm(nn.Module):
    """Residual connection then layer norm (post-norm, as in the original Transformer and the book)."""

    def __init__(self, num_hiddens: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.ln = nn.LayerNorm(num_hiddens)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.ln(self.dropout(y) + x)


class TransformerEncoderBlock(nn.Module):
    """Self-attention over the source (padding masked as keys) and a position-wise FFN, each with AddNorm."""

    def __init__(self, num_hiddens: int, ffn_num_hiddens: int, num_heads: int, dropout: float,
                 bias: bool = False) -> None:
        super().__init__()
        self.attention = MultiHeadAttention(num_hiddens, num_heads, dropout, bias)
        self.addnorm1 = AddNorm(num_hiddens, dropout)
        self.ffn = PositionWiseFFN(num_hiddens, ffn_num_hiddens)
        self.addnorm2 = AddNorm(num_hiddens, dropout)

    def forward(self, x: torch.Tensor, src_len: torch.Tensor) -> torch.Tensor:
        y = self.addnorm1(x, self.attention(x, x, x, src_len))
        return self.addnorm2(y, self.ffn(y))  # (B, S, d)


class TransformerDecoderBlock(nn.Module):
    """Causal self-attention, encoder-decoder attention (masked by the source length), FFN; each with AddNorm."""

    def __init__(self, num_hiddens: int, ffn_num_hiddens: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.attention1 = MultiHeadAttention(num_hiddens, num_heads, dropout)
        self.addnorm1 = AddNorm(num_hiddens, dropout)
        self.attention2 = MultiHeadAttention(num_hiddens, num_heads, dropout)
        self.addnorm2 = AddNorm(num_hiddens, dropout)
        self.ffn = PositionWiseFFN(num_hiddens, ffn_num_hiddens)
        self.addnorm3 = AddNorm(num_hiddens, dropout)

    def forward(self, x: torch.Tensor, keys_values: torch.Tensor, self_lens: Optional[torch.Tensor],
                memory: torch.Tensor, src_len: torch.Tensor) -> torch.Tensor:
        """``x`` (B, T, d) queries; ``keys_values`` (B, T', d) this block's inputs so far; ``self_lens`` (B, T)
        the causal mask for a whole sequence, or None for one step against a cache of past inputs."""
        y = self.addnorm1(x, self.attention1(x, keys_values, keys_values, self_lens))
        z = self.addnorm2(y, self.attention2(y, memory, memory, src_len))
        return self.addnorm3(z, self.ffn(z))  # (B, T, d)


class Transformer(nn.Module):
    """Encoder and decoder stacks of ``num_blks`` blocks; embeddings are scaled by sqrt(d) so that they are on
    the scale of the positional encoding (values in [-1, 1]) they are added to.

    State: ``memory`` (B, S, d) encoder outputs, ``src_len`` (B,), ``cache_i`` (B, t, d) decoder block i's
    inputs at the t steps decoded so far.
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, num_hiddens: int, ffn_num_hiddens: int,
                 num_heads: int, num_blks: int, dropout: float) -> None:
        super().__init__()
        self.num_hiddens, self.num_blks = num_hiddens, num_blks
        self.src_embedding = nn.Embedding(src_vocab_size, num_hiddens)
        self.src_positions = PositionalEncoding(num_hiddens, dropout)
        self.encoder_blks = nn.ModuleList(
            TransformerEncoderBlock(num_hiddens, ffn_num_hiddens, num_heads, dropout) for _ in range(num_blks))
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, num_hiddens)
        self.tgt_positions = PositionalEncoding(num_hiddens, dropout)
        self.decoder_blks = nn.ModuleList(
            TransformerDecoderBlock(num_hiddens, ffn_num_hiddens, num_heads, dropout) for _ in range(num_blks))
        self.dense = nn.Linear(num_hiddens, tgt_vocab_size)

    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> State:
        x = self.src_positions(self.src_embedding(src) * math.sqrt(self.num_hiddens))  # (B, S, d)
        for blk in self.encoder_blks:
            x = blk(x, src_len)
        empty = x.new_zeros(x.shape[0], 0, self.num_hiddens)  # (B, 0, d): nothing decoded yet
        return {"memory": x, "src_len": src_len, **{f"cache_{i}": empty for i in range(self.num_blks)}}

    def _embed_target(self, tokens: torch.Tensor, start: int) -> torch.Tensor:
        return self.tgt_positions(self.tgt_embedding(tokens) * math.sqrt(self.num_hiddens), start)  # (B, T, d)

    def forward(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        state = self.encode(src, src_len)
        batch, length = tgt_in.shape
        causal = torch.arange(1, length + 1, device=tgt_in.device).expand(batch, length)  # (B, T): query t sees <= t
        x = self._embed_target(tgt_in, 0)
        for blk in self.decoder_blks:
            x = blk(x, x, causal, state["memory"], state["src_len"])
        return self.dense(x)  # (B, T, V)

    def decode_step(self, token: torch.Tensor, state: State) -> tuple[torch.Tensor, State, Optional[torch.Tensor]]:
        x = self._embed_target(token[:, None], state["cache_0"].shape[1])  # (B, 1, d)
        new_state = dict(state)
        for i, blk in enumerate(self.decoder_blks):
            keys_values = torch.cat([state[f"cache_{i}"], x], dim=1)  # (B, t + 1, d)
            new_state[f"cache_{i}"] = keys_values
            x = blk(x, keys_values, None, state["memory"], state["src_len"])
        weights = self.decoder_blks[-1].attention2.attention_weights.mean(dim=1)[:, 0]  # (B, S), heads averaged
        return self.dense(x[:, 0]), new_state, weights  # (B, V)


@register_network("transformer", kind="seq2seq")
def transformer(src_vocab_size: int, tgt_vocab_size: int, num_hiddens: int = 256, ffn_num_hiddens: int = 64,
                num_heads: int = 4, num_blks: int = 2, dropout: float = 0.2) -> nn.Module:
    """The book's Transformer (defaults: its English-French settings)."""
    return Transformer(src_vocab_size, tgt_vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_blks, dropout)
