"""``litexp fit --resume``: a real fit killed (SIGKILL) mid-epoch, between epochs or during validation, or
stopped by SIGTERM, continues in its own directory and ends with the weights and the metrics.csv of a fit
that was never stopped (the dropout MLP: shuffling, dropout and per-epoch metrics all have to line up)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from experiments.cli import CONFIG_DIR, main

REPO = Path(__file__).resolve().parents[2]
FIT = ["fit", "--config", str(CONFIG_DIR / "fashion_mnist" / "mlp_dropout.yaml"), "--trainer.max_epochs=3",
       "--data.batch_size=20", "--data.val_fraction=0.2", "--trainer.log_every_n_steps=2",
       "--trainer.enable_progress_bar=false", "--wandb.mode=disabled"]
STEPS_PER_EPOCH = 12  # 240 training images of the fake Fashion-MNIST, batches of 20


def litexp(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "tests.experiments.fit_on_fake_data", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def fit(root: Path, version: str, *extra: str) -> subprocess.CompletedProcess:
    return litexp(*FIT, "--run.root", str(root), "--run.name", "mlp", "--run.version", version, *extra)


def kill_at(root: Path, point: str, epoch: int, batch: int, signal_name: str) -> str:
    killer = {"class_path": "experiments.faults.KillAt",
              "init_args": {"marker": str(root / f"{point}-{signal_name}.fired"), "point": point, "epoch": epoch,
                            "batch": batch, "signal_name": signal_name}}
    return f"--trainer.callbacks+={json.dumps(killer)}"


def weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]


def rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, _fake_data_template):
    """One uninterrupted fit, shared by the kill tests."""
    root = tmp_path_factory.mktemp("resume")
    os.environ["LITEXP_DATA_DIR"] = str(_fake_data_template[0])
    try:
        done = fit(root / "runs", "reference")
    finally:
        os.environ.pop("LITEXP_DATA_DIR")
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "runs" / "mlp" / "reference"


@pytest.mark.parametrize("point, epoch, batch, signal_name, status", [
    ("train_batch", 1, 5, "SIGKILL", -9),    # mid-epoch: resumes from epoch 0's last.ckpt, epoch 1 logged again
    ("epoch_start", 2, 0, "SIGKILL", -9),    # between epochs
    ("val_batch", 1, 1, "SIGKILL", -9),      # during validation
    ("train_batch", 1, 5, "SIGTERM", 143),   # a clean stop mid-epoch: resumes at batch 7 of epoch 1
], ids=["sigkill-mid-epoch", "sigkill-between-epochs", "sigkill-in-validation", "sigterm-mid-epoch"])
def test_a_stopped_fit_resumes_to_the_uninterrupted_result(reference, tmp_path, monkeypatch, _fake_data_template,
                                                          point, epoch, batch, signal_name, status):
    monkeypatch.setenv("LITEXP_DATA_DIR", str(_fake_data_template[0]))
    killed = fit(tmp_path, "v1", kill_at(tmp_path, point, epoch, batch, signal_name))
    assert killed.returncode == status, killed.stderr[-3000:]
    run = tmp_path / "mlp" / "v1"
    assert json.loads((run / "summary.json").read_text())["status"] == (
        "running" if signal_name == "SIGKILL" else "interrupted")

    resumed = litexp("fit", "--resume", str(run))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert sorted(path.name for path in tmp_path.glob("mlp/*")) == ["v1"]  # in place: no new run directory
    ours, theirs = weights(run), weights(reference)
    assert ours.keys() == theirs.keys()
    for key in ours:  # same machine, same operations: the same numbers (measured difference: 0)
        torch.testing.assert_close(ours[key], theirs[key], rtol=0, atol=1e-6)
    got, expected = rows(run), rows(reference)
    assert [(row["epoch"], row["step"]) for row in got] == [(row["epoch"], row["step"]) for row in expected]
    for row, want in zip(got, expected, strict=True):
        assert {k for k, v in row.items() if v} == {k for k, v in want.items() if v}
        for key, value in want.items():
            if value:
                assert float(row[key]) == pytest.approx(float(value), abs=1e-6), (key, row, want)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["fit"]["epochs"] == 3
    assert len(summary["fit"]["epoch_times_s"]) >= 3  # the epochs before the stop are kept too


def test_resume_refuses_what_it_cannot_continue(tmp_path, capsys):
    assert main(["fit", "--resume", str(tmp_path / "nowhere")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["fit", "--resume", str(tmp_path / "empty")]) == 2
    assert "has no config.yaml" in capsys.readouterr().err
    assert main(["fit", "--resume"]) == 2
    assert "--resume needs a run directory" in capsys.readouterr().err

    root = tmp_path / "runs"
    config = str(CONFIG_DIR / "synthetic" / "linear_regression.yaml")
    assert main(["fit", "--config", config, "--trainer.max_epochs=1", "--run.root", str(root), "--run.name=r",
                 "--run.version=v", "--wandb.mode=disabled", "--trainer.enable_progress_bar=false"]) == 0
    run = root / "r" / "v"
    capsys.readouterr()
    assert main(["fit", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert "it completed; to train it longer, raise --trainer.max_epochs" in err and len(err.splitlines()) == 1
    assert main(["fit", "--resume", str(run), "--model.lr=0.5"]) == 2
    assert "cannot take --model.lr" in capsys.readouterr().err
    (run / "checkpoints" / "last.ckpt").write_bytes(b"not a checkpoint")
    assert main(["fit", "--resume", str(run), "--trainer.max_epochs=2"]) == 2
    assert "last.ckpt is unreadable" in capsys.readouterr().err


def test_training_a_finished_run_longer_appends_and_keeps_its_wandb_run(tmp_path):
    # a fresh process: W&B keeps settings per process, and the run's own wandb/ folder is what is checked
    env = {key: value for key, value in os.environ.items() if key != "WANDB_MODE" and not key.startswith("WANDB_SERV")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    root = tmp_path / "runs"
    config = str(CONFIG_DIR / "synthetic" / "linear_regression.yaml")

    def litexp_offline(*args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "experiments", *args, "--trainer.enable_progress_bar=false"],
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]

    litexp_offline("fit", "--config", config, "--trainer.max_epochs=1", "--run.root", str(root), "--run.name=r",
                   "--run.version=v", "--wandb.mode=offline", "--trainer.log_every_n_steps=10")
    run = root / "r" / "v"
    first = json.loads((run / "summary.json").read_text())
    before = rows(run)
    litexp_offline("fit", "--resume", str(run), "--trainer.max_epochs=2")
    second = json.loads((run / "summary.json").read_text())
    after = rows(run)
    assert after[: len(before)] == before and len(after) > len(before)  # appended, nothing rewritten
    assert {row["epoch"] for row in after} == {"0", "1"}
    assert second["fit"]["epochs"] == 2 and second["status"] == "completed"
    assert second["wandb"]["id"] == first["wandb"]["id"]
    offline_runs = sorted((run / "wandb").glob("offline-run-*"))
    assert offline_runs and all(path.name.endswith(first["wandb"]["id"]) for path in offline_runs)  # one W&B run
