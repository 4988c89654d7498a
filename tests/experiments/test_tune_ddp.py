"""``litexp tune`` with a trial on several devices: each fold a 2-process gloo DDP job.

One process with batch 32 and two DDP ranks with batch 16 each see the same global batches (see
test_ddp.py), so a trial's fold metrics agree with the single-process trial's up to float
round-off in the all-reduce: one validation sample on the accuracy, 1e-4 on the loss. The pruner's
decision reaches every rank: a pruned trial's fold ends after the same epoch on both, cleanly.
"""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from experiments import tune
from experiments.cli import CONFIG_DIR
from tests.fake_data import write_idx_dataset

BASE = str(CONFIG_DIR / "mnist" / "mlp.yaml")
DDP = str(CONFIG_DIR / "trainer" / "ddp_cpu.yaml")
SPACE = ("trainer.max_epochs: 2\ntrainer.enable_checkpointing: false\n"
         "model.lr: {type: categorical, choices: [0.05, 1.0e-7]}\n")


@pytest.fixture
def mnist(tmp_path, monkeypatch) -> Path:
    write_idx_dataset(tmp_path / "data", "MNIST", num_train=512, num_test=64)
    monkeypatch.setenv("LITEXP_DATA_DIR", str(tmp_path / "data"))  # the fold processes inherit it
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.delenv("LITEXP_RUN_DIR", raising=False)
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    return space


def study(tmp_path: Path, name: str, lrs: tuple[float, ...], *args: str, refit: bool = False) -> optuna.Study:
    storage = f"sqlite:///{tmp_path / name / 'study.db'}"
    (tmp_path / name).mkdir()
    created = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    for lr in lrs:
        created.enqueue_trial({"model.lr": lr})
    code = tune.main(["--config", BASE, "--search", str(tmp_path / "space.yaml"), "--study-dir", str(tmp_path / name),
                      "--study-name", name, "--folds", "2", "--n-trials", str(len(lrs)), "--quiet",
                      *([] if refit else ["--no-refit"]), *args])
    assert code == 0
    return optuna.load_study(study_name=name, storage=storage)


def fold_summary(tmp_path: Path, name: str, trial: int, fold: int) -> dict:
    return json.loads((tmp_path / name / "trials" / f"trial{trial}" / f"fold{fold}" / "summary.json").read_text())


def test_a_trial_on_two_processes_scores_its_folds_as_one_process_does(tmp_path, mnist):
    single = study(tmp_path, "single", (0.05,), "--pruner", "none", "--data.batch_size=32")
    ddp = study(tmp_path, "ddp", (0.05,), "--pruner", "none", "--data.batch_size=16", "--config", DDP)

    (one,), (two,) = single.trials, ddp.trials
    assert one.state == two.state == TrialState.COMPLETE
    assert two.user_attrs["fold_epochs"] == one.user_attrs["fold_epochs"] == [2, 2]
    assert two.user_attrs["fold_values"] == pytest.approx(one.user_attrs["fold_values"], abs=1 / 256 + 1e-6)
    assert sorted(two.intermediate_values) == sorted(one.intermediate_values) == [0, 1, 2, 3]
    for fold in (0, 1):
        alone, ranks = fold_summary(tmp_path, "single", 0, fold), fold_summary(tmp_path, "ddp", 0, fold)
        assert (alone["device"]["world_size"], ranks["device"]["world_size"]) == (1, 2)
        assert alone["data"]["split_fingerprint"] == ranks["data"]["split_fingerprint"]  # the same fold
        assert ranks["fit"]["metrics"]["val/loss"] == pytest.approx(alone["fit"]["metrics"]["val/loss"], abs=1e-4)
    assert min(one.user_attrs["fold_values"]) > 0.5  # it learned, so the comparison means something
    assert not list((tmp_path / "ddp" / "trials").glob("*/*-link"))  # the link folders are cleaned up


def test_a_pruned_trial_stops_every_rank_after_the_same_epoch_and_the_refit_runs_on_both(tmp_path, mnist):
    ddp = study(tmp_path, "ddp", (0.05, 1e-7), "--pruner-startup-trials", "1", "--pruner-warmup-steps", "0",
                "--data.batch_size=16", "--config", DDP, refit=True)
    good, bad = ddp.trials
    assert good.state == TrialState.COMPLETE and bad.state == TrialState.PRUNED
    assert bad.user_attrs["fold_epochs"] == [1] and list(bad.intermediate_values) == [0]
    summary = fold_summary(tmp_path, "ddp", 1, 0)
    assert summary["status"] == "completed" and summary["fit"]["epochs"] == 1 and summary["device"]["world_size"] == 2
    assert not (tmp_path / "ddp" / "trials" / "trial1" / "fold1").exists()  # no fold after the pruned one
    # the refit: the best trial's parameters on the whole training split, then the test split, on 2 ranks
    report = json.loads((tmp_path / "ddp" / "report.json").read_text())
    refit = json.loads((tmp_path / "ddp" / "refit" / "final" / "summary.json").read_text())
    assert report["best"]["number"] == 0 and set(report["test"]["metrics"]) == {"test/acc", "test/loss"}
    assert refit["device"]["world_size"] == 2 and refit["data"]["val_size"] == 0
    assert refit["test"]["metrics"] == pytest.approx(report["test"]["metrics"])
