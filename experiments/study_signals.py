"""Stopping a study cleanly: the first SIGINT (Ctrl-C) or SIGTERM, and what the user then sees on stderr.

The first signal only sets a flag; the study checks it before each trial and fold and at every
batch (:class:`StopCheck`), so the running fold ends at its next batch, the trial is recorded as
interrupted, and ``litexp tune`` prints one line and exits 128 + the signal number. A second
signal exits at once.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import warnings
from typing import Iterator, Optional

import optuna
from lightning.pytorch.callbacks import Callback

from experiments.lifecycle import SignalFlag
from litexp.errors import LitexpError


class Interrupted(Exception):
    """A SIGINT or SIGTERM asked the study to stop; ``trial`` is the trial it stopped (None: between trials)."""

    def __init__(self, signum: int, trial: Optional[int] = None, refit: bool = False) -> None:
        self.signum, self.trial, self.refit = signum, trial, refit
        if refit:
            what = "the refit stopped before the test split was evaluated; rerun the same command to refit"
        elif trial is None:
            what = "no trial was running; rerun the same command to continue"
        else:
            what = f"trial {trial} will be redone; rerun the same command to continue"
        super().__init__(what)


class StopOnSignal(SignalFlag):
    """The first SIGINT/SIGTERM stops the study at its next check (before each trial, fold and batch)."""

    second_signal_message = b"litexp: interrupted again: stopped at once; a rerun marks the running trial failed\n"

    def __init__(self) -> None:
        super().__init__()
        self.event = threading.Event()  # wakes a worker waiting for others' trials

    def on_signal(self) -> None:
        self.event.set()

    def check(self, trial: Optional[int] = None, refit: bool = False) -> None:
        if self.signum is not None:
            raise Interrupted(self.signum, trial, refit)


class StopCheck(Callback):
    """Ends a fit, validation or test at its next batch once a stop was asked for."""

    def __init__(self, stop: StopOnSignal, trial: Optional[int] = None, refit: bool = False) -> None:
        self.stop, self.trial, self.refit = stop, trial, refit

    def _check(self, *args, **kwargs) -> None:
        self.stop.check(self.trial, self.refit)

    on_fit_start = on_train_batch_start = on_validation_batch_start = on_test_batch_start = _check



# -- what the user sees on stderr -----------------------------------------------------------------
class OptunaLogFormat(logging.Formatter):
    """Optuna's messages, one line each; a failed trial's traceback only when it is a bug (not a LitexpError)."""

    def format(self, record: logging.LogRecord) -> str:
        message = f"[optuna] {record.getMessage()}"
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and not isinstance(error, LitexpError):
            message += "\n" + self.formatException(record.exc_info)
        return message


class CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now (a handler made once outlives redirections)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def not_an_interrupt(record: logging.LogRecord) -> bool:
    """The interrupted trial is reported by the one line ``main`` prints, not by Optuna's failure log
    (nor by the second line Optuna logs for every failed trial: "failed with value None")."""
    if record.exc_info and isinstance(record.exc_info[1], Interrupted):
        return False
    return not record.getMessage().endswith("failed with value None.")


@contextlib.contextmanager
def quiet_logging() -> Iterator[None]:
    """Optuna's log as one-line messages, Lightning's info lines off, two known warnings off; all as they
    were again on exit (``litexp tune`` called from Python leaves the caller's logging as it found it)."""
    optuna_logger = logging.getLogger("optuna")
    verbosity, handlers = optuna.logging.get_verbosity(), list(optuna_logger.handlers)
    lightning_levels = {name: logging.getLogger(name).level for name in ("lightning.pytorch", "lightning.fabric")}
    with warnings.catch_warnings():
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if not any(isinstance(handler.formatter, OptunaLogFormat) for handler in handlers):
            optuna.logging.disable_default_handler()
            handler = CurrentStderr()
            handler.setFormatter(OptunaLogFormat())
            handler.addFilter(not_an_interrupt)
            optuna_logger.addHandler(handler)
        for name in lightning_levels:  # no banner or "Seed set" per fold
            logging.getLogger(name).setLevel(logging.WARNING)
        warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter.*")
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats
        try:
            yield
        finally:
            for handler in list(optuna_logger.handlers):  # the caller's handlers, in the caller's order
                optuna_logger.removeHandler(handler)
            for handler in handlers:
                optuna_logger.addHandler(handler)
            optuna.logging.set_verbosity(verbosity)
            for name, level in lightning_levels.items():
                logging.getLogger(name).setLevel(level)
