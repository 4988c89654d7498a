"""Stopping a fit cleanly on SIGINT (Ctrl-C) or SIGTERM, and the state that lets it resume exactly.

The first signal only sets a flag; the fit stops before its next training batch (or, during an
epoch's last batch or its validation, once that epoch has ended), ``checkpoints/last.ckpt`` holds
where it stopped, ``summary.json`` says ``"status": "interrupted"``, and ``litexp fit`` prints one
line and exits 130 (SIGINT) or 143 (SIGTERM). A second signal exits at once. Installed by the
``litexp fit`` command only: ``litexp tune`` has its own handling per trial.

What a checkpoint needs beyond Lightning's own state for a resumed fit to go on as if never
stopped: the global random generators (:class:`RandomState`), the training loader's position
(``datamodules.base.ResumableLoader``) and the epoch's training metrics so far (``Task``).
"""

from __future__ import annotations

import logging
import os
import random
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.exceptions import SIGTERMException


class Interrupted(BaseException):
    """Raised from a callback after the step in progress; BaseException, so no ``except Exception`` eats it."""

    def __init__(self, signum: int, epoch: int, step: int) -> None:
        self.signum, self.epoch, self.step = signum, epoch, step
        super().__init__(f"interrupted by {signal.Signals(signum).name} at epoch {epoch}, step {step}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class SignalFlag:
    """The first SIGINT/SIGTERM only sets ``signum`` (the work stops at its next check); a second exits at once.

    Nothing is raised from the handler itself: an exception raised at an arbitrary point (inside
    SQLAlchemy, a weakref callback, Lightning's own KeyboardInterrupt handling) can be swallowed or
    turn into ``exit(1)`` with the work half-recorded. Used as a context manager around the work.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)
    #: what a second signal prints before the process exits at once
    second_signal_message = b"litexp: interrupted again: stopped at once\n"

    def __init__(self) -> None:
        self.signum: Optional[int] = None
        self.previous: dict[int, Any] = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = {signum: signal.signal(signum, self.handle) for signum in self.SIGNALS}
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def handle(self, signum: int, frame) -> None:
        if self.signum is not None:
            os.write(2, self.second_signal_message)
            os._exit(128 + signum)
        self.signum = signum
        self.on_signal()

    def on_signal(self) -> None:
        """Called once, by the first signal (e.g. to wake a waiting worker)."""


class StopOnSignal(SignalFlag, Callback):
    """The first SIGINT/SIGTERM stops the fit at the next batch border; a second exits at once.

    Where it stops is where a resumed fit can go on exactly: before the next training batch in the
    middle of an epoch (``last.ckpt`` is written then), or, when the signal comes during an epoch's
    last training batch or its validation, once that epoch has ended (its validation, logs and
    epoch-end ``last.ckpt`` complete) as the next one would start.
    """

    second_signal_message = b"litexp: interrupted again: stopped at once, without a checkpoint\n"

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.stopped: Optional[Interrupted] = None  # how the fit stopped, once it has
        self._at_epoch_start = False
        self._saving = False  # writing last.ckpt for a stop before a batch

    def _check(self, trainer, at_epoch_start: bool = False) -> None:
        if self.signum is not None:
            self._at_epoch_start = at_epoch_start
            raise Interrupted(self.signum, trainer.current_epoch, trainer.global_step)

    def _take_signals_back(self) -> None:
        """Lightning puts its own SIGTERM handler in front of ours as a fit starts (and stops mid-validation,
        where no fit can resume exactly); ours decides where a fit stops. Lightning restores ours at its end."""
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                signal.signal(signum, self.handle)

    def on_sanity_check_start(self, trainer, pl_module):
        self._take_signals_back()

    def on_train_start(self, trainer, pl_module):
        self._take_signals_back()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        # before the next batch, once the last one is logged: a signal during an epoch's last batch or
        # its validation lets that epoch end (validation, logs, last.ckpt) and stops as the next starts
        self._check(trainer)

    def on_train_epoch_start(self, trainer, pl_module):
        self._check(trainer, at_epoch_start=True)

    def on_exception(self, trainer, pl_module, exception):
        # Lightning's own SIGTERM handling may stop the loop first, between two of our checks
        if not isinstance(exception, (Interrupted, SIGTERMException)):
            return
        self.stopped = exception if isinstance(exception, Interrupted) else Interrupted(
            signal.SIGTERM, trainer.current_epoch, trainer.global_step)
        # at an epoch's start the previous epoch's last.ckpt (or none, before the first) is where to resume
        at_epoch_start = self._at_epoch_start and isinstance(exception, Interrupted)
        if trainer.is_global_zero and not at_epoch_start:
            self._saving = True
            try:
                trainer.save_checkpoint(self.run_dir / "checkpoints" / "last.ckpt", weights_only=False)
            finally:
                self._saving = False

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        if self._saving:
            # Lightning counts a restart as coming from the end of a batch, one logged step short of
            # where a stop before the next batch is: without this, every later step would log one late
            loop = checkpoint["loops"]["fit_loop"]["epoch_loop.state_dict"]
            loop["_batches_that_stepped"] = max(0, loop["_batches_that_stepped"] - 1)


def random_states() -> dict[str, Any]:
    """The global generators of torch (and CUDA), NumPy and Python, as plain values a weights-only load reads."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    version, python_state, python_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(position), int(has_gauss),
                  float(gauss)],
        "python": [version, list(python_state), python_gauss],
    }


def set_random_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states.get("cuda") and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    kind, keys, position, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    version, python_state, python_gauss = states["python"]
    random.setstate((version, tuple(python_state), python_gauss))


class RandomState(Callback):
    """Keeps the global random generators in every checkpoint; a resumed fit restores them as it starts training.

    Restored in ``on_train_start``: after the sanity check, so that a resumed fit's dropout masks and
    augmentations continue the stream of the fit it resumes (loaders draw from their own generators).
    """

    def __init__(self) -> None:
        self._restore: Optional[dict[str, Any]] = None

    def state_dict(self) -> dict[str, Any]:
        return {"random": random_states()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restore = state_dict.get("random")

    def on_train_start(self, trainer, pl_module) -> None:
        if self._restore is not None:
            set_random_states(self._restore)
            self._restore = None


def end_other_rank(code: int) -> None:
    """A DDP rank other than 0, its command done: leave the process now with ``code`` (returns on rank 0).

    Past this point such a rank has nothing left to write (rank 0 writes every file and the W&B run),
    but interpreter shutdown can still kill it: the process group's threads, torn down as the
    interpreter exits, at times abort it ("terminate called without an active exception", exit -6).
    Lightning's launcher on rank 0 then takes the finished rank for a crashed one and kills rank 0
    too (SIGKILL), mid-way through its last writes. So the rank flushes its output and exits with
    ``os._exit``, without that teardown.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    if torch.distributed.get_rank() == 0:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)
