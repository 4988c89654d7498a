"""A study knows its settings: other settings are refused, the test split is evaluated once, nothing mixed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import lightning.pytorch as pl
import pytest

from datamodules import vision
from experiments import tune
from litexp.errors import DivergedError
from tests.experiments.test_tune import BASE, load_study, run_tune, states, write_space

LR = "model.lr: {type: float, low: 0.05, high: 0.5, log: true}\n"


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(path): (path.stat().st_mtime_ns, path.stat().st_size) for path in root.rglob("*") if path.is_file()}


@pytest.fixture
def test_reads(monkeypatch) -> list[str]:
    """Every split a vision DataModule reads, in order."""
    reads: list[str] = []
    load = vision.VisionDataModule.load
    monkeypatch.setattr(vision.VisionDataModule, "load", lambda self, split: reads.append(split) or load(self, split))
    return reads


def test_a_rerun_with_other_settings_stops_with_one_line_and_writes_nothing(tmp_path, fake_data_dir, capsys):
    config = tmp_path / "mlp.yaml"
    shutil.copy(BASE, config)
    space = write_space(tmp_path, LR)
    assert run_tune(tmp_path, space, "--n-trials", "1", "--folds", "2", config=str(config)) == 0
    settings = load_study(tmp_path).user_attrs["settings"]
    assert settings["folds"] == 2 and settings["metric"] == "val/acc" and settings["direction"] == "maximize"
    assert settings["search space"]["model.lr"] and settings["fixed overrides"]["trainer.max_epochs"] == 1
    before, capsys_out = snapshot(tmp_path / "study"), capsys.readouterr()

    # the example: a finished 2-fold, 1-epoch study rerun with 3 folds, 2 epochs, 3 trials
    assert run_tune(tmp_path, space, "--n-trials", "3", "--folds", "3", "--trainer.max_epochs=2",
                    config=str(config)) == 2
    error = capsys.readouterr().err
    assert error == ("litexp: error: study s in the study directory's study.db was made with other settings: "
                     'fit overrides [] -> ["--trainer.max_epochs=2"]; folds 2 -> 3; rerun with its settings, '
                     "or start a new study with another --study-name and --study-dir\n")
    Path(space).write_text(Path(space).read_text().replace("high: 0.5", "high: 0.9"))
    assert run_tune(tmp_path, space, "--n-trials", "1", "--folds", "2", config=str(config)) == 2
    assert "search space {" in capsys.readouterr().err
    config.write_text(config.read_text().replace("lr: 0.1", "lr: 0.2"))
    assert run_tune(tmp_path, space, "--n-trials", "1", "--folds", "2", "--sampler", "tpe", config=str(config)) == 2
    error = capsys.readouterr().err
    assert "config files' content (the --config files were edited" in error and 'sampler "random" -> "tpe"' in error
    assert snapshot(tmp_path / "study") == before and len(load_study(tmp_path).trials) == 1
    assert capsys_out.err.count("Traceback") == 0


def test_a_finished_study_is_not_tested_again_unless_asked(tmp_path, fake_data_dir, capsys, test_reads):
    space = write_space(tmp_path, LR)
    args = ("--folds", "2", "--pruner", "none")
    assert run_tune(tmp_path, space, "--n-trials", "1", *args) == 0
    assert test_reads.count("test") == 1
    first_report = (tmp_path / "study" / "report.json").read_text()
    capsys.readouterr()

    assert run_tune(tmp_path, space, "--n-trials", "1", *args) == 0  # the same command again
    out = capsys.readouterr().out
    assert "was evaluated already (best trial 0, 1 finished trials); report: " in out and "--retest" in out
    assert str((tmp_path / "study" / "report.md").resolve()) in out
    assert run_tune(tmp_path, space, "--n-trials", "2", *args) == 0  # more trials: still no test
    assert len(load_study(tmp_path).trials) == 2 and test_reads.count("test") == 1
    assert (tmp_path / "study" / "report.json").read_text() == first_report

    assert run_tune(tmp_path, space, "--n-trials", "2", "--retest", *args) == 0
    assert test_reads.count("test") == 2
    earlier = tmp_path / "study" / "earlier" / "1"
    assert (earlier / "report.json").read_text() == first_report  # set aside, not overwritten
    assert (earlier / "refit" / "final" / "summary.json").exists() and (earlier / "plots").is_dir()
    report = json.loads((tmp_path / "study" / "report.json").read_text())
    assert report["test"]["evaluation"] == 2 and report["trials"]["finished"] == 2
    assert [e["finished_trials"] for e in load_study(tmp_path).user_attrs["test_evaluations"]] == [1, 2]


def test_a_study_directory_holds_one_study(tmp_path, fake_data_dir, capsys):
    space = write_space(tmp_path, LR)
    assert run_tune(tmp_path, space, "--n-trials", "1", "--folds", "2", "--no-refit") == 0
    before = snapshot(tmp_path / "study")
    code = tune.main(["--config", BASE, "--search", space, "--study-dir", str(tmp_path / "study"),
                      "--study-name", "other", "--n-trials", "1", "--folds", "2", "--no-refit"])
    assert code == 2
    assert capsys.readouterr().err == (f"litexp: error: study directory {tmp_path / 'study'} belongs to study s in "
                                       "study.db; pass another --study-dir\n")
    assert snapshot(tmp_path / "study") == before  # not even the storage was opened
    assert tune.optuna.get_all_study_names(f"sqlite:///{tmp_path / 'study' / 'study.db'}") == ["s"]


def test_a_diverged_fit_fails_its_trial_with_the_reason_and_the_study_goes_on(tmp_path, fake_data_dir, capsys,
                                                                              monkeypatch):
    fit = pl.Trainer.fit

    def diverging(self, model, *args, **kwargs):  # what litexp fit raises for a non-finite loss
        if model.lr == 0.123:
            raise DivergedError("training loss is nan at step 7; lower the learning rate")
        return fit(self, model, *args, **kwargs)

    monkeypatch.setattr(pl.Trainer, "fit", diverging)
    space = write_space(tmp_path, "model.lr: {type: float, low: 0.01, high: 0.5}\n")
    study = tune.optuna.create_study(study_name="s", storage=tune.open_storage(None, tmp_path / "study"),
                                     direction="maximize")
    for lr in (0.2, 0.123, 0.3):
        study.enqueue_trial({"model.lr": lr})
    assert run_tune(tmp_path, space, "--n-trials", "2", "--folds", "2", "--no-refit") == 0
    study = load_study(tmp_path)
    assert states(study) == ["COMPLETE", "FAIL", "COMPLETE"]
    assert study.trials[1].user_attrs["fail_reason"] == "training loss is nan at step 7; lower the learning rate"
    err = capsys.readouterr().err
    assert "Traceback" not in err, err  # a user-facing reason, not a bug


def test_tune_called_from_python_leaves_the_callers_logging_as_it_was(tmp_path, capsys):
    import logging
    import warnings

    import optuna

    optuna_logger = logging.getLogger("optuna")
    handlers, verbosity = list(optuna_logger.handlers), optuna.logging.get_verbosity()
    levels = {name: logging.getLogger(name).level for name in ("lightning.pytorch", "lightning.fabric")}
    filters = list(warnings.filters)
    assert tune.main(["--space", str(tmp_path / "missing.yaml"), "--study-dir", str(tmp_path / "s")]) == 2
    assert "litexp: error:" in capsys.readouterr().err
    assert optuna_logger.handlers == handlers and optuna.logging.get_verbosity() == verbosity
    assert {name: logging.getLogger(name).level for name in levels} == levels
    assert warnings.filters == filters
