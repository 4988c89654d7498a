"""``litexp tune``: an Optuna study whose trials are scored by K-fold cross-validation.

    litexp tune --config experiments/configs/fashion_mnist/mlp.yaml --search experiments/search/mlp.yaml \
        --n-trials 12 --folds 3 [--storage URL] [--study-name NAME] [--sampler random|tpe] \
        [--pruner median|none] [--metric val/acc --direction maximize] [--timeout S] [-- fit overrides]

Each trial samples the search space and trains one fresh model per fold: the run ``litexp fit``
with ``--data.num_folds K --data.fold k`` and the sampled ``--key=value`` overrides would be, built
from the config parsed once (:mod:`experiments.study_runs`), or, with ``--trainer.devices=N
--trainer.strategy=ddp``, a child ``litexp fit`` on N ranks (:mod:`experiments.study_ddp`). Its
value is the mean of the folds' final validation metric. During training each epoch reports the running fold
mean at step ``fold * max_epochs + epoch`` so the pruner can stop a bad trial in its first folds.
After the search the best parameters are refit on the whole training split, the test split is
evaluated once, and ``report.json``, ``report.md`` and ``plots/`` go into the study directory.

The first SIGINT (Ctrl-C) or SIGTERM stops the running fold at its next batch, records the trial
as interrupted (a rerun trains it again with the same parameters), starts nothing else, never
refits, and exits 130 (143); a second one exits at once.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import optuna
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
from optuna.trial import TrialState

from experiments.cli import finish_wandb_run
from experiments.search_space import SearchSpace, build_sampler, check_with_cli, cli_args, load_search_space, sample
from experiments.study_ddp import FoldProcess, link_callback_arg
from experiments.study_report import compute_facts, trial_counts, write_report
from experiments.study_runs import StudyRuns, devices_per_trial
from experiments.study_signals import Interrupted, StopCheck, StopOnSignal, quiet_logging
from experiments.study_store import (
    GRACE_S,
    HEARTBEAT_S,
    claim_study_dir,
    default_storage,
    fail_dead_trials,
    open_storage,
    open_study,
    redo_interrupted_trials,
    set_aside_outputs,
    study_settings,
    without_password,
)
from experiments.wandb_media import log_study
from litexp.errors import DivergedError, LitexpError

POLL_S = 2.0  # how often a worker waiting for others' trials looks at the storage
FAILURES_IN_A_ROW = 5  # a worker whose trials all fail stops instead of drawing trials forever
# every run of a study: quiet (the study prints its own line per fold and trial); one device unless the
# configs or overrides ask for several with DDP (see devices_per_trial)
RUN_DEFAULTS = ("--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", "--quiet")


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
    parser.add_argument("--pruner-warmup-steps", type=int, default=0,
                        help="report steps before pruning a trial (0: from its first epoch on)")
    parser.add_argument("--metric", default=None, help="validation metric to optimize (default: the task's monitor)")
    parser.add_argument("--direction", choices=("maximize", "minimize"), default=None)
    parser.add_argument("--no-refit", action="store_true",
                        help="extra workers: run trials only; another worker refits and writes the report")
    parser.add_argument("--retest", action="store_true",
                        help="refit and evaluate the test split again on a study whose test split was evaluated; "
                             "the earlier report and refit move to <study dir>/earlier/<n>/")
    parser.add_argument("--heartbeat-interval", type=int, default=int(HEARTBEAT_S),
                        help="RDB storages: seconds between a running trial's heartbeats")
    parser.add_argument("--quiet", action="store_true", help="no progress line per fold and trial (for logs)")
    parser.add_argument("--grace-period", type=int, default=int(GRACE_S),
                        help="RDB storages: a running trial silent this many seconds is failed (its worker died)")
    return parser


def fit_or_stop(trainer, stop: StopOnSignal, trial: Optional[int], refit: bool, run) -> Any:
    """``run()`` (a fit or a test); whatever ends it after a stop was asked for (our check, Lightning's
    own SIGTERM exit) becomes ``Interrupted``."""
    trainer.callbacks.append(StopCheck(stop, trial, refit))
    try:
        return run()
    except BaseException:
        if stop.signum is not None:
            raise Interrupted(stop.signum, trial, refit) from None
        raise


# -- one trial ----------------------------------------------------------------------------------
class FoldPruning:
    """One fold's link to its trial: each epoch's fold metric, as the running fold mean, to the pruner."""

    def __init__(self, trial: optuna.Trial, fold: int, max_epochs: int, previous: list[float], prune: bool) -> None:
        self.trial, self.fold, self.max_epochs, self.previous, self.prune = trial, fold, max_epochs, previous, prune
        self.last_value: Optional[float] = None
        self.pruned_at: Optional[int] = None

    def epoch_end(self, value: float, epoch: int) -> bool:
        """Report epoch ``epoch``'s value; True when the trial is to stop here."""
        self.last_value = value
        # steps never collide: fold k owns steps k * max_epochs .. (k + 1) * max_epochs - 1
        step = self.fold * self.max_epochs + epoch
        self.trial.report((sum(self.previous) + value) / (len(self.previous) + 1), step)
        if self.prune and self.trial.should_prune():
            self.pruned_at = step
            return True
        return False


class FoldReporter(Callback):
    """In-process folds: the pruning link per validation epoch, stop on non-finite loss, W&B tags."""

    def __init__(self, pruning: FoldPruning, metric: str, tags: dict[str, Any]) -> None:
        self.pruning, self.metric, self.tags = pruning, metric, tags

    def on_fit_start(self, trainer, pl_module):
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.config.update(self.tags, allow_val_change=True)

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        if self.metric not in trainer.callback_metrics:
            raise LitexpError(f"metric {self.metric!r} was not logged; logged: {', '.join(trainer.callback_metrics)}")
        if self.pruning.epoch_end(float(trainer.callback_metrics[self.metric]), trainer.current_epoch):
            trainer.should_stop = True  # ends this fold cleanly; the objective then raises TrialPruned


def clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Objective:
    def __init__(self, options, space: SearchSpace, runs: StudyRuns, study_dir: Path, metric: str,
                 stop: StopOnSignal, devices: int = 1) -> None:
        self.options, self.space, self.runs = options, space, runs
        self.study_dir, self.metric, self.stop, self.devices = study_dir, metric, stop, devices
        self.interrupted_trial: Optional[int] = None
        self.started = time.monotonic()
        self.last_fit_time = 0.0
        self.failures_in_a_row, self.last_failure = 0, ""

    def progress(self, line: str) -> None:
        """One line of live progress (``--quiet`` turns them off), with the elapsed time."""
        if not self.options.quiet:
            elapsed = time.monotonic() - self.started
            print(f"litexp tune [{clock(elapsed)}]: {line}", flush=True)

    def trial_line(self, trial: optuna.Trial, state: str, values: list[float]) -> str:
        """``trial n (k of N finished): state, mean +- std; best so far; elapsed and ETA``."""
        study = trial.study
        complete = state == "complete"
        finished = trial_counts(study)["finished"] + (complete or state.startswith("pruned"))  # this one too
        scores = [(t.value, t.number) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        if complete:
            scores.append((float(np.mean(values)), trial.number))
        maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
        best = (max if maximize else min)(scores, default=None)
        result = (f"{self.metric} {np.mean(values):.4f} ± {np.std(values):.4f} over {len(values)} folds"
                  if complete else f"after {len(values)} fold(s)")
        best_text = f"best so far trial {best[1]}: {best[0]:.4f}" if best else "no complete trial yet"
        elapsed = time.monotonic() - self.started
        eta = clock(elapsed / finished * max(0, self.options.n_trials - finished)) if finished else "?"
        return (f"trial {trial.number} {state}, {result}; {best_text}; {finished} of {self.options.n_trials} "
                f"finished, ETA {eta}")

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", {"host": socket.gethostname(), "pid": os.getpid()})
        params = sample(trial, self.space)
        trial.set_user_attr("params_cli", cli_args(params))
        values: list[float] = []
        epochs: list[int] = []
        self.fit_time = 0.0  # every fold's, a pruned or failed one's too
        try:
            for fold in range(self.options.folds):
                self.stop.check(trial.number)
                values.append(self.fold(trial, params, fold, values, epochs))
                self.progress(f"trial {trial.number} fold {fold + 1} of {self.options.folds}: {self.metric} "
                              f"{values[-1]:.4f} ({epochs[-1]} epochs, {self.last_fit_time:.1f} s)")
        except Interrupted:
            self.interrupted_trial = trial.number
            trial.set_user_attr("interrupted", True)
            trial.set_user_attr("fail_reason", f"interrupted by {signal.Signals(self.stop.signum).name}")
            raise
        except optuna.TrialPruned as pruned:
            self.failures_in_a_row = 0
            self.progress(self.trial_line(trial, f"pruned ({pruned})", values))
            raise
        except DivergedError as error:  # the fit names the step; the study goes on
            self.failures_in_a_row, self.last_failure = self.failures_in_a_row + 1, str(error)
            trial.set_user_attr("fail_reason", str(error)[:500])
            self.progress(self.trial_line(trial, "failed (diverged)", values))
            raise
        except Exception as error:
            self.failures_in_a_row, self.last_failure = self.failures_in_a_row + 1, f"{type(error).__name__}: {error}"
            trial.set_user_attr("fail_reason", f"{type(error).__name__}: {error}"[:500])
            self.progress(self.trial_line(trial, f"failed ({type(error).__name__})", values))
            gc.collect()  # a trial that ran out of memory leaves room for the next
            raise
        finally:
            trial.set_user_attr("fold_values", values)
            trial.set_user_attr("fold_epochs", epochs)
            trial.set_user_attr("fit_time_s", round(self.fit_time, 3))
            if torch.cuda.is_available():
                torch.cuda.empty_cache()  # a trial that ran out of memory leaves room for the next
        trial.set_user_attr("fold_std", float(np.std(values)))
        self.failures_in_a_row = 0
        self.progress(self.trial_line(trial, "complete", values))
        return float(np.mean(values))

    def fold(self, trial: optuna.Trial, params: dict[str, Any], fold: int, values: list[float],
             epochs: list[int]) -> float:
        """Train fold ``fold`` of the trial; its final validation metric."""
        folds, study_name = self.options.folds, self.options.study_name
        trials_dir = self.study_dir / "trials"
        run_dir = trials_dir / f"trial{trial.number}" / f"fold{fold}"
        run_values = {**params, "data.num_folds": folds, "data.fold": fold, "run.root": str(trials_dir),
                      "run.name": f"trial{trial.number}", "run.version": f"fold{fold}",
                      "wandb.group": study_name, "wandb.name": f"{study_name}/trial{trial.number}/fold{fold}"}
        max_epochs = self.runs.fit_config["trainer"]["max_epochs"]
        if fold == 0:
            trial.set_user_attr("max_epochs", max_epochs)
        pruning = FoldPruning(trial, fold, max_epochs, values, self.options.pruner != "none")
        tags = {"study": study_name, "trial": trial.number, "fold": fold, "trial_params": params}
        if self.devices > 1:
            link_dir = trials_dir / f"trial{trial.number}" / f"fold{fold}-link"
            child = FoldProcess([*self.runs.fit_args(run_values), link_callback_arg(link_dir, self.metric, tags)],
                                run_dir, link_dir, self.stop)
            try:
                child.run(pruning.epoch_end)
            except Interrupted:
                shutil.rmtree(link_dir, ignore_errors=True)  # a failure's is kept: its error names the log there
                raise Interrupted(self.stop.signum, trial.number) from None
            finally:
                self.last_fit_time = child.wall_time_s
                self.fit_time += child.wall_time_s
            shutil.rmtree(link_dir, ignore_errors=True)
            epochs.append(len(child.values))
        else:
            cli = self.runs.build(run_values, run_dir)
            cli.trainer.callbacks.append(FoldReporter(pruning, self.metric, tags))
            start = time.perf_counter()
            try:
                fit_or_stop(cli.trainer, self.stop, trial.number, False,
                            lambda: cli.trainer.fit(cli.model, datamodule=cli.datamodule))
            finally:
                self.last_fit_time = time.perf_counter() - start
                self.fit_time += self.last_fit_time
                finish_wandb_run()
            epochs.append(cli.trainer.current_epoch)
        if pruning.last_value is None:
            raise LitexpError("no validation ran; the study needs a validation epoch per training epoch")
        if pruning.pruned_at is not None:
            raise optuna.TrialPruned(f"pruned at fold {fold}, step {pruning.pruned_at}")
        if not math.isfinite(pruning.last_value):
            raise DivergedError(f"{self.metric} is {pruning.last_value} at the end of fold {fold}")
        return pruning.last_value


# -- workers --------------------------------------------------------------------------------------
def run_trials(study: optuna.Study, objective: Objective, options, wait_for_others: bool) -> None:
    """Start trials until N are finished or running; then (if waiting) until the others finish too."""
    start, stop = time.monotonic(), objective.stop
    while True:
        stop.check()
        fail_dead_trials(study, options.storage)
        counts = trial_counts(study)
        timed_out = options.timeout is not None and time.monotonic() - start >= options.timeout
        if counts["finished"] >= options.n_trials:
            return
        if counts["finished"] + counts["RUNNING"] < options.n_trials and not timed_out:
            objective.interrupted_trial = None
            study.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=False)
            stop.check(objective.interrupted_trial)
            if objective.failures_in_a_row >= FAILURES_IN_A_ROW:
                reason = " ".join(objective.last_failure.split())[:300]
                raise LitexpError(f"{objective.failures_in_a_row} trials in a row failed, the last with: {reason}; "
                                  "fix the cause and rerun the same command (the failed trials do not count)")
            continue
        if not wait_for_others or counts["RUNNING"] == 0:
            return
        stop.event.wait(POLL_S)


# -- after the search -----------------------------------------------------------------------------
def refit_and_test(options, runs: StudyRuns, study_dir: Path, params: dict[str, Any], stop: StopOnSignal,
                   devices: int = 1) -> dict[str, Any]:
    """Best parameters on the whole training split (no validation), then the test split once."""
    run_dir = study_dir / "refit" / "final"
    values = {**params, "data.num_folds": None, "data.val_fraction": 0.0, "run.root": str(study_dir),
              "run.name": "refit", "run.version": "final", "wandb.group": options.study_name,
              "wandb.name": f"{options.study_name}/refit"}
    stop.check(refit=True)
    if devices > 1:  # fit and test in the child's own processes (litexp fit --test)
        child = FoldProcess([*runs.fit_args(values), "--test"], run_dir, study_dir / "refit" / "link", stop)
        try:
            summary = child.run(lambda value, epoch: False)
        except Interrupted:
            raise Interrupted(stop.signum, None, True) from None
        shutil.rmtree(study_dir / "refit" / "link", ignore_errors=True)
        return {"metrics": summary["test"]["metrics"], "run_dir": str(run_dir)}
    cli = runs.build(values, run_dir, refit=True)
    try:
        fit_or_stop(cli.trainer, stop, None, True, lambda: cli.trainer.fit(cli.model, datamodule=cli.datamodule))
        stop.check(refit=True)
        results = fit_or_stop(cli.trainer, stop, None, True,
                              lambda: cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False))
    finally:
        finish_wandb_run()  # after the test, which logs into the refit's W&B run too
    return {"metrics": {key: float(value) for key, value in results[0].items()}, "run_dir": str(cli.run_dir)}


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
    if options.pruner_startup_trials < 0 or options.pruner_warmup_steps < 0:
        raise LitexpError("--pruner-startup-trials and --pruner-warmup-steps must be 0 or more, got "
                          f"{options.pruner_startup_trials} and {options.pruner_warmup_steps}")
    if options.heartbeat_interval < 1 or options.grace_period <= options.heartbeat_interval:
        raise LitexpError("--heartbeat-interval must be at least 1 and --grace-period longer than it, got "
                          f"{options.heartbeat_interval} and {options.grace_period}")


def tune(options, overrides: list[str], stop: StopOnSignal) -> int:
    study_defaults(options)
    wall_start = time.perf_counter()
    study_dir = Path(options.study_dir)
    space = load_search_space(options.search)
    base_args = [*RUN_DEFAULTS, *cli_args(space.fixed), *overrides]
    runs = StudyRuns(options.config, base_args)
    devices = devices_per_trial(runs.fit_config)
    if devices == 1 and runs.fit_config["trainer"].get("devices") in (None, "auto"):
        runs.pin({"trainer.devices": 1})  # Lightning's "auto" would take every GPU and relaunch the study
    check_with_cli(space, runs.check)
    metric = options.metric or runs.model.monitor
    direction = options.direction or ("maximize" if runs.model.monitor_mode == "max" else "minimize")
    logged = getattr(runs.model, "metrics", {})
    if not metric.startswith("val/") or (logged and metric not in logged):
        valid = ", ".join(name for name in logged if name.startswith("val/"))
        raise LitexpError(f"--metric must be a validation metric the task logs ({valid}), got {metric!r}")

    settings = study_settings(options, space, overrides, metric, direction)
    resolved = json.loads(json.dumps(runs.fit_config.clone().as_dict(), default=str))
    claim_study_dir(study_dir, options.study_name, options.storage, write=False)
    storage = open_storage(options.storage, study_dir, options.heartbeat_interval, options.grace_period)
    study = open_study(storage, options, settings, {"resolved_config": resolved, "config_files": options.config})
    claim_study_dir(study_dir, options.study_name, options.storage)
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=options.pruner_startup_trials,
                                          n_warmup_steps=options.pruner_warmup_steps)
              if options.pruner == "median" else optuna.pruners.NopPruner())
    study = optuna.load_study(study_name=options.study_name, storage=storage,
                              sampler=build_sampler(options.sampler, options.seed), pruner=pruner)
    for number in redo_interrupted_trials(study):
        print(f"litexp tune: trial {number} was interrupted; its parameters are trained again")
    objective = Objective(options, space, runs, study_dir, metric, stop, devices)
    run_trials(study, objective, options, wait_for_others=not options.no_refit)
    counts = trial_counts(study)
    print(f"litexp tune: study {options.study_name}: {counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
          f"{counts['FAIL']} failed")
    if options.no_refit:
        return 0
    if counts["COMPLETE"] == 0:
        raise LitexpError(f"study {options.study_name} has no completed trial; nothing to refit "
                          "(see the trials' 'fail_reason' attributes, e.g. in optuna-dashboard)")
    evaluations = study.user_attrs.get("test_evaluations", [])
    if evaluations and not options.retest:
        last, best = evaluations[-1], study.best_trial.number
        now = "" if best == last["best_trial"] else f"; the best trial is now {best}"
        print(f"litexp tune: the test split of study {options.study_name} was evaluated already (best trial "
              f"{last['best_trial']}, {last['finished_trials']} finished trials){now}; report: {last['report']}; "
              "pass --retest to refit and evaluate it again")
        return 0
    return write_final_report(options, study, study_dir, runs, metric, counts, wall_start, stop, devices)


def write_final_report(options, study, study_dir, runs: StudyRuns, metric, counts, wall_start, stop,
                       devices: int) -> int:
    earlier, moved = set_aside_outputs(study_dir)  # a report from --retest, or a refit an interrupt stopped
    if earlier is not None:
        print(f"litexp tune: earlier {', '.join(moved)} moved to {earlier}")
    best = study.best_trial
    # the plots only read the finished trials: a process of their own draws them while the refit trains
    plotter = subprocess.Popen([sys.executable, "-m", "experiments.study_report", options.storage or "-",
                                str(study_dir), options.study_name, metric],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        test = refit_and_test(options, runs, study_dir, best.params, stop, devices)
    except BaseException:
        plotter.kill()
        plotter.wait()
        raise
    out, err = plotter.communicate()
    if plotter.returncode != 0:
        reason = (err.strip().splitlines() or [f"exit status {plotter.returncode}"])[-1]
        raise LitexpError(f"drawing the study's plots failed: {reason}; rerun the same command to refit and "
                          "report again")
    plots = json.loads(out.strip().splitlines()[-1])
    evaluations = study.user_attrs.get("test_evaluations", [])
    test["evaluation"] = len(evaluations) + 1  # how often this study's test split has been evaluated
    storage = without_password(options.storage or default_storage(study_dir))
    report = {
        "study": {"name": options.study_name, "storage": storage,
                  "configs": options.config, "search": options.search, "metric": metric,
                  "direction": study.direction.name.lower(), "num_folds": options.folds, "sampler": options.sampler,
                  "seed": options.seed, "pruner": options.pruner, "n_trials": options.n_trials,
                  "settings": study.user_attrs.get("settings")},
        "best": {"number": best.number, "params": best.params, "value": best.value,
                 "std": best.user_attrs.get("fold_std"), "fold_values": best.user_attrs.get("fold_values"),
                 "fold_epochs": best.user_attrs.get("fold_epochs")},
        "test": test,
        "trials": counts,
        "time": {"wall_time_s_this_run": round(time.perf_counter() - wall_start, 2),
                 **compute_facts(study, options.folds)},
        "plots": plots,
    }
    write_report(study_dir, report)
    wandb_id = log_study(study, report, study_dir, runs.base_args)
    if wandb_id:
        print(f"litexp tune: W&B run {wandb_id} in group {options.study_name}: trials table, plots, test result")
    report_path = study_dir.resolve() / "report.md"
    study.set_user_attr("test_evaluations", [*evaluations, {
        "best_trial": best.number, "finished_trials": counts["finished"], "metrics": test["metrics"],
        "report": f"{socket.gethostname()}:{report_path}", "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}])
    print(f"litexp tune: best trial {best.number}: {metric} {best.value:.4f}; test {test['metrics']}; "
          f"report: {study_dir / 'report.md'}")
    return 0


# -- the command -----------------------------------------------------------------------------------
def main(argv: list[str]) -> int:
    with quiet_logging(), StopOnSignal() as stop:
        try:
            options, overrides = option_parser().parse_known_args(argv)
            if any(not arg.startswith("--") for arg in overrides[:1]):
                raise LitexpError(f"unexpected argument {overrides[0]!r}; "
                                  "fit overrides look like --trainer.max_epochs=3")
            return tune(options, overrides, stop)
        except LitexpError as error:
            print(f"litexp: error: {error}", file=sys.stderr)
            return 2
        except Interrupted as interrupt:
            sys.stdout.flush()
            print(f"litexp: interrupted: {interrupt}", file=sys.stderr)
            return 128 + interrupt.signum
