"""Recurrent encoder-decoder translation networks: the book's GRU seq2seq and its Bahdanau-attention decoder.

Every seq2seq network (here and in ``transformer.py``) has the same interface, which the seq2seq task and
beam search rely on:

- ``forward(src (B, S), src_len (B,), tgt_in (B, T)) -> logits (B, T, V_tgt)``: teacher forcing, ``tgt_in`` is
  <bos> followed by the target without its last token.
- ``encode(src, src_len) -> state``: a dict of tensors, each with the batch as dim 0, so that beam search can
  reorder (``index_select(0, idx)``) and expand (``repeat_interleave(k, 0)``) every entry alike.
- ``decode_step(token (B,), state) -> (logits (B, V_tgt), new_state, attention (B, S) or None)``: one step,
  never modifying ``state`` in place.

Feeding ``tgt_in`` one token at a time through ``decode_step`` gives the logits of ``forward``.

The encoder packs the embedded source with the source lengths, so padding never enters the recurrence:
neither the final state nor the outputs at real positions depend on the pad region (outputs there are 0).
A bidirectional encoder's final states are merged per layer into decoder-sized states by
``tanh(Linear([forward; backward]))`` (a learned bridge, as Bahdanau et al. initialise their decoder from the
backward state through a tanh layer); its outputs keep both directions (B, S, 2H) as attention keys/values.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lit_models.layers import AdditiveAttention
from lit_models.registry import register_network

State = dict[str, torch.Tensor]


def init_seq2seq(module: nn.Module) -> None:
    """The book's initialisation (``init_seq2seq``): Xavier-uniform weights for dense and GRU layers."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
    if isinstance(module, nn.GRU):
        for name, parameter in module.named_parameters():
            if "weight" in name:
                nn.init.xavier_uniform_(parameter)


def gru(input_size: int, hidden_size: int, num_layers: int, dropout: float, bidirectional: bool = False) -> nn.GRU:
    """A batch-first GRU; dropout acts between layers only, so a single layer gets none (no warning)."""
    return nn.GRU(input_size, hidden_size, num_layers, dropout=dropout if num_layers > 1 else 0.0,
                  bidirectional=bidirectional, batch_first=True)


class GRUEncoder(nn.Module):
    """Source tokens -> per-position outputs (B, S, D * H) and a decoder-sized final state (L, B, H)."""

    def __init__(self, vocab_size: int, embed_size: int, num_hiddens: int, num_layers: int, dropout: float,
                 bidirectional: bool = False) -> None:
        super().__init__()
        self.num_layers, self.num_hiddens, self.bidirectional = num_layers, num_hiddens, bidirectional
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = gru(embed_size, num_hiddens, num_layers, dropout, bidirectional)
        self.bridge = nn.Linear(2 * num_hiddens, num_hiddens) if bidirectional else None
        self.output_features = num_hiddens * (2 if bidirectional else 1)

    def forward(self, src: torch.Tensor, src_len: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, length = src.shape
        embedded = self.embedding(src)  # (B, S, E)
        # packing needs lengths >= 1 on the CPU; an empty source is read as its first token (attention still
        # masks it out completely through the true src_len)
        lengths = src_len.clamp(1, length).cpu()
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        packed_outputs, state = self.rnn(packed)  # state (L * D, B, H), in the original batch order
        outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=length)  # (B, S, D * H)
        if self.bridge is not None:
            both = state.view(self.num_layers, 2, batch, self.num_hiddens)  # (L, forward | backward, B, H)
            state = torch.tanh(self.bridge(torch.cat([both[:, 0], both[:, 1]], dim=-1)))  # (L, B, H)
        return outputs, state


def batch_first(state: torch.Tensor) -> torch.Tensor:
    return state.transpose(0, 1)  # GRU state (L, B, H) <-> (B, L, H)


def layer_first(state: torch.Tensor) -> torch.Tensor:
    return state.transpose(0, 1).contiguous()  # (B, L, H) -> (L, B, H), as nn.GRU wants it


class Seq2Seq(nn.Module):
    """The book's GRU encoder-decoder: the encoder's final top-layer state is the context, concatenated to
    every decoder input embedding; the decoder starts from the encoder's final state.

    State: ``hidden`` (B, L, H) the decoder GRU state, ``context`` (B, H) the fixed context.
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, embed_size: int, num_hiddens: int,
                 num_layers: int, dropout: float, bidirectional: bool = False) -> None:
        super().__init__()
        self.encoder = GRUEncoder(src_vocab_size, embed_size, num_hiddens, num_layers, dropout, bidirectional)
        self.embedding = nn.Embedding(tgt_vocab_size, embed_size)
        self.rnn = gru(embed_size + num_hiddens, num_hiddens, num_layers, dropout)
        self.dense = nn.Linear(num_hiddens, tgt_vocab_size)
        self.apply(init_seq2seq)

    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> State:
        _, state = self.encoder(src, src_len)  # (L, B, H)
        return {"hidden": batch_first(state), "context": state[-1]}

    def _decode(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        embedded = self.embedding(tokens)  # (B, T, E)
        context = state["context"][:, None].expand(-1, tokens.shape[1], -1)  # (B, T, H)
        outputs, hidden = self.rnn(torch.cat([embedded, context], dim=-1), layer_first(state["hidden"]))
        return self.dense(outputs), {"hidden": batch_first(hidden), "context": state["context"]}  # (B, T, V)

    def forward(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        return self._decode(tgt_in, self.encode(src, src_len))[0]  # (B, T, V)

    def decode_step(self, token: torch.Tensor, state: State) -> tuple[torch.Tensor, State, Optional[torch.Tensor]]:
        logits, new_state = self._decode(token[:, None], state)
        return logits[:, 0], new_state, None  # (B, V)


class Seq2SeqAttention(nn.Module):
    """The book's Bahdanau-attention decoder: at each step the previous top-layer decoder state queries the
    encoder outputs (masked by the source length), and the context is concatenated to the input embedding.

    State: ``hidden`` (B, L, H) decoder GRU state, ``memory`` (B, S, D * H) encoder outputs, ``src_len`` (B,).
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, embed_size: int, num_hiddens: int,
                 num_layers: int, dropout: float, bidirectional: bool = False) -> None:
        super().__init__()
        self.encoder = GRUEncoder(src_vocab_size, embed_size, num_hiddens, num_layers, dropout, bidirectional)
        memory_size = self.encoder.output_features
        self.attention = AdditiveAttention(memory_size, num_hiddens, num_hiddens, dropout)
        self.embedding = nn.Embedding(tgt_vocab_size, embed_size)
        self.rnn = gru(embed_size + memory_size, num_hiddens, num_layers, dropout)
        self.dense = nn.Linear(num_hiddens, tgt_vocab_size)
        self.apply(init_seq2seq)

    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> State:
        memory, state = self.encoder(src, src_len)  # (B, S, D * H), (L, B, H)
        return {"hidden": batch_first(state), "memory": memory, "src_len": src_len}

    def decode_step(self, token: torch.Tensor, state: State) -> tuple[torch.Tensor, State, Optional[torch.Tensor]]:
        query = state["hidden"][:, -1:]  # (B, 1, H): the top layer after the previous step
        context = self.attention(query, state["memory"], state["memory"], state["src_len"])  # (B, 1, D * H)
        weights = self.attention.attention_weights[:, 0]  # (B, S)
        inputs = torch.cat([self.embedding(token)[:, None], context], dim=-1)  # (B, 1, E + D * H)
        outputs, hidden = self.rnn(inputs, layer_first(state["hidden"]))
        return self.dense(outputs[:, 0]), {**state, "hidden": batch_first(hidden)}, weights  # (B, V)

    def forward(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing, step by step: each query depends on the state the previous step produced."""
        state = self.encode(src, src_len)
        logits = []
        for t in range(tgt_in.shape[1]):
            step_logits, state, _ = self.decode_step(tgt_in[:, t], state)
            logits.append(step_logits)
        return torch.stack(logits, dim=1)  # (B, T, V)


@register_network("seq2seq", kind="seq2seq")
def seq2seq(src_vocab_size: int, tgt_vocab_size: int, embed_size: int = 256, num_hiddens: int = 256,
            num_layers: int = 2, dropout: float = 0.2, bidirectional: bool = False) -> nn.Module:
    """The book's GRU encoder-decoder (defaults: its English-French settings)."""
    return Seq2Seq(src_vocab_size, tgt_vocab_size, embed_size, num_hiddens, num_layers, dropout, bidirectional)


@register_network("seq2seq_attention", kind="seq2seq")
def seq2seq_attention(src_vocab_size: int, tgt_vocab_size: int, embed_size: int = 256, num_hiddens: int = 256,
                      num_layers: int = 2, dropout: float = 0.2, bidirectional: bool = False) -> nn.Module:
    """GRU encoder-decoder with Bahdanau attention (defaults: the book's English-French settings)."""
    return Seq2SeqAttention(src_vocab_size, tgt_vocab_size, embed_size, num_hiddens, num_layers, dropout,
                            bidirectional)
