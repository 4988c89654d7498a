"""The default SQLite storage: the write-ahead log on local file systems, the rollback journal elsewhere."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import optuna

from experiments.study_store import on_local_file_system, open_storage

MOUNTS = """/dev/vda1 / ext4 rw,relatime 0 0
server:/export/home /home nfs4 rw,relatime 0 0
/dev/vdb1 /home/me/scratch xfs rw 0 0
tmpfs /tmp tmpfs rw 0 0
"""


def test_network_file_systems_are_told_from_local_ones_by_the_longest_mount_point():
    assert on_local_file_system(Path("/var/runs/study"), MOUNTS)
    assert not on_local_file_system(Path("/home/me/runs/study"), MOUNTS)  # nfs4
    assert on_local_file_system(Path("/home/me/scratch/study"), MOUNTS)  # a local disk mounted inside it
    assert not on_local_file_system(Path("/anything"), "")  # an unknown table: the safe answer


def test_a_local_study_file_uses_the_write_ahead_log_and_keeps_its_commits(tmp_path):
    storage = open_storage(None, tmp_path / "study")
    study = optuna.create_study(study_name="s", storage=storage)
    trial = study.ask()
    trial.set_user_attr("fold_values", [0.5, 0.25])
    study.tell(trial, 0.375)
    database = tmp_path / "study" / "study.db"
    with sqlite3.connect(database) as connection:  # another reader, as optuna-dashboard would be
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = optuna.load_study(study_name="s", storage=open_storage(None, tmp_path / "study"))
    assert again.trials[0].user_attrs["fold_values"] == [0.5, 0.25] and again.trials[0].value == 0.375
