"""K-fold and hold-out splits: disjoint, covering, stratified, deterministic, and validated."""

from __future__ import annotations

import numpy as np
import pytest

from datamodules.splits import BlockSplit, IndexSplit, SplitOptions, holdout_split, kfold_split, split_fingerprint
from litexp.errors import LitexpError

LABELS = np.repeat(np.arange(5), [40, 30, 20, 20, 10])  # imbalanced classes, 120 samples


@pytest.mark.parametrize("num_folds", [2, 5])
def test_kfold_folds_are_disjoint_and_cover_the_training_split(num_folds):
    val_folds = []
    for fold in range(num_folds):
        train, val = kfold_split(LABELS, len(LABELS), num_folds, fold, seed=3)
        assert not set(train) & set(val)
        assert sorted([*train, *val]) == list(range(len(LABELS)))
        val_folds.append(val)
    union = np.concatenate(val_folds)
    assert sorted(union) == list(range(len(LABELS)))  # every sample validates exactly once


def test_kfold_is_stratified_by_label():
    for fold in range(5):
        _, val = kfold_split(LABELS, len(LABELS), 5, fold, seed=0)
        counts = np.bincount(LABELS[val], minlength=5)
        np.testing.assert_array_equal(counts, np.bincount(LABELS) // 5)


def test_kfold_is_a_pure_function_of_its_inputs():
    first = kfold_split(LABELS, len(LABELS), 4, 2, seed=7)
    again = kfold_split(LABELS, len(LABELS), 4, 2, seed=7)
    other_seed = kfold_split(LABELS, len(LABELS), 4, 2, seed=8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=False))
    assert not np.array_equal(first[1], other_seed[1])
    assert split_fingerprint(*first) == split_fingerprint(*again) != split_fingerprint(*other_seed)


def test_holdout_is_stratified_and_deterministic():
    train, val = holdout_split(LABELS, len(LABELS), 0.25, seed=1)
    assert len(val) == 30 and not set(train) & set(val)
    assert abs(np.bincount(LABELS[val], minlength=5) - np.bincount(LABELS) * 0.25).max() <= 1
    again = holdout_split(LABELS, len(LABELS), 0.25, seed=1)
    assert np.array_equal(val, again[1])


def test_holdout_with_zero_fraction_keeps_everything_for_training():
    train, val = holdout_split(LABELS, len(LABELS), 0.0, seed=0)
    assert len(train) == len(LABELS) and len(val) == 0


def test_unlabelled_kfold_for_regression():
    train, val = kfold_split(None, 50, 5, 4, seed=0)
    assert len(val) == 10 and len(train) == 40


@pytest.mark.parametrize(
    "num_folds,fold,message",
    [(5, 5, "fold must lie in 0..4"), (3, -1, "fold must lie in 0..2"), (1, 0, "at least 2"),
     (11, 0, "larger than the smallest class")],
)
def test_impossible_fold_settings_are_rejected(num_folds, fold, message):
    with pytest.raises(LitexpError, match=message):
        kfold_split(LABELS, len(LABELS), num_folds, fold, seed=0)


def test_train_size_takes_a_stratified_subset_and_leaves_validation_whole():
    labels = np.repeat(np.arange(10), 100)
    full_train, full_val = IndexSplit().split(1000, labels, SplitOptions(val_fraction=0.1, seed=3))
    train, val = IndexSplit().split(1000, labels, SplitOptions(val_fraction=0.1, seed=3, train_size=50))
    assert np.array_equal(val, full_val) and len(train) == 50 and set(train) <= set(full_train)
    assert np.array_equal(np.bincount(labels[train]), [5] * 10)  # every class in proportion
    again, _ = IndexSplit().split(1000, labels, SplitOptions(val_fraction=0.1, seed=3, train_size=50))
    assert np.array_equal(train, again)
    folds, _ = IndexSplit().split(1000, labels, SplitOptions(num_folds=5, fold=1, train_size=100))
    assert len(folds) == 100


@pytest.mark.parametrize("size, message", [(901, "more than the 900 training samples"),
                                           (5, "smaller than the 10 classes")])
def test_impossible_train_sizes_are_one_line(size, message):
    labels = np.repeat(np.arange(10), 100)
    with pytest.raises(LitexpError, match=message):
        IndexSplit().split(1000, labels, SplitOptions(val_fraction=0.1, train_size=size))
    with pytest.raises(LitexpError, match="a token corpus is split into blocks"):
        BlockSplit().split(1000, None, SplitOptions(train_size=10))
