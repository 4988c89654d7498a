"""Validation splits as pure functions of (labels, settings, seed): the same on every rank and run.

Hold-out and K-fold are stratified by label (scikit-learn splitters). Both take indices into the
official *training* split only; the test split never enters here.
"""

from __future__ import annotations

import hashlib

import numpy as np
from sklearn.model_selection import KFold, ShuffleSplit, StratifiedKFold, StratifiedShuffleSplit

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
        train, val = next(ShuffleSplit(n_splits=1, test_size=val_fraction, random_state=seed).split(all_indices))
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


def split_fingerprint(*index_arrays: np.ndarray) -> str:
    """Short hash of the split's indices: two runs with the same fingerprint saw the same samples."""
    digest = hashlib.sha256()
    for indices in index_arrays:
        digest.update(np.asarray(indices, dtype=np.int64).tobytes())
        digest.update(b"|")
    return digest.hexdigest()[:16]
