"""GloVe: co-occurrence counts, the weighted least-squares loss, training, and analogies on vectors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datamodules.cooccurrence import CooccurrenceCorpus, cooccurrences
from lit_models import GloVeTask, LitexpError
from lit_models.glove import glove_weights
from lit_models.word2vec import analogy, nearest_words


def as_dict(rows, columns, counts) -> dict[tuple[int, int], float]:
    return {(int(r), int(c)): float(x) for r, c, x in zip(rows, columns, counts, strict=True)}


def test_counts_weigh_pairs_by_distance_stay_symmetric_and_inside_ranges():
    ids = torch.tensor([4, 5, 6, 0, 7, 9, 8, 9])
    counts = as_dict(*cooccurrences(ids, [(0, 6), (6, 8)], vocab_size=10, window=2))
    assert counts[(4, 5)] == counts[(5, 4)] == pytest.approx(1.0)
    assert counts[(4, 6)] == counts[(6, 7)] == pytest.approx(0.5)  # two words apart: 1/2
    assert not any(0 in pair for pair in counts)  # <unk> takes part in no pair
    assert (7, 8) not in counts and (8, 9) in counts  # never across a block border
    plain = as_dict(*cooccurrences(ids, [(0, 8)], 10, 2, distance_weighting=False))
    assert plain[(4, 6)] == 1.0 and (9, 8) in plain


def test_the_weight_grows_to_one_at_x_max():
    weights = glove_weights(torch.tensor([1.0, 50.0, 100.0, 1000.0]), x_max=100.0, alpha=0.75)
    assert weights.tolist() == pytest.approx([0.01 ** 0.75, 0.5 ** 0.75, 1.0, 1.0])


def test_the_data_module_counts_training_and_validation_blocks_apart(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text(" ".join(["red green blue"] * 300 + ["violet amber"] * 20), encoding="utf-8")
    data = CooccurrenceCorpus(path=str(path), min_freq=1, window=2, batch_size=4, val_fraction=0.1,
                              test_fraction=0.0)
    data.setup("fit")
    assert "violet" not in data.vocab.ids  # the validation block's words are not in the vocabulary
    rows, columns, counts = next(iter(data.train_dataloader()))
    assert rows.shape == columns.shape == counts.shape == (4,) and (counts > 0).all()
    assert len(list(data.val_dataloader())) > 0
    with pytest.raises(LitexpError, match="fewer than one batch"):
        small = CooccurrenceCorpus(path=str(path), min_freq=1, window=1, batch_size=100000)
        small.setup("fit")
        next(iter(small.train_dataloader()))


def test_glove_learns_which_words_share_contexts():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    topics = [np.arange(4, 12), np.arange(12, 20)]  # two groups of words that never meet
    ids = torch.from_numpy(np.concatenate([rng.choice(topics[i % 2], size=20) for i in range(300)]))
    rows, columns, counts = cooccurrences(ids, [(0, len(ids))], 20, window=3)
    task = GloVeTask(vocab_size=20, network_args={"embedding_dim": 8}, x_max=10.0)
    optimizer = torch.optim.Adam(task.parameters(), lr=0.05)
    for _ in range(200):
        loss = task._step((rows, columns, counts), "train")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    tokens = [f"w{i}" for i in range(20)]
    neighbours = [int(word[1:]) for word, _ in nearest_words(tokens, task.network.embeddings, "w5", k=5)]
    assert all(4 <= n < 12 for n in neighbours), neighbours


def test_analogy_is_the_offset_b_minus_a_plus_c():
    tokens = ["<unk>", "man", "king", "woman", "queen", "apple"]
    vectors = torch.tensor([[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 1], [-1, -1, 0.2]])
    answers = analogy(tokens, vectors, "man", "king", "woman", k=2)
    assert answers[0][0] == "queen" and {word for word, _ in answers}.isdisjoint({"man", "king", "woman"})
    with pytest.raises(LitexpError, match="'prince' not in the vocabulary"):
        analogy(tokens, vectors, "man", "prince", "woman")
