"""Masked loss, greedy decoding, beam search (against greedy and brute force) and BLEU."""

from __future__ import annotations

import collections
import itertools
import math

import pytest
import torch
from torch import nn
from torchmetrics.text import BLEUScore

from lit_models.decoding import (
    BOS,
    EOS,
    NEVER_GENERATED,
    PAD,
    beam_search,
    bleu_weights,
    greedy_decode,
    length_normalised,
    masked_cross_entropy,
    sequence_log_prob,
    teacher_forcing_inputs,
)


class TinySeq2Seq(nn.Module):
    """A small recurrent encoder-decoder with the seq2seq interface; its state is batch-first."""

    def __init__(self, vocab: int = 6, hidden: int = 8, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.embed = nn.Embedding(vocab, hidden)
        self.cell = nn.GRUCell(hidden, hidden)
        self.out = nn.Linear(hidden, vocab)
        with torch.no_grad():  # peaky distributions make ties impossible and search non-trivial
            self.out.weight.mul_(4.0)
            self.out.bias[EOS] -= 1.0  # sentences of several tokens, not <eos> at once

    def encode(self, src, src_len):
        mask = (torch.arange(src.shape[1])[None] < src_len[:, None]).float()
        hidden = (self.embed(src) * mask[..., None]).sum(1) / src_len[:, None].float()
        return {"hidden": torch.tanh(hidden), "steps": torch.zeros(src.shape[0], 1)}

    def decode_step(self, token, state):
        hidden = self.cell(self.embed(token), state["hidden"])
        attention = torch.softmax(hidden[:, :3], dim=-1)  # a stand-in (B, S=3) for the attention rows
        return self.out(hidden), {"hidden": hidden, "steps": state["steps"] + 1}, attention

    def forward(self, src, src_len, tgt_in):
        state, logits = self.encode(src, src_len), []
        for step in range(tgt_in.shape[1]):
            step_logits, state, _ = self.decode_step(tgt_in[:, step], state)
            logits.append(step_logits)
        return torch.stack(logits, dim=1)


def _source(batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    src = torch.randint(4, 6, (batch, 3), generator=generator)
    src_len = torch.randint(1, 4, (batch,), generator=generator)
    return src, src_len


def test_masked_cross_entropy_ignores_padding():
    torch.manual_seed(0)
    logits, targets = torch.randn(2, 5, 7), torch.randint(0, 7, (2, 5))
    valid = torch.tensor([3, 5])
    loss = masked_cross_entropy(logits, targets, valid)
    changed_logits, changed_targets = logits.clone(), targets.clone()
    changed_logits[0, 3:] = 100 * torch.randn(2, 7)  # anything in the padding of row 0
    changed_targets[0, 3:] = PAD
    assert torch.allclose(masked_cross_entropy(changed_logits, changed_targets, valid), loss)
    per_token = [nn.functional.cross_entropy(logits[row, :n], targets[row, :n], reduction="sum")
                 for row, n in enumerate(valid.tolist())]
    assert torch.allclose(loss, sum(per_token) / 8)  # the mean over the 8 valid tokens


def test_masked_cross_entropy_gradient_never_reaches_padded_logits():
    logits = torch.randn(1, 4, 5, requires_grad=True)
    masked_cross_entropy(logits, torch.tensor([[1, 2, 3, 1]]), torch.tensor([2])).backward()
    assert logits.grad[0, 2:].abs().sum() == 0 and logits.grad[0, :2].abs().sum() > 0


def test_teacher_forcing_inputs_start_with_bos_and_shift_right():
    assert teacher_forcing_inputs(torch.tensor([[5, 6, EOS, PAD]])).tolist() == [[BOS, 5, 6, EOS]]


@pytest.mark.parametrize("seed", range(5))
def test_beam_of_one_equals_greedy(seed):
    network = TinySeq2Seq(seed=seed).eval()
    src, src_len = _source(6, seed)
    greedy = greedy_decode(network, src, src_len, max_len=7)
    for row in range(6):
        beam = beam_search(network, src[row:row + 1], src_len[row:row + 1], max_len=7, beam_size=1)
        assert beam.tokens == greedy[row].tokens
        assert beam.finished == greedy[row].finished
        assert math.isclose(beam.log_prob, greedy[row].log_prob, abs_tol=1e-5)  # batch of 1 vs 6: float32 rounding
        assert torch.allclose(beam.attention, greedy[row].attention)


def test_greedy_decoding_is_the_same_alone_and_in_a_batch():
    network = TinySeq2Seq(seed=3).eval()
    src, src_len = _source(5, 3)
    batch = greedy_decode(network, src, src_len, max_len=6)
    alone = [greedy_decode(network, src[i:i + 1], src_len[i:i + 1], max_len=6)[0] for i in range(5)]
    assert [h.tokens for h in batch] == [h.tokens for h in alone]


def _brute_force(network, src, src_len, max_len, alpha, vocab=6):
    """The best of every sentence beam search may return: ending in <eos> within max_len, or cut at max_len."""
    words = [token for token in range(vocab) if token not in (*NEVER_GENERATED, EOS)]
    candidates = [[*prefix, EOS] for length in range(1, max_len + 1)
                  for prefix in itertools.product(words, repeat=length - 1)]
    candidates += [list(sentence) for sentence in itertools.product(words, repeat=max_len)]
    scored = [(length_normalised(sequence_log_prob(network, src, src_len, c), len(c), alpha), c) for c in candidates]
    return max(scored)


@pytest.mark.parametrize("seed,alpha", [(0, 0.75), (1, 0.0), (2, 1.0), (3, 0.75)])
def test_a_beam_as_wide_as_all_candidates_finds_the_brute_force_best(seed, alpha):
    network = TinySeq2Seq(seed=seed).eval()
    src, src_len = _source(1, seed)
    max_len = 4
    score, sequence = _brute_force(network, src, src_len, max_len, alpha)
    beam = beam_search(network, src, src_len, max_len=max_len, beam_size=4 ** max_len, alpha=alpha)
    found = beam.tokens + ([EOS] if beam.finished else [])
    assert found == sequence
    assert math.isclose(beam.score, score, abs_tol=1e-5)  # the beam runs k sentences at once: float32 rounding


def test_beam_search_never_generates_pad_or_bos():
    network = TinySeq2Seq(seed=4).eval()
    with torch.no_grad():
        network.out.bias[PAD] = 50.0  # the network would love to emit <pad>
    src, src_len = _source(1, 0)
    assert PAD not in beam_search(network, src, src_len, max_len=5, beam_size=3).tokens
    assert PAD not in greedy_decode(network, src, src_len, max_len=5)[0].tokens


def _book_bleu(pred_seq: str, label_seq: str, k: int) -> float:
    """d2l's ``bleu`` (chapter 10.7), as printed in the book."""
    pred_tokens, label_tokens = pred_seq.split(" "), label_seq.split(" ")
    len_pred, len_label = len(pred_tokens), len(label_tokens)
    score = math.exp(min(0, 1 - len_label / len_pred))
    for n in range(1, min(k, len_pred) + 1):
        num_matches, label_subs = 0, collections.defaultdict(int)
        for i in range(len_label - n + 1):
            label_subs[" ".join(label_tokens[i: i + n])] += 1
        for i in range(len_pred - n + 1):
            if label_subs[" ".join(pred_tokens[i: i + n])] > 0:
                num_matches += 1
                label_subs[" ".join(pred_tokens[i: i + n])] -= 1
        score *= math.pow(num_matches / (len_pred - n + 1), math.pow(0.5, n))
    return score


BOOK_EXAMPLES = [("va !", "va !"), ("j'ai perdu .", "j'ai perdu ."), ("il est calme .", "il est calme ."),
                 ("je suis chez moi .", "je suis chez moi ."),
                 ("il est paresseux .", "il est calme ."),  # the book's inexact output: BLEU 0.658
                 ("je suis .", "je suis chez moi .")]


@pytest.mark.parametrize("prediction,reference", BOOK_EXAMPLES)
def test_torchmetrics_bleu_with_book_weights_agrees_with_the_book(prediction, reference):
    metric = BLEUScore(n_gram=2, weights=bleu_weights(2, "book"))
    ours = float(metric([prediction], [[reference]]))
    assert ours == pytest.approx(_book_bleu(prediction, reference, k=2), abs=1e-6)
    if prediction == reference:
        assert ours == pytest.approx(1.0)


def test_book_bleu_of_the_inexact_example_is_the_books_number():
    assert _book_bleu("il est paresseux .", "il est calme .", 2) == pytest.approx(0.658, abs=5e-4)
