"""Text corpora for language models: tokenization, a vocabulary, and windows of ``num_steps`` tokens.

A corpus is any UTF-8 text file or folder (``path``) or a named corpus downloaded from its
canonical URL and checked by checksum (``corpus``). The training part is split into contiguous
blocks: hold-out takes the last ``val_fraction`` of it as validation, K-fold cuts it into K blocks
and validates on block ``fold``. The test part is the corpus' own test file, or else its last
``test_fraction``. The vocabulary is built from the training blocks only.

Batches are windows of ``num_steps + 1`` tokens cut from the token stream on the fly (inputs are
the first ``num_steps``, targets the last ``num_steps``): ``random`` sampling shuffles the windows,
``sequential`` partitioning lays each batch row right after the same row of the previous batch, so
a model may carry its hidden state across batches (``carry_state``).
"""

from __future__ import annotations

import collections
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, Optional

import numpy as np
import torch
from jsonargparse.typing import NonNegativeInt, PositiveInt
from torch.utils.data import DataLoader, Dataset, Sampler

from datamodules.base import DataModule, ShardedBatchSampler
from datamodules.corpora import TEXT_CORPORA, named_corpus_files, read_text
from datamodules.splits import split_fingerprint
from datamodules.vision import default_data_dir
from litexp.errors import LitexpError

RESERVED_TOKENS = ("<unk>", "<pad>", "<bos>", "<eos>")
Level = Literal["char", "word"]
Punctuation = Literal["keep", "split", "drop"]


# -- tokenization and vocabulary ---------------------------------------------------------------
@dataclass(frozen=True)
class Tokenizer:
    """Characters or words; ``punctuation``: keep as is, ``split`` into own tokens, ``drop``
    (every run of non-letters becomes one space, as the book prepares The Time Machine)."""

    level: Level = "char"
    lowercase: bool = True
    punctuation: Punctuation = "keep"

    def __call__(self, text: str) -> list[str]:
        if self.lowercase:
            text = text.lower()
        if self.punctuation == "drop":
            text = re.sub(r"[\W\d_]+", " ", text).strip()
        if self.level == "char":
            return list(text)
        if self.punctuation == "split":
            return re.findall(r"<\w+>|\w+|[^\w\s]", text)  # "<unk>" stays one token
        return text.split()

    def join(self, tokens: Iterable[str]) -> str:
        return ("" if self.level == "char" else " ").join(tokens)

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "lowercase": self.lowercase, "punctuation": self.punctuation}


class Vocab:
    """Token <-> id. Reserved tokens come first (``<unk>`` is id 0), then tokens by falling frequency."""

    def __init__(self, tokens: list[str], freqs: list[int], tokenizer: Tokenizer = Tokenizer()) -> None:
        self.tokens = list(tokens)
        self.freqs = list(freqs)  # how often each token occurs in the training text (0 for reserved)
        self.tokenizer = tokenizer
        self.ids = {token: index for index, token in enumerate(self.tokens)}

    @classmethod
    def build(cls, pieces: Iterable[list[str]], min_freq: int = 1, tokenizer: Tokenizer = Tokenizer(),
              reserved: tuple[str, ...] = RESERVED_TOKENS) -> Vocab:
        counter: collections.Counter = collections.Counter()
        for piece in pieces:
            counter.update(piece)
        kept = sorted((t for t, c in counter.items() if c >= min_freq and t not in reserved),
                      key=lambda t: (-counter[t], t))
        return cls([*reserved, *kept], [counter[t] for t in reserved] + [counter[t] for t in kept], tokenizer)

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.tokens == other.tokens and self.tokenizer == other.tokenizer

    @property
    def unk(self) -> int:
        return self.ids["<unk>"]

    def encode(self, tokens: Iterable[str]) -> list[int]:
        unk = self.unk
        return [self.ids.get(token, unk) for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[index] for index in ids]

    def token_freqs(self) -> list[tuple[str, int]]:
        return sorted(zip(self.tokens, self.freqs, strict=True), key=lambda pair: -pair[1])

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and strings: stored in checkpoints, which load with ``weights_only=True``."""
        return {"tokens": self.tokens, "freqs": self.freqs, "tokenizer": self.tokenizer.to_dict()}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Vocab:
        return cls(state["tokens"], state["freqs"], Tokenizer(**state["tokenizer"]))


def block_split(num_tokens: int, val_fraction: float, num_folds: Optional[int],
                fold: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(train ranges, val ranges) of contiguous token blocks ``[begin, end)``."""
    if num_folds is None:
        boundary = num_tokens - int(round(num_tokens * val_fraction))
        return [(0, boundary)], ([(boundary, num_tokens)] if boundary < num_tokens else [])
    edges = np.linspace(0, num_tokens, num_folds + 1).astype(int)
    train = [(int(edges[k]), int(edges[k + 1])) for k in range(num_folds) if k != fold]
    merged: list[tuple[int, int]] = []
    for begin, end in train:  # neighbouring blocks form one stretch: windows may cross their border
        if merged and merged[-1][1] == begin:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((begin, end))
    return merged, [(int(edges[fold]), int(edges[fold + 1]))]


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


class WindowSampler(Sampler[torch.Tensor]):
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

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[torch.Tensor]:
        if self.mode == "eval":
            starts = window_starts(self.ranges, self.num_steps)
            return ShardedBatchSampler(starts, self.batch_size, False, False, rank=self.rank,
                                       world_size=self.world_size)._batches()
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        offset = int(torch.randint(self.num_steps, (1,), generator=generator))
        starts = window_starts(self.ranges, self.num_steps, offset, max_offset=self.num_steps - 1)
        if self.mode == "random":
            sampler = ShardedBatchSampler(starts, self.batch_size, True, True, seed=self.seed,
                                          rank=self.rank, world_size=self.world_size)
            sampler.set_epoch(self.epoch)
            return sampler._batches()
        rows = self.batch_size * self.world_size
        columns = len(starts) // rows
        grid = starts[: rows * columns].view(rows, columns)  # row r: consecutive windows
        mine = grid[self.rank * self.batch_size: (self.rank + 1) * self.batch_size]
        return [mine[:, column] for column in range(columns)]

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())


# -- the DataModule --------------------------------------------------------------------------------
def load_corpus(path: Optional[str], corpus: Optional[str], data_dir: Path,
                download: bool) -> tuple[str, Optional[str]]:
    """(training text, test text or None): ``path`` wins over ``corpus``."""
    if path:
        return read_text([Path(path).expanduser()]), None
    if not corpus:
        raise LitexpError(f"give a text file or folder (path) or a named corpus ({', '.join(TEXT_CORPORA)})")
    train_files, test_files = named_corpus_files(corpus, data_dir, download)
    return read_text(train_files), (read_text(test_files) if test_files else None)


class TextCorpus(DataModule):
    """A language-modelling corpus: windows of ``num_steps`` tokens and their next tokens."""

    stratify = False

    def __init__(
        self,
        path: Optional[str] = None,
        corpus: Optional[str] = "timemachine",
        data_dir: Optional[str] = None,
        download: bool = True,
        level: Level = "char",
        lowercase: bool = True,
        punctuation: Punctuation = "keep",
        min_freq: PositiveInt = 1,
        num_steps: PositiveInt = 32,
        sampling: Literal["random", "sequential"] = "random",
        test_fraction: float = 0.1,
        batch_size: PositiveInt = 32,
        eval_batch_size: Optional[PositiveInt] = None,
        val_fraction: float = 0.1,
        num_folds: Optional[int] = None,
        fold: NonNegativeInt = 0,
        split_seed: int = 0,
    ) -> None:
        """
        Args:
            path: a UTF-8 text file or a folder of them; replaces ``corpus`` when given.
            corpus: a named corpus: timemachine, ptb, tiny_shakespeare or wikitext2.
            data_dir: where named corpora live (default: ``$LITEXP_DATA_DIR`` or the user cache).
            download: fetch a missing named corpus from its canonical URL (checked by checksum).
            level: ``char`` or ``word`` tokens.
            lowercase: lower-case the text before tokenizing.
            punctuation: ``keep``, ``split`` (own tokens, word level) or ``drop`` (non-letters -> space).
            min_freq: rarer tokens of the training text map to ``<unk>``.
            num_steps: tokens per window (the length of truncated backpropagation through time).
            sampling: ``random`` windows, or ``sequential`` partitioning (hidden state carried).
            test_fraction: last fraction of the text held out for test (when the corpus has no test file).
            val_fraction: last fraction of the training part used for validation (hold-out).
            num_folds: K contiguous blocks of the training part; block ``fold`` validates.
            split_seed: recorded for the summary; block splits are not random.
        """
        super().__init__(batch_size=batch_size, eval_batch_size=eval_batch_size, val_fraction=val_fraction,
                         num_folds=num_folds, fold=fold, split_seed=split_seed)
        if corpus is not None and not path and corpus not in TEXT_CORPORA:
            raise LitexpError(f"unknown corpus {corpus!r}; valid corpora: {', '.join(TEXT_CORPORA)} (or give a file "
                              f"with path)")
        if not 0.0 <= test_fraction < 1.0:
            raise LitexpError(f"test_fraction must lie in [0, 1), got {test_fraction}")
        self.path, self.corpus = path, corpus
        self.data_dir = Path(data_dir or default_data_dir()).expanduser()
        self.download = download
        self.tokenizer = Tokenizer(level, lowercase, punctuation)
        self.min_freq = int(min_freq)
        self.num_steps = int(num_steps)
        self.sampling = sampling
        self.test_fraction = float(test_fraction)
        self._vocab: Optional[Vocab] = None
        self._ids: Optional[torch.Tensor] = None  # the training part, train and validation blocks
        self._test_tokens: list[str] = []
        self.train_ranges: list[tuple[int, int]] = []
        self.val_ranges: list[tuple[int, int]] = []

    def __str__(self) -> str:
        return f"{type(self).__name__}({self.path or self.corpus}, batch_size={self.batch_size})"

    # -- what the model is told ------------------------------------------------------------------
    @property
    def vocab(self) -> Vocab:
        self._read()
        return self._vocab

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def carry_state(self) -> bool:
        return self.sampling == "sequential"

    # -- reading ------------------------------------------------------------------------------------
    def _read(self) -> None:
        """Tokenize, split into blocks, build the vocabulary from the training blocks, encode."""
        if self._ids is not None:
            return
        text, test_text = load_corpus(self.path, self.corpus, self.data_dir, self.download)
        tokens = self.tokenizer(text)
        if test_text is None:
            boundary = len(tokens) - int(round(len(tokens) * self.test_fraction))
            tokens, test_tokens = tokens[:boundary], tokens[boundary:]
        else:
            test_tokens = self.tokenizer(test_text)
        train_ranges, val_ranges = block_split(len(tokens), self.val_fraction, self.num_folds, self.fold)
        vocab = Vocab.build((tokens[b:e] for b, e in train_ranges), self.min_freq, self.tokenizer)
        ids = torch.tensor(vocab.encode(tokens), dtype=torch.long)
        self._check_long_enough(train_ranges, val_ranges, len(tokens))
        self._vocab, self._test_tokens = vocab, test_tokens
        self.train_ranges, self.val_ranges, self._ids = train_ranges, val_ranges, ids

    def _check_long_enough(self, train_ranges, val_ranges, num_tokens: int) -> None:
        source = self.path or self.corpus
        windows = len(window_starts(train_ranges, self.num_steps, max_offset=self.num_steps - 1))
        if windows < self.batch_size:
            raise LitexpError(
                f"{source}: the training part has {num_tokens} {self.tokenizer.level} tokens, {windows} windows of "
                f"num_steps={self.num_steps}: fewer than one batch of batch_size={self.batch_size}; use a longer "
                f"text or lower batch_size or num_steps")
        if val_ranges and len(window_starts(val_ranges, self.num_steps)) == 0:
            raise LitexpError(f"{source}: the validation block is shorter than one window of num_steps="
                              f"{self.num_steps} tokens; raise val_fraction, lower num_steps or use a longer text")

    def prepare_data(self) -> None:
        self._read()

    def load(self, split: str) -> tuple[torch.Tensor]:
        self._read()
        if split == "train":
            return (self._ids,)
        if len(self._test_tokens) <= self.num_steps:
            raise LitexpError(f"{self.path or self.corpus}: the test part has {len(self._test_tokens)} tokens, "
                              f"fewer than one window of num_steps={self.num_steps}; raise test_fraction")
        return (torch.tensor(self._vocab.encode(self._test_tokens), dtype=torch.long),)

    def _setup_train_split(self) -> None:
        if self._train_split is not None:
            return
        self._read()
        self.train_indices = window_starts(self.train_ranges, self.num_steps).numpy()
        self.val_indices = window_starts(self.val_ranges, self.num_steps).numpy()
        self._train_split = (self._ids,)

    @property
    def split_fingerprint(self) -> Optional[str]:
        if self.train_indices is None:
            return None
        return split_fingerprint(self.train_indices, self.val_indices, self._ids.numpy())

    def summary(self) -> dict[str, Any]:
        facts = {**super().summary(), "source": self.path or self.corpus, "level": self.tokenizer.level,
                 "num_steps": self.num_steps, "sampling": self.sampling}
        if self._vocab is not None:
            facts.update(vocab_size=len(self._vocab), train_tokens=sum(e - b for b, e in self.train_ranges),
                         val_tokens=sum(e - b for b, e in self.val_ranges))
        return facts

    # -- loaders --------------------------------------------------------------------------------------
    def _windows_loader(self, ids: torch.Tensor, ranges: list[tuple[int, int]], mode: str) -> DataLoader:
        rank, world_size = self._rank_and_world()
        sampler = WindowSampler(ranges, self.num_steps, self.batch_size if mode != "eval" else self.eval_batch_size,
                                mode, seed=int(os.environ.get("PL_GLOBAL_SEED", 0)), rank=rank,
                                world_size=world_size)
        return DataLoader(Windows(ids, self.num_steps), sampler=sampler, batch_size=None, num_workers=0)

    def train_dataloader(self) -> DataLoader:
        self._setup_train_split()
        return self._windows_loader(self._ids, self.train_ranges, self.sampling)

    def val_dataloader(self):
        self._setup_train_split()
        if not self.val_ranges:
            return []
        return self._windows_loader(self._ids, self.val_ranges, "eval")

    def test_dataloader(self) -> DataLoader:
        if self._test_split is None:
            raise RuntimeError("the test split is loaded only by setup('test') or setup('predict')")
        ids = self._test_split[0]
        return self._windows_loader(ids, [(0, len(ids))], "eval")
