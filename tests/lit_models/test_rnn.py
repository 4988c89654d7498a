"""Recurrent layers and language models: written-out cells match PyTorch's, perplexity, state, n-grams."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lit_models import LanguageModelTask, LitexpError, build_network, list_networks
from lit_models.ngram import NGramModel
from lit_models.rnn import RecurrentEncoder, ScratchRecurrent, generate, recurrent_layer


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, False), (2, True)])
def test_scratch_cells_match_the_library_given_the_same_weights(cell, num_layers, bidirectional):
    torch.manual_seed(0)
    library = recurrent_layer(cell, 5, 7, num_layers, bidirectional=bidirectional)
    scratch = recurrent_layer(cell, 5, 7, num_layers, bidirectional=bidirectional, implementation="scratch")
    assert isinstance(scratch, ScratchRecurrent)
    scratch.load_state_dict(library.state_dict())  # same names and shapes: strict load
    inputs = torch.randn(3, 6, 5)
    directions = 2 if bidirectional else 1
    h0 = torch.randn(num_layers * directions, 3, 7)
    state = (h0, torch.randn_like(h0)) if cell == "lstm" else h0
    expected, expected_state = library(inputs, state)
    outputs, final_state = scratch(inputs, state)
    assert outputs.shape == (3, 6, 7 * directions)
    torch.testing.assert_close(outputs, expected, atol=1e-5, rtol=0)
    for got, want in zip(*(s if isinstance(s, tuple) else (s,) for s in (final_state, expected_state)), strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    # and from a zero state, with gradients flowing to the same parameters
    scratch(inputs)[0].sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in scratch.parameters())


@pytest.mark.parametrize("name", list_networks("language_model"))
@pytest.mark.parametrize("implementation", ["library", "scratch"])
def test_language_models_shapes_state_and_gradients(name, implementation):
    network = build_network(name, vocab_size=11, hidden_size=6, num_layers=2, embedding_dim=4,
                            implementation=implementation)
    tokens = torch.randint(11, (3, 5))
    logits, state = network(tokens)
    assert logits.shape == (3, 5, 11)
    more, _ = network(tokens[:, :2], state)  # the state of one call starts the next
    assert more.shape == (3, 2, 11)
    logits.logsumexp(-1).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in network.parameters())


def test_one_hot_input_by_default():
    network = build_network("gru_lm", vocab_size=28)
    assert network.encoder.input.embedding is None and network.encoder.rnn.input_size == 28


@pytest.mark.parametrize("name", list_networks("language_model"))
def test_a_language_model_refuses_to_be_bidirectional(name):
    with pytest.raises(LitexpError, match="cannot be bidirectional: it predicts each token from the tokens before"):
        build_network(name, vocab_size=10, bidirectional=True)


def test_bidirectional_encoder_for_whole_sequences():
    encoder = RecurrentEncoder(vocab_size=10, cell="lstm", hidden_size=4, num_layers=2, bidirectional=True)
    outputs, (h, c) = encoder(torch.randint(10, (2, 7)))
    assert outputs.shape == (2, 7, 8) and encoder.output_features == 8 and h.shape == (4, 2, 4)


def test_logged_perplexity_is_exp_of_the_mean_token_nll():
    torch.manual_seed(0)
    task = LanguageModelTask(network="lstm_lm", vocab_size=13, network_args={"hidden_size": 8})
    batches = [(torch.randint(13, (4, 6)), torch.randint(13, (4, 6))) for _ in range(3)]
    nll_sum, count = 0.0, 0
    with torch.no_grad():
        for inputs, targets in batches:
            task._step((inputs, targets), "val")
            logits, _ = task(inputs)
            nll_sum += F.cross_entropy(logits.reshape(-1, 13), targets.reshape(-1), reduction="sum").item()
            count += targets.numel()
    assert task.metrics["val/ppl"].compute().item() == pytest.approx(math.exp(nll_sum / count), rel=1e-5)
    assert task.metrics["val/loss"].compute().item() == pytest.approx(nll_sum / count, rel=1e-5)


def test_state_is_carried_and_detached_only_in_sequential_mode():
    torch.manual_seed(0)
    batch = (torch.randint(9, (2, 4)), torch.randint(9, (2, 4)))
    for carry in (False, True):
        task = LanguageModelTask(network="gru_lm", vocab_size=9, carry_state=carry)
        task._step(batch, "train")
        assert (task._state is not None) == carry
        if carry:
            assert not task._state.requires_grad  # backpropagation stops at the batch border
            carried, fresh = task(batch[0], task._state)[0], task(batch[0])[0]
            assert not torch.allclose(carried, fresh)  # the carried state changes the predictions
        task.on_train_epoch_start()
        assert task._state is None


def test_a_checkpoint_keeps_the_carried_state_the_epochs_metrics_and_the_vocabulary():
    torch.manual_seed(0)
    batch = (torch.randint(9, (2, 4)), torch.randint(9, (2, 4)))
    task = LanguageModelTask(network="lstm_lm", vocab_size=9, carry_state=True)
    task.vocab = {"tokens": list("abcdefghi")}
    task._step(batch, "train")
    checkpoint: dict = {}
    task.on_save_checkpoint(checkpoint)
    assert checkpoint["vocab"] == task.vocab and set(checkpoint["train_metric_states"]) == {"loss", "ppl"}
    resumed = LanguageModelTask(network="lstm_lm", vocab_size=9, carry_state=True)
    resumed.on_load_checkpoint(checkpoint)
    assert resumed.vocab == task.vocab
    for ours, theirs in zip(resumed._state, task._state, strict=True):  # (h, c) of the LSTM
        assert torch.equal(ours, theirs)
    assert resumed.metrics["train/ppl"].compute() == task.metrics["train/ppl"].compute()
    assert resumed.metrics["train/loss"].compute() == task.metrics["train/loss"].compute()


def test_generation_is_greedy_or_sampled_reproducibly():
    torch.manual_seed(0)
    network = build_network("gru_lm", vocab_size=12, hidden_size=8)
    greedy = generate(network, [1, 2, 3], 10, greedy=True)
    assert len(greedy) == 10 and greedy == generate(network, [1, 2, 3], 10, greedy=True)
    assert generate(network, [1, 2, 3], 10, top_k=1) == greedy  # top-1 sampling is greedy
    sampled = [generate(network, [1, 2, 3], 10, temperature=5.0, generator=torch.Generator().manual_seed(s))
               for s in (0, 0, 1)]
    assert sampled[0] == sampled[1] and sampled[0] != sampled[2]
    hot = generate(network, [1, 2, 3], 30, temperature=50.0, exclude=[0, 5, 7], generator=torch.Generator())
    assert not {0, 5, 7} & set(hot) and len(set(hot)) > 3


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("smoothing", ["add_k", "witten_bell"])
def test_ngram_probabilities_sum_to_one(order, smoothing):
    ids = [0, 1, 2, 1, 2, 3, 1, 2, 1, 4, 4, 1]
    model = NGramModel(6, order, smoothing).fit(ids, [(0, len(ids))])
    for context in [(), (1,), (2, 1), (5, 5)]:
        assert sum(model.prob(context, token) for token in range(6)) == pytest.approx(1.0)


def test_higher_order_ngrams_beat_lower_ones_on_structured_text():
    ids = [0, 1, 2, 3, 4, 5] * 50 + [0, 2, 4, 1, 3, 5] * 50  # next token fixed by the last two
    perplexities = [NGramModel(8, order).fit(ids, [(0, 500)]).perplexity(ids, [(500, 600)]) for order in (1, 2, 3)]
    assert perplexities[0] > perplexities[1] > perplexities[2]
    assert perplexities[0] == pytest.approx(6, rel=0.1) and perplexities[2] < 1.2
