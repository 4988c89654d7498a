"""Where a study lives and what it remembers: its storage, its settings, its directory, its trials' fate.

A study records at creation the settings that define it (the config files' content, the fit
overrides, the search space, folds, metric, direction, sampler and pruner) as Optuna study user
attributes; every later run and every worker compares its own settings with them, so trials made
under other settings never mix. A study directory belongs to one study (``study.json``). Only
Optuna's public API touches the storage.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any, Optional

import optuna
import yaml
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from experiments.search_space import SearchSpace
from litexp.errors import LitexpError

HEARTBEAT_S, GRACE_S = 20.0, 90.0  # RDB storages: a RUNNING trial silent for GRACE_S is failed


# -- storage ---------------------------------------------------------------------------------------
def default_storage(study_dir: Path) -> str:
    return f"sqlite:///{study_dir / 'study.db'}"


def without_password(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db`` (for files and messages)."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def record_stale_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Heartbeat failures: a finished trial's attributes are frozen, so the reason goes on the study."""
    worker = trial.user_attrs.get("worker", {})
    study.set_user_attr(f"trial{trial.number}_fail_reason", f"no heartbeat from worker {worker.get('host')}:"
                                                            f"{worker.get('pid')} for the grace period: it died")


def is_server_database(url: str) -> bool:
    """A database server (PostgreSQL, MySQL): workers on many hosts, only heartbeats can tell who died."""
    return "://" in url and not url.startswith("sqlite")


# file systems on which SQLite's write-ahead log does not work (it needs memory shared between processes)
NETWORK_FILE_SYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "ceph", "glusterfs",
                        "fuse.glusterfs", "fuse.sshfs", "9p", "afs", "panfs", "wekafs")


def on_local_file_system(path: Path, mount_table: Optional[str] = None) -> bool:
    """Whether ``path`` lies on a local file system (Linux's mount table; anything unknown counts as not local)."""
    try:
        table = Path("/proc/mounts").read_text() if mount_table is None else mount_table
    except OSError:
        return False
    mounts = [line.split() for line in table.splitlines()]
    target = str(path.resolve())
    best, kind = "", None
    for fields in mounts:
        if len(fields) >= 3:
            point = fields[1].replace("\\040", " ")
            inside = target == point or target.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, kind = point, fields[2]
    return kind is not None and kind not in NETWORK_FILE_SYSTEMS


def sqlite_engine(url: str) -> dict[str, Any]:
    """SQLAlchemy options for a SQLite study file.

    On a local file system the file uses SQLite's write-ahead log with ``synchronous=NORMAL``: a
    commit costs one append instead of two syncs (about 4 ms instead of 20 on this project's
    machine, and a trial makes some 20 commits), a killed process loses nothing it committed, and
    readers (optuna-dashboard, other workers) never block the writer; a power cut may lose the last
    commits, never the file. On a network file system, where the log cannot work, the default
    rollback journal stays.
    """
    path = make_url(url).database
    wal = bool(path) and path != ":memory:" and on_local_file_system(Path(path).parent)

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(path or ":memory:", timeout=60, check_same_thread=False)
        if wal:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    return {"creator": connect}


def open_storage(url: Optional[str], study_dir: Path, heartbeat_s: float = HEARTBEAT_S,
                 grace_s: float = GRACE_S) -> optuna.storages.BaseStorage:
    """RDB URL -> RDBStorage with heartbeats; a plain path -> journal file (as optuna-dashboard reads it)."""
    if url is None:
        study_dir.mkdir(parents=True, exist_ok=True)
        url = default_storage(study_dir)
    if "://" in url:
        engine = sqlite_engine(url) if url.startswith("sqlite") else None
        for attempt in range(3):  # workers started together race to create the tables: the loser retries
            try:
                return optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=int(heartbeat_s),
                                                  grace_period=int(grace_s),
                                                  heartbeat_stale_trial_callback=record_stale_trial)
            except ImportError as error:  # the database driver
                raise LitexpError(f"cannot open storage {without_password(url)}: {error}; for PostgreSQL "
                                  "install the driver with pip install 'litexp[postgres]'") from None
            except Exception as error:
                if attempt == 2:
                    raise LitexpError(f"cannot open storage {without_password(url)}: "
                                      f"{str(error).splitlines()[0]}") from None
                time.sleep(1 + attempt)
    from optuna.storages.journal import JournalFileBackend

    Path(url).parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(url))


# -- settings --------------------------------------------------------------------------------------
def normalized_overrides(overrides: list[str]) -> list[str]:
    """``["--a", "1", "--b=2"]`` -> ``["--a=1", "--b=2"]``: two spellings of one override compare equal."""
    joined: list[str] = []
    for arg in overrides:
        if joined and not arg.startswith("--") and "=" not in joined[-1]:
            joined[-1] = f"{joined[-1]}={arg}"
        else:
            joined.append(arg)
    return joined


def study_settings(options, space: SearchSpace, overrides: list[str], metric: str, direction: str) -> dict[str, Any]:
    """What defines a study: runs with other values would train and score other trials."""
    contents = []
    for config in options.config:
        try:
            contents.append(yaml.safe_load(Path(config).read_text()))
        except (OSError, yaml.YAMLError):
            contents.append(None)  # the CLI has already refused such a file with its own message
    return {
        "config files' content": contents,
        "fit overrides": normalized_overrides(overrides),
        "search space": {key: optuna.distributions.distribution_to_json(dist) for key, dist in space.params.items()},
        "fixed overrides": space.fixed,
        "folds": options.folds,
        "metric": metric,
        "direction": direction,
        "sampler": options.sampler,
        "seed": options.seed,
        "pruner": options.pruner,
        "pruner startup trials": options.pruner_startup_trials,
        "pruner warmup steps": options.pruner_warmup_steps,
    }


def settings_differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    # JSON round trip: the storage gives back lists where we hold tuples
    stored, current = json.loads(json.dumps(stored)), json.loads(json.dumps(current, default=str))
    differences = []
    for key in sorted(set(stored) | set(current)):
        if stored.get(key) != current.get(key):
            if key == "config files' content":
                differences.append(f"{key} (the --config files were edited, or others given)")
            else:
                differences.append(f"{key} {_short(stored.get(key))} -> {_short(current.get(key))}")
    return differences


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def open_study(storage, options, settings: dict[str, Any], record: dict[str, Any]) -> optuna.Study:
    """Create the study with its settings, or load it and refuse other settings (one line, nothing written)."""
    name = options.study_name
    where = without_password(options.storage or "the study directory's study.db")
    existing = name in optuna.get_all_study_names(storage)
    study = optuna.create_study(storage=storage, study_name=name, direction=settings["direction"],
                                load_if_exists=True)
    stored = study.user_attrs.get("settings")
    if stored is None and existing:  # a study from before settings were recorded: its direction at least
        stored = {**settings, "direction": study.direction.name.lower()}
    if stored is not None:
        differences = settings_differences(stored, settings)
        if differences:
            raise LitexpError(f"study {name} in {where} was made with other settings: {'; '.join(differences)}; "
                              "rerun with its settings, or start a new study with another --study-name "
                              "and --study-dir")
    if study.user_attrs.get("settings") is None:
        study.set_user_attr("settings", json.loads(json.dumps(settings, default=str)))
        for key, value in record.items():
            study.set_user_attr(key, value)
    return study


def claim_study_dir(study_dir: Path, study_name: str, storage: Optional[str], write: bool = True) -> None:
    """A study directory holds one study's trials and report: another study there is refused.

    Called with ``write=False`` before the storage is opened (nothing written when refused), then
    to write ``study.json`` once the study is known to be this one.
    """
    owner = {"study_name": study_name, "storage": without_password(storage) if storage else "study.db"}
    marker = study_dir / "study.json"
    if marker.exists():
        found = json.loads(marker.read_text())
        if found != owner:
            raise LitexpError(f"study directory {study_dir} belongs to study {found.get('study_name')} "
                              f"in {found.get('storage')}; pass another --study-dir")
        return
    if write:
        study_dir.mkdir(parents=True, exist_ok=True)
        partial = marker.with_name("study.json.partial")
        partial.write_text(json.dumps(owner, indent=2) + "\n")
        os.replace(partial, marker)


# -- trials whose worker stopped ------------------------------------------------------------------
def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_dead_trials(study: optuna.Study, storage_url: Optional[str]) -> list[int]:
    """Mark FAIL the RUNNING trials whose worker is gone.

    On a database server, Optuna's heartbeat does it for workers on every host (a trial silent for
    the grace period). A SQLite file or a journal has no heartbeat thread to trust across hosts, so
    there a trial whose worker process on this host no longer exists is failed at once.
    """
    optuna.storages.fail_stale_trials(study)  # no-op without heartbeats
    if storage_url is not None and is_server_database(storage_url):
        return []
    failed = []
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        if worker and worker["host"] == host and worker["pid"] != os.getpid() and not pid_alive(worker["pid"]):
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            failed.append(trial.number)
    return failed


def redo_interrupted_trials(study: optuna.Study) -> list[int]:
    """Queue again, with the same parameters, each trial an interrupt stopped (once per such trial)."""
    trials = study.get_trials(deepcopy=False)
    redone = {trial.user_attrs.get("redoes") for trial in trials}
    queued = []
    for trial in trials:
        if trial.state == TrialState.FAIL and trial.user_attrs.get("interrupted") and trial.number not in redone:
            study.enqueue_trial(trial.params, user_attrs={"redoes": trial.number})
            queued.append(trial.number)
    return queued


# -- the test split, once ---------------------------------------------------------------------------
def set_aside_outputs(study_dir: Path) -> tuple[Optional[Path], list[str]]:
    """Move an earlier report and refit (or an interrupted refit) to ``earlier/<n>/``: never overwritten.

    Returns the folder and the names moved (None and [] when there was nothing).
    """
    outputs = [study_dir / name for name in ("report.json", "report.md", "plots", "refit")]
    present = [path for path in outputs if path.exists()]
    if not present:
        return None, []
    number = 1
    while (study_dir / "earlier" / str(number)).exists():
        number += 1
    target = study_dir / "earlier" / str(number)
    target.mkdir(parents=True)
    for path in present:
        os.replace(path, target / path.name)
    return target, [path.name for path in present]
