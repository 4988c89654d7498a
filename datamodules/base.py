"""The DataModule base: data held as tensors, splits owned here, batches cut from tensors.

A subclass only says how to load a split (``load``) and how to turn a raw batch into model input
on the device (``transform_batch``). This class owns the rest: hold-out or K-fold validation taken
from the official training split, index batches that DDP ranks shard without overlap, and the
rule that the test split is read only by ``test`` and ``predict``.
"""

from __future__ import annotations

import os
from typing import Any, Iterator, Optional

import lightning.pytorch as pl
import numpy as np
import torch
from jsonargparse.typing import PositiveInt
from torch.utils.data import DataLoader, Dataset, Sampler

from datamodules.splits import check_split_settings, holdout_split, kfold_split, split_fingerprint
from litexp.errors import LitexpError


class TensorBatches(Dataset):
    """A dataset whose items are whole batches: ``dataset[index_tensor]`` slices every tensor."""

    def __init__(self, *tensors: torch.Tensor) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, indices: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(tensor[indices] for tensor in self.tensors)


class ShardedBatchSampler(Sampler[torch.Tensor]):
    """Yields one index tensor per batch for this rank.

    Training (``global_batches=True``): each epoch's shuffled order is cut into global batches of
    ``batch_size * world_size`` and rank r takes the r-th slice of each, so R ranks together see
    exactly the batches a single process with batch ``R * batch_size`` sees, and never overlap.
    Evaluation: rank r takes the r-th contiguous shard, batched; no sample is repeated or dropped.
    """

    def __init__(self, indices: np.ndarray, batch_size: int, shuffle: bool, global_batches: bool,
                 seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        self.indices = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.global_batches = global_batches
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:  # Lightning calls this at the start of every epoch
        self.epoch = epoch

    def _order(self) -> torch.Tensor:
        if not self.shuffle:
            return self.indices
        generator = torch.Generator().manual_seed(self.seed + self.epoch)  # same order on every rank
        return self.indices[torch.randperm(len(self.indices), generator=generator)]

    def _batches(self) -> list[torch.Tensor]:
        order = self._order()
        if not self.global_batches:
            shard = torch.tensor_split(order, self.world_size)[self.rank]
            return list(torch.split(shard, self.batch_size))
        batches = []
        for global_batch in torch.split(order, self.batch_size * self.world_size):
            if len(global_batch) < self.world_size:
                break  # too few samples to give every rank one: all ranks skip it alike
            batches.append(torch.tensor_split(global_batch, self.world_size)[self.rank])
        return batches

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())


class DataModule(pl.LightningDataModule):
    """Base of every litexp DataModule (the CLI chooses among its subclasses by class name)."""

    # Subclasses describe their samples with the attributes their task needs (the CLI links them
    # into the model): ``num_classes`` and ``input_shape`` for classification, ``in_features`` and
    # ``num_outputs`` for regression.
    #: does stratification by target make sense (class labels) or not (regression)
    stratify: bool = True
    #: set during a hyperparameter search (``litexp tune``): reading the test split then raises
    test_split_locked: bool = False

    def __init__(
        self,
        batch_size: PositiveInt = 256,
        eval_batch_size: Optional[PositiveInt] = None,
        val_fraction: float = 0.1,
        num_folds: Optional[int] = None,
        fold: int = 0,
        split_seed: int = 0,
    ) -> None:
        super().__init__()
        if int(batch_size) <= 0:
            raise LitexpError(f"batch_size must be a positive integer, got {batch_size}")
        check_split_settings(val_fraction, num_folds, fold)
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.val_fraction = float(val_fraction)
        self.num_folds = num_folds
        self.fold = int(fold)
        self.split_seed = int(split_seed)
        self.train_indices: Optional[np.ndarray] = None
        self.val_indices: Optional[np.ndarray] = None
        self._train_split: Optional[tuple[torch.Tensor, ...]] = None
        self._test_split: Optional[tuple[torch.Tensor, ...]] = None
        self.test_split_loads = 0  # how often the official test split was read (isolation checks)

    def __str__(self) -> str:  # Lightning's default builds every dataloader just to print it
        return f"{type(self).__name__}(batch_size={self.batch_size})"

    # -- what a subclass provides ------------------------------------------------------------
    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (inputs, targets) of the official ``"train"`` or ``"test"`` split."""
        raise NotImplementedError

    def transform_batch(self, batch: tuple[torch.Tensor, ...], training: bool) -> tuple[torch.Tensor, ...]:
        """Turn a raw batch into model input, on the device (scaling, resizing, augmentation)."""
        return batch

    # -- splits -------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Fetch and decode the training split once (rank 0 only under DDP; later calls hit the cache).

        The test split is not touched here: only ``setup("test")`` / ``setup("predict")`` read it.
        """
        self.load("train")

    def setup(self, stage: str) -> None:
        if stage in ("fit", "validate"):
            self._setup_train_split()
        if stage in ("test", "predict") and self._test_split is None:
            if self.test_split_locked:
                raise LitexpError("the test split is locked during a hyperparameter search; "
                                  "it is evaluated once, after the search, by litexp tune itself")
            self._test_split = self.load("test")
            self.test_split_loads += 1

    def _setup_train_split(self) -> None:
        if self._train_split is not None:
            return
        split = self.load("train")
        targets = split[1]
        labels = targets.numpy() if self.stratify else None
        if self.num_folds is None:
            train, val = holdout_split(labels, len(targets), self.val_fraction, self.split_seed)
        else:
            train, val = kfold_split(labels, len(targets), self.num_folds, self.fold, self.split_seed)
        # assigned only once the split succeeded: a failed setup is not mistaken for a done one
        self._train_split, self.train_indices, self.val_indices = split, train, val

    @property
    def split_fingerprint(self) -> Optional[str]:
        if self.train_indices is None:
            return None
        return split_fingerprint(self.train_indices, self.val_indices)

    def summary(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"data": type(self).__name__, "batch_size": self.batch_size}
        if self.num_folds is None:
            facts.update(split="holdout", val_fraction=self.val_fraction)
        else:
            facts.update(split="kfold", num_folds=self.num_folds, fold=self.fold)
        facts["split_seed"] = self.split_seed
        if self.train_indices is not None:
            facts.update(train_size=len(self.train_indices), val_size=len(self.val_indices),
                         split_fingerprint=self.split_fingerprint)
        return facts

    # -- loaders ------------------------------------------------------------------------------
    def _rank_and_world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def _loader(self, tensors: tuple[torch.Tensor, ...], indices: np.ndarray, training: bool) -> DataLoader:
        rank, world_size = self._rank_and_world()
        sampler = ShardedBatchSampler(
            indices,
            batch_size=self.batch_size if training else self.eval_batch_size,
            shuffle=training,
            global_batches=training,
            seed=int(os.environ.get("PL_GLOBAL_SEED", 0)),  # the run's seed, equal on all ranks
            rank=rank,
            world_size=world_size,
        )
        # batch_size=None: the sampler's index tensors go straight to TensorBatches.__getitem__
        return DataLoader(TensorBatches(*tensors), sampler=sampler, batch_size=None, num_workers=0)

    def train_dataloader(self) -> DataLoader:
        self._setup_train_split()
        return self._loader(self._train_split, self.train_indices, training=True)

    def val_dataloader(self):
        self._setup_train_split()
        if len(self.val_indices) == 0:
            return []  # val_fraction=0: train on everything, no validation loop
        return self._loader(self._train_split, self.val_indices, training=False)

    def test_dataloader(self) -> DataLoader:
        if self._test_split is None:
            raise RuntimeError("the test split is loaded only by setup('test') or setup('predict')")
        return self._loader(self._test_split, np.arange(len(self._test_split[1])), training=False)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        training = self.trainer is not None and self.trainer.training
        return self.transform_batch(batch, training=training)
