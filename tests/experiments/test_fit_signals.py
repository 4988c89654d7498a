"""SIGINT and SIGTERM during `litexp fit`: the step in progress ends, last.ckpt and summary.json are written,
one line says where, and the exit status is 128 + the signal number."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from experiments.cli import CONFIG_DIR

REPO = Path(__file__).resolve().parents[2]


def start_fit(tmp_path: Path) -> subprocess.Popen:
    config = str(CONFIG_DIR / "synthetic/linear_regression.yaml")
    command = [sys.executable, "-m", "experiments", "fit", "--config", config,
               "--trainer.max_epochs=100000", "--trainer.enable_progress_bar=false", "--wandb.mode=disabled",
               "--run.root", str(tmp_path / "runs"), "--run.name=sig", "--run.version=v1"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def wait_for_training(run: Path, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not (run / "metrics.csv").exists():  # written once the first epochs are logged
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "the fit never started training"
        time.sleep(0.2)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_fit_cleanly(tmp_path, signum):
    process = start_fit(tmp_path)
    run = tmp_path / "runs" / "sig" / "v1"
    wait_for_training(run, process)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr
    ours = [line for line in stderr.splitlines() if line.startswith("litexp:")]
    assert len(ours) == 2 and ours[0] == f"litexp: run directory {run}", stderr
    assert f"interrupted by {signal.Signals(signum).name} at epoch" in ours[1], stderr
    assert f"litexp fit --resume {run}" in ours[1]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] > 0 and "state_dict" in checkpoint


def test_a_second_signal_exits_at_once(tmp_path):
    process = start_fit(tmp_path)
    wait_for_training(tmp_path / "runs" / "sig" / "v1", process)
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in stderr
