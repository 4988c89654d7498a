"""What a plain ``litexp fit`` prints: the run directory first, the model summary, a result paragraph at the end,
and no notice a user cannot act on (a new one fails this test); ``--quiet`` prints nothing; every fit, also a
resumed one, leaves ``curves.png``; litexp's own warnings read ``litexp: warning: ...``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from experiments.cli import CONFIG_DIR
from experiments.console import configure_output
from litexp.errors import LitexpWarning, warn

REPO = Path(__file__).resolve().parents[2]
FIT = ["fit", "--config", str(CONFIG_DIR / "fashion_mnist" / "lenet.yaml"), "--trainer.max_epochs=1",
       "--data.batch_size=32", "--run.name", "plain"]
# the model summary table Lightning prints (kept: it says what is being trained)
SUMMARY_LINE = re.compile(r"^(\s*\|.*|-+|\s*\d+\s*\|.*|[\d.]+ [KMG]?\s*(Trainable|Non-trainable|Total).*|"
                          r"\d+\s+Modules in (train|eval) mode|\d+\s+Total Flops|)$")


def litexp(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path / "wandb-dir"),
           "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"), "WANDB_CACHE_DIR": str(tmp_path / "wandb-cache")}
    env.pop("WANDB_SILENT", None)
    env.pop("WANDB_API_KEY", None)
    return subprocess.run([sys.executable, "-m", "tests.experiments.fit_on_fake_data", *args], env=env,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)


def test_a_plain_fit_prints_only_lines_worth_reading(fake_data_dir, tmp_path):
    done = litexp(tmp_path, *FIT, "--run.root", str(tmp_path / "runs"), "--run.version", "v0", "--test")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    run = tmp_path / "runs" / "plain" / "v0"
    assert lines[0] == f"litexp: run directory {run}"
    assert lines[-1].startswith("litexp: fit completed after 1 epoch(s)") and "best val/acc" in lines[-1]
    assert "test: test/acc" in lines[-1] and f"Files in {run}: summary.json, metrics.csv, curves.png" in lines[-1]
    unexpected = [line for line in lines[1:-1] if not SUMMARY_LINE.match(line)]
    assert unexpected == [], f"new lines in a plain fit's output: {unexpected}"
    assert (run / "curves.png").read_bytes().startswith(b"\x89PNG")
    assert any((run / "wandb").glob("offline-run-*"))  # W&B ran (offline), without a word on the console


def test_quiet_prints_nothing_and_a_resumed_fit_redraws_its_curves(fake_data_dir, tmp_path):
    done = litexp(tmp_path, *FIT, "--run.root", str(tmp_path / "runs"), "--run.version", "v0", "--quiet",
                  "--wandb.mode=disabled")
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout == ""
    run = tmp_path / "runs" / "plain" / "v0"
    (run / "curves.png").unlink()
    again = litexp(tmp_path, "fit", "--resume", str(run), "--trainer.max_epochs=2", "--quiet")
    assert again.returncode == 0, again.stderr
    assert again.stderr == "" and (run / "curves.png").exists()


def test_litexp_warnings_are_one_line_with_our_prefix():
    configure_output()
    line = warnings.formatwarning(LitexpWarning("skipped 2 malformed lines"), LitexpWarning, "x.py", 1)
    assert line == "litexp: warning: skipped 2 malformed lines\n"
    other = warnings.formatwarning(UserWarning("from a library"), UserWarning, "lib.py", 7)
    assert "lib.py:7" in other  # a library's warning keeps its origin
    with pytest.warns(LitexpWarning, match="checked"):
        warn("checked")
