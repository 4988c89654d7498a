"""Skip-gram training pairs for word2vec, as the book builds them from a word-level corpus.

Frequent words are subsampled (a word of relative frequency f is kept with probability
min(1, sqrt(t / f))); each kept word is a center, and every word within a random window of
1..``max_window`` words around it is a context word. Pairs are drawn once per corpus (seeded by
``data_seed``); the ``num_negatives`` noise words of each pair are drawn on the device for every
batch, with probability proportional to freq^0.75.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch
from jsonargparse.typing import PositiveFloat, PositiveInt

from datamodules.corpora import TokenCorpus
from datamodules.splits import BlockSplit
from datamodules.vocab import Punctuation, Tokenizer, Vocab
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


class SkipGramCorpus(TokenCorpus):
    """(center, context) pairs of a word-level corpus; batches get ``num_negatives`` noise words.

    Validation is a contiguous block of the training text (as for language models), so no context
    window is shared by training and validation; the vocabulary and the noise distribution come
    from the training blocks only, and each part's pairs are drawn from its own blocks.
    """

    split_strategy = BlockSplit()

    def __init__(
        self,
        corpus: Optional[str] = "ptb",
        lowercase: bool = True,
        punctuation: Punctuation = "keep",
        min_freq: PositiveInt = 10,
        max_window: PositiveInt = 5,
        subsample_threshold: PositiveFloat = 1e-4,
        num_negatives: PositiveInt = 5,
        data_seed: int = 0,
        batch_size: PositiveInt = 512,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            corpus: a named corpus (see ``TextCorpus``); the book uses ptb. ``path`` replaces it.
            min_freq: rarer words map to ``<unk>`` (and are dropped, as the book does).
            max_window: the largest context window on each side of a center word.
            subsample_threshold: ``t`` of the subsampling rule (smaller drops more frequent words).
            num_negatives: noise words per (center, context) pair.
            data_seed: seed of subsampling and window sizes.
            batch_size: pairs per training batch.
            kwargs: ``path``, ``data_dir``, ``download``, ``test_fraction`` (:class:`CorpusDataModule`) and the
                split options (validation: the last ``val_fraction`` of the text, or block ``fold`` of
                ``num_folds``).
        """
        super().__init__(corpus=corpus, batch_size=batch_size, **kwargs)
        self.tokenizer = Tokenizer("word", lowercase, punctuation)
        self.min_freq, self.max_window = int(min_freq), int(max_window)
        self.subsample_threshold, self.num_negatives = float(subsample_threshold), int(num_negatives)
        self.data_seed = int(data_seed)
        self._vocab: Optional[Vocab] = None
        self._ids: dict[str, torch.Tensor] = {}  # word ids of the training part and of the test part
        self._pairs: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}  # (split, part) -> (centers, contexts)

    def _read(self) -> None:
        if self._vocab is not None:
            return
        tokens, test_tokens = self.read_tokens(self.tokenizer)
        train_ranges, _ = self.make_split(len(tokens))
        vocab = Vocab.build((tokens[b:e] for b, e in train_ranges), self.min_freq, self.tokenizer)
        self._ids = {split: torch.tensor(vocab.encode(words), dtype=torch.long)
                     for split, words in (("train", tokens), ("test", test_tokens))}
        self._vocab = vocab

    @property
    def noise_weights(self) -> torch.Tensor:
        """freq^0.75 of every word in the training blocks (reserved tokens and ``<unk>`` are never drawn)."""
        weights = torch.tensor(self.vocab.freqs, dtype=torch.float).pow(0.75)
        weights[: self.vocab.ids["<eos>"] + 1] = 0.0
        return weights

    def load(self, split: str) -> tuple[torch.Tensor]:
        """The word ids of the training part (train and validation blocks) or of the test part."""
        self._read()
        return (self._ids[split],)

    def fingerprint_arrays(self) -> tuple[np.ndarray, ...]:
        return (self._ids["train"].numpy(),)

    def pairs(self, ids: torch.Tensor, ranges: list[tuple[int, int]], salt: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(centers, contexts) drawn from the words inside ``ranges``: subsampled, random windows, seeded."""
        key = (salt, tuple(ranges))
        if key not in self._pairs:
            rng = np.random.default_rng([self.data_seed, salt])
            freqs = np.asarray(self._vocab.freqs, dtype=np.float64)
            centers, contexts = [], []
            for begin, end in ranges:
                kept = subsample(ids[begin:end].numpy(), freqs, self.subsample_threshold, rng)
                block_centers, block_contexts = skipgram_pairs(kept, self.max_window, rng)
                centers.append(block_centers)
                contexts.append(block_contexts)
            pair_count = sum(len(c) for c in centers)
            if pair_count < (self.batch_size if salt == 0 else 1):
                raise LitexpError(f"{self.source}: a part of the text gives {pair_count} skip-gram pairs, fewer than "
                                  f"one batch of batch_size={self.batch_size}; use a longer text, lower min_freq or "
                                  f"batch_size, or raise subsample_threshold")
            self._pairs[key] = (torch.from_numpy(np.concatenate(centers)), torch.from_numpy(np.concatenate(contexts)))
        return self._pairs[key]

    def batches(self, tensors, part, mode):
        # training blocks, validation blocks and the test part each draw their own pairs (salt 0, 1, 2)
        salt = 0 if mode == "train" else (1 if tensors[0] is self._ids["train"] else 2)
        centers, contexts = self.pairs(tensors[0], part, salt)
        return super().batches((centers, contexts), np.arange(len(centers)), mode)

    def transform_batch(self, batch, training: bool):
        centers, contexts = batch  # (B,), (B,)
        weights = self.noise_weights.to(centers.device)
        noise = torch.multinomial(weights, centers.numel() * self.num_negatives, replacement=True)
        return centers, contexts, noise.view(-1, self.num_negatives)  # (B,), (B,), (B, K)

    def summary(self) -> dict[str, Any]:
        facts = super().summary()
        if self._vocab is not None:
            facts["vocab_size"] = len(self._vocab)
        return facts
