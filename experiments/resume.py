"""Resuming a run in place: ``litexp fit --resume <run dir>``.

A fit that was interrupted (Ctrl-C, SIGTERM), killed (SIGKILL, a lost machine) or that finished and
should train longer (``--trainer.max_epochs`` raised) continues from its ``checkpoints/last.ckpt``
with its own ``config.yaml``, in its own directory: ``metrics.csv`` keeps the rows logged before
that checkpoint and gets the rest appended, ``summary.json`` is rewritten, and the same W&B run is
resumed (its id is kept in ``summary.json``). Rows logged after the checkpoint (the part of an epoch
a SIGKILL cut short) are dropped: the resumed fit logs them again, from the same state.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from experiments.evaluation import option_value
from litexp.errors import LitexpError

#: options a resumed fit may still take; anything else would change the run it continues
RESUME_OPTIONS = ("--trainer.max_epochs", "--trainer.max_steps", "--trainer.max_time",
                  "--trainer.enable_progress_bar", "--trainer.enable_model_summary", "--wandb.mode", "--test",
                  "--no_test", "--quiet", "--no_quiet")


@dataclass
class ResumePoint:
    """Where a resumed run goes on: its directory, its checkpoint and what that checkpoint had done."""

    run_dir: Path
    checkpoint: Path
    epoch: int  # epoch the checkpoint was written in (0-based)
    global_step: int  # optimizer steps done at the checkpoint
    epoch_done: bool  # written once the epoch's training batches were all done
    wandb_id: Optional[str] = None

    def keeps(self, row: dict[str, str]) -> bool:
        """Whether a metrics.csv row was logged before the checkpoint (the resumed fit does not log it again)."""
        try:
            epoch, step = int(float(row.get("epoch") or -1)), int(float(row.get("step") or -1))
        except ValueError:
            return False
        if epoch < self.epoch:
            return True
        if epoch > self.epoch:
            return False
        return self.epoch_done or step < self.global_step


def read_resume_point(run_dir: Path) -> ResumePoint:
    checkpoint_path = run_dir / "checkpoints" / "last.ckpt"
    if not (run_dir / "config.yaml").is_file():
        raise LitexpError(f"cannot resume {run_dir}: it has no config.yaml; give the directory of a litexp fit run")
    if not checkpoint_path.is_file():
        raise LitexpError(f"cannot resume {run_dir}: it has no checkpoints/last.ckpt (it stopped before its first "
                          f"epoch ended); start it again with litexp fit --config {run_dir}/config.yaml")
    try:
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same one line
        raise LitexpError(f"cannot resume {run_dir}: checkpoints/last.ckpt is unreadable "
                          f"({type(error).__name__}); the run cannot continue from it") from None
    fit_loop = checkpoint.get("loops", {}).get("fit_loop", {})
    loaders = fit_loop.get("state_dict", {}).get("combined_loader") or [{}]
    epoch_done = loaders[0].get("epoch_done", fit_loop.get("epoch_loop.batch_progress", {}).get("is_last_batch", True))
    summary = read_summary(run_dir)
    return ResumePoint(run_dir=run_dir, checkpoint=checkpoint_path, epoch=int(checkpoint.get("epoch", 0)),
                       global_step=int(checkpoint.get("global_step", 0)),
                       epoch_done=bool(epoch_done),
                       wandb_id=(summary.get("wandb") or {}).get("id"))


def read_summary(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return {}


def resume_arguments(argv: list[str]) -> tuple[list[str], Optional[ResumePoint]]:
    """``fit --resume <run> [...]`` -> ``fit --config <run>/config.yaml [...] --ckpt_path=<its last.ckpt>``.

    One line of error when the run cannot be resumed or an option would change it.
    """
    index, value = option_value(argv, "--resume")
    if index is None:
        if "--resume" in argv:
            raise LitexpError("--resume needs a run directory, e.g. litexp fit --resume runs/<name>/<version>")
        return argv, None
    run_dir = Path(value)
    if not run_dir.is_dir():
        raise LitexpError(f"cannot resume {run_dir}: no such run directory")
    rest = [*argv[1:index], *argv[index + (1 if "=" in argv[index] else 2):]]
    others = [arg.split("=", 1)[0] for arg in rest if arg.startswith("-")]
    refused = [arg for arg in others if arg not in RESUME_OPTIONS]
    if refused:
        raise LitexpError(f"--resume continues {run_dir} as it was configured and cannot take {refused[0]}; "
                          f"to change it, start a new run: litexp fit --config {run_dir}/config.yaml {refused[0]} ... "
                          f"--ckpt_path {run_dir}/checkpoints/last.ckpt")
    point = read_resume_point(run_dir)
    summary = read_summary(run_dir)
    longer = any(arg in ("--trainer.max_epochs", "--trainer.max_steps", "--trainer.max_time") for arg in others)
    if summary.get("status") == "completed" and not longer:
        raise LitexpError(f"cannot resume {run_dir}: it completed; to train it longer, raise --trainer.max_epochs "
                          f"(e.g. litexp fit --resume {run_dir} --trainer.max_epochs=20)")
    return [argv[0], "--config", str(run_dir / "config.yaml"), *rest, f"--ckpt_path={point.checkpoint}"], point


def kept_metric_rows(point: ResumePoint) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows) of the run's metrics.csv logged before the resumed checkpoint."""
    path = point.run_dir / "metrics.csv"
    if not path.is_file():
        return [], []
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        rows = [row for row in reader if point.keeps(row)]
        return list(reader.fieldnames or []), rows
