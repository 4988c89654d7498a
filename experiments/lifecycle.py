"""Stopping a fit cleanly on SIGINT (Ctrl-C) or SIGTERM.

The first signal only sets a flag; the fit stops after the step (or validation batch) in progress,
``checkpoints/last.ckpt`` is written, ``summary.json`` says ``"status": "interrupted"``, and
``litexp fit`` prints one line and exits 130 (SIGINT) or 143 (SIGTERM). A second signal exits at
once. Installed by the ``litexp fit`` command only: ``litexp tune`` has its own handling per trial.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any, Optional

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
    """The first SIGINT/SIGTERM stops the fit at the next batch border; a second exits at once."""

    second_signal_message = b"litexp: interrupted again: stopped at once, without a checkpoint\n"

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.stopped: Optional[Interrupted] = None  # how the fit stopped, once it has

    def _check(self, trainer) -> None:
        if self.signum is not None:
            raise Interrupted(self.signum, trainer.current_epoch, trainer.global_step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._check(trainer)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if not trainer.sanity_checking:
            self._check(trainer)

    def on_train_epoch_end(self, trainer, pl_module):
        self._check(trainer)

    def on_exception(self, trainer, pl_module, exception):
        # Lightning's own SIGTERM handling may stop the loop first, between two of our checks
        if not isinstance(exception, (Interrupted, SIGTERMException)):
            return
        self.stopped = exception if isinstance(exception, Interrupted) else Interrupted(
            signal.SIGTERM, trainer.current_epoch, trainer.global_step)
        if trainer.is_global_zero:
            trainer.save_checkpoint(self.run_dir / "checkpoints" / "last.ckpt", weights_only=False)
