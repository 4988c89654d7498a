"""A trial on several devices: each fold is a child ``litexp fit`` process group that Lightning launches.

The study stays in its own process (storage, sampler, pruner); the ranks train. Each fold runs
``python -m experiments fit <the run's arguments>`` with ``--trainer.devices=N
--trainer.strategy=ddp`` in a child process, from which Lightning starts the other N-1 ranks. A
:class:`TrialLink` callback on every rank ties the fold to its trial through small files in a link
folder next to the run directory:

- after each validation epoch rank 0 writes ``epoch<e>.json`` (the fold metric, already synced
  across ranks) and waits for ``answer<e>``, which the study writes once it has reported the running
  fold mean to the pruner (so a fold never runs ahead of the pruner's decision);
- rank 0 broadcasts the answer: when the trial is pruned every rank stops after the same epoch.

The child runs in its own session: the study passes on the first SIGINT/SIGTERM itself (the fold
stops at its next batch, as any ``litexp fit`` does), and a child whose study is gone stops too.
A child that fails fails the trial with its last error line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger

from litexp.errors import DivergedError, LitexpError

POLL_S = 0.01  # how often the study looks for a fold's epoch line, and rank 0 for the study's answer
PRUNE, GO = "prune", "go"


def write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text(text)
    os.replace(partial, path)


class TrialLink(Callback):
    """In a fold's ranks: the fold metric to the study after every validation epoch, its answer to every rank."""

    def __init__(self, link_dir: str, metric: str, tags: Optional[dict[str, Any]] = None,
                 study_pid: int = 0) -> None:
        self.link_dir, self.metric, self.tags = Path(link_dir), metric, tags or {}
        self.study_pid = study_pid or os.getppid()

    def setup(self, trainer, pl_module, stage: str) -> None:
        datamodule = getattr(trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "lock_test_split"):
            datamodule.lock_test_split()  # a search's fold never reads the test split

    def on_fit_start(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    logger.experiment.config.update(self.tags, allow_val_change=True)

    def study_alive(self) -> bool:
        return os.getppid() == self.study_pid  # rank 0 is the study's child; re-parented once the study died

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.is_global_zero and batch_idx % 50 == 0 and not self.study_alive():
            raise LitexpError("the study that started this fold has stopped; the fold stops too")

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        answer = GO
        if trainer.is_global_zero:
            answer = self.ask_study(trainer)
        answer = trainer.strategy.broadcast(answer, src=0)
        if answer == PRUNE:
            trainer.should_stop = True
        elif answer != GO:
            raise LitexpError(answer)

    def ask_study(self, trainer) -> str:
        if self.metric not in trainer.callback_metrics:
            return f"metric {self.metric!r} was not logged; logged: {', '.join(trainer.callback_metrics)}"
        epoch = trainer.current_epoch
        value = float(trainer.callback_metrics[self.metric])
        write_atomically(self.link_dir / f"epoch{epoch}.json", json.dumps({"epoch": epoch, "value": value}))
        answer = self.link_dir / f"answer{epoch}"
        while not answer.exists():
            if not self.study_alive():
                return "the study that started this fold has stopped; the fold stops too"
            time.sleep(POLL_S)
        return answer.read_text().strip()


def link_callback_arg(link_dir: Path, metric: str, tags: dict[str, Any]) -> str:
    """``--trainer.callbacks+=...``: the link added to whatever callbacks the configs give."""
    spec = {"class_path": f"{__name__}.TrialLink",
            "init_args": {"link_dir": str(link_dir), "metric": metric, "tags": tags, "study_pid": os.getpid()}}
    return f"--trainer.callbacks+={json.dumps(spec)}"


class FoldProcess:
    """One fold (or the refit) in its own processes; ``run`` reports each epoch through ``on_epoch``."""

    def __init__(self, args: list[str], run_dir: Path, link_dir: Path, stop) -> None:
        self.args, self.run_dir, self.link_dir, self.stop = args, run_dir, link_dir, stop
        self.values: list[float] = []
        self.wall_time_s = 0.0

    def run(self, on_epoch: Callable[[float, int], bool]) -> dict[str, Any]:
        """Run the child to its end; ``on_epoch(value, epoch)`` -> prune? Returns the run's summary.json."""
        self.link_dir.mkdir(parents=True, exist_ok=True)
        env = {key: value for key, value in os.environ.items() if key != "LITEXP_RUN_DIR"}
        log = self.link_dir / "stderr.txt"
        start = time.perf_counter()
        with open(log, "w") as stderr:
            child = subprocess.Popen([sys.executable, "-m", "experiments", *self.args], stdout=subprocess.DEVNULL,
                                     stderr=stderr, env=env, start_new_session=True)
            try:
                self._follow(child, on_epoch)
            except BaseException:
                self._end(child, signal.SIGTERM)
                raise
            finally:
                self.wall_time_s = time.perf_counter() - start
        if child.returncode != 0:
            if self.stop.signum is not None:
                self.stop.check()  # raises Interrupted
            raise self._failure(child.returncode, log)
        summary = self.run_dir / "summary.json"
        return json.loads(summary.read_text()) if summary.exists() else {}

    def _follow(self, child: subprocess.Popen, on_epoch: Callable[[float, int], bool]) -> None:
        epoch, passed_on = 0, False
        while True:
            if self.stop.signum is not None and not passed_on:
                child.send_signal(self.stop.signum)  # the fold stops at its next batch, as litexp fit does
                passed_on = True
            line = self.link_dir / f"epoch{epoch}.json"
            if line.exists():
                value = json.loads(line.read_text())["value"]
                self.values.append(value)
                prune = on_epoch(value, epoch) and not passed_on
                write_atomically(self.link_dir / f"answer{epoch}", PRUNE if prune else GO)
                epoch += 1
                continue
            if child.poll() is not None:
                return
            self.stop.event.wait(POLL_S)

    @staticmethod
    def _end(child: subprocess.Popen, signum: int) -> None:
        if child.poll() is None:
            child.send_signal(signum)
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()

    @staticmethod
    def _failure(returncode: int, log: Path) -> Exception:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("litexp: error:")]
        last = (errors or lines or [f"exit status {returncode}"])[-1].removeprefix("litexp: error:").strip()
        message = f"the fold's litexp fit failed (exit {returncode}): {last}; its output: {log}"
        return DivergedError(message) if last.startswith("training loss is") else LitexpError(message)
