"""``litexp tune`` and signals: the first Ctrl-C or SIGTERM stops cleanly, a rerun redoes the trial."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from experiments import tune
from experiments.cli import CONFIG_DIR
from experiments.study_signals import Interrupted, StopOnSignal
from tests.fake_data import write_idx_dataset

REPO = Path(__file__).resolve().parents[2]
# 30 short epochs per fold: a fold lasts seconds, so a signal sent after its first epoch lands mid-fold
SPACE = "trainer.max_epochs: 30\ndata.batch_size: 32\ntrainer.limit_val_batches: 1\n" \
        "model.lr: {type: float, low: 0.01, high: 0.5, log: true}\n"


def tune_command(tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    data = tmp_path / "data"
    if not data.exists():
        write_idx_dataset(data, "MNIST")
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    command = [sys.executable, "-m", "experiments", "tune", "--config", str(CONFIG_DIR / "mnist" / "mlp.yaml"),
               "--search", str(space), "--n-trials", "1", "--folds", "2", "--pruner", "none",
               "--study-name", "s", "--study-dir", str(tmp_path / "study")]
    return command, {**os.environ, "LITEXP_DATA_DIR": str(data), "WANDB_MODE": "disabled"}


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def load_study(tmp_path: Path) -> optuna.Study:
    return optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'study' / 'study.db'}")


@pytest.mark.parametrize("signum, code, rerun", [(signal.SIGINT, 130, True), (signal.SIGTERM, 143, False)])
def test_a_signal_mid_trial_stops_at_once_and_a_rerun_redoes_the_trial(tmp_path, signum, code, rerun):
    command, env = tune_command(tmp_path)
    worker = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(tmp_path / "study" / "trials" / "trial0" / "fold0" / "checkpoints" / "last.ckpt", worker)  # epoch 0 done
    worker.send_signal(signum)
    sent = time.monotonic()
    _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == code and time.monotonic() - sent < 30
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    warnings = re.compile(r"^\S+\.py:\d+: ")  # Lightning's own warnings, printed once per process
    assert [line for line in stderr.splitlines() if not warnings.match(line)] == [
        "litexp: interrupted: trial 0 will be redone; rerun the same command to continue"]
    study = load_study(tmp_path)
    (trial,) = study.trials
    assert trial.state == TrialState.FAIL and trial.user_attrs["interrupted"] is True
    assert trial.user_attrs["fail_reason"] == f"interrupted by {signum.name}"
    assert not (tmp_path / "study" / "trials" / "trial0" / "fold1").exists()  # no new fold started
    assert not (tmp_path / "study" / "refit").exists() and not (tmp_path / "study" / "report.json").exists()
    assert "test_evaluations" not in study.user_attrs  # never refit, never read the test split
    if not rerun:
        return

    again = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "trial 0 was interrupted; its parameters are trained again" in again.stdout
    study = load_study(tmp_path)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE]
    interrupted, redone = study.trials
    assert redone.params == interrupted.params and redone.user_attrs["redoes"] == 0
    report = json.loads((tmp_path / "study" / "report.json").read_text())
    assert report["best"]["number"] == 1 and report["test"]["evaluation"] == 1
    assert len(study.user_attrs["test_evaluations"]) == 1


def test_a_second_signal_exits_at_once(monkeypatch, capfd):
    exits = []
    monkeypatch.setattr(os, "_exit", exits.append)
    stop = StopOnSignal()
    stop.handle(signal.SIGINT, None)
    assert stop.signum == signal.SIGINT and exits == []  # the first only asks the study to stop
    with pytest.raises(Interrupted, match="trial 4 will be redone"):
        stop.check(4)
    stop.handle(signal.SIGINT, None)
    assert exits == [130]
    assert capfd.readouterr().err == "litexp: interrupted again: stopped at once; a rerun marks the running trial " \
                                     "failed\n"


def test_handlers_are_restored_after_the_command(tmp_path):
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert tune.main(["--config", "missing.yaml", "--search", str(tmp_path / "none.yaml")]) == 2
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
