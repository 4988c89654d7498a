"""Word co-occurrence counts for GloVe, as the book defines them on a word-level corpus.

Within ``window`` words on either side of each word, every pair (word i, context word j) at distance
d adds 1/d to x_ij (GloVe's weighting; ``distance_weighting: false`` adds 1). The counts are
symmetric and come from the training blocks only; validation counts the same way inside its own
block, so the validation loss is GloVe's objective on text the vectors never saw. Items are the
non-zero entries (i, j, x_ij); ``<unk>`` (rare words) takes part in no pair, as in word2vec here.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch
from jsonargparse.typing import PositiveInt

from datamodules.corpora import TokenCorpus
from datamodules.splits import BlockSplit
from datamodules.vocab import Punctuation, Tokenizer, Vocab
from litexp.errors import LitexpError


def cooccurrences(ids: torch.Tensor, ranges: list[tuple[int, int]], vocab_size: int, window: int,
                  distance_weighting: bool = True, skip: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(rows, columns, counts) of the non-zero co-occurrence entries inside ``ranges`` (never across a border).

    Pairs with the token ``skip`` (``<unk>``) on either side are not counted.
    """
    keys, weights = [], []
    for begin, end in ranges:
        piece = ids[begin:end]
        for distance in range(1, window + 1):
            if distance >= len(piece):
                break
            left, right = piece[:-distance], piece[distance:]
            keep = (left != skip) & (right != skip)
            left, right = left[keep], right[keep]
            weight = torch.full((len(left),), 1.0 / distance if distance_weighting else 1.0, dtype=torch.float64)
            keys += [left * vocab_size + right, right * vocab_size + left]  # both directions: x is symmetric
            weights += [weight, weight]
    if not keys:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty, torch.zeros(0)
    unique, inverse = torch.unique(torch.cat(keys), return_inverse=True)
    counts = torch.zeros(len(unique), dtype=torch.float64).index_add_(0, inverse, torch.cat(weights))
    return unique // vocab_size, unique % vocab_size, counts.float()


class CooccurrenceCorpus(TokenCorpus):
    """The non-zero word co-occurrence counts (i, j, x_ij) of a word-level corpus, for GloVe."""

    split_strategy = BlockSplit()

    def __init__(
        self,
        corpus: Optional[str] = "ptb",
        lowercase: bool = True,
        punctuation: Punctuation = "keep",
        min_freq: PositiveInt = 10,
        window: PositiveInt = 5,
        distance_weighting: bool = True,
        batch_size: PositiveInt = 1024,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            corpus: a named corpus (see ``TextCorpus``); ``path`` replaces it.
            min_freq: rarer words map to ``<unk>``, which takes part in no pair.
            window: context words on each side of a word.
            distance_weighting: a pair d words apart counts 1/d (GloVe), else 1.
            batch_size: co-occurrence entries per training batch.
            kwargs: ``path``, ``data_dir``, ``download``, ``test_fraction`` (:class:`CorpusDataModule`) and the
                split options (validation: the last ``val_fraction`` of the text, or block ``fold`` of ``num_folds``).
        """
        super().__init__(corpus=corpus, batch_size=batch_size, **kwargs)
        self.tokenizer = Tokenizer("word", lowercase, punctuation)
        self.min_freq, self.window, self.distance_weighting = int(min_freq), int(window), distance_weighting
        self._vocab: Optional[Vocab] = None
        self._ids: dict[str, torch.Tensor] = {}
        self._entries: dict[tuple, tuple[torch.Tensor, ...]] = {}

    def _read(self) -> None:
        if self._vocab is not None:
            return
        tokens, test_tokens = self.read_tokens(self.tokenizer)
        train_ranges, _ = self.make_split(len(tokens))
        vocab = Vocab.build((tokens[b:e] for b, e in train_ranges), self.min_freq, self.tokenizer)
        self._ids = {split: torch.tensor(vocab.encode(words), dtype=torch.long)
                     for split, words in (("train", tokens), ("test", test_tokens))}
        self._vocab = vocab

    def load(self, split: str) -> tuple[torch.Tensor]:
        """The word ids of the training part (train and validation blocks) or of the test part."""
        self._read()
        return (self._ids[split],)

    def fingerprint_arrays(self) -> tuple[np.ndarray, ...]:
        return (self._ids["train"].numpy(),)

    def entries(self, ids: torch.Tensor, ranges: list[tuple[int, int]], training: bool) -> tuple[torch.Tensor, ...]:
        key = (id(ids), tuple(ranges))
        if key not in self._entries:
            entries = cooccurrences(ids, ranges, len(self._vocab), self.window, self.distance_weighting,
                                    skip=self._vocab.unk)
            if len(entries[0]) < (self.batch_size if training else 1):
                raise LitexpError(f"{self.source}: a part of the text gives {len(entries[0])} co-occurring word "
                                  f"pairs, fewer than one batch of batch_size={self.batch_size}; use a longer text, "
                                  f"lower min_freq or batch_size, or raise window")
            self._entries[key] = entries
        return self._entries[key]

    def batches(self, tensors, part, mode):
        entries = self.entries(tensors[0], part, mode == "train")
        return super().batches(entries, np.arange(len(entries[0])), mode)

    def summary(self) -> dict[str, Any]:
        facts = super().summary()
        if self._vocab is not None:
            facts["vocab_size"] = len(self._vocab)
        return facts
