"""Fault injection for resume: kill a real ``litexp fit`` and check that ``litexp fit --resume`` ends where an
uninterrupted fit ends.

``python -m experiments.faults`` trains a reference run, then kills the same fit at random points
(SIGKILL mid-epoch, between epochs or during validation; SIGTERM mid-epoch), resumes each with
``litexp fit --resume`` and prints the largest difference in final weights and in logged metrics
against the reference. :class:`KillAt` is the callback that kills at a chosen point: it is handed to
the fit through ``--trainer.callbacks``, fires once (a marker file records that it has) and so lets
the resumed fit, which reads the same config, run to its end.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Literal, Optional

import torch
from lightning.pytorch.callbacks import Callback

from experiments.cli import CONFIG_DIR

Point = Literal["train_batch", "epoch_start", "val_batch"]


class KillAt(Callback):
    """Sends ``signal`` to its own process once, at a chosen point of a fit.

    ``train_batch``: after training batch ``batch`` of ``epoch``; ``epoch_start``: as ``epoch``
    starts (between epochs, after the previous epoch's checkpoint); ``val_batch``: after validation
    batch ``batch`` in ``epoch``.
    """

    def __init__(self, marker: str, point: Point = "train_batch", epoch: int = 0, batch: int = 0,
                 signal_name: str = "SIGKILL") -> None:
        self.marker, self.point, self.epoch, self.batch = Path(marker), point, epoch, batch
        self.signum = signal.Signals[signal_name]

    def _fire(self, point: str, epoch: int, batch: int = 0) -> None:
        if (point, epoch, batch) != (self.point, self.epoch, self.batch) or self.marker.exists():
            return
        self.marker.write_text(f"{point} epoch {epoch} batch {batch}\n")
        os.kill(os.getpid(), self.signum)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._fire("train_batch", trainer.current_epoch, batch_idx)

    def on_train_epoch_start(self, trainer, pl_module):
        self._fire("epoch_start", trainer.current_epoch)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if not trainer.sanity_checking:
            self._fire("val_batch", trainer.current_epoch, batch_idx)


# -- the script ------------------------------------------------------------------------------------
DEFAULT_FIT = ["--config", str(CONFIG_DIR / "fashion_mnist" / "mlp_dropout.yaml"), "--trainer.max_epochs=3",
               "--trainer.limit_train_batches=20", "--trainer.limit_val_batches=5", "--trainer.log_every_n_steps=5"]
#: (where, signal, exit status the killed fit must end with)
KINDS = (("train_batch", "SIGKILL", -9), ("epoch_start", "SIGKILL", -9), ("val_batch", "SIGKILL", -9),
         ("train_batch", "SIGTERM", 143), ("val_batch", "SIGINT", 130))


def litexp(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "experiments", *args]
    repo = str(CONFIG_DIR.parents[1])  # the processes import litexp from this checkout, wherever they run
    env = {**os.environ, "WANDB_MODE": "disabled",
           "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(command, capture_output=True, text=True, env=env)


def read_metrics(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def differences(reference: Path, run: Path) -> dict[str, object]:
    """Largest absolute differences of the final weights and of every logged value; whether the rows match."""
    weights = [torch.load(path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
               for path in (reference, run)]
    weight_diff = max((weights[0][key].double() - weights[1][key].double()).abs().max().item()
                      for key in weights[0] if weights[0][key].is_floating_point())
    rows = [read_metrics(path) for path in (reference, run)]
    same_rows = len(rows[0]) == len(rows[1]) and all(
        {key for key, value in a.items() if value} == {key for key, value in b.items() if value}
        for a, b in zip(*rows, strict=True))
    metric_diff = math.inf
    if same_rows:
        metric_diff = max((abs(float(a[key]) - float(b[key])) for a, b in zip(*rows, strict=True)
                           for key in a if a[key]), default=0.0)
    return {"weights": weight_diff, "metrics": metric_diff, "rows": same_rows}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=5, help="random kill points to try")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill points")
    parser.add_argument("--root", default=None, help="where the runs go (default: a temporary directory)")
    parser.add_argument("fit", nargs=argparse.REMAINDER,
                        help="litexp fit options after --, replacing the default: " + " ".join(DEFAULT_FIT))
    options = parser.parse_args(argv)
    fit = [arg for arg in options.fit if arg != "--"] or DEFAULT_FIT
    root = Path(options.root or tempfile.mkdtemp(prefix="litexp-faults-"))
    common = ["fit", *fit, "--trainer.enable_progress_bar=false", "--wandb.mode=disabled", "--run.root", str(root),
              "--run.name", "faults"]
    done = litexp(*common, "--run.version", "reference")
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        return 1
    reference = root / "faults" / "reference"
    summary = json.loads((reference / "summary.json").read_text())
    epochs = len(summary["fit"]["epoch_times_s"])
    steps_per_epoch = summary["fit"]["global_steps"] // epochs
    rng = random.Random(options.seed)
    print(f"reference: {epochs} epochs of {steps_per_epoch} steps in {reference}")
    print(f"{'kill':<36} {'exit':>5} {'resume':>6} {'weights':>10} {'metrics':>10} rows")
    worst = {"weights": 0.0, "metrics": 0.0, "rows": True}
    for index in range(options.kills):
        point, signal_name, expected = rng.choice(KINDS)
        epoch = rng.randrange(1 if point == "epoch_start" else 0, epochs)
        batch = rng.randrange(steps_per_epoch) if point == "train_batch" else rng.randrange(2) * (point == "val_batch")
        version = f"kill{index}"
        killer = {"class_path": "experiments.faults.KillAt",
                  "init_args": {"marker": str(root / f"{version}.fired"), "point": point, "epoch": epoch,
                                "batch": batch, "signal_name": signal_name}}
        killed = litexp(*common, "--run.version", version, f"--trainer.callbacks+={json.dumps(killer)}")
        resumed = litexp("fit", "--resume", str(root / "faults" / version), "--trainer.enable_progress_bar=false")
        label = f"{signal_name} {point} epoch {epoch} batch {batch}"
        if killed.returncode != expected or resumed.returncode != 0:
            print(f"{label:<36} {killed.returncode:>5} {resumed.returncode:>6}  FAILED: "
                  f"{(resumed.stderr or killed.stderr).strip().splitlines()[-1:]}")
            worst["rows"] = False
            continue
        diff = differences(reference, root / "faults" / version)
        print(f"{label:<36} {killed.returncode:>5} {resumed.returncode:>6} {diff['weights']:>10.3g} "
              f"{diff['metrics']:>10.3g} {'same' if diff['rows'] else 'DIFFER'}")
        worst = {"weights": max(worst["weights"], diff["weights"]), "metrics": max(worst["metrics"], diff["metrics"]),
                 "rows": worst["rows"] and diff["rows"]}
    print(f"largest difference against the uninterrupted run: weights {worst['weights']:.3g}, logged metrics "
          f"{worst['metrics']:.3g}; metrics.csv rows {'identical' if worst['rows'] else 'DIFFER'}")
    return 0 if worst["rows"] else 1


if __name__ == "__main__":
    sys.exit(main())
