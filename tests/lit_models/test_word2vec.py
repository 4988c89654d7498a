"""word2vec: subsampling, context windows, the noise distribution, training, the embeddings file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datamodules.skipgram import SkipGramCorpus, skipgram_pairs, subsample
from lit_models import LitexpError, Word2VecTask
from lit_models.word2vec import load_embeddings, nearest_words, save_embeddings


def test_subsampling_drops_frequent_words_more_often():
    rng = np.random.default_rng(0)
    ids = np.array([4] * 9000 + [5] * 1000 + [6] * 50)
    freqs = np.bincount(ids, minlength=7).astype(float)
    kept = subsample(ids, freqs, 1e-2, rng)
    kept_fraction = {w: (kept == w).sum() / (ids == w).sum() for w in (4, 5, 6)}
    assert kept_fraction[4] < kept_fraction[5] < kept_fraction[6] == 1.0
    assert kept_fraction[4] == pytest.approx(np.sqrt(1e-2 / 0.8945), abs=0.02)
    assert 0 not in subsample(np.array([0, 4, 0]), np.array([2.0, 0, 0, 0, 1.0]), 1.0, rng)  # <unk> dropped


def test_context_pairs_stay_inside_random_windows():
    ids = np.arange(100)
    centers, contexts = skipgram_pairs(ids, 3, np.random.default_rng(0))
    distance = np.abs(centers - contexts)
    assert distance.min() == 1 and distance.max() == 3
    counts = np.bincount(distance)
    assert counts[1] > counts[2] > counts[3] > 0  # distance 1 is in every window, 3 only in the widest
    assert (centers != contexts).all()


def test_noise_words_follow_freq_to_the_three_quarters(fake_data_dir):
    data = SkipGramCorpus(corpus="ptb", min_freq=1, num_negatives=5, batch_size=8)
    weights = data.noise_weights
    assert (weights[:4] == 0).all()  # never a reserved token or <unk>
    torch.manual_seed(0)
    centers = torch.zeros(40000, dtype=torch.long)
    _, _, noise = data.transform_batch((centers, centers), training=True)
    assert noise.shape == (40000, 5)
    observed = torch.bincount(noise.flatten(), minlength=len(weights)).float() / noise.numel()
    expected = torch.tensor(data.vocab.freqs, dtype=torch.float).pow(0.75)
    expected[:4] = 0
    assert torch.allclose(observed, expected / expected.sum(), atol=0.005)


def test_skipgram_learns_which_words_share_contexts():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    topics = [np.arange(4, 12), np.arange(12, 20)]  # two groups of words that never meet
    ids = np.concatenate([rng.choice(topics[i % 2], size=20) for i in range(300)])
    centers, contexts = map(torch.from_numpy, skipgram_pairs(ids, 2, rng))
    task = Word2VecTask(vocab_size=20, network_args={"embedding_dim": 16})
    optimizer = torch.optim.Adam(task.parameters(), lr=0.02)
    for _ in range(150):
        index = torch.randint(len(centers), (256,))
        noise = torch.randint(4, 20, (256, 5))
        loss = task._step((centers[index], contexts[index], noise), "train")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    tokens = [f"w{i}" for i in range(20)]
    neighbours = [int(word[1:]) for word, _ in nearest_words(tokens, task.network.embeddings, "w5", k=5)]
    assert all(4 <= n < 12 for n in neighbours), neighbours


def test_embeddings_file_round_trip_and_queries(tmp_path):
    tokens = ["<unk>", "<pad>", "<bos>", "<eos>", "king", "queen", "apple"]
    vectors = torch.tensor([[0, 0], [1, 0], [1, 0.1], [1, 0], [1, 1], [1, 0.9], [-1, 0.2]])
    save_embeddings(tmp_path / "e.txt", tokens, vectors)
    assert (tmp_path / "e.txt").read_text().splitlines()[0] == "7 2"
    loaded_tokens, loaded = load_embeddings(tmp_path / "e.txt")
    assert loaded_tokens == tokens and torch.allclose(loaded, vectors)
    nearest = nearest_words(tokens, loaded, "king", k=2)
    assert nearest[0][0] == "queen" and nearest[0][1] == pytest.approx(0.9986, abs=1e-3)
    assert "<pad>" not in [word for word, _ in nearest_words(tokens, loaded, "king", k=6)]
    with pytest.raises(LitexpError, match="'prince' is not in the vocabulary"):
        nearest_words(tokens, loaded, "prince")
    (tmp_path / "bad.txt").write_text("not a header\n")
    with pytest.raises(LitexpError, match="cannot read embeddings"):
        load_embeddings(tmp_path / "bad.txt")
