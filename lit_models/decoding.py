"""Sequence-to-sequence training loss and decoding: masked cross-entropy, greedy and beam search.

Decoding drives any network of kind ``seq2seq`` through its two-method interface:
``encode(src, src_len) -> state`` and ``decode_step(token, state) -> (logits, state, attention)``,
where every tensor of ``state`` has the batch on dim 0, so beam search can reorder hypotheses with
``index_select``. Token ids follow the reserved tokens of :mod:`datamodules.text`
(``<unk>`` 0, ``<pad>`` 1, ``<bos>`` 2, ``<eos>`` 3). ``<pad>`` and ``<bos>`` are never generated:
they are never a training target (padding is masked out of the loss).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

UNK, PAD, BOS, EOS = 0, 1, 2, 3
NEVER_GENERATED = (PAD, BOS)

State = dict[str, torch.Tensor]


def valid_mask(valid_len: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B, T) bool: True at positions before each row's valid length."""
    return torch.arange(max_len, device=valid_len.device)[None, :] < valid_len[:, None]


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, valid_len: torch.Tensor) -> torch.Tensor:
    """Mean token cross-entropy over the first ``valid_len`` positions of each row; padding adds nothing.

    logits (B, T, V), targets (B, T), valid_len (B,).
    """
    losses = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # (B, T)
    mask = valid_mask(valid_len, targets.shape[1]).to(losses.dtype)
    return (losses * mask).sum() / mask.sum().clamp(min=1)


def teacher_forcing_inputs(targets: torch.Tensor, bos: int = BOS) -> torch.Tensor:
    """Decoder inputs for training: ``<bos>`` followed by the target shifted right by one."""
    start = torch.full_like(targets[:, :1], bos)
    return torch.cat([start, targets[:, :-1]], dim=1)


def _select(state: State, index: torch.Tensor) -> State:
    return {key: value.index_select(0, index) for key, value in state.items()}


def _ban(log_probs: torch.Tensor, banned: Sequence[int]) -> torch.Tensor:
    if banned:
        log_probs = log_probs.index_fill(-1, torch.tensor(list(banned), device=log_probs.device), float("-inf"))
    return log_probs


@dataclass
class Hypothesis:
    """One decoded sentence: ids without ``<bos>``/``<eos>``, its log-probability, attention rows."""

    tokens: list[int]
    log_prob: float
    score: float  # the log-probability, length-normalised for beam search
    attention: Optional[torch.Tensor] = None  # (steps, S): one row per generated token, eos included
    finished: bool = True  # ended with <eos> (False: stopped at the maximum length)


@torch.no_grad()
def greedy_decode(network: nn.Module, src: torch.Tensor, src_len: torch.Tensor, max_len: int,
                  banned: Sequence[int] = NEVER_GENERATED) -> list[Hypothesis]:
    """The most likely token at every step, for a whole batch at once, until ``<eos>`` or ``max_len``."""
    batch = src.shape[0]
    state = network.encode(src, src_len)
    token = torch.full((batch,), BOS, dtype=torch.long, device=src.device)
    tokens, log_probs, rows = [], [], []
    done = torch.zeros(batch, dtype=torch.bool, device=src.device)
    for _ in range(max_len):
        logits, state, attention = network.decode_step(token, state)
        step_log_probs = _ban(logits.double().log_softmax(-1), banned)
        best, token = step_log_probs.max(dim=-1)
        tokens.append(token)
        log_probs.append(torch.where(done, torch.zeros_like(best), best))
        rows.append(attention)
        done = done | (token == EOS)
        if bool(done.all()):
            break
    ids = torch.stack(tokens, dim=1).tolist()  # (B, steps)
    total = torch.stack(log_probs, dim=1).sum(dim=1).tolist()
    attention_rows = torch.stack(rows, dim=1) if rows and rows[0] is not None else None  # (B, steps, S)
    hypotheses = []
    for row, sentence in enumerate(ids):
        finished = EOS in sentence
        length = sentence.index(EOS) + 1 if finished else len(sentence)
        attention = attention_rows[row, :length].cpu() if attention_rows is not None else None
        hypotheses.append(Hypothesis(sentence[:length - 1] if finished else sentence, total[row], total[row],
                                     attention, finished))
    return hypotheses


def length_normalised(log_prob: float, length: int, alpha: float) -> float:
    """The book's beam-search score: ``log P / L ** alpha`` (L: generated tokens, ``<eos>`` included)."""
    return log_prob / max(length, 1) ** alpha


@torch.no_grad()
def beam_search(network: nn.Module, src: torch.Tensor, src_len: torch.Tensor, max_len: int, beam_size: int,
                alpha: float = 0.75, banned: Sequence[int] = NEVER_GENERATED) -> Hypothesis:
    """Beam search for one source sentence (src (1, S), src_len (1,)).

    At every step each live hypothesis is extended by every token; the ``beam_size`` extensions of
    highest log-probability survive. An extension ending in ``<eos>`` is finished and leaves the
    beam; when ``max_len`` is reached the live ones are finished as they are. The result is the
    finished hypothesis of highest ``log P / L ** alpha``. ``beam_size=1`` is greedy decoding.
    """
    if src.shape[0] != 1:
        raise ValueError("beam_search decodes one sentence at a time: src must have shape (1, S)")
    state = network.encode(src, src_len)
    live_tokens = torch.zeros(1, 0, dtype=torch.long, device=src.device)  # (k, t)
    live_scores = torch.zeros(1, device=src.device, dtype=torch.float64)  # (k,) log-probabilities
    live_attention: Optional[torch.Tensor] = None  # (k, t, S)
    last = torch.full((1,), BOS, dtype=torch.long, device=src.device)
    finished: list[Hypothesis] = []
    for step in range(max_len):
        logits, state, attention = network.decode_step(last, state)
        log_probs = _ban(logits.double().log_softmax(-1), banned)  # (k, V)
        vocab = log_probs.shape[-1]
        candidates = (live_scores[:, None] + log_probs).view(-1)  # (k * V,)
        allowed = int(torch.isfinite(candidates).sum())
        top_scores, top_index = candidates.topk(min(beam_size, allowed))
        parents, tokens = top_index // vocab, top_index % vocab
        tokens_so_far = torch.cat([live_tokens[parents], tokens[:, None]], dim=1)
        rows = None
        if attention is not None:
            new_rows = attention[parents][:, None, :].detach().float()
            rows = new_rows if live_attention is None else torch.cat([live_attention[parents], new_rows], dim=1)
        ended = tokens == EOS
        for index in ended.nonzero().flatten().tolist():
            score = float(top_scores[index])
            finished.append(Hypothesis(tokens_so_far[index, :-1].tolist(), score,
                                       length_normalised(score, step + 1, alpha),
                                       rows[index].cpu() if rows is not None else None, True))
        keep = (~ended).nonzero().flatten()
        if len(keep) == 0:
            break
        if step == max_len - 1:  # out of steps: the live hypotheses end here, without <eos>
            for index in keep.tolist():
                score = float(top_scores[index])
                finished.append(Hypothesis(tokens_so_far[index].tolist(), score,
                                           length_normalised(score, step + 1, alpha),
                                           rows[index].cpu() if rows is not None else None, False))
            break
        state = _select(state, parents[keep])
        live_tokens, live_scores, last = tokens_so_far[keep], top_scores[keep], tokens[keep]
        live_attention = rows[keep] if rows is not None else None
    return max(finished, key=lambda hypothesis: hypothesis.score)


def decode(network: nn.Module, src: torch.Tensor, src_len: torch.Tensor, max_len: int, beam_size: int = 1,
           alpha: float = 0.75) -> list[Hypothesis]:
    """Greedy decoding of the whole batch (``beam_size=1``) or beam search sentence by sentence."""
    if beam_size == 1:
        return greedy_decode(network, src, src_len, max_len)
    return [beam_search(network, src[i:i + 1], src_len[i:i + 1], max_len, beam_size, alpha)
            for i in range(src.shape[0])]


@torch.no_grad()
def sequence_log_prob(network: nn.Module, src: torch.Tensor, src_len: torch.Tensor, tokens: Sequence[int]) -> float:
    """log P(tokens | src) of one sentence under the network, token by token (tokens may end in ``<eos>``)."""
    state = network.encode(src, src_len)
    last = torch.full((1,), BOS, dtype=torch.long, device=src.device)
    total = 0.0
    for token in tokens:
        logits, state, _ = network.decode_step(last, state)
        total += float(logits.double().log_softmax(-1)[0, token])
        last = torch.tensor([token], device=src.device)
    return total


def bleu_weights(n_gram: int, scheme: str) -> list[float]:
    """``book``: p_n weighted 1/2^n, as d2l's ``bleu`` (short matches weigh more); ``uniform``: 1/N each."""
    if scheme == "book":
        return [0.5 ** n for n in range(1, n_gram + 1)]
    if scheme == "uniform":
        return [1.0 / n_gram] * n_gram
    raise ValueError(f"unknown BLEU weighting {scheme!r}; choose book or uniform")
