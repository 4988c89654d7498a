"""The book's two ways to cut a token stream: random windows and sequential rows, both shifted by a
random offset every epoch, and both a pure function of (seed, epoch) so that a resumed fit sees the
batches it would have seen."""

from __future__ import annotations

import pytest
import torch

from datamodules.text import TextCorpus, WindowSampler
from tests.fake_data import english_like_text

RANGES = [(0, 3000)]
STEPS = 10


def epoch_starts(mode: str, epoch: int, seed: int = 0) -> list[torch.Tensor]:
    sampler = WindowSampler(RANGES, STEPS, 8, mode, seed=seed)
    sampler.set_epoch(epoch)
    return list(sampler)


@pytest.mark.parametrize("mode", ["random", "sequential"])
def test_the_offset_changes_between_epochs_and_the_batch_count_does_not(mode):
    offsets, counts = set(), set()
    for epoch in range(8):
        starts = torch.cat(epoch_starts(mode, epoch))
        epoch_offsets = set((starts % STEPS).tolist())
        assert len(epoch_offsets) == 1  # one offset per epoch: windows tile the text without overlap
        offsets |= epoch_offsets
        counts.add(len(epoch_starts(mode, epoch)))
        assert starts.max() + STEPS + 1 <= RANGES[0][1]  # every window and its targets stay inside the range
    assert len(offsets) > 2, "windows start at the same positions every epoch"
    assert len(counts) == 1  # every epoch has as many batches as the first
    first, second = (set(torch.cat(epoch_starts(mode, e)).tolist()) for e in (0, 1))
    assert first != second


@pytest.mark.parametrize("mode", ["random", "sequential"])
def test_batches_are_a_function_of_seed_and_epoch_only(mode):
    again = epoch_starts(mode, 3)
    epoch_starts(mode, 5)  # another sampler drawing in between changes nothing
    assert all(torch.equal(a, b) for a, b in zip(again, epoch_starts(mode, 3), strict=True))
    other_seed = epoch_starts(mode, 3, seed=1)
    assert not all(torch.equal(a, b) for a, b in zip(again, other_seed, strict=False))


def test_random_windows_are_shuffled_and_sequential_rows_continue():
    random_batches = epoch_starts("random", 0)
    flat = torch.cat(random_batches)
    assert not torch.equal(flat, flat.sort().values)  # shuffled
    sequential = epoch_starts("sequential", 2)
    for previous, following in zip(sequential, sequential[1:], strict=False):
        assert torch.equal(following, previous + STEPS)  # row b goes on where it stopped: state can be carried


@pytest.mark.parametrize("mode", ["random", "sequential"])
def test_a_resumed_epoch_goes_on_with_the_same_shifted_windows(mode):
    whole = epoch_starts(mode, 4)
    sampler = WindowSampler(RANGES, STEPS, 8, mode, seed=0)
    sampler.resume(4, 3)  # a checkpoint written after 3 batches of epoch 4
    rest = list(sampler)
    assert len(rest) == len(whole) - 3
    assert all(torch.equal(a, b) for a, b in zip(rest, whole[3:], strict=True))
    assert len(list(sampler)) == len(whole)  # the epoch after starts from its first batch


def test_the_data_module_shifts_its_windows_every_epoch(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(english_like_text(200, seed=0), encoding="utf-8")
    data = TextCorpus(path=str(path), num_steps=8, batch_size=8)
    data.setup("fit")
    loader = data.train_dataloader()
    firsts = []
    for epoch in range(4):
        loader.sampler.set_epoch(epoch)
        inputs, targets = next(iter(loader))
        assert torch.equal(inputs[:, 1:], targets[:, :-1])
        firsts.append(set((torch.cat(list(loader.sampler)) % 8).tolist()))
    assert len(set.union(*firsts)) > 1
