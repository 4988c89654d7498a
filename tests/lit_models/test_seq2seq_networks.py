"""Translation networks: step-by-step decoding equals teacher forcing, padding is invisible, causality."""

from __future__ import annotations

import pytest
import torch

from lit_models import build_network, list_networks

SRC_VOCAB, TGT_VOCAB, PAD = 13, 11, 1
SMALL = {
    "seq2seq": {"embed_size": 6, "num_hiddens": 8, "num_layers": 2},
    "seq2seq_bi": {"embed_size": 6, "num_hiddens": 8, "num_layers": 2, "bidirectional": True},
    "seq2seq_attention": {"embed_size": 6, "num_hiddens": 8, "num_layers": 2},
    "seq2seq_attention_bi": {"embed_size": 6, "num_hiddens": 8, "num_layers": 2, "bidirectional": True},
    "transformer": {"num_hiddens": 8, "ffn_num_hiddens": 12, "num_heads": 2, "num_blks": 2},
}
VARIANTS = list(SMALL)
ATTENTION_VARIANTS = ["seq2seq_attention", "seq2seq_attention_bi", "transformer"]


def build(variant: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    name = variant.removesuffix("_bi")
    return build_network(name, kind="seq2seq", src_vocab_size=SRC_VOCAB, tgt_vocab_size=TGT_VOCAB,
                         dropout=0.3, **SMALL[variant]).eval()


def batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Four sources of lengths 5, 2, 7, 1 padded to 7 (pads = 1), and four target prefixes of length 6."""
    generator = torch.Generator().manual_seed(seed)
    src_len = torch.tensor([5, 2, 7, 1])
    src = torch.randint(4, SRC_VOCAB, (4, 7), generator=generator)
    src[torch.arange(7) >= src_len[:, None]] = PAD
    tgt_in = torch.randint(4, TGT_VOCAB, (4, 6), generator=generator)
    tgt_in[:, 0] = 2  # <bos>
    return src, src_len, tgt_in


def decode_stepwise(network, src, src_len, tgt_in):
    state = network.encode(src, src_len)
    logits, attentions = [], []
    for t in range(tgt_in.shape[1]):
        before = {k: v.clone() for k, v in state.items()}
        step_logits, new_state, attention = network.decode_step(tgt_in[:, t], state)
        assert state.keys() == before.keys() and all(torch.equal(state[k], before[k]) for k in state), \
            "decode_step modified its input state"
        assert all(v.shape[0] == src.shape[0] for v in new_state.values()), "state tensors are batch-first"
        logits.append(step_logits)
        attentions.append(attention)
        state = new_state
    return torch.stack(logits, dim=1), attentions


def test_the_registry_lists_the_three_translation_networks():
    assert {"seq2seq", "seq2seq_attention", "transformer"} <= set(list_networks("seq2seq"))


@pytest.mark.parametrize("variant", VARIANTS)
@torch.no_grad()
def test_step_by_step_decoding_equals_teacher_forcing(variant):
    network = build(variant)
    src, src_len, tgt_in = batch()
    expected = network(src, src_len, tgt_in)
    assert expected.shape == (4, 6, TGT_VOCAB) and torch.isfinite(expected).all()
    stepwise, attentions = decode_stepwise(network, src, src_len, tgt_in)
    torch.testing.assert_close(stepwise, expected, atol=1e-5, rtol=0)
    if variant in ATTENTION_VARIANTS:
        assert all(a.shape == (4, 7) for a in attentions)
    else:
        assert all(a is None for a in attentions)


@pytest.mark.parametrize("variant", VARIANTS)
@torch.no_grad()
def test_padding_beyond_the_source_length_is_invisible(variant):
    network = build(variant)
    src, src_len, tgt_in = batch()
    other = src.clone()
    pad_region = torch.arange(7) >= src_len[:, None]
    other[pad_region] = torch.randint(4, SRC_VOCAB, (int(pad_region.sum()),))
    assert not torch.equal(other, src)
    torch.testing.assert_close(network(other, src_len, tgt_in), network(src, src_len, tgt_in), atol=1e-6, rtol=0)
    stepwise, _ = decode_stepwise(network, other, src_len, tgt_in)
    torch.testing.assert_close(stepwise, network(src, src_len, tgt_in), atol=1e-5, rtol=0)


@pytest.mark.parametrize("variant", ATTENTION_VARIANTS)
@torch.no_grad()
def test_attention_gives_padded_source_positions_exactly_zero_weight(variant):
    network = build(variant)
    src, src_len, tgt_in = batch()
    _, attentions = decode_stepwise(network, src, src_len, tgt_in)
    pad_region = torch.arange(7) >= src_len[:, None]
    for attention in attentions:
        assert (attention[pad_region] == 0).all()
        torch.testing.assert_close(attention.sum(-1), torch.ones(4))


@torch.no_grad()
def test_transformer_decoder_is_causal():
    network = build("transformer")
    src, src_len, tgt_in = batch()
    logits = network(src, src_len, tgt_in)
    for t in range(1, tgt_in.shape[1]):
        changed = tgt_in.clone()
        changed[:, t] = (changed[:, t] + 1 - 4) % (TGT_VOCAB - 4) + 4
        other = network(src, src_len, changed)
        torch.testing.assert_close(other[:, :t], logits[:, :t], atol=1e-6, rtol=0)
        assert not torch.allclose(other[:, t], logits[:, t])


@pytest.mark.parametrize("variant", VARIANTS)
def test_training_mode_gradients_reach_every_parameter(variant):
    network = build(variant).train()
    src, src_len, tgt_in = batch()
    logits = network(src, src_len, tgt_in)
    assert torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits.reshape(-1, TGT_VOCAB), tgt_in.reshape(-1)).backward()
    for name, parameter in network.named_parameters():
        assert parameter.grad is not None, f"no gradient reaches {name}"
        assert torch.isfinite(parameter.grad).all() and parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("variant", ["seq2seq_bi", "seq2seq_attention_bi"])
def test_bidirectional_encoder_merges_both_directions_into_decoder_states(variant):
    network = build(variant)
    src, src_len, _ = batch()
    state = network.encode(src, src_len)
    assert state["hidden"].shape == (4, 2, 8)  # (B, L, H): decoder-sized
    if "memory" in state:
        assert state["memory"].shape == (4, 7, 16)  # both directions as attention keys/values
        assert (state["memory"][torch.arange(7) >= src_len[:, None]] == 0).all()


@pytest.mark.parametrize("variant", VARIANTS)
@torch.no_grad()
def test_beam_style_state_reordering(variant):
    """Expanding the state per beam and reordering it gives each beam its own example's logits."""
    network = build(variant)
    src, src_len, tgt_in = batch()
    state = network.encode(src, src_len)
    expanded = {k: v.repeat_interleave(3, dim=0) for k, v in state.items()}  # (B * 3, ...)
    order = torch.arange(12).flip(0)
    reordered = {k: v.index_select(0, order) for k, v in expanded.items()}
    logits, _, _ = network.decode_step(tgt_in[:, 0].repeat_interleave(3).flip(0), reordered)
    expected, _, _ = network.decode_step(tgt_in[:, 0], state)
    torch.testing.assert_close(logits, expected.repeat_interleave(3, dim=0).flip(0), atol=1e-5, rtol=0)


def test_empty_source_gives_finite_outputs():
    src, src_len, tgt_in = batch()
    src_len = torch.tensor([5, 0, 7, 1])
    for variant in VARIANTS:
        assert torch.isfinite(build(variant)(src, src_len, tgt_in)).all(), variant


def test_builder_defaults_are_the_books_settings():
    network = build_network("transformer", src_vocab_size=10, tgt_vocab_size=10)
    assert network.num_hiddens == 256 and network.num_blks == 2
    assert network.decoder_blks[0].ffn.dense1.out_features == 64
    assert network.decoder_blks[0].attention1.num_heads == 4
    rnn = build_network("seq2seq_attention", src_vocab_size=10, tgt_vocab_size=10)
    assert rnn.encoder.rnn.hidden_size == 256 and rnn.encoder.rnn.num_layers == 2 and rnn.rnn.dropout == 0.2
    assert rnn.embedding.embedding_dim == 256
