"""Text corpora for language models: tokenization, a vocabulary, and windows of ``num_steps`` tokens.

A corpus is any UTF-8 text file or folder (``path``) or a named corpus downloaded from its
canonical URL and checked by checksum (``corpus``). The training part is split into contiguous
blocks: hold-out takes the last ``val_fraction`` of it as validation, K-fold cuts it into K blocks
and validates on block ``fold``. The test part is the corpus' own test file, or else its last
``test_fraction``. The vocabulary is built from the training blocks only.

Batches are windows of ``num_steps + 1`` tokens cut from the token stream on the fly (inputs are
the first ``num_steps``, targets the last ``num_steps``): ``random`` sampling shuffles the windows,
``sequential`` partitioning lays each batch row right after the same row of the previous batch, so
a model may carry its hidden state across batches (``carry_state``). In both, as in the book, the
windows start at a random offset drawn anew every epoch, so an epoch's windows differ from the last
one's; the offset and the order depend only on (run seed, epoch), so a fit resumed mid-epoch from a
checkpoint goes on with the very batches it would have seen.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

import numpy as np
import torch
from jsonargparse.typing import PositiveInt
from torch.utils.data import Dataset

from datamodules.base import EpochBatches, ShardedBatchSampler
from datamodules.corpora import TokenCorpus
from datamodules.splits import BlockSplit
from datamodules.vocab import Level, Punctuation, Tokenizer, Vocab
from litexp.errors import LitexpError


# -- windows and their batches ---------------------------------------------------------------------
def window_starts(ranges: list[tuple[int, int]], num_steps: int, offset: int = 0,
                  max_offset: int = 0) -> torch.Tensor:
    """Starts of non-overlapping windows of ``num_steps + 1`` tokens inside each range.

    The count per range does not depend on ``offset`` (up to ``max_offset``): every epoch has as
    many batches as the first.
    """
    starts = []
    for begin, end in ranges:
        count = max(0, (end - begin - 1 - max_offset) // num_steps)
        starts.append(begin + offset + num_steps * torch.arange(count))
    return torch.cat(starts) if starts else torch.zeros(0, dtype=torch.long)


class Windows(Dataset):
    """Items are whole batches: ``windows[starts]`` -> inputs (B, T) and next-token targets (B, T)."""

    def __init__(self, ids: torch.Tensor, num_steps: int) -> None:
        self.ids = ids
        self.steps = torch.arange(num_steps)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        positions = starts[:, None] + self.steps  # (B, T)
        return self.ids[positions], self.ids[positions + 1]


class WindowSampler(EpochBatches):
    """Start positions of each batch's windows for this rank.

    ``random``: a random offset per epoch, windows shuffled (DDP ranks take disjoint slices of
    each global batch, as ``ShardedBatchSampler``). ``sequential``: the windows in corpus order are
    laid out as ``batch_size * world_size`` rows; batch j is column j, so row b of batch j+1
    continues row b of batch j. ``eval``: offset 0, in order, contiguous shard per rank.
    """

    def __init__(self, ranges: list[tuple[int, int]], num_steps: int, batch_size: int,
                 mode: Literal["random", "sequential", "eval"], seed: int = 0, rank: int = 0,
                 world_size: int = 1) -> None:
        self.ranges, self.num_steps, self.batch_size, self.mode = ranges, num_steps, batch_size, mode
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0

    def batches(self) -> list[torch.Tensor]:
        if self.mode == "eval":
            starts = window_starts(self.ranges, self.num_steps)
            return ShardedBatchSampler(starts, self.batch_size, False, False, rank=self.rank,
                                       world_size=self.world_size).batches()
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        offset = int(torch.randint(self.num_steps, (1,), generator=generator))
        starts = window_starts(self.ranges, self.num_steps, offset, max_offset=self.num_steps - 1)
        if self.mode == "random":
            sampler = ShardedBatchSampler(starts, self.batch_size, True, True, seed=self.seed,
                                          rank=self.rank, world_size=self.world_size)
            sampler.set_epoch(self.epoch)
            return sampler.batches()
        rows = self.batch_size * self.world_size
        columns = len(starts) // rows
        grid = starts[: rows * columns].view(rows, columns)  # row r: consecutive windows
        mine = grid[self.rank * self.batch_size: (self.rank + 1) * self.batch_size]
        return [mine[:, column] for column in range(columns)]


# -- the DataModule --------------------------------------------------------------------------------
class TextCorpus(TokenCorpus):
    """A language-modelling corpus: windows of ``num_steps`` tokens and their next tokens."""

    split_strategy = BlockSplit()

    def __init__(
        self,
        corpus: Optional[str] = "timemachine",
        level: Level = "char",
        lowercase: bool = True,
        punctuation: Punctuation = "keep",
        min_freq: PositiveInt = 1,
        num_steps: PositiveInt = 32,
        sampling: Literal["random", "sequential"] = "random",
        batch_size: PositiveInt = 32,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            corpus: a named corpus: timemachine, ptb, tiny_shakespeare or wikitext2 (``path`` replaces it).
            level: ``char`` or ``word`` tokens.
            lowercase: lower-case the text before tokenizing.
            punctuation: ``keep``, ``split`` (own tokens, word level) or ``drop`` (non-letters -> space).
            min_freq: rarer tokens of the training text map to ``<unk>``.
            num_steps: tokens per window (the length of truncated backpropagation through time).
            sampling: ``random`` windows, or ``sequential`` partitioning (hidden state carried).
            batch_size: windows per training batch.
            kwargs: ``path``, ``data_dir``, ``download``, ``test_fraction`` (:class:`CorpusDataModule`) and the
                split options; validation is the last ``val_fraction`` of the training part, or block
                ``fold`` of ``num_folds`` contiguous blocks (``split_seed`` is unused: blocks are not random).
        """
        super().__init__(corpus=corpus, batch_size=batch_size, **kwargs)
        self.tokenizer = Tokenizer(level, lowercase, punctuation)
        self.min_freq = int(min_freq)
        self.num_steps = int(num_steps)
        self.sampling = sampling
        self._vocab: Optional[Vocab] = None
        self._ids: Optional[torch.Tensor] = None  # the training part, train and validation blocks
        self._test_tokens: list[str] = []

    # -- what the model is told ------------------------------------------------------------------
    @property
    def carry_state(self) -> bool:
        return self.sampling == "sequential"

    @property
    def train_ranges(self) -> list[tuple[int, int]]:
        """The training blocks ``[begin, end)`` of the token stream (after ``setup("fit")``)."""
        return self.train_indices or []

    @property
    def val_ranges(self) -> list[tuple[int, int]]:
        return self.val_indices or []

    # -- reading ------------------------------------------------------------------------------------
    def _read(self) -> None:
        """Tokenize, split into blocks, build the vocabulary from the training blocks, encode."""
        if self._ids is not None:
            return
        tokens, test_tokens = self.read_tokens(self.tokenizer)
        train_ranges, val_ranges = self.make_split(len(tokens))
        self._check_long_enough(train_ranges, val_ranges, len(tokens))
        vocab = Vocab.build((tokens[b:e] for b, e in train_ranges), self.min_freq, self.tokenizer)
        self._vocab, self._test_tokens = vocab, test_tokens
        self._ids = torch.tensor(vocab.encode(tokens), dtype=torch.long)

    def _check_long_enough(self, train_ranges, val_ranges, num_tokens: int) -> None:
        windows = len(window_starts(train_ranges, self.num_steps, max_offset=self.num_steps - 1))
        if windows < self.batch_size:
            raise LitexpError(
                f"{self.source}: the training part has {num_tokens} {self.tokenizer.level} tokens, {windows} windows "
                f"of num_steps={self.num_steps}: fewer than one batch of batch_size={self.batch_size}; use a longer "
                f"text or lower batch_size or num_steps")
        if val_ranges and len(window_starts(val_ranges, self.num_steps)) == 0:
            raise LitexpError(f"{self.source}: the validation block is shorter than one window of num_steps="
                              f"{self.num_steps} tokens; raise val_fraction, lower num_steps or use a longer text")

    def load(self, split: str) -> tuple[torch.Tensor]:
        """The token ids of the training part (train and validation blocks) or of the test part."""
        self._read()
        if split == "train":
            return (self._ids,)
        if len(self._test_tokens) <= self.num_steps:
            raise LitexpError(f"{self.source}: the test part has {len(self._test_tokens)} tokens, fewer than one "
                              f"window of num_steps={self.num_steps}; raise test_fraction")
        return (torch.tensor(self._vocab.encode(self._test_tokens), dtype=torch.long),)

    def fingerprint_arrays(self) -> tuple[np.ndarray, ...]:
        return (self._ids.numpy(),)

    def summary(self) -> dict[str, Any]:
        facts = {**super().summary(), "level": self.tokenizer.level, "num_steps": self.num_steps,
                 "sampling": self.sampling}
        if self._vocab is not None:
            facts["vocab_size"] = len(self._vocab)
        if self.train_indices is not None:  # train_size / val_size count tokens; these names say so
            facts.update(train_tokens=facts["train_size"], val_tokens=facts["val_size"])
        return facts

    # -- batches: windows of the token stream ------------------------------------------------------
    def batches(self, tensors, part, mode):
        rank, world_size = self._rank_and_world()
        sampler = WindowSampler(part, self.num_steps, self.batch_size if mode == "train" else self.eval_batch_size,
                                self.sampling if mode == "train" else "eval", seed=self.run_seed, rank=rank,
                                world_size=world_size)
        return Windows(tensors[0], self.num_steps), sampler
