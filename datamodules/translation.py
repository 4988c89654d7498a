"""Parallel corpora for machine translation: tab-separated sentence pairs, two vocabularies, fixed-length arrays.

A corpus is any UTF-8 file of ``source<TAB>target[<TAB>anything]`` lines (``path``) or the book's
English-French file (``corpus: fra-eng``), downloaded from its canonical URL and checked by checksum.
Each side is normalized as the book does (``normalize``), split on spaces, ended with ``<eos>`` and
padded or cut to ``num_steps`` tokens. The decoder's ``<bos>`` is the model's business.

Splits: a fixed, seeded ``test_fraction`` of the pairs is the test split, the same for every fold,
trial and ``split_seed``, read only by ``test`` / ``predict``. Validation (hold-out or fold k of K,
seeded by ``split_seed``) comes from the rest. Both vocabularies are built from the training pairs
of the current split only, so a word seen only in validation or test pairs is ``<unk>``.

Batches: ``(src (B, num_steps), src_len (B,), tgt (B, num_steps), tgt_len (B,))``, all ``long``;
a valid length counts the non-padding tokens (``<eos>`` included unless it was cut off).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np
import torch
from jsonargparse.typing import PositiveInt

from datamodules.corpora import CorpusDataModule, named_corpus_files, read_text
from datamodules.vocab import Tokenizer, Vocab
from litexp.errors import LitexpError, warn

#: named corpora (in ``datamodules.corpora.CORPORA``) that hold sentence pairs
TRANSLATION_CORPORA = ("fra-eng", "toy")
TOY_PAIRS = 10000  # pairs of the generated toy corpus unless max_pairs says otherwise
#: the test split's permutation seed: a constant, so no fold, trial or split_seed ever moves a pair in or out
TEST_SPLIT_SEED = 20240917
#: how many malformed line numbers the warning names
MALFORMED_SHOWN = 5
#: the tokenizer recorded in both vocabularies (``normalize`` has already lower-cased and split punctuation)
PAIR_TOKENIZER = Tokenizer("word", True, "keep")


# -- text -> tokens -------------------------------------------------------------------------------
def normalize(text: str) -> str:
    """The book's ``_preprocess``: non-breaking spaces -> spaces, lower case, a space before ``,.!?``.

    The translate command applies the same function to user input, so training and inference agree.
    """
    text = text.replace("\u202f", " ").replace("\xa0", " ")
    lowered = text.lower()
    return "".join(" " + char if index > 0 and char in ",.!?" and text[index - 1] != " " else char
                   for index, char in enumerate(lowered))


def tokenize(text: str) -> list[str]:
    """Word tokens of one sentence: ``normalize(text).split()``."""
    return normalize(text).split()


def ids_to_tokens(vocab: Vocab, ids: Iterable[int] | torch.Tensor) -> list[str]:
    """Tokens of one predicted sequence: stops at ``<eos>``, drops ``<pad>`` and ``<bos>``."""
    if isinstance(ids, torch.Tensor):
        ids = ids.tolist()
    eos, skipped = vocab.ids["<eos>"], {vocab.ids["<pad>"], vocab.ids["<bos>"]}
    tokens = []
    for index in ids:
        index = int(index)
        if index == eos:
            break
        if index not in skipped:
            tokens.append(vocab.tokens[index])
    return tokens


def parse_pairs(text: str, max_pairs: Optional[int] = None,
                reverse: bool = False) -> tuple[list[tuple[list[str], list[str]]], dict[str, int], list[int]]:
    """(pairs of token lists, malformed counts, line numbers of the first malformed lines).

    A line is ``source<TAB>target``; further columns (tatoeba's attribution) are ignored. A line
    without a tab or with a side that normalizes to nothing is counted as malformed, not used.
    Blank lines at the end of the file are not malformed. Reading stops after ``max_pairs`` pairs.
    """
    lines = text.removeprefix("\ufeff").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    pairs: list[tuple[list[str], list[str]]] = []
    malformed = {"no_tab": 0, "empty_side": 0}
    first_bad: list[int] = []
    for number, line in enumerate(lines, start=1):
        if max_pairs is not None and len(pairs) >= max_pairs:
            break
        parts = line.rstrip("\r").split("\t")
        if len(parts) < 2:
            kind = "no_tab"
        else:
            source, target = tokenize(parts[0]), tokenize(parts[1])
            if source and target:
                pairs.append((target, source) if reverse else (source, target))
                continue
            kind = "empty_side"
        malformed[kind] += 1
        if len(first_bad) < MALFORMED_SHOWN:
            first_bad.append(number)
    return pairs, malformed, first_bad


def encode_side(sentences: list[list[str]], vocab: Vocab, num_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids (N, num_steps), valid lengths (N,)): each sentence + ``<eos>``, padded or cut to ``num_steps``."""
    ids = np.full((len(sentences), num_steps), vocab.ids["<pad>"], dtype=np.int64)
    lengths = np.zeros(len(sentences), dtype=np.int64)
    for row, tokens in enumerate(sentences):
        kept = (tokens + ["<eos>"])[:num_steps]
        ids[row, : len(kept)] = vocab.encode(kept)
        lengths[row] = len(kept)
    return torch.from_numpy(ids), torch.from_numpy(lengths)


# -- the DataModule -----------------------------------------------------------------------------------
class ParallelCorpus(CorpusDataModule):
    """Sentence pairs for sequence-to-sequence translation: source and target ids with valid lengths."""

    corpus_names = TRANSLATION_CORPORA
    corpus_label = "translation corpus"
    path_label = "a tab-separated file of sentence pairs"

    def __init__(
        self,
        corpus: Optional[str] = "fra-eng",
        reverse: bool = False,
        min_freq: PositiveInt = 2,
        num_steps: PositiveInt = 9,
        max_pairs: Optional[PositiveInt] = None,
        batch_size: PositiveInt = 128,
        val_fraction: float = 0.2,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            corpus: a named parallel corpus: fra-eng (the book's English-French pairs) or toy (a reversible
                toy language with a grammar, generated here: :mod:`datamodules.toy_language`); ``path``
                (a UTF-8 file of ``source<TAB>target`` lines, more columns ignored) replaces it.
            reverse: swap the columns: translate the second language into the first.
            min_freq: words rarer than this in the training pairs map to ``<unk>`` (per language).
            num_steps: tokens per sentence, ``<eos>`` included: longer ones are cut, shorter ones padded.
            max_pairs: use only the first N well-formed pairs (fra-eng is sorted by length, short first).
            batch_size: pairs per training batch.
            val_fraction: fraction of the training pairs used for validation (hold-out).
            kwargs: ``path``, ``data_dir``, ``download``, ``test_fraction`` (the fraction of pairs held out for
                test, by a fixed seed: it never moves) of :class:`CorpusDataModule`, and the split options.
        """
        super().__init__(corpus=corpus, batch_size=batch_size, val_fraction=val_fraction, **kwargs)
        if int(num_steps) < 2:
            raise LitexpError(f"num_steps must be at least 2 (a word and <eos>), got {num_steps}")
        if int(min_freq) < 1:
            raise LitexpError(f"min_freq must be a positive integer, got {min_freq}")
        if max_pairs is not None and int(max_pairs) < 1:
            raise LitexpError(f"max_pairs must be a positive integer or null (all pairs), got {max_pairs}")
        self.reverse = bool(reverse)
        self.min_freq = int(min_freq)
        self.num_steps = int(num_steps)
        self.max_pairs = None if max_pairs is None else int(max_pairs)
        self.malformed: dict[str, int] = {"no_tab": 0, "empty_side": 0}
        self.malformed_lines: list[int] = []  # line numbers of the first few malformed lines
        self.truncated = 0  # pairs whose source or target was longer than num_steps (with <eos>)
        self.num_pairs = 0
        self._src_vocab: Optional[Vocab] = None
        self._tgt_vocab: Optional[Vocab] = None
        self._test_pairs: list[tuple[list[str], list[str]]] = []
        self._train_pair_lines: Optional[np.ndarray] = None  # which pairs of the file form the training split
        self._train_arrays: Optional[tuple[torch.Tensor, ...]] = None

    # -- what the model is told (read lazily, so the CLI can link them right after construction) --------
    @property
    def src_vocab(self) -> Vocab:
        self._read()
        return self._src_vocab

    @property
    def tgt_vocab(self) -> Vocab:
        self._read()
        return self._tgt_vocab

    @property
    def max_len(self) -> int:
        """Longest sentence a model should decode, in tokens with ``<eos>``: the padded length ``num_steps``."""
        return self.num_steps

    @property
    def src_vocab_size(self) -> int:
        return len(self.src_vocab)

    @property
    def tgt_vocab_size(self) -> int:
        return len(self.tgt_vocab)

    @property
    def vocab(self) -> dict[str, Any]:
        """Both vocabularies as plain lists and strings: stored in checkpoints (``weights_only=True``)."""
        return {"source": self.src_vocab.to_dict(), "target": self.tgt_vocab.to_dict()}

    def decode(self, ids: Iterable[int] | torch.Tensor, side: str = "target") -> list[str]:
        """Tokens of one sequence of ids of ``side`` (source or target), up to its ``<eos>``."""
        if side not in ("source", "target"):
            raise LitexpError(f"side must be 'source' or 'target', got {side!r}")
        return ids_to_tokens(self.src_vocab if side == "source" else self.tgt_vocab, ids)

    # -- reading --------------------------------------------------------------------------------------
    def _load_text(self) -> str:
        if self.path:
            return read_text([Path(self.path).expanduser()])
        if self.corpus == "toy":
            # imported here, so that `python -m datamodules.toy_language` does not import itself twice
            from datamodules.toy_language import toy_corpus_text

            return toy_corpus_text(self.max_pairs or TOY_PAIRS)
        train_files, _ = named_corpus_files(self.corpus, self.data_dir, self.download)
        return read_text(train_files)

    def _read(self) -> None:
        """Parse the pairs, hold out the test pairs, split validation, build both vocabularies, encode."""
        if self._train_arrays is not None:
            return
        pairs, malformed, first_bad = parse_pairs(self._load_text(), self.max_pairs, self.reverse)
        bad = sum(malformed.values())
        if not pairs:
            raise LitexpError(f"{self.source}: no well-formed sentence pair ({bad} malformed lines, e.g. line "
                              f"{first_bad[0] if first_bad else 1}); give a file of 'source<TAB>target' lines")
        if bad:
            counts = ", ".join(f"{kind}: {count}" for kind, count in malformed.items() if count)
            warn(f"{self.source}: skipped {bad} malformed lines ({counts}; first at lines "
                 f"{', '.join(map(str, first_bad))}); each line must be 'source<TAB>target' with words on both sides")
        limit = self.num_steps - 1  # room for the words once <eos> is appended
        truncated = sum(len(src) > limit or len(tgt) > limit for src, tgt in pairs)
        order = np.random.default_rng(TEST_SPLIT_SEED).permutation(len(pairs))
        num_test = int(round(len(pairs) * self.test_fraction))
        train_lines, test_lines = np.sort(order[num_test:]), np.sort(order[:num_test])
        train_pairs = [pairs[i] for i in train_lines]
        train, val = self._validation_split(len(train_pairs), len(pairs))
        fitted = [train_pairs[i] for i in train]
        src_vocab = Vocab.build((src for src, _ in fitted), self.min_freq, PAIR_TOKENIZER)
        tgt_vocab = Vocab.build((tgt for _, tgt in fitted), self.min_freq, PAIR_TOKENIZER)
        arrays = self._encode(train_pairs, src_vocab, tgt_vocab)
        # assigned only once everything succeeded: a failed read is not mistaken for a done one
        self.malformed, self.malformed_lines = malformed, first_bad
        self.truncated, self.num_pairs = truncated, len(pairs)
        self._src_vocab, self._tgt_vocab = src_vocab, tgt_vocab
        self._test_pairs = [pairs[i] for i in test_lines]
        self._train_pair_lines, self._train_arrays = train_lines, arrays

    def _validation_split(self, num_train: int, num_pairs: int) -> tuple[np.ndarray, np.ndarray]:
        """(train, val) indices into the training pairs (the base's split), refused when unusable."""
        hint = "use more pairs (max_pairs), lower test_fraction or val_fraction, or fewer folds"
        try:
            train, val = self.make_split(num_train)
        except LitexpError as error:
            raise LitexpError(f"{self.source}: cannot split {num_train} training pairs for validation ({error}); "
                              f"{hint}") from error
        if len(train) < self.batch_size:
            raise LitexpError(f"{self.source}: {num_pairs} pairs leave {len(train)} for training, fewer than one "
                              f"batch of batch_size={self.batch_size}; lower batch_size or {hint}")
        if (self.num_folds is not None or self.val_fraction > 0) and len(val) == 0:
            raise LitexpError(f"{self.source}: the validation split is empty; {hint}")
        return train, val

    def _encode(self, pairs: list[tuple[list[str], list[str]]], src_vocab: Vocab,
                tgt_vocab: Vocab) -> tuple[torch.Tensor, ...]:
        src, src_len = encode_side([src for src, _ in pairs], src_vocab, self.num_steps)
        tgt, tgt_len = encode_side([tgt for _, tgt in pairs], tgt_vocab, self.num_steps)
        return src, src_len, tgt, tgt_len

    def load(self, split: str) -> tuple[torch.Tensor, ...]:
        """(src, src_len, tgt, tgt_len) of the training split (train + validation) or of the test split."""
        self._read()
        if split == "train":
            return self._train_arrays
        if not self._test_pairs:
            raise LitexpError(f"{self.source}: the test split is empty (test_fraction={self.test_fraction} of "
                              f"{self.num_pairs} pairs); raise test_fraction or use more pairs")
        return self._encode(self._test_pairs, self._src_vocab, self._tgt_vocab)

    def fingerprint_arrays(self) -> tuple[np.ndarray, ...]:
        return (self._train_pair_lines,)

    def summary(self) -> dict[str, Any]:
        facts = {**super().summary(), "reverse": self.reverse, "num_steps": self.num_steps,
                 "max_pairs": self.max_pairs, "test_fraction": self.test_fraction}
        if self._src_vocab is not None:
            facts.update(pairs=self.num_pairs, test_pairs=len(self._test_pairs), malformed=dict(self.malformed),
                         truncated=self.truncated, src_vocab_size=len(self._src_vocab),
                         tgt_vocab_size=len(self._tgt_vocab))
        return facts
