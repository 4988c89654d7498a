"""Two CPU processes with DDP (gloo): disjoint samples per rank, same result as one process.

One process with batch 32 and two DDP ranks with batch 16 each see the same global batches in the
same order, and DDP averages the two ranks' mean gradients, which equals the mean gradient over
the global batch. So the final validation metrics agree up to float round-off in the all-reduce:
we allow 1e-4 on the loss and one validation sample on the accuracy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.cli import CONFIG_DIR
from tests.fake_data import write_idx_dataset

REPO = Path(__file__).resolve().parents[2]


def litexp_subprocess(tmp_path: Path, name: str, *args: str) -> dict:
    probe = tmp_path / f"{name}-probe.yaml"
    probe.write_text(
        "trainer:\n  callbacks:\n    - class_path: tests.ddp_probe.RecordSamples\n"
        f"      init_args:\n        out_dir: {tmp_path / name}\n"
    )
    env = {**os.environ, "LITEXP_DATA_DIR": str(tmp_path / "data"), "WANDB_MODE": "disabled",
           "PYTHONPATH": str(REPO)}
    env.pop("LITEXP_RUN_DIR", None)
    command = [sys.executable, "-m", "experiments", "fit", "--config", str(CONFIG_DIR / "mnist/mlp.yaml"),
               "--config", str(probe), "--trainer.max_epochs=3", "--data.val_fraction=0.25",
               "--model.lr=0.05", "--run.root", str(tmp_path / "runs"), "--run.name", name,
               "--trainer.enable_progress_bar=false", *args]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs" / name).iterdir()
    return json.loads((run_dir / "summary.json").read_text())


def test_two_process_ddp_matches_one_process(tmp_path):
    write_idx_dataset(tmp_path / "data", "MNIST", num_train=512, num_test=64)
    single = litexp_subprocess(tmp_path, "single", "--data.batch_size=32")
    ddp = litexp_subprocess(tmp_path, "ddp", "--data.batch_size=16",
                            "--config", str(CONFIG_DIR / "trainer/ddp_cpu.yaml"))

    assert ddp["device"]["world_size"] == 2 and single["device"]["world_size"] == 1
    rank0 = json.loads((tmp_path / "ddp" / "rank0-of-2.json").read_text())
    rank1 = json.loads((tmp_path / "ddp" / "rank1-of-2.json").read_text())
    alone = json.loads((tmp_path / "single" / "rank0-of-1.json").read_text())
    for epoch in ("0", "1", "2"):
        assert not set(rank0[epoch]) & set(rank1[epoch]), "ranks must see disjoint samples"
        assert sorted(rank0[epoch] + rank1[epoch]) == sorted(alone[epoch])  # together: the whole train split
        assert len(alone[epoch]) == 384
    # only rank 0 writes the run: one run directory, one summary
    assert len(list((tmp_path / "runs" / "ddp").iterdir())) == 1

    single_metrics, ddp_metrics = single["fit"]["metrics"], ddp["fit"]["metrics"]
    assert ddp_metrics["val/loss"] == pytest.approx(single_metrics["val/loss"], abs=1e-4)
    assert ddp_metrics["val/acc"] == pytest.approx(single_metrics["val/acc"], abs=1 / 128 + 1e-6)
    assert single_metrics["val/acc"] > 0.5  # it learned something, so the comparison means something


ENDS = """
import os, sys, torch.distributed as dist
from experiments.lifecycle import end_other_rank
rank = int(sys.argv[1])
dist.init_process_group("gloo", init_method="file://" + sys.argv[2], rank=rank, world_size=2)
end_other_rank(7)  # rank 1 leaves here with 7; rank 0 goes on
dist.destroy_process_group()
sys.exit(3)
"""


def test_a_finished_rank_other_than_0_leaves_at_once_with_its_code_and_rank_0_goes_on(tmp_path):
    rendezvous = tmp_path / "rendezvous"
    ranks = [subprocess.Popen([sys.executable, "-c", ENDS, str(rank), str(rendezvous)], env={**os.environ,
                              "OMP_NUM_THREADS": "1"}) for rank in (0, 1)]
    assert [rank.wait(timeout=120) for rank in ranks] == [3, 7]
