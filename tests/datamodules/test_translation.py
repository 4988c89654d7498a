"""Parallel corpora: the book's normalization, two vocabularies, fixed-length arrays, splits, bad input."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest
import torch

from datamodules import ParallelCorpus, corpora, files
from datamodules.translation import ids_to_tokens, normalize, parse_pairs, tokenize
from datamodules.vocab import Vocab
from litexp.errors import LitexpError
from tests.fake_data import fra_eng_lines, write_fra_eng_zip

RESERVED = ["<unk>", "<pad>", "<bos>", "<eos>"]
UNK, PAD, BOS, EOS = range(4)


def write(tmp_path, text: str, name: str = "pairs.tsv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def numbered_pairs(num: int) -> str:
    """Line i: its digits as source tokens ("1 7"), a fixed target: a line's number can be decoded back."""
    return "".join(f"{' '.join(str(i))}\tun deux\n" for i in range(num))


def line_numbers(data: ParallelCorpus, src: torch.Tensor) -> set[int]:
    return {int("".join(data.decode(row, side="source"))) for row in src}


def book_preprocess(text: str) -> str:
    """d2l's ``MTFraEng._preprocess``, verbatim, as the reference."""
    text = text.replace('\u202f', ' ').replace('\xa0', ' ')
    no_space = lambda char, prev_char: char in ',.!?' and prev_char != ' '  # noqa: E731
    out = [' ' + char if i > 0 and no_space(char, text[i - 1]) else char for i, char in enumerate(text.lower())]
    return ''.join(out)


def test_normalization_is_the_books():
    assert normalize("Go.") == "go ." and normalize("Va !") == "va !"
    assert normalize("Va\u202f!") == "va !" and normalize("Qui\xa0?") == "qui ?"
    assert tokenize("J'ai  faim, Tom!") == ["j'ai", "faim", ",", "tom", "!"]
    for text in ("Go.", "Va\u202f!", "Hi,there!", "Wait... What?!", " . ,", "Ça\xa0va\u202f?", ""):
        assert normalize(text) == book_preprocess(text), text
    pairs, malformed, _ = parse_pairs("Go.\tVa !\n")
    assert pairs == [(["go", "."], ["va", "!"])] and sum(malformed.values()) == 0


def test_arrays_end_with_eos_are_padded_or_cut_with_valid_lengths(tmp_path):
    text = "A b\tX y z\nA b c\tX\nA b c d e\tX y\n"
    data = ParallelCorpus(path=write(tmp_path, text), num_steps=4, min_freq=1, test_fraction=0, val_fraction=0,
                          batch_size=1)
    src, src_len, tgt, tgt_len = data.load("train")
    assert all(t.dtype == torch.long for t in (src, src_len, tgt, tgt_len))
    a, b, c = data.src_vocab.encode(["a", "b", "c"])
    assert src.tolist() == [[a, b, EOS, PAD], [a, b, c, EOS], [a, b, c, data.src_vocab.ids["d"]]]
    assert src_len.tolist() == [3, 4, 4] and tgt_len.tolist() == [4, 2, 3]
    assert tgt[0].tolist() == data.tgt_vocab.encode(["x", "y", "z", "<eos>"])
    assert torch.equal(src_len, (src != PAD).sum(1)) and torch.equal(tgt_len, (tgt != PAD).sum(1))
    assert data.truncated == 1  # only the third pair lost its <eos>
    assert data.decode(tgt[1]) == ["x"] and data.decode(src[2], side="source") == ["a", "b", "c", "d"]
    assert data.num_steps == 4 and data.src_vocab_size == 4 + 5 and data.tgt_vocab_size == 4 + 3


def test_reverse_swaps_the_columns_and_a_third_column_is_ignored(tmp_path):
    text = "Go.\tVa !\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM)\n" * 3
    forward = ParallelCorpus(path=write(tmp_path, text), min_freq=1, test_fraction=0, val_fraction=0, batch_size=1)
    backward = ParallelCorpus(path=write(tmp_path, text), min_freq=1, test_fraction=0, val_fraction=0, batch_size=1,
                              reverse=True)
    assert forward.src_vocab.tokens == RESERVED + [".", "go"] and forward.tgt_vocab.tokens == RESERVED + ["!", "va"]
    assert backward.src_vocab == forward.tgt_vocab and backward.tgt_vocab == forward.src_vocab
    assert forward.decode(forward.load("train")[0][0], side="source") == ["go", "."]


def test_max_pairs_takes_the_first_well_formed_pairs(tmp_path):
    text = "A\tB\nbroken line\nC\tD\nE\tF\nG\tH\nno tab either\n"
    data = ParallelCorpus(path=write(tmp_path, text), max_pairs=3, min_freq=1, test_fraction=0, val_fraction=0,
                          batch_size=1)
    with pytest.warns(UserWarning, match="skipped 1 malformed lines"):  # line 6 lies beyond the first 3 pairs
        tokens = [data.decode(row, side="source") for row in data.load("train")[0]]
    assert tokens == [["a"], ["c"], ["e"]] and data.summary()["pairs"] == 3


def test_malformed_lines_are_counted_warned_once_and_summarized(tmp_path):
    good = "Hello.\tBonjour.\n" * 4
    text = good + "no tab here\nHi.\t \tattribution\n\tSalut.\n" + good + "also no tab\n\n\n  \n"
    data = ParallelCorpus(path=write(tmp_path, text), min_freq=1, test_fraction=0, val_fraction=0, batch_size=1)
    with pytest.warns(UserWarning) as caught:
        data.setup("fit")
    messages = [str(w.message) for w in caught if "malformed" in str(w.message)]
    assert len(messages) == 1 and "\n" not in messages[0]
    assert "skipped 4 malformed lines (no_tab: 2, empty_side: 2; first at lines 5, 6, 7, 12)" in messages[0]
    assert data.malformed == {"no_tab": 2, "empty_side": 2} and data.malformed_lines == [5, 6, 7, 12]
    facts = data.summary()
    assert facts["malformed"] == {"no_tab": 2, "empty_side": 2} and facts["pairs"] == 8 and facts["truncated"] == 0
    assert len(data.train_indices) == 8
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # trailing blank lines alone are not malformed
        ParallelCorpus(path=write(tmp_path, good + "\n\n", "clean.tsv"), batch_size=1).src_vocab_size  # noqa: B018


def test_vocabularies_come_from_the_training_pairs_only(tmp_path):
    # every line has its own words: a word is in the vocabulary exactly when its line is a training pair
    text = "".join(f"W{i}.\tM{i} commun.\n" for i in range(60))
    data = ParallelCorpus(path=write(tmp_path, text), min_freq=1, batch_size=4, val_fraction=0.25, test_fraction=0.2)
    data.setup("fit")
    train, val = data.train_indices, data.val_indices
    assert len(train) + len(val) == 48 and len(val) == 12
    assert data.src_vocab_size == 4 + 1 + len(train)  # reserved, ".", one word per training pair
    assert data.tgt_vocab_size == 4 + 2 + len(train)  # reserved, ".", "commun", one word per training pair
    src, _, tgt, _ = data._train_split
    assert (src[train, 0] != UNK).all() and (src[val, 0] == UNK).all() and (tgt[val, 0] == UNK).all()
    assert data._test_split is None
    data.setup("test")
    test_src, _, test_tgt, _ = data._test_split
    assert len(test_src) == 12 and (test_src[:, 0] == UNK).all() and (test_tgt[:, 1] != UNK).all()


def test_batches_and_holdout_folds_cover_the_training_split(tmp_path):
    path = write(tmp_path, numbered_pairs(100))
    data = ParallelCorpus(path=path, num_steps=4, batch_size=16, test_fraction=0.2, val_fraction=0.25)
    data.setup("fit")
    assert len(data.train_indices) == 60 and len(data.val_indices) == 20
    src, src_len, tgt, tgt_len = next(iter(data.train_dataloader()))
    assert src.shape == tgt.shape == (16, 4) and src_len.shape == tgt_len.shape == (16,)
    assert sum(len(batch[0]) for batch in data.val_dataloader()) == 20
    other = ParallelCorpus(path=path, num_steps=4, batch_size=16, test_fraction=0.2, val_fraction=0.25, split_seed=1)
    other.setup("fit")
    assert not np.array_equal(other.val_indices, data.val_indices)
    assert other.split_fingerprint != data.split_fingerprint
    validated = []
    for fold in range(4):
        folded = ParallelCorpus(path=path, num_steps=4, batch_size=16, test_fraction=0.2, num_folds=4, fold=fold)
        folded.setup("fit")
        assert not set(folded.train_indices) & set(folded.val_indices)
        assert sorted([*folded.train_indices, *folded.val_indices]) == list(range(80))
        validated.extend(folded.val_indices.tolist())
    assert sorted(validated) == list(range(80))  # the folds are disjoint and cover the training split


def test_test_split_is_fixed_read_only_by_test_and_can_be_locked(tmp_path):
    path = write(tmp_path, numbered_pairs(100))
    seen = []
    for settings in ({}, {"split_seed": 7}, {"num_folds": 5, "fold": 0}, {"num_folds": 5, "fold": 3},
                     {"val_fraction": 0.5}):
        data = ParallelCorpus(path=path, num_steps=4, batch_size=8, test_fraction=0.3, **settings)
        data.setup("fit")
        assert data._test_split is None
        with pytest.raises(RuntimeError, match="only by setup"):
            data.test_dataloader()
        training = line_numbers(data, data._train_split[0])
        data.setup("test")
        tested = line_numbers(data, torch.cat([batch[0] for batch in data.test_dataloader()]))
        assert len(tested) == 30 and not tested & training
        seen.append(tested)
    assert all(tested == seen[0] for tested in seen)
    fresh = ParallelCorpus(path=path, num_steps=4, batch_size=8, test_fraction=0.3)
    fresh.setup("test")  # no fit first: split and vocabularies are built on the way
    assert line_numbers(fresh, fresh._test_split[0]) == seen[0]
    locked = ParallelCorpus(path=path, num_steps=4, batch_size=8, test_fraction=0.3)
    locked.test_split_locked = True
    locked.setup("fit")
    with pytest.raises(LitexpError, match="locked"):
        locked.setup("test")
    assert locked._test_split is None


def test_vocab_for_checkpoints_lazy_attributes_and_decoding(tmp_path):
    data = ParallelCorpus(path=write(tmp_path, fra_eng_lines(200)), num_steps=6, batch_size=8)
    assert str(data) == f"ParallelCorpus({tmp_path / 'pairs.tsv'}, batch_size=8)"
    assert data._src_vocab is None  # nothing read yet
    assert data.src_vocab_size == len(data.src_vocab) and data.tgt_vocab_size == len(data.tgt_vocab)
    state = json.loads(json.dumps(data.vocab))  # only plain lists, strings, ints and dicts
    assert Vocab.from_dict(state["source"]) == data.src_vocab and Vocab.from_dict(state["target"]) == data.tgt_vocab
    assert "!" in data.tgt_vocab.ids and "cc-by" not in data.tgt_vocab.ids  # narrow no-break space; attribution
    chat = data.tgt_vocab.ids["chat"]
    assert ids_to_tokens(data.tgt_vocab, [BOS, chat, PAD, chat, EOS, chat]) == ["chat", "chat"]
    assert data.decode(torch.tensor([chat, EOS, PAD])) == ["chat"]
    facts = data.summary()
    assert facts["source"].endswith("pairs.tsv") and facts["num_steps"] == 6 and facts["pairs"] == 200
    assert facts["src_vocab_size"] == data.src_vocab_size and facts["truncated"] > 0
    assert str(ParallelCorpus(path=str(tmp_path / "missing.tsv"))).startswith("ParallelCorpus(")  # no read


def _served(monkeypatch, tmp_path, text: str) -> list[str]:
    """A fake network serving a fra-eng.zip in the real layout; the checksum table expects it."""
    archive = tmp_path / "served" / "fra-eng.zip"
    checksum = write_fra_eng_zip(archive, text)
    requested = []

    def fake_fetch(url, target, timeout=30.0):
        requested.append(url)
        target.write_bytes(archive.read_bytes())

    monkeypatch.setattr(files, "fetch", fake_fetch)
    monkeypatch.setitem(corpora.CORPORA, "fra-eng", dataclasses.replace(corpora.CORPORA["fra-eng"], checksum=checksum))
    return requested


def test_fra_eng_is_downloaded_verified_and_then_used_offline(tmp_path, monkeypatch):
    assert corpora.CORPORA["fra-eng"].checksum == "sha1:94646ad1522d915e7b0f9296181140edcf86a4f5"
    requested = _served(monkeypatch, tmp_path, fra_eng_lines(300))
    data_dir = tmp_path / "data"
    data = ParallelCorpus(data_dir=str(data_dir), max_pairs=250, batch_size=16)
    assert "chien" in data.tgt_vocab.ids and "dog" in data.src_vocab.ids and data.summary()["pairs"] == 250
    assert requested == ["http://d2l-data.s3-accelerate.amazonaws.com/fra-eng.zip"]
    assert (data_dir / "text/fra-eng/fra-eng/fra.txt").exists()
    monkeypatch.setattr(files, "fetch", lambda *a, **k: pytest.fail("downloaded twice"))
    again = ParallelCorpus(data_dir=str(data_dir), max_pairs=250, batch_size=16, download=False)
    assert again.vocab == data.vocab
    with pytest.raises(LitexpError, match="'fra-eng' not found in .*download: false"):
        ParallelCorpus(data_dir=str(tmp_path / "empty"), download=False).src_vocab  # noqa: B018


@pytest.mark.parametrize("content,settings,message", [
    (b"", {}, "empty"),
    ("caf\u00e9\tcaf\u00e9\n".encode("latin-1") * 5, {}, "not UTF-8"),
    (b"no tabs\nat all\n\tx\n", {}, "no well-formed sentence pair .*3 malformed"),
    (b"a\tb\n" * 5, {"batch_size": 8}, "fewer than one batch of batch_size=8"),
    (b"a\tb\n", {"batch_size": 1, "test_fraction": 0.0}, "cannot split 1 training pairs"),
    (b"a\tb\n" * 3, {"batch_size": 1, "num_folds": 4}, "cannot split 3 training pairs"),
])
def test_bad_pair_files(tmp_path, content, settings, message):
    path = tmp_path / "bad.tsv"
    path.write_bytes(content)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(LitexpError, match=message):
            ParallelCorpus(path=str(path), **settings).src_vocab_size  # noqa: B018


def test_missing_file_empty_test_split_and_bad_settings(tmp_path):
    with pytest.raises(LitexpError, match="does not exist"):
        ParallelCorpus(path=str(tmp_path / "nope.tsv")).src_vocab  # noqa: B018
    data = ParallelCorpus(path=write(tmp_path, "a\tb\n" * 4), batch_size=1, test_fraction=0)
    with pytest.raises(LitexpError, match="test split is empty"):
        data.setup("test")
    for settings, message in (({"corpus": "ptb"}, "unknown translation corpus 'ptb'; valid corpora: fra-eng"),
                              ({"corpus": None}, "give a tab-separated file"),
                              ({"num_steps": 1}, "num_steps must be at least 2"),
                              ({"test_fraction": 1.0}, "test_fraction must lie in"),
                              ({"max_pairs": 0}, "max_pairs must be"),
                              ({"num_folds": 3, "fold": 3}, "fold must lie in 0..2")):
        with pytest.raises(LitexpError, match=message):
            ParallelCorpus(**settings)


def test_a_parallel_corpus_links_two_vocabulary_sizes_and_no_single_one(tmp_path):
    # the CLI links every data attribute a task may take: a `vocab_size` here would leak into Seq2SeqTask
    data = ParallelCorpus(path=write(tmp_path, numbered_pairs(40)), num_steps=4, batch_size=4)
    assert not hasattr(data, "vocab_size")
    assert data.src_vocab_size > 4 and data.tgt_vocab_size > 4
