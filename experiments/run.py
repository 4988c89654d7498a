"""Everything a run leaves behind: its directory, loggers, checkpoints and ``summary.json``.

Layout of one run: ``<root>/<name>/<version>/`` with ``config.yaml`` (resolved config),
``metrics.csv`` (CSV logger), ``checkpoints/{best,last}.ckpt``, ``summary.json`` and, when W&B is
on, ``wandb/``. Only global rank 0 writes files or opens a W&B run.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import netrc
import os
import platform
import shutil
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, Optional

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import BasePredictionWriter, Callback, ModelCheckpoint
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from lightning.pytorch.profilers import PassThroughProfiler

from litexp.errors import DivergedError, LitexpError

RUN_DIR_ENV = "LITEXP_RUN_DIR"  # shared by every rank of one run (set for Lightning-launched ranks)


@dataclass
class RunOptions:
    """Where the run directory goes: ``<root>/<name>/<version>``; an existing one is never reused unless asked."""

    root: str = "runs"  # --trainer.default_root_dir sets it too
    name: Optional[str] = None  # default: "<network>-<data class>"
    version: Optional[str] = None  # default: a timestamp
    overwrite: bool = False  # replace an existing <root>/<name>/<version> (its old files are deleted first)


def check_plain_name(option: str, value: Optional[str]) -> None:
    """``run.name`` / ``run.version`` name one folder: no separators, no ``..``, nothing hidden."""
    if value is None:
        return
    if not value or value != value.strip() or any(sep in value for sep in ("/", "\\", "\0")) or value.startswith("."):
        raise LitexpError(f"--run.{option} must be a plain folder name (no '/', no '..', not empty or hidden), "
                          f"got {value!r}")


@dataclass
class WandbOptions:
    """Weights & Biases: ``auto`` is online when logged in, offline otherwise; never a prompt."""

    mode: Literal["auto", "online", "offline", "disabled"] = "auto"
    project: str = "litexp"
    entity: Optional[str] = None
    group: Optional[str] = None
    name: Optional[str] = None  # default: "<run name>/<version>"


def new_run_dir(options: RunOptions, default_name: str, root: Optional[str] = None, claim: bool = True) -> Path:
    """A fresh, not yet created run directory (``RUN_DIR_ENV`` wins: all ranks share one).

    A timestamped version gets a suffix when taken; a version the user named must be free, unless
    ``overwrite`` asks to delete the old run first. ``claim=False`` is for a rank other than global
    rank 0 that was started on its own (on another node, by torchrun or srun): global rank 0 owns the
    directory, so this one deletes nothing and claims no timestamp (the path it names without a
    version is never written); it still refuses a taken version, as rank 0 does, so that every rank
    stops instead of waiting for rank 0.
    """
    if os.environ.get(RUN_DIR_ENV):
        return Path(os.environ[RUN_DIR_ENV])
    check_plain_name("name", options.name)
    check_plain_name("version", options.version)
    base = Path(root or options.root) / (options.name or default_name)
    if options.version is not None:
        candidate = base / options.version
        if candidate.exists() and any(candidate.iterdir()):
            if not options.overwrite:
                raise LitexpError(f"run directory {candidate} exists; choose another --run.version (or leave it out "
                                  f"for a timestamp), or pass --run.overwrite true to replace it")
            if claim:
                shutil.rmtree(candidate)
        return candidate
    if not claim:  # rank 0's timestamp names the run; this rank writes nothing there
        return base / time.strftime("%Y%m%d-%H%M%S")
    version = time.strftime("%Y%m%d-%H%M%S")
    candidate, suffix = base / version, 1
    while candidate.exists():
        candidate, suffix = base / f"{version}-{suffix}", suffix + 1
    return candidate


def wandb_logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].split("/")[0]
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def resolve_wandb_mode(mode: str) -> str:
    """``auto`` -> ``online`` with credentials, else ``offline``; ``WANDB_MODE`` in the env wins."""
    if os.environ.get("WANDB_MODE") in ("online", "offline", "disabled"):
        return os.environ["WANDB_MODE"]
    if mode == "auto":
        return "online" if wandb_logged_in() else "offline"
    return mode


class RunCSVLogger(CSVLogger):
    """Lightning's CSV logger writing ``<run>/metrics.csv``; a resumed run starts it with the rows it keeps.

    (Lightning's own writer deletes an existing metrics.csv when it starts.)
    """

    def __init__(self, run_dir: Path, kept: Optional[tuple[list[str], list[dict[str, str]]]] = None) -> None:
        super().__init__(save_dir=str(run_dir), name="", version="")
        self._kept = kept

    @property
    def experiment(self):
        writer = super().experiment
        if self._kept is not None:
            header, rows = self._kept
            self._kept = None
            if header:
                with open(writer.metrics_file_path, "w", newline="") as handle:
                    csv_writer = csv.DictWriter(handle, fieldnames=header)
                    csv_writer.writeheader()
                    csv_writer.writerows(rows)
                writer.metrics_keys = list(header)
        return writer


class RunWandbLogger(WandbLogger):
    """Lightning's W&B logger without the ``anonymous`` setting it always passes (W&B warns that the
    setting has no effect any more)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._wandb_init.pop("anonymous", None)


def build_loggers(run_dir: Path, options: WandbOptions, run_label: str, resume=None,
                  tags: Optional[list[str]] = None) -> list[Logger]:
    """CSV (always) and W&B (unless disabled, with ``tags``); ``resume`` (a ``ResumePoint``) continues the run's
    own logs."""
    from experiments.resume import kept_metric_rows

    loggers: list[Logger] = [RunCSVLogger(run_dir, kept_metric_rows(resume) if resume else None)]
    mode = resolve_wandb_mode(options.mode)
    if mode != "disabled":
        os.environ.setdefault("WANDB_SILENT", "true")
        same_run = {"id": resume.wandb_id, "resume": "allow"} if resume is not None and resume.wandb_id else {}
        loggers.append(
            RunWandbLogger(
                project=options.project,
                entity=options.entity,
                group=options.group,
                name=options.name or run_label,
                save_dir=str(run_dir),
                mode=mode,
                tags=tags,
                settings={"init_timeout": 60, "console": "off"},
                **same_run,
            )
        )
    return loggers


def build_checkpoints(run_dir: Path, module: pl.LightningModule, has_validation: bool) -> list[ModelCheckpoint]:
    """``best.ckpt`` (by the task's monitor; every epoch without validation) and ``last.ckpt`` (every epoch).

    With a monitor, ``last.ckpt`` has its own callback: Lightning's ``save_last`` writes it only in
    epochs where the monitored checkpoint was saved too, so it could lag epochs behind the fit it
    should resume. Without one, the best checkpoint is written every epoch and ``save_last`` with it.
    """
    monitor = getattr(module, "monitor", None) if has_validation else None
    best = ModelCheckpoint(
        dirpath=str(run_dir / "checkpoints"),
        filename="best",
        monitor=monitor,
        mode=getattr(module, "monitor_mode", "min"),
        save_last=monitor is None,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    if monitor is None:
        return [best]
    last = ModelCheckpoint(dirpath=str(run_dir / "checkpoints"), filename="last", monitor=None, save_top_k=1,
                           auto_insert_metric_name=False, enable_version_counter=False)
    return [best, last]


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("litexp", "torch", "torchvision", "lightning", "torchmetrics", "optuna", "wandb"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions


def device_description(trainer: pl.Trainer) -> dict[str, Any]:
    root = trainer.strategy.root_device
    name = torch.cuda.get_device_name(root) if root.type == "cuda" else platform.processor() or "cpu"
    return {
        "accelerator": root.type,
        "name": name,
        "devices": trainer.num_devices,
        "num_nodes": trainer.num_nodes,
        "world_size": trainer.world_size,
        "strategy": type(trainer.strategy).__name__,
        "precision": str(trainer.precision),
    }


def scalar_metrics(trainer: pl.Trainer, prefixes: tuple[str, ...]) -> dict[str, float]:
    return {
        key: float(value)
        for key, value in sorted(trainer.callback_metrics.items())
        if key.startswith(prefixes) and torch.as_tensor(value).numel() == 1
    }


class DivergenceGuard(Callback):
    """Stops a fit at the first non-finite training loss, with one line that names the step.

    A scalar loss is read with one ``item()`` (one tensor operation; ``isfinite().all()`` took three).
    """

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        loss = loss.detach()
        finite = math.isfinite(loss.item()) if loss.numel() == 1 else bool(torch.isfinite(loss).all())
        if not finite:
            raise DivergedError(f"training loss is {float(loss.detach().float().mean())} at step {trainer.global_step} "
                                f"(epoch {trainer.current_epoch}); lower --model.lr or check the data")


class NoProfiler(PassThroughProfiler):
    """Lightning's default profiler, which records nothing, without a context manager made per call.

    Lightning wraps every hook call in ``trainer.profiler.profile(name)``: about 60 calls per batch
    with litexp's callbacks. ``PassThroughProfiler`` makes each a generator-based context manager
    that does nothing (0.07 ms per step on the softmax bench, see README "Benchmarks"); this one hands out
    one shared null context. litexp uses it where ``--trainer.profiler`` is not set.
    """

    _nothing = contextlib.nullcontext()

    def profile(self, action_name: str) -> contextlib.AbstractContextManager:
        return self._nothing


def finite_or_none(value: Any) -> Any:
    """JSON has no NaN or infinity: such floats are written as null, everywhere in a nested value."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(item) for item in value]
    return value


class RunSummary(Callback):
    """Writes ``summary.json``: status, final metrics, epochs, epoch times, seed, versions, device, split.

    ``status`` is ``running`` from the fit's start (a run killed outright keeps it), ``completed``
    after a fit that ran to its end, ``interrupted`` after SIGINT/SIGTERM, ``diverged`` when the
    training loss stopped being finite (``fit.error`` names the step), ``failed`` after any other
    error. With W&B on, ``wandb.id`` names its W&B run (``litexp fit --resume`` continues that run).
    """

    def __init__(self, run_dir: Path, seed: Optional[int], command: str) -> None:
        self.run_dir = Path(run_dir)
        self.seed = seed
        self.command = command
        self.summary: dict[str, Any] = {}
        self.epoch_times: list[float] = []
        self._fit_start = self._epoch_start = self._earlier_wall_time = 0.0

    def state_dict(self) -> dict[str, Any]:  # kept in checkpoints: a resumed fit reports every epoch's time
        return {"epoch_times": list(self.epoch_times), "wall_time_s": self._elapsed()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.epoch_times = list(state_dict.get("epoch_times", []))
        self._earlier_wall_time = float(state_dict.get("wall_time_s", 0.0))

    def _elapsed(self) -> float:
        """Seconds of fitting, those before a resume included."""
        now = time.perf_counter() - self._fit_start if self._fit_start else 0.0
        return self._earlier_wall_time + now

    def on_fit_start(self, trainer, pl_module):
        self._fit_start = time.perf_counter()
        # "running" until the fit ends: a run killed outright still says what it was (and its W&B id)
        self._record_fit(trainer, status="running")
        self._write(trainer, pl_module)

    def on_train_epoch_start(self, trainer, pl_module):
        self._epoch_start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        self.epoch_times.append(time.perf_counter() - self._epoch_start)

    def on_fit_end(self, trainer, pl_module):
        self._record_fit(trainer, status="completed")
        self._write(trainer, pl_module)

    def on_exception(self, trainer, pl_module, exception):
        if trainer.state.fn != "fit":
            return
        interrupted = isinstance(exception, KeyboardInterrupt) or type(exception).__name__ in ("Interrupted",
                                                                                                 "SIGTERMException")
        status = "diverged" if isinstance(exception, DivergedError) else "interrupted" if interrupted else "failed"
        self._record_fit(trainer, status=status, error=str(exception).splitlines()[0] if str(exception) else None)
        self._write(trainer, pl_module)

    def _record_fit(self, trainer, status: str, error: Optional[str] = None) -> None:
        checkpoint = trainer.checkpoint_callback
        best_score = getattr(checkpoint, "best_model_score", None)
        self.summary["status"] = status
        self.summary.update(
            fit={
                "metrics": scalar_metrics(trainer, ("train/", "val/")),
                "epochs": trainer.current_epoch,
                "global_steps": trainer.global_step,
                "wall_time_s": round(self._elapsed(), 3),
                "epoch_times_s": [round(t, 3) for t in self.epoch_times],
                "best_checkpoint": getattr(checkpoint, "best_model_path", None) or None,
                "best_score": float(best_score) if best_score is not None else None,
                "monitor": getattr(checkpoint, "monitor", None),
                **({"error": error} if error else {}),
            }
        )

    def on_validation_end(self, trainer, pl_module):
        if trainer.state.fn == "validate":
            self.summary["validate"] = {"metrics": scalar_metrics(trainer, ("val/",))}
            self._write(trainer, pl_module)

    def on_test_end(self, trainer, pl_module):
        self.summary["test"] = {
            "metrics": scalar_metrics(trainer, ("test/",)),
            "checkpoint": trainer.ckpt_path,
        }
        self._write(trainer, pl_module)

    def _write(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        datamodule = trainer.datamodule
        self.summary.update(
            command=self.command,
            run_dir=str(self.run_dir),
            seed=self.seed,
            model={"class": type(pl_module).__name__, **_call_summary(pl_module)},
            data=_call_summary(datamodule),
            versions=library_versions(),
            device=device_description(trainer),
        )
        wandb = next((logger for logger in trainer.loggers if isinstance(logger, WandbLogger)), None)
        if wandb is not None and wandb.version:
            self.summary["wandb"] = {"id": wandb.version, "project": wandb.name}
        self.run_dir.mkdir(parents=True, exist_ok=True)
        partial = self.run_dir / "summary.json.partial"
        partial.write_text(json.dumps(finite_or_none(self.summary), indent=2, default=str, allow_nan=False) + "\n")
        os.replace(partial, self.run_dir / "summary.json")


def _call_summary(obj) -> dict[str, Any]:
    summary = getattr(obj, "summary", None)
    return summary() if callable(summary) else {}


class ConfigToLoggers(SaveConfigCallback):
    """Saves the resolved ``config.yaml`` in the run directory and sends it to W&B."""

    def save_config(self, trainer, pl_module, stage) -> None:
        config = self.config.clone().as_dict()
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.config.update(config, allow_val_change=True)


class PredictionCSV(BasePredictionWriter):
    """Writes ``predictions.csv`` (one row per sample of the predicted split) into the run dir."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(write_interval="epoch")
        self.run_dir = Path(run_dir)

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices):
        batches = predictions[0] if predictions and isinstance(predictions[0], list) else predictions
        if not batches:
            return
        columns = {key: _concat([batch[key] for batch in batches]) for key in batches[0]}
        if trainer.world_size == 1 and hasattr(trainer.datamodule, "format_predictions"):
            columns = trainer.datamodule.format_predictions(columns)
        name = "predictions.csv" if trainer.world_size == 1 else f"predictions-rank{trainer.global_rank}.csv"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / name, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            for row in zip(*columns.values(), strict=False):
                writer.writerow(f"{value:.6g}" if isinstance(value, float) else value for value in row)
        examples = getattr(pl_module, "prediction_examples", None)
        if examples and trainer.is_global_zero:  # detection and segmentation: pictures of the first images
            from experiments.pictures import write_pictures

            write_pictures(examples, self.run_dir / "pictures.png", getattr(trainer.datamodule, "class_names", ()))


def _concat(parts: list) -> list:
    """One column from its per-batch pieces: tensors (numbers) or lists (e.g. translated sentences)."""
    if isinstance(parts[0], torch.Tensor):
        return torch.cat([part.cpu() for part in parts]).tolist()
    return [value for part in parts for value in part]
