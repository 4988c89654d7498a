"""A callback for the DDP test: each rank writes the sample indices its batches hold per epoch."""

from __future__ import annotations

import json
from pathlib import Path

from lightning.pytorch.callbacks import Callback


class RecordSamples(Callback):
    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)
        self.seen: dict[int, list[int]] = {}
        self._batches: list[list[int]] = []

    def on_train_epoch_start(self, trainer, pl_module):
        sampler = trainer.train_dataloader.sampler  # the ShardedBatchSampler this rank iterates
        self._batches = [batch.tolist() for batch in sampler]
        self.seen[trainer.current_epoch] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        images, _ = batch
        expected = self._batches[batch_idx]
        assert len(images) == len(expected), "batch does not match the sampler's indices"
        self.seen[trainer.current_epoch].extend(expected)

    def on_train_end(self, trainer, pl_module):
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"rank{trainer.global_rank}-of-{trainer.world_size}.json"
        path.write_text(json.dumps(self.seen))
