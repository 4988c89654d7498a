"""Run directories: never reused without asking, named by plain names, rooted where Lightning users expect."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from experiments.cli import CONFIG_DIR, main
from experiments.run import DivergenceGuard
from litexp.errors import DivergedError

SOFTMAX = str(CONFIG_DIR / "synthetic/linear_regression.yaml")
QUICK = ("--trainer.max_epochs=1", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
         "--wandb.mode=disabled")


def fit(root, *args: str) -> int:
    return main(["fit", "--config", SOFTMAX, *QUICK, "--run.root", str(root), *args])


def test_a_named_run_is_never_overwritten_unless_asked(tmp_path, capsys):
    assert fit(tmp_path, "--run.name=coll", "--run.version=v1") == 0
    run = tmp_path / "coll" / "v1"
    first = (run / "summary.json").read_text()
    capsys.readouterr()
    assert fit(tmp_path, "--run.name=coll", "--run.version=v1", "--model.lr=0.01") == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "exists" in error[0] and "--run.overwrite true" in error[0], error
    assert (run / "summary.json").read_text() == first  # untouched
    (run / "marker.txt").write_text("old")
    assert fit(tmp_path, "--run.name=coll", "--run.version=v1", "--run.overwrite=true", "--model.lr=0.01") == 0
    assert not (run / "marker.txt").exists() and (run / "summary.json").read_text() != first


def test_timestamped_runs_never_collide(tmp_path):
    assert fit(tmp_path, "--run.name=same") == 0 and fit(tmp_path, "--run.name=same") == 0
    assert len(list((tmp_path / "same").iterdir())) == 2


@pytest.mark.parametrize("option", ["--run.name=../../../x", "--run.name=a/b", "--run.version=..", "--run.name=",
                                    "--run.version=.hidden", "--run.name=a\\b"])
def test_run_names_are_plain_folder_names(tmp_path, capsys, option):
    assert fit(tmp_path / "runs", option) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "plain folder name" in error[0], error
    assert not (tmp_path / "runs").exists() and not (tmp_path / "x").exists()


def test_default_root_dir_sets_where_runs_go(tmp_path, capsys):
    root = tmp_path / "lightning-root"
    assert main(["fit", "--config", SOFTMAX, *QUICK, f"--trainer.default_root_dir={root}", "--run.name=r"]) == 0
    assert len(list((root / "r").glob("*/summary.json"))) == 1
    capsys.readouterr()
    assert fit(tmp_path / "other", f"--trainer.default_root_dir={root}") == 2
    assert "disagree" in capsys.readouterr().err


def test_a_diverged_fit_stops_with_one_line_and_valid_json(tmp_path, capsys):
    import json

    assert fit(tmp_path, "--run.name=nan", "--model.lr=1e30", "--trainer.max_epochs=3") == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 2 and error[0].startswith("litexp: run directory ")  # it began training
    assert error[1].startswith("litexp: error: training loss is ") and " at step " in error[1]
    (summary_path,) = (tmp_path / "nan").glob("*/summary.json")
    text = summary_path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    summary = json.loads(text)
    assert summary["status"] == "diverged" and "at step" in summary["fit"]["error"]


def test_completed_fits_say_so_and_an_infinite_lr_is_refused(tmp_path, capsys):
    import json

    assert fit(tmp_path, "--run.name=ok") == 0
    (summary_path,) = (tmp_path / "ok").glob("*/summary.json")
    assert json.loads(summary_path.read_text())["status"] == "completed"
    capsys.readouterr()
    assert fit(tmp_path / "inf", "--model.lr=inf") == 2
    assert "lr must be a finite number > 0" in capsys.readouterr().err
    assert not (tmp_path / "inf").exists()


class RecordProfiler(Callback):
    """Notes the trainer's profiler class (read by the test below)."""

    seen: list[str] = []

    def on_fit_start(self, trainer, pl_module) -> None:
        RecordProfiler.seen.append(type(trainer.profiler).__name__)


def test_the_default_profiler_records_nothing_and_a_chosen_one_is_used(tmp_path):
    RecordProfiler.seen.clear()
    record = f"--trainer.callbacks+={__name__}.RecordProfiler"
    assert fit(tmp_path, "--run.name=default", record) == 0
    assert fit(tmp_path, "--run.name=simple", record, "--trainer.profiler=simple") == 0
    assert RecordProfiler.seen == ["NoProfiler", "SimpleProfiler"]


@pytest.mark.parametrize("loss", [float("nan"), float("inf"), [1.0, float("nan")]])
def test_the_divergence_guard_stops_at_a_non_finite_loss(loss):
    trainer = SimpleNamespace(global_step=7, current_epoch=1)
    with pytest.raises(DivergedError, match="at step 7"):
        DivergenceGuard().on_train_batch_end(trainer, None, {"loss": torch.tensor(loss)}, None, 0)
    DivergenceGuard().on_train_batch_end(trainer, None, torch.tensor(2.5), None, 0)  # finite: goes on
    DivergenceGuard().on_train_batch_end(trainer, None, None, None, 0)  # a step that returned nothing
