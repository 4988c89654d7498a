"""The DataModule base: data held as tensors, splits owned here, batches cut from tensors.

The contract. A subclass says
 - how to read the official ``"train"`` and ``"test"`` splits as tensors (``load``),
 - how to turn a raw batch into model input on the device (``transform_batch``),
 - which split strategy fits its data (``split_strategy``: samples or token blocks) and, where
   batches are not plain rows of its tensors, how to cut them (``batches``).
This class owns the rest, once for every subclass: the split options and their checks, hold-out or
K-fold validation taken from the training split, the split fingerprint, the loaders with batches
that DDP ranks shard without overlap, and the rule that the test split is read only by ``test``
and ``predict`` (and never while a search holds the test lock).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator, Literal, Optional

import lightning.pytorch as pl
import numpy as np
import torch
from jsonargparse.typing import NonNegativeInt, PositiveInt
from torch.utils.data import DataLoader, Dataset, Sampler

from datamodules.splits import IndexSplit, Part, SplitOptions, split_fingerprint
from litexp.errors import LitexpError


class TensorBatches(Dataset):
    """A dataset whose items are whole batches: ``dataset[index_tensor]`` slices every tensor."""

    def __init__(self, *tensors: torch.Tensor) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, indices: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(tensor[indices] for tensor in self.tensors)


class EpochBatches(Sampler[torch.Tensor]):
    """A batch sampler whose batches are fixed by (seed, epoch): a subclass says what they are (``batches``).

    Because an epoch's batches depend on nothing else, a fit resumed from a checkpoint can go on
    with exactly the batches it would have seen: ``resume(epoch, done)`` makes the next iteration
    start at batch ``done`` of ``epoch`` (see :class:`ResumableLoader`).
    """

    epoch: int = 0
    _skip: int = 0

    def set_epoch(self, epoch: int) -> None:  # Lightning calls this at the start of every epoch
        self.epoch = epoch

    def batches(self) -> list[torch.Tensor]:
        """This rank's index tensors of the current epoch, in order."""
        raise NotImplementedError

    def resume(self, epoch: int, done: int, epoch_done: bool = False) -> None:
        """The next iteration yields ``epoch``'s batches after its first ``done`` (``epoch_done``: the next epoch's)."""
        if epoch_done or done >= len(self):
            epoch, done = epoch + 1, 0
        self.set_epoch(epoch)
        self._skip = done

    def __iter__(self) -> Iterator[torch.Tensor]:
        skip, self._skip = self._skip, 0
        return iter(self.batches()[skip:])

    def __len__(self) -> int:
        return len(self.batches())


class ShardedBatchSampler(EpochBatches):
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

    def _order(self) -> torch.Tensor:
        if not self.shuffle:
            return self.indices
        generator = torch.Generator().manual_seed(self.seed + self.epoch)  # same order on every rank
        return self.indices[torch.randperm(len(self.indices), generator=generator)]

    def batches(self) -> list[torch.Tensor]:
        order = self._order()
        if not self.global_batches:
            shard = torch.tensor_split(order, self.world_size)[self.rank]
            # a rank with no samples (fewer than ranks) gets no batch, not one empty batch
            return list(torch.split(shard, self.batch_size)) if len(shard) else []
        batches = []
        for global_batch in torch.split(order, self.batch_size * self.world_size):
            if len(global_batch) < self.world_size:
                break  # too few samples to give every rank one: all ranks skip it alike
            batches.append(torch.tensor_split(global_batch, self.world_size)[self.rank])
        return batches

    def __len__(self) -> int:
        # counted, not drawn: Lightning asks several times an epoch, and drawing the order costs a millisecond
        n, size, ranks = len(self.indices), self.batch_size, self.world_size
        if not self.global_batches:
            shard = n // ranks + (1 if self.rank < n % ranks else 0)
            return -(-shard // size)
        full, rest = divmod(n, size * ranks)
        return full + (1 if rest >= ranks else 0)


class ResumableLoader(DataLoader):
    """The training loader: Lightning saves its position in every checkpoint and restores it on resume.

    ``state_dict`` holds the epoch, how many of its batches the fit has trained on and whether that was
    all of them (``position``, read from the trainer when the checkpoint is written, so batches
    fetched ahead do not count, and ``limit_train_batches`` ends an epoch early);
    ``load_state_dict`` makes the first iteration after a resume start right after them. A fit
    stopped mid-epoch and resumed thus sees every batch of every epoch once, in the same order.
    """

    def __init__(self, dataset: Dataset, sampler: EpochBatches, generator: torch.Generator,
                 position: Callable[[], tuple[int, bool]]) -> None:
        super().__init__(dataset, sampler=sampler, batch_size=None, num_workers=0, generator=generator)
        self.position = position

    def state_dict(self) -> dict[str, int]:
        done, epoch_done = self.position()
        return {"epoch": int(self.sampler.epoch), "batches_done": int(done), "epoch_done": bool(epoch_done)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.resume(int(state["epoch"]), int(state["batches_done"]), bool(state.get("epoch_done")))


class DataModule(pl.LightningDataModule):
    """Base of every litexp DataModule (the CLI chooses among its subclasses by class name).

    Subclasses take their own options and forward the split options here with ``**kwargs``
    (LightningCLI follows them, so ``--data.help`` lists both).
    """

    # Subclasses describe their samples with the attributes their task needs (the CLI links them
    # into the model): ``num_classes`` and ``input_shape`` for classification, ``in_features`` and
    # ``num_outputs`` for regression.
    #: how validation is cut from the training split: samples (IndexSplit) or token blocks (BlockSplit)
    split_strategy = IndexSplit()
    #: does stratification by target make sense (class labels) or not (regression)
    stratify: bool = True
    #: set class-wide during a hyperparameter search (``litexp tune``): reading the test split then raises.
    #: ``lock_test_split()`` locks one instance.
    test_split_locked: bool = False

    def __init__(
        self,
        batch_size: PositiveInt = 256,
        eval_batch_size: Optional[PositiveInt] = None,
        val_fraction: float = 0.1,
        num_folds: Optional[int] = None,
        fold: NonNegativeInt = 0,
        split_seed: int = 0,
        train_size: Optional[PositiveInt] = None,
    ) -> None:
        """
        Args:
            batch_size: training batch size per device.
            eval_batch_size: validation/test batch size (default: ``batch_size``).
            val_fraction: hold-out fraction of the training split (used when ``num_folds`` is null).
            num_folds: K for K-fold validation; ``fold`` picks the validation fold.
            fold: which fold (0..num_folds-1) is the validation set.
            split_seed: seed of the hold-out / K-fold split.
            train_size: train on a random subset of this many of the samples that validation leaves
                (stratified by class; the validation part stays whole): the book's small-data experiments.
        """
        super().__init__()
        if int(batch_size) <= 0:
            raise LitexpError(f"batch_size must be a positive integer, got {batch_size}")
        self.split_options = SplitOptions(float(val_fraction), num_folds, int(fold), int(split_seed),
                                          int(train_size) if train_size else None)
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.val_fraction = float(val_fraction)
        self.num_folds = num_folds
        self.fold = int(fold)
        self.split_seed = int(split_seed)
        self.train_size = self.split_options.train_size
        self.train_indices: Optional[Part] = None  # what validation leaves for training (indices or ranges)
        self.val_indices: Optional[Part] = None
        self._train_split: Optional[tuple[torch.Tensor, ...]] = None
        self._test_split: Optional[tuple[torch.Tensor, ...]] = None
        self._train_loader: Optional[ResumableLoader] = None
        self._resume_position: Optional[dict[str, Any]] = None  # from a checkpoint, for the next train loader

    def __str__(self) -> str:  # Lightning's default builds every dataloader just to print it
        return f"{type(self).__name__}(batch_size={self.batch_size})"

    # -- what a subclass provides ------------------------------------------------------------
    def load(self, split: str) -> tuple[torch.Tensor, ...]:
        """The tensors of the official ``"train"`` or ``"test"`` split; their first axis is the sample
        (index split) or the token position (block split)."""
        raise NotImplementedError

    def transform_batch(self, batch: tuple[torch.Tensor, ...], training: bool) -> tuple[torch.Tensor, ...]:
        """Turn a raw batch into model input, on the device (scaling, resizing, augmentation)."""
        return batch

    def split_labels(self, tensors: tuple[torch.Tensor, ...]) -> Optional[np.ndarray]:
        """Labels to stratify the split by (the second tensor, for classification), or None."""
        return tensors[1].numpy() if self.stratify and len(tensors) > 1 else None

    def fingerprint_arrays(self) -> tuple[np.ndarray, ...]:
        """Arrays beyond the split itself that decide what a run saw (e.g. a corpus' token ids)."""
        return ()

    def batches(self, tensors: tuple[torch.Tensor, ...], part: Part,
                mode: Literal["train", "eval"]) -> tuple[Dataset, Sampler]:
        """(dataset of whole batches, batch sampler) over ``part`` of ``tensors``: rows cut by index."""
        rank, world_size = self._rank_and_world()
        sampler = ShardedBatchSampler(
            part,
            batch_size=self.batch_size if mode == "train" else self.eval_batch_size,
            shuffle=mode == "train",
            global_batches=mode == "train",
            seed=self.run_seed,
            rank=rank,
            world_size=world_size,
        )
        return TensorBatches(*tensors), sampler

    def format_predictions(self, columns: dict[str, list]) -> dict[str, list]:
        """The columns of ``predictions.csv`` from the task's (a table's id and target units, for instance)."""
        return columns

    # -- splits -------------------------------------------------------------------------------
    def make_split(self, num_items: int, labels: Optional[np.ndarray] = None) -> tuple[Part, Part]:
        """(train part, val part) of a training split of ``num_items``: the one place that splits."""
        return self.split_strategy.split(num_items, labels, self.split_options)

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

    def lock_test_split(self) -> None:
        """From now on this instance refuses to read the test split (a search's folds and trials)."""
        self.test_split_locked = True

    def _setup_train_split(self) -> None:
        if self._train_split is not None:
            return
        tensors = self.load("train")
        train, val = self.make_split(len(tensors[0]), self.split_labels(tensors))
        # assigned only once the split succeeded: a failed setup is not mistaken for a done one
        self._train_split, self.train_indices, self.val_indices = tensors, train, val

    @property
    def has_validation(self) -> bool:
        return self.val_indices is not None and self.split_strategy.size(self.val_indices) > 0

    @property
    def split_fingerprint(self) -> Optional[str]:
        """Short hash of what this run trains and validates on: equal fingerprints, equal samples."""
        if self.train_indices is None:
            return None
        parts = [np.asarray(part, dtype=np.int64).ravel() for part in (self.train_indices, self.val_indices)]
        return split_fingerprint(*parts, *self.fingerprint_arrays())

    def summary(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"data": type(self).__name__, "batch_size": self.batch_size}
        if self.num_folds is None:
            facts.update(split="holdout", val_fraction=self.val_fraction)
        else:
            facts.update(split="kfold", num_folds=self.num_folds, fold=self.fold)
        facts["split_seed"] = self.split_seed
        if self.train_size is not None:
            facts["train_subset"] = self.train_size
        if self.train_indices is not None:
            facts.update(train_size=self.split_strategy.size(self.train_indices),
                         val_size=self.split_strategy.size(self.val_indices),
                         split_fingerprint=self.split_fingerprint)
        return facts

    # -- loaders ------------------------------------------------------------------------------
    @property
    def run_seed(self) -> int:
        """The run's seed (``seed_everything``), equal on all ranks: shuffles differ by run and epoch."""
        return int(os.environ.get("PL_GLOBAL_SEED", 0))

    def _rank_and_world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def _loader(self, tensors: tuple[torch.Tensor, ...], part: Part, mode: Literal["train", "eval"]) -> DataLoader:
        dataset, sampler = self.batches(tensors, part, mode)
        # its own generator: making an iterator draws a seed from it, not from the global RNG that
        # dropout and augmentation use (so validation never shifts the training's random stream)
        generator = torch.Generator().manual_seed(self.run_seed)
        if mode == "train":
            return ResumableLoader(dataset, sampler, generator, self._batches_trained)
        # batch_size=None: the sampler's items go straight to the dataset's __getitem__ (whole batches)
        return DataLoader(dataset, sampler=sampler, batch_size=None, num_workers=0, generator=generator)

    def _batches_trained(self) -> tuple[int, bool]:
        """(batches of the current epoch the fit has trained on, whether the epoch's training is done)."""
        trainer = self.trainer
        if trainer is None:
            return 0, False
        done = int(trainer.fit_loop.epoch_loop.batch_progress.current.processed)
        return done, done >= trainer.num_training_batches

    def train_dataloader(self) -> DataLoader:
        self._setup_train_split()
        self._train_loader = self._loader(self._train_split, self.train_indices, "train")
        if self._resume_position is not None:
            self._train_loader.load_state_dict(self._resume_position)
            self._resume_position = None
        return self._train_loader

    # Lightning restores a loader's own state only when it restarts an unfinished epoch; kept here too,
    # the position also survives a checkpoint written at an epoch's end (the next epoch's order is used)
    def state_dict(self) -> dict[str, Any]:
        return {"train_position": self._train_loader.state_dict()} if self._train_loader is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._resume_position = state_dict.get("train_position")

    def val_dataloader(self):
        self._setup_train_split()
        if not self.has_validation:
            return []  # val_fraction=0: train on everything, no validation loop
        return self._loader(self._train_split, self.val_indices, "eval")

    def test_dataloader(self) -> DataLoader:
        if self._test_split is None:
            raise RuntimeError("the test split is loaded only by setup('test') or setup('predict')")
        return self._loader(self._test_split, self.split_strategy.whole(len(self._test_split[0])), "eval")

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        training = self.trainer is not None and self.trainer.training
        return self.transform_batch(batch, training=training)
