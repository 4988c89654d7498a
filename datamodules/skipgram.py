"""Skip-gram training pairs for word2vec, as the book builds them from a word-level corpus.

Frequent words are subsampled (a word of relative frequency f is kept with probability
min(1, sqrt(t / f))); each kept word is a center, and every word within a random window of
1..``max_window`` words around it is a context word. Pairs are drawn once per corpus (seeded by
``data_seed``); the ``num_negatives`` noise words of each pair are drawn on the device for every
batch, with probability proportional to freq^0.75.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from jsonargparse.typing import PositiveFloat, PositiveInt

from datamodules.base import DataModule
from datamodules.text import Punctuation, Tokenizer, Vocab, load_corpus
from datamodules.vision import default_data_dir
from litexp.errors import LitexpError


def subsample(ids: np.ndarray, freqs: np.ndarray, threshold: float, rng: np.random.Generator) -> np.ndarray:
    """Drop frequent words at random; ``<unk>`` (id 0) is dropped always, as the book does."""
    frequency = freqs[ids] / freqs.sum()
    keep = rng.random(len(ids)) < np.sqrt(threshold / np.maximum(frequency, 1e-12))
    return ids[keep & (ids != 0)]


def skipgram_pairs(ids: np.ndarray, max_window: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(centers, contexts): every word within each center's random window of 1..max_window words."""
    windows = rng.integers(1, max_window + 1, size=len(ids))
    centers, contexts = [], []
    for distance in range(1, max_window + 1):
        for shift in (distance, -distance):
            positions = np.arange(max(0, -shift), len(ids) - max(0, shift))
            positions = positions[windows[positions] >= distance]
            centers.append(ids[positions])
            contexts.append(ids[positions + shift])
    return np.concatenate(centers), np.concatenate(contexts)


class SkipGramCorpus(DataModule):
    """(center, context) pairs of a word-level corpus; batches get ``num_negatives`` noise words."""

    stratify = False

    def __init__(
        self,
        path: Optional[str] = None,
        corpus: Optional[str] = "ptb",
        data_dir: Optional[str] = None,
        download: bool = True,
        lowercase: bool = True,
        punctuation: Punctuation = "keep",
        min_freq: PositiveInt = 10,
        max_window: PositiveInt = 5,
        subsample_threshold: PositiveFloat = 1e-4,
        num_negatives: PositiveInt = 5,
        test_fraction: float = 0.1,
        data_seed: int = 0,
        batch_size: PositiveInt = 512,
        eval_batch_size: Optional[PositiveInt] = None,
        val_fraction: float = 0.1,
        num_folds: Optional[int] = None,
        fold: int = 0,
        split_seed: int = 0,
    ) -> None:
        """
        Args:
            path: a UTF-8 text file or folder; replaces ``corpus`` when given.
            corpus: a named corpus (see ``TextCorpus``); the book uses ptb.
            min_freq: rarer words map to ``<unk>`` (and are dropped, as the book does).
            max_window: the largest context window on each side of a center word.
            subsample_threshold: ``t`` of the subsampling rule (smaller drops more frequent words).
            num_negatives: noise words per (center, context) pair.
            test_fraction: last fraction of the text held out for test (when the corpus has no test file).
            data_seed: seed of subsampling and window sizes.
        """
        super().__init__(batch_size=batch_size, eval_batch_size=eval_batch_size, val_fraction=val_fraction,
                         num_folds=num_folds, fold=fold, split_seed=split_seed)
        if not 0.0 <= test_fraction < 1.0:
            raise LitexpError(f"test_fraction must lie in [0, 1), got {test_fraction}")
        self.path, self.corpus = path, corpus
        self.data_dir = Path(data_dir or default_data_dir()).expanduser()
        self.download = download
        self.tokenizer = Tokenizer("word", lowercase, punctuation)
        self.min_freq, self.max_window = int(min_freq), int(max_window)
        self.subsample_threshold, self.num_negatives = float(subsample_threshold), int(num_negatives)
        self.test_fraction, self.data_seed = float(test_fraction), int(data_seed)
        self._vocab: Optional[Vocab] = None
        self._tokens: dict[str, list[str]] = {}

    def _read(self) -> None:
        if self._vocab is not None:
            return
        text, test_text = load_corpus(self.path, self.corpus, self.data_dir, self.download)
        tokens = self.tokenizer(text)
        if test_text is None:
            boundary = len(tokens) - int(round(len(tokens) * self.test_fraction))
            tokens, test_tokens = tokens[:boundary], tokens[boundary:]
        else:
            test_tokens = self.tokenizer(test_text)
        self._vocab = Vocab.build([tokens], self.min_freq, self.tokenizer)
        self._tokens = {"train": tokens, "test": test_tokens}

    @property
    def vocab(self) -> Vocab:
        self._read()
        return self._vocab

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def noise_weights(self) -> torch.Tensor:
        """freq^0.75 of every word (reserved tokens and ``<unk>`` are never drawn)."""
        weights = torch.tensor(self.vocab.freqs, dtype=torch.float).pow(0.75)
        weights[: self.vocab.ids["<eos>"] + 1] = 0.0
        return weights

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        self._read()
        ids = np.asarray(self._vocab.encode(self._tokens[split]), dtype=np.int64)
        rng = np.random.default_rng(self.data_seed * 2 + (split == "test"))
        kept = subsample(ids, np.asarray(self._vocab.freqs, dtype=np.float64), self.subsample_threshold, rng)
        centers, contexts = skipgram_pairs(kept, self.max_window, rng)
        if len(centers) < (self.batch_size if split == "train" else 1):
            raise LitexpError(f"{self.path or self.corpus}: the {split} part gives {len(centers)} skip-gram pairs, "
                              f"fewer than one batch of batch_size={self.batch_size}; use a longer text, lower "
                              f"min_freq or batch_size, or raise subsample_threshold")
        return torch.from_numpy(centers), torch.from_numpy(contexts)

    def transform_batch(self, batch, training: bool):
        centers, contexts = batch  # (B,), (B,)
        weights = self.noise_weights.to(centers.device)
        noise = torch.multinomial(weights, centers.numel() * self.num_negatives, replacement=True)
        return centers, contexts, noise.view(-1, self.num_negatives)  # (B,), (B,), (B, K)

    def summary(self) -> dict[str, Any]:
        facts = {**super().summary(), "source": self.path or self.corpus}
        if self._vocab is not None:
            facts["vocab_size"] = len(self._vocab)
        return facts
