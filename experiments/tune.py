"""``litexp tune``: an Optuna study whose trials are scored by K-fold cross-validation.

    litexp tune --config experiments/configs/fashion_mnist/mlp.yaml --search experiments/search/mlp.yaml \
        --n-trials 12 --folds 3 [--storage URL] [--study-name NAME] [--sampler random|tpe] \
        [--pruner median|none] [--metric val/acc --direction maximize] [--timeout S] [-- fit overrides]

Each trial samples the search space and trains one fresh model per fold (``litexp fit`` with
``--data.num_folds K --data.fold k`` and the sampled ``--key=value`` overrides); its value is the
mean of the folds' final validation metric. During training each epoch reports the running fold
mean at step ``fold * max_epochs + epoch`` so the pruner can stop a bad trial in its first folds.
After the search the best parameters are refit on the whole training split, the test split is
evaluated once, and ``report.json``, ``report.md`` and ``plots/`` go into the study directory.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import math
import os
import socket
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np
import optuna
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
from optuna.trial import TrialState

from datamodules import DataModule
from experiments.cli import RUN_DIR_ENV, LitexpCLI, _user_error, summarize_parse_error
from experiments.search_space import SearchSpace, build_sampler, check_with_cli, cli_args, load_search_space, sample
from experiments.study_report import compute_facts, trial_counts, write_plots, write_report
from lit_models import LitexpError

HEARTBEAT_S, GRACE_S = 20, 90  # RDB storages: a RUNNING trial silent for GRACE_S is failed
POLL_S = 2.0  # how often a worker waiting for others' trials looks at the storage
# every run of a study: quiet, one device (several devices per trial: see the README)
RUN_DEFAULTS = ("--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", "--trainer.devices=1")


class OptionError(argparse.ArgumentParser):
    def error(self, message: str):
        raise LitexpError(f"{message}; run 'litexp tune --help' for the options")


def option_parser() -> argparse.ArgumentParser:
    parser = OptionError(prog="litexp tune", description=__doc__.split("\n\n")[0],
                         epilog="Options after these are overrides for every run, e.g. --trainer.max_epochs 3.")
    parser.add_argument("--config", action="append", required=True, help="base experiment YAML (repeatable)")
    parser.add_argument("--search", required=True, help="search space YAML (CLI key -> distribution)")
    parser.add_argument("--n-trials", type=int, default=20, help="finished (complete + pruned) trials in total")
    parser.add_argument("--timeout", type=float, default=None, help="start no trial after this many seconds")
    parser.add_argument("--folds", type=int, default=3, help="K of K-fold cross-validation (>= 2)")
    parser.add_argument("--storage", default=None,
                        help="RDB URL (sqlite:///..., postgresql://...) or a journal file path; "
                             "default: sqlite in the study directory")
    parser.add_argument("--study-name", default=None, help="default: <dataset>-<config>-<search space>")
    parser.add_argument("--study-dir", default=None, help="default: runs/studies/<study name>")
    parser.add_argument("--sampler", choices=("random", "tpe"), default="random")
    parser.add_argument("--seed", type=int, default=0, help="sampler seed (trial n's draw depends on it and n)")
    parser.add_argument("--pruner", choices=("median", "none"), default="median")
    parser.add_argument("--pruner-startup-trials", type=int, default=3, help="trials before pruning starts")
    parser.add_argument("--pruner-warmup-steps", type=int, default=1, help="report steps before pruning a trial")
    parser.add_argument("--metric", default=None, help="validation metric to optimize (default: the task's monitor)")
    parser.add_argument("--direction", choices=("maximize", "minimize"), default=None)
    parser.add_argument("--no-refit", action="store_true",
                        help="extra workers: run trials only; another worker refits and writes the report")
    return parser


# -- building runs ---------------------------------------------------------------------------------
class BuildOnlyCLI(LitexpCLI):
    """``litexp fit`` arguments -> model, datamodule and trainer (seeded as fit seeds them), not run."""

    def _run_subcommand(self, subcommand: str) -> None:
        pass


def build_cli(configs: list[str], args: list[str]) -> LitexpCLI:
    """One ``litexp fit`` run, built but not started (model, datamodule, trainer)."""
    argv = ["fit", *[item for config in configs for item in ("--config", config)], *args]
    try:
        return BuildOnlyCLI(argv)
    except argparse.ArgumentError as error:
        raise LitexpError(summarize_parse_error(str(error), "fit")) from None
    finally:
        os.environ.pop(RUN_DIR_ENV, None)  # each fold gets its own run directory


class ParseOnlyCLI(BuildOnlyCLI):
    """Parses and builds the model and data classes, reads no data, builds no trainer."""

    def instantiate_classes(self) -> None:
        self.config_init = self.parser.instantiate_classes(self.config)
        self.model = self._get(self.config_init, "model")
        self.datamodule = self._get(self.config_init, "data")


def make_checker(configs: list[str], base_args: list[str]):
    """``check(args)``: parse and build with these extra args, one-line LitexpError when refused."""
    try:
        first = ParseOnlyCLI(["fit", *[i for c in configs for i in ("--config", c)], *base_args])
    except argparse.ArgumentError as error:
        raise LitexpError(summarize_parse_error(str(error), "fit")) from None
    except Exception as error:
        raise LitexpError(str(_user_error(error) or f"{type(error).__name__}: {error}")) from None

    def check(args: list[str]) -> None:
        argv = ["fit", *[i for c in configs for i in ("--config", c)], *base_args, *args]
        try:
            first.parser.instantiate_classes(first.parser.parse_args(argv))
        except argparse.ArgumentError as error:
            raise LitexpError(summarize_parse_error(str(error), "fit")) from None
        except Exception as error:
            user_error = _user_error(error)
            raise LitexpError(str(user_error or f"{type(error).__name__}: {error}")) from None

    return first, check


@contextlib.contextmanager
def test_split_locked():
    """While searching, ``setup("test"|"predict")`` of every DataModule raises."""
    DataModule.test_split_locked = True
    try:
        yield
    finally:
        DataModule.test_split_locked = False


# -- one trial ----------------------------------------------------------------------------------
class FoldReporter(Callback):
    """Reports the running fold mean to the pruner, stops on non-finite loss, tags W&B runs."""

    def __init__(self, trial: optuna.Trial, metric: str, fold: int, previous: list[float], prune: bool,
                 tags: dict[str, Any]) -> None:
        self.trial, self.metric, self.fold, self.previous, self.prune = trial, metric, fold, previous, prune
        self.tags = tags
        self.last_value: Optional[float] = None
        self.pruned_at: Optional[int] = None

    def on_fit_start(self, trainer, pl_module):
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.config.update(self.tags, allow_val_change=True)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None and not torch.isfinite(loss).all():
            raise FloatingPointError(f"non-finite training loss at fold {self.fold}, epoch {trainer.current_epoch}")

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        if self.metric not in trainer.callback_metrics:
            raise LitexpError(f"metric {self.metric!r} was not logged; logged: {', '.join(trainer.callback_metrics)}")
        self.last_value = float(trainer.callback_metrics[self.metric])
        # steps never collide: fold k owns steps k * max_epochs .. (k + 1) * max_epochs - 1
        step = self.fold * trainer.max_epochs + trainer.current_epoch
        running_mean = (sum(self.previous) + self.last_value) / (len(self.previous) + 1)
        self.trial.report(running_mean, step)
        if self.prune and self.trial.should_prune():
            self.pruned_at = step
            trainer.should_stop = True  # ends this fold cleanly; the objective then raises TrialPruned


def finish_wandb(trainer) -> None:
    """Close this run's W&B run, so the next fold opens its own instead of reusing it."""
    if any(isinstance(logger, WandbLogger) for logger in trainer.loggers):
        import wandb

        if wandb.run is not None:
            wandb.finish()


class Objective:
    def __init__(self, options, space: SearchSpace, base_args: list[str], study_dir: Path, metric: str) -> None:
        self.options, self.space, self.base_args = options, space, base_args
        self.study_dir, self.metric = study_dir, metric

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", {"host": socket.gethostname(), "pid": os.getpid()})
        params = sample(trial, self.space)
        folds = self.options.folds
        values: list[float] = []
        epochs: list[int] = []
        fit_time = 0.0
        try:
            for fold in range(folds):
                name = f"{self.options.study_name}/trial{trial.number}/fold{fold}"
                cli = build_cli(self.options.config, [
                    *self.base_args, *cli_args(params), f"--data.num_folds={folds}", f"--data.fold={fold}",
                    f"--run.root={self.study_dir / 'trials'}", f"--run.name=trial{trial.number}",
                    f"--run.version=fold{fold}", f"--wandb.group={self.options.study_name}", f"--wandb.name={name}",
                ])
                trial.set_user_attr("max_epochs", cli.trainer.max_epochs)
                reporter = FoldReporter(trial, self.metric, fold, values, self.options.pruner != "none",
                                        {"study": self.options.study_name, "trial": trial.number, "fold": fold,
                                         "trial_params": params})
                cli.trainer.callbacks.append(reporter)
                start = time.perf_counter()
                try:
                    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
                finally:
                    finish_wandb(cli.trainer)
                fit_time += time.perf_counter() - start
                epochs.append(cli.trainer.current_epoch)
                if reporter.last_value is None:
                    raise LitexpError("no validation ran; the study needs a validation epoch per training epoch")
                if reporter.pruned_at is not None:
                    raise optuna.TrialPruned(f"pruned at fold {fold}, step {reporter.pruned_at}")
                if not math.isfinite(reporter.last_value):
                    raise FloatingPointError(f"{self.metric} is {reporter.last_value} at fold {fold}")
                values.append(reporter.last_value)
        except optuna.TrialPruned:
            raise
        except Exception as error:
            trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:500])
            raise
        finally:
            trial.set_user_attr("fold_values", values)
            trial.set_user_attr("fold_epochs", epochs)
            trial.set_user_attr("fit_time_s", round(fit_time, 3))
            trial.set_user_attr("params_cli", cli_args(params))
            if torch.cuda.is_available():
                torch.cuda.empty_cache()  # a trial that ran out of memory leaves room for the next
            gc.collect()
        trial.set_user_attr("fold_std", float(np.std(values)))
        return float(np.mean(values))


# -- storage and workers --------------------------------------------------------------------------
def open_storage(url: Optional[str], study_dir: Path) -> optuna.storages.BaseStorage:
    """RDB URL -> RDBStorage with heartbeats; a plain path -> journal file (as optuna-dashboard reads it)."""
    if url is None:
        study_dir.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{study_dir / 'study.db'}"
    if "://" in url:
        engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_S,
                                              grace_period=GRACE_S)
        except Exception as error:
            raise LitexpError(f"cannot open storage {url}: {str(error).splitlines()[0]}") from None
    from optuna.storages.journal import JournalFileBackend

    Path(url).parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(url))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_dead_trials(study: optuna.Study) -> list[int]:
    """Mark FAIL the RUNNING trials whose worker process on this host is gone (killed, crashed).

    Trials of live workers are left alone; those of other hosts are left to the RDB heartbeat.
    """
    failed = []
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        if worker and worker["host"] == host and worker["pid"] != os.getpid() and not pid_alive(worker["pid"]):
            try:
                study._storage.set_trial_user_attr(trial._trial_id, "error", "worker process died")
                study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
                failed.append(trial.number)
            except RuntimeError:  # finished meanwhile
                pass
    if isinstance(study._storage, optuna.storages.RDBStorage):
        optuna.storages.fail_stale_trials(study)  # heartbeats: workers on any host
    return failed


def run_trials(study: optuna.Study, objective: Objective, n_trials: int, timeout: Optional[float],
               wait_for_others: bool) -> None:
    """Start trials until N are finished or running; then (if waiting) until the others finish too."""
    start = time.monotonic()
    while True:
        fail_dead_trials(study)
        counts = trial_counts(study)
        timed_out = timeout is not None and time.monotonic() - start >= timeout
        if counts["finished"] >= n_trials:
            return
        if counts["finished"] + counts["RUNNING"] < n_trials and not timed_out:
            study.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=False)
            continue
        if not wait_for_others or counts["RUNNING"] == 0:
            return
        time.sleep(POLL_S)


# -- after the search -----------------------------------------------------------------------------
def refit_and_test(options, base_args: list[str], study_dir: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Best parameters on the whole training split (no validation), then the test split once."""
    cli = build_cli(options.config, [
        *base_args, *cli_args(params), "--data.num_folds=null", "--data.val_fraction=0",
        f"--run.root={study_dir}", "--run.name=refit", "--run.version=final",
        f"--wandb.group={options.study_name}", f"--wandb.name={options.study_name}/refit",
    ])
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    results = cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    finish_wandb(cli.trainer)
    return {"metrics": {key: float(value) for key, value in results[0].items()}, "run_dir": str(cli.run_dir),
            "test_split_loads": cli.datamodule.test_split_loads}


def study_defaults(options) -> None:
    config = Path(options.config[-1])
    if options.study_name is None:
        search = Path(options.search).stem
        options.study_name = f"{config.parent.name}-{config.stem}" + ("" if search == config.stem else f"-{search}")
    if options.study_dir is None:
        options.study_dir = str(Path("runs") / "studies" / options.study_name)
    if options.folds < 2:
        raise LitexpError(f"--folds must be at least 2, got {options.folds}")
    if options.n_trials < 1:
        raise LitexpError(f"--n-trials must be at least 1, got {options.n_trials}")


def check_single_device(parsed) -> None:
    trainer = parsed["fit"]["trainer"]
    devices, strategy = trainer.get("devices"), str(trainer.get("strategy") or "auto")
    several = (isinstance(devices, int) and devices > 1) or (isinstance(devices, list) and len(devices) > 1) \
        or (isinstance(devices, str) and devices not in ("1", "auto")) or (trainer.get("num_nodes") or 1) > 1
    if several or "ddp" in strategy:
        raise LitexpError("litexp tune trains each trial on one device; to use several devices start several "
                          "workers with the same --storage and --study-name (one device each)")


def tune(options, overrides: list[str]) -> int:
    study_defaults(options)
    wall_start = time.perf_counter()
    study_dir = Path(options.study_dir)
    space = load_search_space(options.search)
    base_args = [*RUN_DEFAULTS, *cli_args(space.fixed), *overrides]
    first, check = make_checker(options.config, base_args)
    check_single_device(first.config)
    check_with_cli(space, check)
    metric = options.metric or first.model.monitor
    direction = options.direction or ("maximize" if first.model.monitor_mode == "max" else "minimize")
    logged = getattr(first.model, "metrics", {})
    if not metric.startswith("val/") or (logged and metric not in logged):
        valid = ", ".join(name for name in logged if name.startswith("val/"))
        raise LitexpError(f"--metric must be a validation metric the task logs ({valid}), got {metric!r}")

    storage = open_storage(options.storage, study_dir)
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=options.pruner_startup_trials,
                                          n_warmup_steps=options.pruner_warmup_steps)
              if options.pruner == "median" else optuna.pruners.NopPruner())
    try:
        study = optuna.create_study(storage=storage, study_name=options.study_name, direction=direction,
                                    sampler=build_sampler(options.sampler, options.seed), pruner=pruner,
                                    load_if_exists=True)
    except ValueError as error:
        raise LitexpError(f"study {options.study_name}: {error}") from None
    if study.direction.name.lower() != direction:
        raise LitexpError(f"study {options.study_name} exists with direction {study.direction.name.lower()}; "
                          f"use the same --direction or another --study-name")
    objective = Objective(options, space, base_args, study_dir, metric)
    with test_split_locked():
        run_trials(study, objective, options.n_trials, options.timeout, wait_for_others=not options.no_refit)
    counts = trial_counts(study)
    print(f"litexp tune: study {options.study_name}: {counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
          f"{counts['FAIL']} failed")
    if options.no_refit:
        return 0
    if counts["COMPLETE"] == 0:
        raise LitexpError(f"study {options.study_name} has no completed trial; nothing to refit "
                          "(see the trials' 'error' attributes, e.g. in optuna-dashboard)")
    return write_final_report(options, study, study_dir, base_args, metric, counts, wall_start)


def write_final_report(options, study, study_dir, base_args, metric, counts, wall_start) -> int:
    report_path = study_dir / "report.json"
    if report_path.exists():
        import json

        done = json.loads(report_path.read_text())
        if done.get("trials", {}).get("finished") == counts["finished"]:
            print(f"litexp tune: study already reported: {report_path}")
            return 0
    best = study.best_trial
    test = refit_and_test(options, base_args, study_dir, best.params)
    report = {
        "study": {"name": options.study_name, "storage": options.storage or f"sqlite:///{study_dir / 'study.db'}",
                  "configs": options.config, "search": options.search, "metric": metric,
                  "direction": study.direction.name.lower(), "num_folds": options.folds, "sampler": options.sampler,
                  "seed": options.seed, "pruner": options.pruner, "n_trials": options.n_trials},
        "best": {"number": best.number, "params": best.params, "value": best.value,
                 "std": best.user_attrs.get("fold_std"), "fold_values": best.user_attrs.get("fold_values"),
                 "fold_epochs": best.user_attrs.get("fold_epochs")},
        "test": test,
        "trials": counts,
        "time": {"wall_time_s_this_run": round(time.perf_counter() - wall_start, 2),
                 **compute_facts(study, options.folds)},
        "plots": write_plots(study, study_dir / "plots", metric),
    }
    write_report(study_dir, report)
    print(f"litexp tune: best trial {best.number}: {metric} {best.value:.4f}; test {test['metrics']}; "
          f"report: {study_dir / 'report.md'}")
    return 0


def main(argv: list[str]) -> int:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no banner per fold
    warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter.*")
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats
    try:
        options, overrides = option_parser().parse_known_args(argv)
        if any(not arg.startswith("--") for arg in overrides[:1]):
            raise LitexpError(f"unexpected argument {overrides[0]!r}; fit overrides look like --trainer.max_epochs=3")
        return tune(options, overrides)
    except LitexpError as error:
        print(f"litexp: error: {error}", file=sys.stderr)
        return 2
