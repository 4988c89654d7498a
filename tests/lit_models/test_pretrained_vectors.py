"""Pretrained word vectors: the text format, mapping onto a vocabulary, freezing and slowing the embedding."""

from __future__ import annotations

import pytest
import torch

from lit_models import LanguageModelTask, LitexpError, Seq2SeqTask
from lit_models.pretrained_vectors import load_pretrained, read_vectors, vectors_for_vocab

VOCAB = ["<unk>", "<pad>", "<bos>", "<eos>", "the", "cat", "sat", "zebra"]


@pytest.fixture
def glove_file(tmp_path):
    """GloVe's layout: no header, a word and its numbers per line."""
    path = tmp_path / "vectors.txt"
    path.write_text("the 1 0 0\ncat 0 1 0\nsat 0 0 1\nThe 9 9 9\nDog 1 1 1\n", encoding="utf-8")
    return path


def test_read_with_and_without_a_header(tmp_path, glove_file):
    words, vectors = read_vectors(glove_file)
    assert words == ["the", "cat", "sat", "The", "Dog"] and vectors.shape == (5, 3)
    with_header = tmp_path / "w2v.txt"
    with_header.write_text("2 3\nthe 1 0 0\nthe 5 5 5\ncat 0 1 0 \n\n", encoding="utf-8")
    words, vectors = read_vectors(with_header)
    assert words == ["the", "cat"] and torch.equal(vectors[0], torch.tensor([1.0, 0, 0]))  # the first one wins


def test_vectors_follow_the_vocabulary_order_and_coverage_is_reported(glove_file):
    words, vectors = read_vectors(glove_file)
    matrix, coverage = vectors_for_vocab(VOCAB, words, vectors)
    assert matrix.shape == (len(VOCAB), 3)
    assert torch.equal(matrix[VOCAB.index("cat")], torch.tensor([0.0, 1, 0]))
    assert torch.equal(matrix[VOCAB.index("the")], torch.tensor([1.0, 0, 0]))  # the exact word before "The"
    assert (matrix[VOCAB.index("<pad>")] == 0).all()
    assert coverage.found == 3 and coverage.total == 4 and coverage.missing == ("zebra",)  # reserved not counted
    assert "3 of 4 words (75.0%)" in str(coverage)
    zebra = matrix[VOCAB.index("zebra")]
    assert zebra.abs().sum() > 0 and not any(torch.equal(zebra, row) for row in vectors)  # random, not a copy
    _, lower = vectors_for_vocab(["<unk>", "dog", "cat"], words, vectors)
    assert lower.found == 1 and lower.missing == ("dog",)  # "Dog" is not "dog": the file's own case is kept
    _, upper = vectors_for_vocab(["<unk>", "Cat"], words, vectors)
    assert upper.found == 1  # a vocabulary word with capitals falls back to its lower-case form


@pytest.mark.parametrize("content,message", [
    ("the 1 0 0\ncat 0 1\n", "line 2: 2 numbers after the word where the file's vectors have 3"),
    ("2 3\nthe 1 0 0\ncat 0 1 0 5\n", "line 3: 4 numbers .* have 3; .*ragged"),
    ("the 1 x 0\n", "line 1: could not convert"),
    ("\n\n", "holds no vectors"),
    (b"the \xff 1\n", "not UTF-8"),
])
def test_bad_vector_files_are_one_line(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(LitexpError, match=message):
        read_vectors(path)
    with pytest.raises(LitexpError, match="does not exist"):
        read_vectors(tmp_path / "missing.txt")


def test_a_dimension_that_disagrees_or_no_overlap_is_one_line(tmp_path, glove_file):
    with pytest.raises(LitexpError, match="dimension 3 but embedding has dimension 5; set the network's embedding"):
        load_pretrained(torch.nn.Embedding(len(VOCAB), 5), glove_file, VOCAB, what="embedding")
    with pytest.raises(LitexpError, match="none of the 2 words of the task's vocabulary has a vector"):
        load_pretrained(torch.nn.Embedding(6, 3), glove_file, ["<unk>", "<pad>", "<bos>", "<eos>", "ant", "bee"])
    with pytest.raises(LitexpError, match="not a learned embedding"):
        load_pretrained(None, glove_file, VOCAB)


def language_model(**options) -> LanguageModelTask:
    return LanguageModelTask(network="gru_lm", vocab_size=len(VOCAB), optimizer="adam", lr=0.01,
                             network_args={"hidden_size": 4, "embedding_dim": 3}, **options)


def test_the_language_model_loads_the_vectors_at_fit_start(glove_file, monkeypatch):
    task = language_model(pretrained_embeddings=str(glove_file))
    monkeypatch.setattr(task, "_data_vocab", lambda: {"tokens": VOCAB})
    task.setup("fit")
    weight = task.network.encoder.input.embedding.weight
    assert torch.equal(weight[VOCAB.index("sat")], torch.tensor([0.0, 0, 1]))
    assert task.summary()["embedding_coverage"] == 0.75 and task.summary()["embedding_words_found"] == 3
    before = weight.detach().clone()
    task.setup("validate")  # only fit loads: validate and test keep the checkpoint's weights
    assert torch.equal(weight, before)


def test_frozen_or_slower_embeddings_in_the_optimizer():
    frozen = language_model(freeze_embeddings=True)
    embedding = frozen.network.encoder.input.embedding.weight
    assert not embedding.requires_grad
    optimizer = frozen.configure_optimizers()
    assert all(embedding is not p for group in optimizer.param_groups for p in group["params"])
    slow = language_model(embedding_lr_multiplier=0.1)
    optimizer = slow.configure_optimizers()
    rates = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    assert rates[id(slow.network.encoder.input.embedding.weight)] == pytest.approx(0.001)
    assert rates[id(slow.network.head.weight)] == pytest.approx(0.01)
    assert sum(len(group["params"]) for group in optimizer.param_groups) == len(list(slow.parameters()))
    with pytest.raises(LitexpError, match="no learned embedding .*embedding_dim"):
        LanguageModelTask(network="gru_lm", vocab_size=8, freeze_embeddings=True)  # one-hot input
    with pytest.raises(LitexpError, match="embedding_lr_multiplier must be"):
        language_model(embedding_lr_multiplier=-1.0)


def test_a_seq2seq_encoder_takes_source_vectors(glove_file, monkeypatch):
    task = Seq2SeqTask(network="seq2seq", src_vocab_size=len(VOCAB), tgt_vocab_size=6, freeze_embeddings=True,
                       pretrained_embeddings=str(glove_file),
                       network_args={"embed_size": 3, "num_hiddens": 4, "num_layers": 1, "dropout": 0.0})
    monkeypatch.setattr(task, "_data_vocab", lambda: {"source": {"tokens": VOCAB}, "target": {"tokens": VOCAB[:6]}})
    task.setup("fit")
    source = task.network.encoder.embedding.weight
    assert torch.equal(source[VOCAB.index("cat")], torch.tensor([0.0, 1, 0])) and not source.requires_grad
    assert task.network.embedding.weight.requires_grad  # the decoder's target embedding still trains
