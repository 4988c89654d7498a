"""``litexp tune``: search spaces, fold scoring, pruning, failures, resume, workers, test isolation, report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from datamodules import vision
from experiments import tune
from experiments.cli import CONFIG_DIR
from experiments.search_space import build_sampler, check_with_cli, cli_args, load_search_space, sample
from experiments.study_runs import StudyRuns
from lit_models import ClassificationTask, LitexpError
from tests.fake_data import write_idx_dataset

REPO = Path(__file__).resolve().parents[2]
BASE = str(CONFIG_DIR / "fashion_mnist" / "mlp.yaml")
TINY = "trainer.max_epochs: {epochs}\ndata.batch_size: 32\ntrainer.limit_val_batches: 2\n"


def write_space(tmp_path: Path, text: str, epochs: int = 1) -> str:
    path = tmp_path / "space.yaml"
    path.write_text(TINY.format(epochs=epochs) + text)
    return str(path)


def run_tune(tmp_path: Path, space: str, *args: str, config: str = BASE) -> int:
    return tune.main(["--config", config, "--search", space, "--study-dir", str(tmp_path / "study"),
                      "--study-name", "s", *args])


def load_study(tmp_path: Path) -> optuna.Study:
    return optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'study' / 'study.db'}")


def states(study: optuna.Study) -> list[str]:
    return [trial.state.name for trial in study.trials]


# -- search spaces ---------------------------------------------------------------------------------
def test_search_space_maps_cli_keys_to_distributions(tmp_path):
    space = load_search_space(write_space(tmp_path, (
        "model.lr: {type: float, low: 1.0e-4, high: 1, log: true}\n"
        "model.optimizer: {type: categorical, choices: [sgd, adam]}\n"
        "data.num_workers_like: {type: int, low: 1, high: 9, step: 2}\n")))
    assert space.fixed == {"trainer.max_epochs": 1, "data.batch_size": 32, "trainer.limit_val_batches": 2}
    lr, optimizer, steps = space.params.values()
    assert (lr.low, lr.high, lr.log) == (1e-4, 1.0, True)
    assert optimizer.choices == ("sgd", "adam")
    assert (steps.low, steps.high, steps.step) == (1, 9, 2)


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_trial_n_draws_the_same_values_in_every_study_with_the_same_seed(sampler):
    space = load_search_space(REPO / "experiments" / "search" / "mlp.yaml")

    def draws(seed: int, skip: int) -> list[dict]:
        study = optuna.create_study(sampler=build_sampler(sampler, seed))
        for _ in range(skip):  # trials another worker ran: they shift nothing but the trial numbers
            study.enqueue_trial({key: dist.low if hasattr(dist, "low") else dist.choices[0]
                                 for key, dist in space.params.items()})
            study.tell(study.ask(), 0.5)
        trials = [study.ask() for _ in range(3 - skip)]
        return [sample(trial, space) for trial in trials]

    assert draws(0, 0)[1:] == draws(0, 1)  # trial 1 and 2: the same draws
    assert draws(0, 0) != draws(1, 0)
    assert len({json.dumps(values) for values in draws(0, 0)}) == 3


@pytest.mark.parametrize("line, message", [
    ("model.lr: {type: normal, low: 0, high: 1}", "type must be one of"),
    ("model.lr: {type: float, low: 1, high: 0.1}", "low <= high"),
    ("model.lr: {type: float, low: 0, high: 1, log: true}", "log range needs low > 0"),
    ("model.lr: {type: float, low: 0.1, high: 1, scale: 2}", "unknown field(s) scale"),
    ("model.lr: {type: float, high: 1}", "needs low and high"),
    ("data.batch_size: {type: int, low: 1.5, high: 4}", "must be integers"),
    ("data.batch_size: {type: int, low: 1, high: 8, step: 0}", "step must be a positive int"),
    ("model.optimizer: {type: categorical, choices: []}", "non-empty list"),
    ("model.network_args.hidden_sizes: {type: categorical, choices: [[64], [128]]}", "not lists"),
    ("data.fold: {type: int, low: 0, high: 2}", "set by litexp tune"),
    ("trainer.max_epochs: {type: int, low: 1, high: 3}", "cannot be searched"),
])
def test_bad_search_spaces_are_rejected(tmp_path, line, message):
    with pytest.raises(LitexpError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_search_space(write_space(tmp_path, line + "\n"))


@pytest.mark.parametrize("line, message", [
    ("model.dropout_rate: {type: float, low: 0, high: 0.5}", "model.dropout_rate=0"),
    ("model.optimizer: {type: categorical, choices: [sgd, lbfgs]}", "model.optimizer=lbfgs is not accepted"),
    ("model.network_args.dropout: {type: float, low: 0.5, high: 1.0}", "model.network_args.dropout=1.0"),
])
def test_keys_and_values_the_cli_refuses_fail_before_training(tmp_path, capsys, line, message):
    assert run_tune(tmp_path, write_space(tmp_path, line + "\n")) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("litexp: error: search space:") and message in error and "\n" not in error
    assert not (tmp_path / "study").exists()  # nothing written, not even the storage


@pytest.mark.parametrize("overrides, message", [
    (["--trainer.devices=2"], "needs --trainer.devices=N (a number) and --trainer.strategy=ddp"),
    (["--trainer.devices=2", "--trainer.strategy=ddp_spawn"], "or start one worker per device"),
    (["--trainer.devices=auto", "--trainer.strategy=ddp"], "needs --trainer.devices=N (a number)"),
    (["--trainer.num_nodes=2", "--trainer.strategy=ddp"], "a trial on one node"),
])
def test_devices_a_trial_cannot_use_are_refused_before_anything_is_written(tmp_path, capsys, overrides, message):
    space = write_space(tmp_path, "model.lr: {type: float, low: 0.01, high: 0.5}\n")
    assert run_tune(tmp_path, space, *overrides) == 2
    error = capsys.readouterr().err
    assert error.startswith("litexp: error:") and message in error and error.count("\n") == 1
    assert not (tmp_path / "study").exists()


@pytest.mark.parametrize("option", ["--pruner-warmup-steps", "--pruner-startup-trials"])
def test_negative_pruner_settings_are_one_line_before_anything_is_written(tmp_path, capsys, option):
    space = write_space(tmp_path, "model.lr: {type: float, low: 0.01, high: 0.5}\n")
    assert run_tune(tmp_path, space, option, "-1") == 2
    error = capsys.readouterr().err
    assert error.startswith("litexp: error: --pruner-startup-trials and --pruner-warmup-steps must be 0 or more")
    assert error.count("\n") == 1 and not (tmp_path / "study").exists()


# -- fold scoring, pruning, failures ---------------------------------------------------------------
def test_objective_is_the_mean_of_independent_fold_runs(tmp_path, fake_data_dir, litexp, capsys):
    space = write_space(tmp_path, "model.lr: {type: float, low: 0.05, high: 0.5, log: true}\n")
    assert run_tune(tmp_path, space, "--n-trials", "1", "--folds", "2", "--no-refit") == 0
    trial = load_study(tmp_path).trials[0]
    progress = [line for line in capsys.readouterr().out.splitlines() if line.startswith("litexp tune [")]
    assert len(progress) == 3 and "trial 0 fold 1 of 2: val/acc" in progress[0] and "fold 2 of 2" in progress[1]
    assert f"trial 0 complete, val/acc {trial.value:.4f}" in progress[2]
    assert "best so far trial 0" in progress[2] and "1 of 1 finished, ETA 0:00:00" in progress[2]
    fold_values = []
    for fold in range(2):
        code, run_dir = litexp("fit", "--config", BASE, "--trainer.max_epochs=1", "--data.batch_size=32",
                               "--trainer.limit_val_batches=2", f"--model.lr={trial.params['model.lr']}",
                               "--data.num_folds=2", f"--data.fold={fold}", "--run.name", f"fold{fold}")
        assert code == 0
        fold_values.append(json.loads((run_dir / "summary.json").read_text())["fit"]["metrics"]["val/acc"])
    assert trial.user_attrs["fold_values"] == pytest.approx(fold_values)
    assert trial.value == pytest.approx(sum(fold_values) / 2)
    assert trial.user_attrs["fold_std"] == pytest.approx(abs(fold_values[0] - fold_values[1]) / 2)
    assert trial.user_attrs["fold_epochs"] == [1, 1] and trial.user_attrs["fit_time_s"] > 0


def test_a_clearly_worse_trial_is_pruned_in_its_first_fold(tmp_path, fake_data_dir, capsys):
    space = write_space(tmp_path, "model.lr: {type: float, low: 1.0e-7, high: 1.0, log: true}\n", epochs=2)
    study = optuna.create_study(study_name="s", storage=tune.open_storage(None, tmp_path / "study"),
                                direction="maximize")
    for lr in (0.5, 0.5, 1e-7):
        study.enqueue_trial({"model.lr": lr})
    assert run_tune(tmp_path, space, "--n-trials", "3", "--folds", "2", "--no-refit",
                    "--pruner-startup-trials", "2", "--pruner-warmup-steps", "0") == 0
    good, _, bad = load_study(tmp_path).trials
    assert good.state == TrialState.COMPLETE and sorted(good.intermediate_values) == [0, 1, 2, 3]
    assert bad.state == TrialState.PRUNED
    assert bad.user_attrs["fold_epochs"] == [1] and list(bad.intermediate_values) == [0]
    out = capsys.readouterr().out
    assert "trial 2 pruned (pruned at fold 0, step 0), after 0 fold(s); best so far trial " in out
    assert "3 of 3 finished, ETA 0:00:00" in out


def test_failed_trials_are_recorded_and_the_study_goes_on(tmp_path, fake_data_dir, monkeypatch):
    step = ClassificationTask.training_step

    def poisoned(self, batch, batch_idx):  # lr 0.123 stands for a diverging configuration
        loss = step(self, batch, batch_idx)
        return loss * float("nan") if self.lr == 0.123 else loss

    monkeypatch.setattr(ClassificationTask, "training_step", poisoned)
    space = write_space(tmp_path, "model.lr: {type: float, low: 0.01, high: 0.5}\n")
    study = optuna.create_study(study_name="s", storage=tune.open_storage(None, tmp_path / "study"),
                                direction="maximize")
    for lr in (0.2, 0.123, 0.3):
        study.enqueue_trial({"model.lr": lr})
    assert run_tune(tmp_path, space, "--n-trials", "2", "--folds", "2", "--no-refit") == 0
    study = load_study(tmp_path)
    assert states(study) == ["COMPLETE", "FAIL", "COMPLETE"]
    assert re.match(r"training loss is nan at step \d+", study.trials[1].user_attrs["fail_reason"])


def test_a_worker_whose_trials_all_fail_stops_with_the_reason(tmp_path, fake_data_dir, monkeypatch, capsys):
    def broken(self, batch, batch_idx):
        raise RuntimeError("the model is broken")

    monkeypatch.setattr(ClassificationTask, "training_step", broken)
    space = write_space(tmp_path, "model.lr: {type: float, low: 0.01, high: 0.5}\n")
    assert run_tune(tmp_path, space, "--n-trials", "20", "--folds", "2", "--quiet") == 2
    assert states(load_study(tmp_path)) == ["FAIL"] * tune.FAILURES_IN_A_ROW  # not 20, not forever
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"litexp: error: {tune.FAILURES_IN_A_ROW} trials in a row failed, the last with: "
                            "RuntimeError: the model is broken;")


# -- resume and workers ----------------------------------------------------------------------------
def test_rerun_resumes_fails_dead_trials_and_repeats_nothing(tmp_path, fake_data_dir):
    space = write_space(tmp_path, "model.lr: {type: float, low: 0.01, high: 0.5, log: true}\n")
    args = ("--n-trials", "3", "--folds", "2", "--no-refit", "--pruner", "none")
    assert run_tune(tmp_path, space, *args[:1], "2", *args[2:]) == 0
    study = load_study(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed = study.ask()  # what a worker killed mid-trial leaves: a RUNNING trial of a dead process
    killed.set_user_attr("worker", {"host": os.uname().nodename, "pid": dead.pid})
    first_runs = {path: path.stat().st_mtime for path in (tmp_path / "study" / "trials").glob("*/*/summary.json")}
    assert run_tune(tmp_path, space, *args) == 0
    study = load_study(tmp_path)
    assert states(study) == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE"]
    assert all(path.stat().st_mtime == mtime for path, mtime in first_runs.items())  # not run again
    assert len({trial.params["model.lr"] for trial in study.trials if trial.params}) == 3


def test_two_workers_share_one_journal_without_repeating_a_trial(tmp_path):
    data = tmp_path / "data"
    write_idx_dataset(data, "MNIST")
    space = write_space(tmp_path, "model.lr: {type: float, low: 0.01, high: 0.5, log: true}\n")
    journal = tmp_path / "journal.log"
    command = [sys.executable, "-m", "experiments", "tune", "--config", str(CONFIG_DIR / "mnist" / "mlp.yaml"),
               "--search", space, "--n-trials", "4", "--folds", "2", "--storage", str(journal),
               "--study-name", "w", "--study-dir", str(tmp_path / "study"), "--no-refit", "--pruner", "none"]
    env = {**os.environ, "LITEXP_DATA_DIR": str(data), "WANDB_MODE": "disabled"}
    workers = [subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for worker in workers:
        assert worker.wait(timeout=300) == 0, worker.stderr.read()[-2000:]
    study = optuna.load_study(study_name="w", storage=tune.open_storage(str(journal), tmp_path))
    assert states(study) == ["COMPLETE"] * 4
    assert {trial.user_attrs["worker"]["pid"] for trial in study.trials} <= {worker.pid for worker in workers}
    runs = sorted(str(path.relative_to(tmp_path / "study")) for path in (tmp_path / "study").glob("trials/*/*"))
    assert runs == [f"trials/trial{n}/fold{k}" for n in range(4) for k in range(2)]
    assert len({trial.params["model.lr"] for trial in study.trials}) == 4


# -- test split isolation and the report -----------------------------------------------------------
def test_a_folds_datamodule_is_locked_and_no_other(tmp_path, fake_data_dir, monkeypatch):
    reads = []
    load = vision.VisionDataModule.load
    monkeypatch.setattr(vision.VisionDataModule, "load", lambda self, split: reads.append(split) or load(self, split))
    runs = StudyRuns([BASE], ["--data.batch_size=32", "--quiet"])
    fold = runs.build({"data.num_folds": 2, "data.fold": 1}, tmp_path / "fold1").datamodule
    assert (fold.num_folds, fold.fold) == (2, 1)
    with pytest.raises(LitexpError, match="test split is locked"):
        fold.setup("test")
    assert "test" not in reads
    other = vision.FashionMNIST(batch_size=32)  # the lock is the fold's instance's, not the class's
    other.setup("test")
    assert reads[-1] == "test"
    refit = runs.build({"data.val_fraction": 0.0}, tmp_path / "refit", refit=True).datamodule
    refit.setup("test")
    assert not refit.test_split_locked and not vision.FashionMNIST.test_split_locked


def test_a_run_is_the_parsed_config_with_the_trials_values_set(tmp_path, fake_data_dir):
    runs = StudyRuns([BASE], ["--trainer.max_epochs=1", "--quiet"])
    values = {"model.lr": 0.123, "model.network_args.dropout": 0.25, "data.batch_size": 64,
              "data.num_folds": 3, "data.fold": 2, "wandb.name": "s/trial0/fold2"}
    cli = runs.build(values, tmp_path / "run")
    assert cli.run_dir == tmp_path / "run" and cli.trainer.max_epochs == 1
    assert cli.model.hparams.lr == 0.123 and cli.model.hparams.network_args["dropout"] == 0.25
    assert cli.datamodule.batch_size == 64 and (cli.datamodule.num_folds, cli.datamodule.fold) == (3, 2)
    assert cli.config_dump["model"]["init_args"]["lr"] == 0.123  # what the checkpoint's hyperparameters hold
    assert runs.fit_config["model"]["init_args"]["lr"] == 0.1  # the parsed base is never changed
    # the same run from argv strings, as litexp fit parses them: the same model, to the last weight
    again = StudyRuns([BASE], ["--trainer.max_epochs=1", "--quiet", *cli_args(values)])
    parsed = again.build({}, tmp_path / "parsed")
    for mine, theirs in zip(cli.model.state_dict().values(), parsed.model.state_dict().values(), strict=True):
        assert torch.equal(mine, theirs)
    assert cli.datamodule.split_fingerprint == parsed.datamodule.split_fingerprint
    with pytest.raises(LitexpError, match="exists and is not empty"):
        (tmp_path / "full").mkdir()
        (tmp_path / "full" / "summary.json").write_text("{}")
        runs.build(values, tmp_path / "full")


def test_search_never_reads_the_test_split_and_the_report_has_it_all(tmp_path, fake_data_dir, monkeypatch):
    reads = []
    load = vision.VisionDataModule.load

    def spy(self, split):
        reads.append((split, self.test_split_locked))
        return load(self, split)

    monkeypatch.setattr(vision.VisionDataModule, "load", spy)
    space = write_space(tmp_path, "model.lr: {type: float, low: 0.01, high: 0.5, log: true}\n"
                                  "model.optimizer: {type: categorical, choices: [sgd, momentum]}\n")
    assert run_tune(tmp_path, space, "--n-trials", "2", "--folds", "2") == 0
    assert [split for split, _ in reads].count("test") == 1
    assert all(not locked for split, locked in reads if split == "test")
    assert any(locked for split, locked in reads if split == "train")

    study_dir = tmp_path / "study"
    report = json.loads((study_dir / "report.json").read_text())
    best = load_study(tmp_path).best_trial
    assert report["best"]["number"] == best.number and report["best"]["params"] == best.params
    assert report["best"]["value"] == pytest.approx(best.value) and len(report["best"]["fold_values"]) == 2
    assert report["best"]["std"] == pytest.approx(torch.tensor(report["best"]["fold_values"]).std(unbiased=False))
    assert set(report["test"]["metrics"]) == {"test/acc", "test/loss"} and report["test"]["evaluation"] == 1
    assert report["trials"]["COMPLETE"] == 2 and report["trials"]["finished"] == 2
    assert report["time"]["trials_fit_time_s"] > 0 and report["time"]["epochs_run"] >= 2
    for name in ("optimization_history", "param_importances", "parallel_coordinate", "slice"):
        assert (study_dir / report["plots"][name]["png"]).stat().st_size > 0
        assert (study_dir / report["plots"][name]["html"]).stat().st_size > 0
    assert [e["best_trial"] for e in load_study(tmp_path).user_attrs["test_evaluations"]] == [best.number]
    markdown = (study_dir / "report.md").read_text()
    assert f"Trial {best.number}" in markdown and "test/acc" in markdown and "![slice](plots/slice.png)" in markdown
    # refit: the whole training split, no validation
    refit = json.loads((study_dir / "refit" / "final" / "summary.json").read_text())
    assert refit["data"]["val_size"] == 0 and refit["data"]["train_size"] == 300


# -- the example spaces ----------------------------------------------------------------------------
EXAMPLES = {"mlp": "fashion_mnist/mlp.yaml", "lenet": "fashion_mnist/lenet.yaml", "resnet": "cifar10/lenet_modern.yaml",
            "translation": "translation/toy_attention.yaml", "tabular_mlp": "tabular/diabetes.yaml"}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_search_spaces_are_accepted_by_the_cli(name, tmp_path, monkeypatch):
    if name == "tabular_mlp":  # its config reads diabetes.csv where it runs, as the README writes it
        from tests.experiments.test_cli import write_diabetes_csv

        monkeypatch.chdir(tmp_path)
        write_diabetes_csv(tmp_path / "diabetes.csv")
    space = load_search_space(REPO / "experiments" / "search" / f"{name}.yaml")
    runs = StudyRuns([str(CONFIG_DIR / EXAMPLES[name])], cli_args(space.fixed))
    check_with_cli(space, runs.check)  # raises LitexpError naming the refused key
    assert sorted(path.stem for path in (REPO / "experiments" / "search").glob("*.yaml")) == sorted(EXAMPLES)
