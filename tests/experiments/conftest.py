from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.cli import main


def only_run_dir(root: Path) -> Path:
    runs = [path for path in root.glob("*/*") if path.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.fixture
def litexp(tmp_path):
    """Run ``litexp`` in-process with runs under tmp_path; returns (exit code, run dir or None)."""
    root = tmp_path / "runs"

    def run(*args: str) -> tuple[int, Path | None]:
        code = main([*args, "--run.root", str(root), "--trainer.enable_progress_bar=false",
                     "--trainer.enable_model_summary=false"])
        runs = sorted(path for path in root.glob("*/*") if path.is_dir())
        return code, (runs[-1] if runs else None)

    run.root = root
    return run


def read_summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())
