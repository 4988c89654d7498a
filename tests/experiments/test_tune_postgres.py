"""Two ``litexp tune`` workers on one PostgreSQL study; one is killed mid-trial, the heartbeat fails its trial.

The database is a throwaway cluster in a temporary directory (``initdb``/``pg_ctl`` of Debian's
``postgresql`` package), reachable only through a unix socket in that directory; under root it
runs as ``nobody``. Without PostgreSQL or a driver the test skips and says why.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from experiments.cli import CONFIG_DIR
from tests.experiments.test_tune_signals import SPACE, wait_for
from tests.fake_data import write_idx_dataset

REPO = Path(__file__).resolve().parents[2]
HEARTBEAT_S, GRACE_S = 1, 5  # a killed worker's trial is failed about 5 s after its last heartbeat


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    if shutil.which("runuser") is None and os.geteuid() == 0:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as an unprivileged user")
    return Path(found[-1]).parent


@pytest.fixture
def postgres_url():
    """A fresh cluster and database ``litexp``; yields its SQLAlchemy URL, stops and removes it after."""
    pytest.importorskip("psycopg", reason="no PostgreSQL driver: pip install 'litexp[postgres]'")
    bin_dir = postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="litexp-pg-"))  # short path: a unix socket name has ~100 bytes
    as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    data, socket_dir = root / "data", root / "socket"
    socket_dir.mkdir()
    if as_user:
        os.chmod(root, 0o755)
        for path in (root, socket_dir):
            shutil.chown(path, "nobody")

    def pg(*command: str) -> None:
        subprocess.run([*as_user, str(bin_dir / command[0]), *command[1:]], check=True, capture_output=True,
                       timeout=60)

    pg("initdb", "-D", str(data), "-U", "litexp", "-A", "trust", "--no-sync")
    try:
        pg("pg_ctl", "-D", str(data), "-l", str(root / "server.log"), "-w", "start",
           "-o", f"-k {socket_dir} -c listen_addresses='' -c fsync=off -c max_connections=100")
        pg("createdb", "-h", str(socket_dir), "-U", "litexp", "litexp")
        yield f"postgresql://litexp@/litexp?host={socket_dir}"
    finally:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def test_a_killed_worker_is_failed_by_the_heartbeat_and_the_study_finishes_once(tmp_path, postgres_url):
    data = tmp_path / "data"
    write_idx_dataset(data, "MNIST")
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    study_dir = tmp_path / "study"
    command = [sys.executable, "-m", "experiments", "tune", "--config", str(CONFIG_DIR / "mnist" / "mlp.yaml"),
               "--search", str(space), "--n-trials", "3", "--folds", "2", "--pruner", "none",
               "--storage", postgres_url, "--study-name", "pg", "--study-dir", str(study_dir),
               "--heartbeat-interval", str(HEARTBEAT_S), "--grace-period", str(GRACE_S)]
    env = {**os.environ, "LITEXP_DATA_DIR": str(data), "WANDB_MODE": "disabled"}
    storage = optuna.storages.RDBStorage(postgres_url)  # one connection pool for the test's own looks
    main = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    extra = subprocess.Popen([*command, "--no-refit"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        # kill the extra worker in the middle of its first trial's first fold
        deadline = time.monotonic() + 120
        killed = None
        while killed is None:
            assert time.monotonic() < deadline and extra.poll() is None, extra.communicate()[1][-2000:]
            time.sleep(0.2)
            try:
                trials = optuna.load_study(study_name="pg", storage=storage).get_trials(deepcopy=False)
            except KeyError:  # not created yet
                continue
            mine = [t for t in trials if t.state == TrialState.RUNNING and t.user_attrs.get("worker", {}).get("pid")
                    == extra.pid]
            if mine:
                killed = mine[0].number
        wait_for(study_dir / "trials" / f"trial{killed}" / "fold0" / "checkpoints" / "last.ckpt", extra)
        extra.send_signal(signal.SIGKILL)
        extra.wait(timeout=30)
        _, stderr = main.communicate(timeout=240)
    finally:
        for worker in (main, extra):
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert main.returncode == 0, stderr[-3000:]

    study = optuna.load_study(study_name="pg", storage=storage)
    trials = study.trials
    assert trials[killed].state == TrialState.FAIL
    assert trials[killed].user_attrs["worker"]["pid"] == extra.pid  # the dead worker's trial, failed...
    assert study.user_attrs[f"trial{killed}_fail_reason"].startswith("no heartbeat from worker")  # ...by heartbeat
    assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in trials)  # none RUNNING or lost
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3 and all(t.user_attrs["worker"]["pid"] == main.pid for t in complete)
    assert len({t.params["model.lr"] for t in trials}) == len(trials)  # no draw repeated
    for trial in complete:  # each complete trial trained its own folds, once
        assert sorted(p.name for p in (study_dir / "trials" / f"trial{trial.number}").iterdir()) == ["fold0", "fold1"]
    report = json.loads((study_dir / "report.json").read_text())  # one report, by the worker that refits
    assert report["trials"]["finished"] == 3 and report["trials"]["FAIL"] == len(trials) - 3
    assert report["test"]["evaluation"] == 1 and len(study.user_attrs["test_evaluations"]) == 1
    assert report["study"]["storage"] == postgres_url and not (study_dir / "earlier").exists()
