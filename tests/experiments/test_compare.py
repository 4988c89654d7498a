"""``litexp compare``: every variant and seed is a normal run, reused on a rerun; one report with a table,
ties called within the spread, and the curves as a PNG; a rerun on another base is refused."""

from __future__ import annotations

import json
import math

from experiments import compare
from experiments.cli import CONFIG_DIR, main

CONFIG = str(CONFIG_DIR / "synthetic" / "linear_regression.yaml")


def test_variants_and_seeds_run_once_and_are_reported(tmp_path, capsys):
    root = tmp_path / "runs"
    command = ["compare", "--config", CONFIG, "--vary", "model.optimizer=sgd,adam", "--seeds", "2", "--name", "opt",
               "--root", str(root), "--trainer.max_epochs=2", "--trainer.enable_progress_bar=false",
               "--wandb.mode=disabled"]
    assert main(command) == 0
    study = root / "compare-opt"
    runs = sorted(path.relative_to(study).as_posix() for path in study.glob("*/seed*"))
    assert runs == ["optimizer-adam/seed0", "optimizer-adam/seed1", "optimizer-sgd/seed0", "optimizer-sgd/seed1"]
    seeds = {json.loads((study / run / "summary.json").read_text())["seed"] for run in runs}
    assert seeds == {0, 1}
    report = (study / "report.md").read_text()
    assert "| optimizer-sgd | 2 (completed) |" in report and "final val/loss" in report and " ± " in report
    png = (study / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    results = json.loads((study / "results.json").read_text())
    assert sum(row["verdict"] == "best" for row in results) == 1

    times = {run: (study / run / "summary.json").stat().st_mtime_ns for run in runs}
    capsys.readouterr()
    assert main(command) == 0  # everything reused: nothing runs again
    assert "running" not in capsys.readouterr().out
    assert times == {run: (study / run / "summary.json").stat().st_mtime_ns for run in runs}

    assert main([*command, "--model.lr=0.5"]) == 2  # another base under the same name
    err = capsys.readouterr().err
    assert "compares variants of another base" in err and len(err.strip().splitlines()) == 1


def test_a_difference_within_the_spread_is_a_tie():
    rows = [{"final": (0.80, 0.02)}, {"final": (0.79, 0.01)}, {"final": (0.70, 0.01)}, {"final": (math.nan, 0.0)}]
    compare.verdicts(rows, maximize=True, seeds=3)
    assert rows[0]["verdict"] == "best" and rows[1]["verdict"].startswith("tie")
    assert rows[2]["verdict"].startswith("-0.1") and rows[3]["verdict"] == "no result"
    single = [{"final": (0.80, 0.0)}, {"final": (0.79, 0.0)}]
    compare.verdicts(single, maximize=True, seeds=1)
    assert not single[1]["verdict"].startswith("tie")  # one seed has no spread to call a tie in


def test_bad_comparisons_are_one_line(tmp_path, capsys):
    base = ["compare", "--config", CONFIG, "--root", str(tmp_path)]
    for extra, message in ((["--vary", "model.optimizer"], "write KEY=V1,V2"),
                           (["--vary", "model.lr=0.1", "--vary", "model.lr=0.2"], "names model.lr twice"),
                           (["--vary", "model.lr=0.1", "--seeds", "0"], "--seeds must be at least 1"),
                           (["--vary", "model.lr=0.1", "stray"], "unexpected argument 'stray'")):
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_a_diverged_variant_is_reported_and_the_rest_run(tmp_path, capsys):
    root = tmp_path / "runs"
    assert main(["compare", "--config", CONFIG, "--vary", "model.lr=1e30,0.03", "--name", "lr", "--root", str(root),
                 "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false", "--wandb.mode=disabled"]) == 0
    results = {row["variant"]: row for row in json.loads((root / "compare-lr" / "results.json").read_text())}
    assert results["lr-1e30"]["statuses"] == ["diverged"] and results["lr-0.03"]["statuses"] == ["completed"]
    assert results["lr-0.03"]["verdict"] == "best"
