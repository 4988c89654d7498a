"""Recurrent networks: the book's RNN, GRU and LSTM cells written out, PyTorch's fused layers, and
language models and bidirectional encoders built on either.

The from-scratch layers take the same arguments and hold parameters with the same names and gate
order as ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` (``weight_ih_l0``, ``bias_hh_l1_reverse``, ...), so
one ``state_dict`` loads into both and their outputs can be compared. All layers are batch-first:
inputs (B, T, I), outputs (B, T, D * H), state (L * D, B, H) (a pair (h, c) for the LSTM).
"""

from __future__ import annotations

import math
from typing import Literal, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from lit_models.registry import register_network

Cell = Literal["rnn", "gru", "lstm"]
Implementation = Literal["library", "scratch"]
State = Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]
GATES = {"rnn": 1, "gru": 3, "lstm": 4}  # weight blocks stacked in each weight matrix


# -- the cells, gates written out ------------------------------------------------------------------
# ``x_proj`` is the input's share of every gate, x W_ih^T + b_ih, computed for all steps at once.
def rnn_step(x_proj: torch.Tensor, h: torch.Tensor, c: Optional[torch.Tensor], w_hh: torch.Tensor,
             b_hh: torch.Tensor) -> tuple[torch.Tensor, None]:
    return torch.tanh(x_proj + h @ w_hh.T + b_hh), None


def gru_step(x_proj, h, c, w_hh, b_hh):
    x_reset, x_update, x_new = x_proj.chunk(3, dim=-1)  # PyTorch's gate order: r, z, n
    h_reset, h_update, h_new = (h @ w_hh.T + b_hh).chunk(3, dim=-1)
    reset = torch.sigmoid(x_reset + h_reset)  # how much of the past enters the candidate
    update = torch.sigmoid(x_update + h_update)  # how much of the old state is kept
    candidate = torch.tanh(x_new + reset * h_new)
    return update * h + (1 - update) * candidate, None


def lstm_step(x_proj, h, c, w_hh, b_hh):
    gates = x_proj + h @ w_hh.T + b_hh
    input_gate, forget_gate, cell_input, output_gate = gates.chunk(4, dim=-1)  # PyTorch's order: i, f, g, o
    c = torch.sigmoid(forget_gate) * c + torch.sigmoid(input_gate) * torch.tanh(cell_input)
    return torch.sigmoid(output_gate) * torch.tanh(c), c


STEPS = {"rnn": rnn_step, "gru": gru_step, "lstm": lstm_step}


class ScratchRecurrent(nn.Module):
    """Deep (``num_layers``) and optionally bidirectional recurrence, one time step at a time."""

    def __init__(self, cell: Cell, input_size: int, hidden_size: int, num_layers: int = 1,
                 dropout: float = 0.0, bidirectional: bool = False) -> None:
        super().__init__()
        self.cell, self.hidden_size, self.num_layers = cell, hidden_size, num_layers
        self.dropout, self.directions = dropout, 2 if bidirectional else 1
        rows = GATES[cell] * hidden_size
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.directions
            for suffix in self._suffixes():
                name = f"l{layer}{suffix}"
                self.register_parameter(f"weight_ih_{name}", nn.Parameter(torch.empty(rows, layer_input)))
                self.register_parameter(f"weight_hh_{name}", nn.Parameter(torch.empty(rows, hidden_size)))
                self.register_parameter(f"bias_ih_{name}", nn.Parameter(torch.empty(rows)))
                self.register_parameter(f"bias_hh_{name}", nn.Parameter(torch.empty(rows)))
        bound = 1 / math.sqrt(hidden_size)  # PyTorch's initialisation, so both start alike
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)

    def _suffixes(self) -> list[str]:
        return ["", "_reverse"][: self.directions]

    def _run(self, inputs: torch.Tensor, name: str, h: torch.Tensor, c: Optional[torch.Tensor], reverse: bool):
        weights = {kind: getattr(self, f"{kind}_{name}") for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        x_proj = inputs @ weights["weight_ih"].T + weights["bias_ih"]  # (B, T, G * H)
        steps = range(inputs.shape[1] - 1, -1, -1) if reverse else range(inputs.shape[1])
        outputs = [None] * inputs.shape[1]
        for t in steps:
            h, c = STEPS[self.cell](x_proj[:, t], h, c, weights["weight_hh"], weights["bias_hh"])
            outputs[t] = h
        return torch.stack(outputs, dim=1), h, c  # (B, T, H), (B, H), (B, H) or None

    def forward(self, inputs: torch.Tensor, state: Optional[State] = None) -> tuple[torch.Tensor, State]:
        batch = inputs.shape[0]
        shape = (self.num_layers * self.directions, batch, self.hidden_size)
        if state is None:
            zeros = inputs.new_zeros(shape)
            state = (zeros, zeros) if self.cell == "lstm" else zeros
        h0, c0 = state if self.cell == "lstm" else (state, None)
        final_h, final_c = [], []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0:
                inputs = F.dropout(inputs, self.dropout, self.training)  # between layers, as nn.GRU does
            outputs = []
            for direction, suffix in enumerate(self._suffixes()):
                index = layer * self.directions + direction
                out, h, c = self._run(inputs, f"l{layer}{suffix}", h0[index], None if c0 is None else c0[index],
                                      reverse=direction == 1)
                outputs.append(out)
                final_h.append(h)
                final_c.append(c)
            inputs = torch.cat(outputs, dim=-1)  # (B, T, D * H)
        h_n = torch.stack(final_h)  # (L * D, B, H)
        return inputs, ((h_n, torch.stack(final_c)) if self.cell == "lstm" else h_n)


LIBRARY_LAYERS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


def recurrent_layer(cell: Cell, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0,
                    bidirectional: bool = False, implementation: Implementation = "library") -> nn.Module:
    """A batch-first recurrent layer: PyTorch's (cuDNN on GPUs) or the written-out one, same parameters."""
    if cell not in GATES:
        raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(GATES)}")
    if implementation == "scratch":
        return ScratchRecurrent(cell, input_size, hidden_size, num_layers, dropout, bidirectional)
    if implementation != "library":
        raise ValueError(f"unknown implementation {implementation!r}; choose library or scratch")
    return LIBRARY_LAYERS[cell](input_size, hidden_size, num_layers=num_layers, dropout=dropout,
                                bidirectional=bidirectional, batch_first=True)


class TokenInput(nn.Module):
    """Token ids (B, T) -> vectors (B, T, E): a learned embedding, or one-hot vectors as in the book."""

    def __init__(self, vocab_size: int, embedding_dim: Optional[int]) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embedding_dim) if embedding_dim else None
        self.features = embedding_dim or vocab_size

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.embedding is None:
            return F.one_hot(tokens, self.vocab_size).float()
        return self.embedding(tokens)


class RecurrentEncoder(nn.Module):
    """Tokens -> per-step features and final state; may be bidirectional (for tasks that see the
    whole sequence: translation encoders, sequence classification)."""

    def __init__(self, vocab_size: int, cell: Cell = "gru", hidden_size: int = 32, num_layers: int = 1,
                 dropout: float = 0.0, embedding_dim: Optional[int] = 32, bidirectional: bool = False,
                 implementation: Implementation = "library") -> None:
        super().__init__()
        self.input = TokenInput(vocab_size, embedding_dim)
        self.rnn = recurrent_layer(cell, self.input.features, hidden_size, num_layers, dropout, bidirectional,
                                   implementation)
        self.output_features = hidden_size * (2 if bidirectional else 1)

    def forward(self, tokens: torch.Tensor, state: Optional[State] = None) -> tuple[torch.Tensor, State]:
        return self.rnn(self.input(tokens), state)  # (B, T, D * H), state


class RNNLanguageModel(nn.Module):
    """Next-token logits (B, T, V) from tokens (B, T); the state carries over between calls.

    ``tie_weights`` shares one matrix between the input embedding and the output layer (Press & Wolf,
    2017, "Using the Output Embedding to Improve Language Models"): the head scores each word by the
    dot product of the last hidden state with that word's embedding. It needs a learned embedding;
    when ``embedding_dim`` differs from ``hidden_size`` a linear projection maps the hidden state to
    ``embedding_dim`` first. The shared matrix starts uniform in [-0.1, 0.1] (the output layer's scale;
    an embedding's default N(0, 1) would make the first logits huge). ``embedding_dropout`` drops
    entries of the embedded input (the output dropout ``dropout`` is unchanged). ``weight_dropout``
    drops entries of the hidden-to-hidden weight matrices, one mask per forward pass shared by all
    time steps (DropConnect on the recurrence, Merity et al. 2018, "Regularizing and Optimizing LSTM
    Language Models"); it regularises the recurrence that output dropout does not reach.
    """

    def __init__(self, vocab_size: int, cell: Cell = "gru", hidden_size: int = 32, num_layers: int = 1,
                 dropout: float = 0.0, embedding_dim: Optional[int] = None,
                 implementation: Implementation = "library", tie_weights: bool = False,
                 embedding_dropout: float = 0.0, weight_dropout: float = 0.0) -> None:
        super().__init__()
        if tie_weights and not embedding_dim:
            raise ValueError("tie_weights shares the input embedding with the output layer: it needs a learned "
                             "embedding; set embedding_dim (e.g. equal to hidden_size)")
        if not 0.0 <= embedding_dropout < 1.0:
            raise ValueError(f"embedding_dropout must be in [0, 1), got {embedding_dropout}")
        if not 0.0 <= weight_dropout < 1.0:
            raise ValueError(f"weight_dropout must be in [0, 1), got {weight_dropout}")
        self.encoder = RecurrentEncoder(vocab_size, cell, hidden_size, num_layers, dropout, embedding_dim,
                                        bidirectional=False, implementation=implementation)
        self.embedding_dropout = nn.Dropout(embedding_dropout) if embedding_dropout else None
        self.dropout = nn.Dropout(dropout)
        self.tie_weights = bool(tie_weights)
        self.weight_dropout = float(weight_dropout)
        head_features = hidden_size
        if tie_weights and embedding_dim != hidden_size:
            self.projection = nn.Linear(hidden_size, embedding_dim)  # hidden state -> embedding space
            head_features = embedding_dim
        self.head = nn.Linear(head_features, vocab_size)
        if tie_weights:
            embedding = self.encoder.input.embedding
            nn.init.uniform_(embedding.weight, -0.1, 0.1)
            self.head.weight = embedding.weight  # one Parameter, (V, E): rows are the words' vectors

    def forward(self, tokens: torch.Tensor, state: Optional[State] = None) -> tuple[torch.Tensor, State]:
        if self.embedding_dropout is None and not (self.weight_dropout and self.training):
            outputs, state = self.encoder(tokens, state)  # (B, T, H)
        else:
            embedded = self.encoder.input(tokens)  # (B, T, E)
            if self.embedding_dropout is not None:
                embedded = self.embedding_dropout(embedded)
            outputs, state = self._recur(embedded, state)
        outputs = self.dropout(outputs)
        if hasattr(self, "projection"):
            outputs = self.projection(outputs)  # (B, T, E)
        return self.head(outputs), state  # (B, T, V)

    def _recur(self, embedded: torch.Tensor, state: Optional[State]) -> tuple[torch.Tensor, State]:
        rnn = self.encoder.rnn
        if not (self.weight_dropout and self.training):
            return rnn(embedded, state)
        # the recurrence runs with dropped copies of its W_hh; gradients flow to the parameters themselves
        dropped = {name: F.dropout(weight, self.weight_dropout, training=True)
                   for name, weight in rnn.named_parameters() if name.startswith("weight_hh")}
        return torch.func.functional_call(rnn, dropped, (embedded, state))


def language_model(cell: Cell, vocab_size: int, hidden_size: int, num_layers: int, dropout: float,
                   embedding_dim: Optional[int], implementation: Implementation, bidirectional: bool,
                   tie_weights: bool = False, embedding_dropout: float = 0.0,
                   weight_dropout: float = 0.0) -> nn.Module:
    if bidirectional:
        raise ValueError(
            "a language model cannot be bidirectional: it predicts each token from the tokens before it, and the "
            "backward direction would read the very token it has to predict; use bidirectional encoders "
            "(RecurrentEncoder) only for tasks that see the whole sequence")
    return RNNLanguageModel(vocab_size, cell, hidden_size, num_layers, dropout, embedding_dim, implementation,
                            tie_weights, embedding_dropout, weight_dropout)


@register_network("rnn_lm", kind="language_model")
def rnn_lm(vocab_size: int, hidden_size: int = 32, num_layers: int = 1, dropout: float = 0.0,
           embedding_dim: Optional[int] = None, implementation: Implementation = "library",
           bidirectional: bool = False, tie_weights: bool = False, embedding_dropout: float = 0.0,
           weight_dropout: float = 0.0) -> nn.Module:
    """The book's RNN language model (tanh recurrence, one-hot input unless ``embedding_dim``)."""
    return language_model("rnn", vocab_size, hidden_size, num_layers, dropout, embedding_dim, implementation,
                          bidirectional, tie_weights, embedding_dropout, weight_dropout)


@register_network("gru_lm", kind="language_model")
def gru_lm(vocab_size: int, hidden_size: int = 32, num_layers: int = 1, dropout: float = 0.0,
           embedding_dim: Optional[int] = None, implementation: Implementation = "library",
           bidirectional: bool = False, tie_weights: bool = False, embedding_dropout: float = 0.0,
           weight_dropout: float = 0.0) -> nn.Module:
    """GRU language model; ``num_layers: 2`` is the book's deep GRU."""
    return language_model("gru", vocab_size, hidden_size, num_layers, dropout, embedding_dim, implementation,
                          bidirectional, tie_weights, embedding_dropout, weight_dropout)


@register_network("lstm_lm", kind="language_model")
def lstm_lm(vocab_size: int, hidden_size: int = 32, num_layers: int = 1, dropout: float = 0.0,
            embedding_dim: Optional[int] = None, implementation: Implementation = "library",
            bidirectional: bool = False, tie_weights: bool = False, embedding_dropout: float = 0.0,
            weight_dropout: float = 0.0) -> nn.Module:
    """LSTM language model; ``tie_weights`` shares the embedding with the output layer."""
    return language_model("lstm", vocab_size, hidden_size, num_layers, dropout, embedding_dim, implementation,
                          bidirectional, tie_weights, embedding_dropout, weight_dropout)


# -- generation -----------------------------------------------------------------------------------
def next_token(logits: torch.Tensor, temperature: float = 1.0, top_k: Optional[int] = None,
               greedy: bool = False, generator: Optional[torch.Generator] = None,
               exclude: Sequence[int] = ()) -> int:
    """One token from the logits (V,): the most likely, or sampled at ``temperature`` among the ``top_k``;
    never one of ``exclude`` (e.g. reserved tokens that the training text never contained)."""
    if exclude:
        logits = logits.index_fill(0, torch.tensor(list(exclude)), float("-inf"))
    if greedy:
        return int(logits.argmax())
    logits = logits.float() / temperature
    if top_k:
        threshold = logits.topk(min(top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < threshold, float("-inf"))
    return int(torch.multinomial(logits.softmax(-1), 1, generator=generator))


@torch.no_grad()
def generate(network: nn.Module, prefix: list[int], num_tokens: int, temperature: float = 1.0,
             top_k: Optional[int] = None, greedy: bool = False, generator: Optional[torch.Generator] = None,
             exclude: Sequence[int] = ()) -> list[int]:
    """Warm the state up on ``prefix``, then predict ``num_tokens`` tokens one at a time."""
    was_training = network.training
    network.eval()
    device = next(network.parameters()).device
    logits, state = network(torch.tensor([prefix], device=device))  # (1, P, V)
    generated: list[int] = []
    for _ in range(num_tokens):
        token = next_token(logits[0, -1].cpu(), temperature, top_k, greedy, generator, exclude)
        generated.append(token)
        logits, state = network(torch.tensor([[token]], device=device), state)
    network.train(was_training)
    return generated
