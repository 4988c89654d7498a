"""Text corpora: tokenization, vocabulary, block splits, window batches, named corpora, bad input."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
import torch

from datamodules import corpora, files
from datamodules.splits import block_split
from datamodules.text import TextCorpus, WindowSampler
from datamodules.vocab import Tokenizer, Vocab
from litexp.errors import LitexpError
from tests.fake_data import english_like_text


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(english_like_text(200, seed=0), encoding="utf-8")
    return path


def test_tokenizer_levels_case_and_punctuation():
    assert Tokenizer("char")("Ab c") == ["a", "b", " ", "c"]
    assert Tokenizer("char", lowercase=False, punctuation="drop")("It's 3 AM!") == list("It s AM")
    assert Tokenizer("word")("The cat, sat.") == ["the", "cat,", "sat."]
    assert Tokenizer("word", punctuation="split")("The cat, sat <unk>.") == ["the", "cat", ",", "sat", "<unk>", "."]
    assert Tokenizer("word", punctuation="drop")("The cat, sat.") == ["the", "cat", "sat"]
    assert Tokenizer("word").join(["a", "b"]) == "a b" and Tokenizer("char").join(["a", "b"]) == "ab"


def test_vocab_reserved_tokens_min_freq_and_round_trip():
    vocab = Vocab.build([["b", "a", "b", "c", "b", "a"]], min_freq=2, tokenizer=Tokenizer("word"))
    assert vocab.tokens == ["<unk>", "<pad>", "<bos>", "<eos>", "b", "a"]  # reserved, then by frequency
    assert vocab.encode(["a", "c", "zzz"]) == [5, 0, 0]  # rare and unseen tokens are <unk>
    assert vocab.decode([4, 5]) == ["b", "a"]
    assert vocab.token_freqs()[0] == ("b", 3)
    restored = Vocab.from_dict(vocab.to_dict())
    assert restored == vocab and restored.tokenizer.level == "word" and restored.freqs == vocab.freqs


def test_block_splits_are_contiguous_and_cover_the_training_part():
    train, val = block_split(100, 0.2, None, 0)
    assert train == [(0, 80)] and val == [(80, 100)]
    covered = []
    for fold in range(4):
        train, val = block_split(100, 0.1, 4, fold)
        assert len(val) == 1 and val[0][1] - val[0][0] == 25
        assert sum(e - b for b, e in train) == 75
        assert all(e <= val[0][0] or b >= val[0][1] for b, e in train)  # no overlap with validation
        covered.append(val[0])
    assert covered == [(0, 25), (25, 50), (50, 75), (75, 100)]


def test_vocabulary_comes_from_the_training_blocks_only(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("ab" * 400 + "x" * 100 + "q" * 100, encoding="utf-8")  # x only in val, q only in test
    data = TextCorpus(path=str(path), num_steps=4, batch_size=4, val_fraction=100 / 900, test_fraction=100 / 1000)
    assert set(data.vocab.tokens) == {"<unk>", "<pad>", "<bos>", "<eos>", "a", "b"}
    assert data.vocab_size == 6
    data.setup("fit")
    val_inputs, _ = next(iter(data.val_dataloader()))
    assert (val_inputs == data.vocab.unk).all()
    assert data._test_split is None  # the test part is not encoded for fitting
    data.setup("test")
    assert (next(iter(data.test_dataloader()))[0] == data.vocab.unk).all()


def test_random_windows_are_shifted_targets_inside_the_training_blocks(corpus_file):
    data = TextCorpus(path=str(corpus_file), num_steps=8, batch_size=16, num_folds=4, fold=1)
    data.setup("fit")
    ids = data._ids
    (val_begin, val_end), = data.val_ranges
    for epoch in range(2):
        loader = data.train_dataloader()
        loader.sampler.set_epoch(epoch)
        for inputs, targets in loader:
            assert inputs.shape[1] == 8 and torch.equal(inputs[:, 1:], targets[:, :-1])
        starts = torch.cat(list(loader.sampler))
        assert not ((starts + 8 >= val_begin) & (starts < val_end)).any(), "a training window reads validation"
        assert torch.equal(ids[starts[:, None] + torch.arange(9)][:, :-1], ids[starts[:, None] + torch.arange(8)])


def test_sequential_batches_continue_each_row(corpus_file):
    data = TextCorpus(path=str(corpus_file), num_steps=8, batch_size=4, sampling="sequential")
    data.setup("fit")
    assert data.carry_state
    batches = list(data.train_dataloader().sampler)
    assert len(batches) > 2
    for previous, following in zip(batches, batches[1:], strict=False):
        assert torch.equal(following, previous + 8)  # row b of batch j+1 starts where row b of batch j ended
    windows = data.train_dataloader()
    first, second = list(windows)[:2]
    assert torch.equal(first[1][:, -1], second[0][:, 0])  # last target of a row = first input of the next


def test_ddp_ranks_take_disjoint_rows_and_windows(corpus_file):
    ranges = [(0, 2000)]
    for mode in ("sequential", "random", "eval"):
        shards = [torch.cat(list(WindowSampler(ranges, 8, 4, mode, seed=3, rank=r, world_size=2))) for r in (0, 1)]
        assert not set(shards[0].tolist()) & set(shards[1].tolist()), mode


def test_folder_of_files(tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text("hello world " * 200, encoding="utf-8")
    (folder / "b.txt").write_text("goodbye moon " * 200, encoding="utf-8")
    data = TextCorpus(path=str(folder), level="word", num_steps=4, batch_size=8, test_fraction=0.2)
    assert {"hello", "world", "goodbye"} <= set(data.vocab.tokens)


@pytest.mark.parametrize("content,message", [
    (b"", "empty"),
    (b"   \n\n", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8"),
    ("caf\u00e9 ".encode("latin-1") * 100, "not UTF-8"),
    (b"too short", "fewer than one batch"),
])
def test_bad_text_files(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(LitexpError, match=message):
        TextCorpus(path=str(path), num_steps=8, batch_size=4).vocab_size  # noqa: B018


def test_missing_path_and_unknown_corpus(tmp_path):
    with pytest.raises(LitexpError, match="does not exist"):
        TextCorpus(path=str(tmp_path / "nope.txt")).vocab_size  # noqa: B018
    with pytest.raises(LitexpError, match="unknown corpus 'shakespear'; valid corpora: timemachine, ptb"):
        TextCorpus(corpus="shakespear")


def _served(monkeypatch, payload: bytes, name: str = "timemachine") -> list[str]:
    """A fake network: ``fetch`` writes ``payload``; the checksum table expects it."""
    requested = []

    def fake_fetch(url, target, timeout=30.0):
        requested.append(url)
        target.write_bytes(payload)

    monkeypatch.setattr(files, "fetch", fake_fetch)
    checksum = "sha1:" + hashlib.sha1(payload).hexdigest()
    monkeypatch.setitem(corpora.CORPORA, name, dataclasses.replace(corpora.CORPORA[name], checksum=checksum))
    return requested


def test_named_corpus_is_downloaded_verified_and_then_used_offline(tmp_path, monkeypatch):
    payload = english_like_text(300, seed=5).encode()
    requested = _served(monkeypatch, payload)
    data = TextCorpus(corpus="timemachine", data_dir=str(tmp_path), num_steps=8, batch_size=4)
    assert data.vocab_size > 10
    assert requested == [corpora.CORPORA["timemachine"].url]
    assert (tmp_path / "text/timemachine/timemachine.txt").read_bytes() == payload
    monkeypatch.setattr(files, "fetch", lambda *a, **k: pytest.fail("downloaded twice"))
    again = TextCorpus(corpus="timemachine", data_dir=str(tmp_path), num_steps=8, batch_size=4, download=False)
    assert again.vocab == data.vocab


def test_corrupt_download_and_failing_network(tmp_path, monkeypatch):
    _served(monkeypatch, b"expected content")
    monkeypatch.setattr(files, "fetch", lambda url, target, timeout=30.0: target.write_bytes(b"truncated"))
    with pytest.raises(LitexpError, match="checksum mismatch"):
        TextCorpus(corpus="timemachine", data_dir=str(tmp_path)).vocab_size  # noqa: B018

    def offline(url, target, timeout=30.0):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(files, "fetch", offline)
    with pytest.raises(LitexpError, match="download from .* failed .*unreachable"):
        TextCorpus(corpus="ptb", data_dir=str(tmp_path / "other")).vocab_size  # noqa: B018
    with pytest.raises(LitexpError, match="not found in .*download: false"):
        TextCorpus(corpus="ptb", data_dir=str(tmp_path / "other"), download=False).vocab_size  # noqa: B018


def test_zip_corpus_with_its_own_test_file(fake_data_dir):
    data = TextCorpus(corpus="ptb", level="word", num_steps=5, batch_size=4)
    assert "<unk>" in data.vocab.tokens and data.vocab.freqs[data.vocab.unk] > 0  # PTB's own <unk> maps to id 0
    assert (fake_data_dir / "text/ptb/ptb/ptb.test.txt").exists()
    data.setup("test")
    assert len(data._test_split[0]) > 100


def test_fetch_writes_nothing_on_failure(tmp_path):
    target = tmp_path / "file.txt"
    with pytest.raises(Exception):  # noqa: B017  (no network here: any failure, nothing left behind)
        files.fetch("http://127.0.0.1:9/none.txt", target, timeout=2)
    assert list(tmp_path.iterdir()) == []


def test_skipgram_vocabulary_and_pairs_come_from_the_training_blocks_only(tmp_path):
    from datamodules.skipgram import SkipGramCorpus

    path = tmp_path / "words.txt"
    train_words = " ".join(["red green blue"] * 300)
    path.write_text(f"{train_words} violet violet violet violet amber amber amber", encoding="utf-8")
    # the last 10% of the text (the violet/amber block and some colours) validates; the test part is empty
    data = SkipGramCorpus(path=str(path), min_freq=1, subsample_threshold=1.0, max_window=2, batch_size=8,
                          val_fraction=0.1, test_fraction=0.0)
    data.setup("fit")
    assert {"red", "green", "blue"} <= set(data.vocab.tokens)
    assert "violet" not in data.vocab.ids and "amber" not in data.vocab.ids  # seen only in validation
    assert data.noise_weights[data.vocab.unk] == 0
    (val_begin, val_end), = data.val_indices
    train_centers = torch.cat([batch[0] for batch in data.train_dataloader()])
    val_centers = torch.cat([batch[0] for batch in data.val_dataloader()])
    assert len(train_centers) > 0 and len(val_centers) > 0
    train_words_seen = int(sum(end - begin for begin, end in data.train_indices))
    assert train_words_seen == val_begin  # hold-out: the training block is everything before validation
