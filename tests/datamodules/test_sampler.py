"""Batches cut from tensors, sharded across DDP ranks without overlap."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datamodules.base import ShardedBatchSampler, TensorBatches


def batches(indices, batch_size, training, rank=0, world_size=1, epoch=0):
    sampler = ShardedBatchSampler(indices, batch_size, shuffle=training, global_batches=training,
                                  seed=5, rank=rank, world_size=world_size)
    sampler.set_epoch(epoch)
    result = [b.tolist() for b in sampler]
    assert len(result) == len(sampler)
    return result


@pytest.mark.parametrize("num_samples", [96, 100, 97])
def test_ranks_together_see_the_single_process_global_batches(num_samples):
    indices = np.arange(num_samples) * 3  # arbitrary training indices
    single = batches(indices, 16, training=True)  # one process, global batch 16
    rank0 = batches(indices, 8, training=True, rank=0, world_size=2)
    rank1 = batches(indices, 8, training=True, rank=1, world_size=2)
    assert len(rank0) == len(rank1)  # DDP needs the same number of steps on every rank
    for global_batch, part0, part1 in zip(single, rank0, rank1, strict=False):
        assert not set(part0) & set(part1)
        assert part0 + part1 == global_batch
    assert sum(map(len, single)) == num_samples


def test_each_epoch_is_a_new_permutation_shared_by_all_ranks():
    indices = np.arange(64)
    epoch0, epoch1 = batches(indices, 64, True, epoch=0), batches(indices, 64, True, epoch=1)
    assert sorted(epoch0[0]) == sorted(epoch1[0]) and epoch0 != epoch1
    assert batches(indices, 8, True, rank=1, world_size=2, epoch=3) == batches(indices, 8, True, 1, 2, 3)


def test_evaluation_shards_cover_every_sample_once():
    indices = np.arange(101)
    seen = [i for rank in range(3) for batch in batches(indices, 10, False, rank, 3) for i in batch]
    assert sorted(seen) == list(range(101))


def test_tensor_batches_slice_whole_batches():
    images, labels = torch.arange(20).view(10, 2), torch.arange(10)
    batch_images, batch_labels = TensorBatches(images, labels)[torch.tensor([3, 7])]
    assert batch_labels.tolist() == [3, 7] and batch_images.tolist() == [[6, 7], [14, 15]]


@pytest.mark.parametrize("global_batches", [True, False])
@pytest.mark.parametrize("size,batch_size,world_size", [(0, 4, 1), (1, 4, 2), (3, 4, 4), (10, 4, 1), (10, 4, 3),
                                                        (16, 4, 2), (17, 4, 2), (18, 4, 4), (23, 5, 4), (7, 1, 3)])
def test_the_counted_length_is_the_number_of_batches_drawn(size, batch_size, world_size, global_batches):
    for rank in range(world_size):
        sampler = ShardedBatchSampler(np.arange(size), batch_size, shuffle=global_batches,
                                      global_batches=global_batches, rank=rank, world_size=world_size)
        assert len(sampler) == len(sampler.batches()) == len(list(sampler))
