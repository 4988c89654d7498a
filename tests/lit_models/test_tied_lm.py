"""Weight tying and embedding dropout in the recurrent language models."""

import pytest
import torch

from lit_models.registry import build_network
from lit_models.tasks import LanguageModelTask
from litexp.errors import LitexpError


@pytest.mark.parametrize("name", ["rnn_lm", "gru_lm", "lstm_lm"])
def test_tied_head_is_the_embedding(name):
    network = build_network(name, kind="language_model", vocab_size=17, hidden_size=8, embedding_dim=8,
                            tie_weights=True)
    assert network.head.weight is network.encoder.input.embedding.weight  # one Parameter
    assert not hasattr(network, "projection")
    logits, _ = network(torch.randint(0, 17, (3, 5)))
    assert logits.shape == (3, 5, 17)
    # counted once: embedding (17 x 8) + recurrence + the head's bias only
    untied = build_network(name, kind="language_model", vocab_size=17, hidden_size=8, embedding_dim=8)
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    assert count(untied) - count(network) == 17 * 8


def test_tied_with_a_projection_when_sizes_differ():
    network = build_network("lstm_lm", kind="language_model", vocab_size=13, hidden_size=10, embedding_dim=6,
                            tie_weights=True, embedding_dropout=0.2)
    assert network.projection.in_features == 10 and network.projection.out_features == 6
    assert network.head.weight is network.encoder.input.embedding.weight
    assert network.head.weight.shape == (13, 6)
    logits, (h, c) = network(torch.randint(0, 13, (2, 4)))
    assert logits.shape == (2, 4, 13) and h.shape == (1, 2, 10)
    logits.sum().backward()  # one gradient, from both uses
    assert network.encoder.input.embedding.weight.grad is not None


def test_tied_weight_trains_as_one_and_survives_a_state_dict_round_trip():
    kwargs = dict(kind="language_model", vocab_size=11, hidden_size=6, embedding_dim=6, tie_weights=True)
    network = build_network("gru_lm", **kwargs)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.5)
    logits, _ = network(torch.randint(0, 11, (2, 3)))
    logits.logsumexp(-1).sum().backward()
    optimizer.step()
    assert torch.equal(network.head.weight, network.encoder.input.embedding.weight)
    copy = build_network("gru_lm", **kwargs)
    copy.load_state_dict(network.state_dict())
    assert copy.head.weight is copy.encoder.input.embedding.weight
    assert torch.equal(copy.head.weight, network.head.weight)


def test_tying_needs_an_embedding():
    with pytest.raises(LitexpError, match="embedding_dim"):
        build_network("lstm_lm", kind="language_model", vocab_size=9, hidden_size=4, tie_weights=True)


def test_an_untied_model_is_unchanged():
    """Without the new options: the same modules, parameter names and outputs as before."""
    torch.manual_seed(0)
    network = build_network("lstm_lm", kind="language_model", vocab_size=12, hidden_size=5, embedding_dim=4)
    assert network.head.weight is not network.encoder.input.embedding.weight
    assert network.embedding_dropout is None and not hasattr(network, "projection")
    assert sorted(network.state_dict()) == sorted([
        "encoder.input.embedding.weight", "encoder.rnn.weight_ih_l0", "encoder.rnn.weight_hh_l0",
        "encoder.rnn.bias_ih_l0", "encoder.rnn.bias_hh_l0", "head.weight", "head.bias"])
    network.eval()
    tokens = torch.randint(0, 12, (2, 3))
    logits, _ = network(tokens)
    outputs, _ = network.encoder.rnn(network.encoder.input.embedding(tokens))
    assert torch.allclose(logits, network.head(outputs))


def test_the_task_builds_a_tied_model():
    task = LanguageModelTask(network="lstm_lm", vocab_size=15,
                             network_args={"hidden_size": 8, "embedding_dim": 8, "tie_weights": True})
    network = task.network
    assert network.head.weight is network.encoder.input.embedding.weight
    assert sum(p.numel() for p in task.parameters()) == sum(p.numel() for p in network.parameters())


def test_weight_dropout_drops_the_recurrence_in_training_only():
    torch.manual_seed(0)
    kwargs = dict(kind="language_model", vocab_size=10, hidden_size=6, embedding_dim=6)
    plain = build_network("lstm_lm", **kwargs)
    dropped = build_network("lstm_lm", **kwargs, weight_dropout=0.5, embedding_dropout=0.2)
    dropped.load_state_dict(plain.state_dict())  # the same parameter names: checkpoints load both ways
    tokens = torch.randint(0, 10, (2, 7))
    plain.eval()
    dropped.eval()
    assert torch.equal(plain(tokens)[0], dropped(tokens)[0])  # evaluation: no dropout at all
    dropped.train()
    logits, _ = dropped(tokens)
    assert not torch.allclose(logits, plain(tokens)[0])
    logits.sum().backward()  # the gradient reaches the recurrent weights themselves
    assert dropped.encoder.rnn.weight_hh_l0.grad is not None
    assert dropped.encoder.rnn.weight_hh_l0.grad.abs().sum() > 0
    with pytest.raises(LitexpError, match="weight_dropout"):
        build_network("lstm_lm", **kwargs, weight_dropout=1.0)
