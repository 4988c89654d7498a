"""Validation splits as pure functions of (size, labels, settings, seed): the same on every rank and run.

Two strategies, each written once; a DataModule names the one that fits its data:

- :class:`IndexSplit` for independent samples (images, sentence pairs, skip-gram pairs): hold-out or
  fold k of K over sample indices, stratified by label when labels are given (scikit-learn splitters);
- :class:`BlockSplit` for one long token sequence: contiguous blocks, so that no window of text is
  seen by both training and validation.

Both cut the official *training* split only; the test split never enters here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
from sklearn.model_selection import KFold, ShuffleSplit, StratifiedKFold, StratifiedShuffleSplit, train_test_split

from litexp.errors import LitexpError


def check_split_settings(val_fraction: float, num_folds: int | None, fold: int) -> None:
    """Reject impossible settings before any data is read."""
    if num_folds is None:
        if not 0.0 <= val_fraction < 1.0:
            raise LitexpError(f"val_fraction must lie in [0, 1), got {val_fraction}")
        return
    if num_folds < 2:
        raise LitexpError(f"num_folds must be at least 2 (or null for a hold-out split), got {num_folds}")
    if not 0 <= fold < num_folds:
        raise LitexpError(f"fold must lie in 0..{num_folds - 1} for num_folds={num_folds}, got fold={fold}")


def holdout_split(labels: np.ndarray | None, num_samples: int, val_fraction: float,
                  seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) index arrays; stratified when ``labels`` are given, val empty when fraction is 0."""
    all_indices = np.arange(num_samples)
    if val_fraction == 0.0:
        return all_indices, np.empty(0, dtype=np.int64)
    if labels is not None:
        splitter = StratifiedShuffleSplit(n_splits=1, test_size=val_fraction, random_state=seed)
        try:
            train, val = next(splitter.split(all_indices, labels))
        except ValueError as error:  # a class too small to appear on both sides
            counts = np.bincount(labels)
            raise LitexpError(
                f"cannot make a stratified hold-out split with val_fraction={val_fraction}: the smallest class has "
                f"{int(counts[counts > 0].min())} samples; use a larger dataset or another val_fraction"
            ) from error
    else:
        try:
            train, val = next(ShuffleSplit(n_splits=1, test_size=val_fraction, random_state=seed).split(all_indices))
        except ValueError as error:  # too few samples for both sides
            raise LitexpError(f"{num_samples} samples are too few for a hold-out split with val_fraction="
                              f"{val_fraction}") from error
    return np.sort(train), np.sort(val)


def kfold_split(labels: np.ndarray | None, num_samples: int, num_folds: int, fold: int,
                seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) index arrays of fold ``fold`` out of ``num_folds``; stratified when labelled."""
    check_split_settings(0.0, num_folds, fold)
    all_indices = np.arange(num_samples)
    if labels is not None:
        present = np.bincount(labels)
        smallest = int(present[present > 0].min()) if present.any() else 0
        if num_folds > smallest:
            raise LitexpError(
                f"num_folds={num_folds} is larger than the smallest class ({smallest} samples); "
                f"use num_folds <= {smallest}"
            )
        splits = StratifiedKFold(n_splits=num_folds, shuffle=True, random_state=seed).split(all_indices, labels)
    else:
        if num_folds > num_samples:
            raise LitexpError(f"num_folds={num_folds} is larger than the {num_samples} samples")
        splits = KFold(n_splits=num_folds, shuffle=True, random_state=seed).split(all_indices)
    for index, (train, val) in enumerate(splits):
        if index == fold:
            return np.sort(train), np.sort(val)
    raise AssertionError("unreachable: fold was checked")


def train_subset(train: np.ndarray, labels: Optional[np.ndarray], size: int, seed: int) -> np.ndarray:
    """``size`` of the ``train`` indices, drawn with ``seed``; stratified by label when there are labels."""
    if size > len(train):
        raise LitexpError(f"train_size={size} is more than the {len(train)} training samples that validation "
                          f"leaves; use train_size <= {len(train)} (or null for all)")
    if size == len(train):
        return train
    stratify = labels[train] if labels is not None else None
    if stratify is not None and size < len(np.unique(stratify)):
        raise LitexpError(f"train_size={size} is smaller than the {len(np.unique(stratify))} classes: a stratified "
                          f"subset needs one sample of each; use a larger train_size")
    try:
        subset, _ = train_test_split(train, train_size=size, stratify=stratify, random_state=seed)
    except ValueError as error:  # a class too small to be drawn from in proportion
        raise LitexpError(f"cannot draw a stratified train_size={size} subset: {error}; use a larger train_size") \
            from error
    return np.sort(subset)


def split_fingerprint(*index_arrays: np.ndarray) -> str:
    """Short hash of the split's indices: two runs with the same fingerprint saw the same samples."""
    digest = hashlib.sha256()
    for indices in index_arrays:
        digest.update(np.asarray(indices, dtype=np.int64).tobytes())
        digest.update(b"|")
    return digest.hexdigest()[:16]


def block_split(num_tokens: int, val_fraction: float, num_folds: Optional[int],
                fold: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(train ranges, val ranges) of contiguous token blocks ``[begin, end)``.

    Hold-out validates on the last ``val_fraction`` of the tokens; K-fold cuts them into K blocks
    and validates on block ``fold`` (neighbouring training blocks merge into one stretch).
    """
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


@dataclass(frozen=True)
class SplitOptions:
    """The validation options every DataModule takes; checked here, once, before any data is read."""

    val_fraction: float = 0.1
    num_folds: Optional[int] = None
    fold: int = 0
    seed: int = 0
    train_size: Optional[int] = None  # train on a subset of this many of the samples validation leaves

    def __post_init__(self) -> None:
        check_split_settings(self.val_fraction, self.num_folds, self.fold)
        if self.train_size is not None and self.train_size < 1:
            raise LitexpError(f"train_size must be a positive number of samples (or null for all), "
                              f"got {self.train_size}")

    @property
    def kind(self) -> str:
        return "holdout" if self.num_folds is None else "kfold"


Ranges = list[tuple[int, int]]
Part = Union[np.ndarray, Ranges]  # sample indices (IndexSplit) or token ranges (BlockSplit)


class IndexSplit:
    """Independent samples: (train, val) index arrays; stratified when labels are given."""

    def split(self, num_items: int, labels: Optional[np.ndarray], options: SplitOptions) -> tuple[Part, Part]:
        if options.num_folds is None:
            train, val = holdout_split(labels, num_items, options.val_fraction, options.seed)
        else:
            train, val = kfold_split(labels, num_items, options.num_folds, options.fold, options.seed)
        if options.train_size is not None:
            train = train_subset(train, labels, options.train_size, options.seed)
        return train, val

    def whole(self, num_items: int) -> Part:
        return np.arange(num_items)

    def size(self, part: Part) -> int:
        return len(part)


class BlockSplit:
    """One token sequence: (train ranges, val ranges) of contiguous blocks; labels and seed unused."""

    def split(self, num_items: int, labels: Optional[np.ndarray], options: SplitOptions) -> tuple[Part, Part]:
        if options.train_size is not None:
            raise LitexpError("train_size takes a subset of samples; a token corpus is split into blocks: "
                              "give a shorter text or set trainer.limit_train_batches instead")
        return block_split(num_items, options.val_fraction, options.num_folds, options.fold)

    def whole(self, num_items: int) -> Part:
        return [(0, num_items)]

    def size(self, part: Part) -> int:
        return sum(end - begin for begin, end in part)
