"""What a litexp command prints: its own lines, and only the library notices a user can act on.

Silenced, each for a reason (``NOTICES``); everything else still reaches the user:

- Lightning's info lines of ``INFO_LINES`` ("GPU available: False, used: False", "Seed set to 0", the
  litlogger and litmodels tips, "`Trainer.fit` stopped: `max_epochs` reached", restoring a
  checkpoint): they repeat what the user chose or advertise a service; litexp prints the run
  directory first and the result at the end instead. Every other info line stays (the CUDA
  matmul-precision advice, litexp's own notes), and so does the warning about a GPU present but unused.
- Lightning's CSV logger and checkpoint "exists and is not empty": litexp creates the run directory
  itself (always a fresh one, or the resumed run's own, whose rows and checkpoints it continues).
- The ``_pytree`` ``LeafSpec`` deprecation: inside Lightning, nothing a user can change.
- "The number of training batches (N) is smaller than the logging interval": litexp logs every
  metric per epoch; only the step loss follows ``log_every_n_steps``.
- W&B's "anonymous setting has no effect": Lightning passes the setting; litexp's logger no longer does.

litexp's own warnings read ``litexp: warning: ...`` (see :func:`litexp.errors.warn`).
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from pathlib import Path
from typing import Any, Optional

from litexp.errors import LitexpWarning

#: (message regex, reason): warnings nobody can act on
NOTICES = (
    (r"Experiment logs directory .* exists and is not empty", "litexp creates the run directory itself"),
    (r"Checkpoint directory .* exists and is not empty", "a resumed fit continues its own checkpoints"),
    (r".*isinstance\(treespec, LeafSpec\)", "a deprecation inside Lightning"),
    (r"The number of training batches .* is smaller than the logging interval", "metrics are logged per epoch"),
    (r".*LightningCLI's args parameter", "litexp passes its arguments to LightningCLI on purpose"),
    (r"Total length of `list` across ranks is zero", "val_fraction=0 (a study's refit): no validation, on purpose"),
)
#: Lightning's info lines that only repeat the user's choices or advertise (anything else they log still passes,
#: litexp's own notes such as "using the system copy of FashionMNIST" too)
INFO_LINES = ("GPU available:", "TPU available:", "HPU available:", "Seed set to", "💡 Tip:", "`Trainer.fit` stopped:",
              "Restoring states from the checkpoint path", "Loaded model weights from the checkpoint",
              "Restored all states from the checkpoint")
INFO_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.seed",
                "lightning.fabric.utilities.rank_zero")
SUMMARY_LOGGER = "lightning.pytorch.callbacks.model_summary"


class QuietInfo(logging.Filter):
    """Drops the INFO lines of ``INFO_LINES``; every warning, error and other line passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or not str(record.getMessage()).lstrip().startswith(INFO_LINES)


_QUIET_INFO = QuietInfo()

_default_formatwarning = warnings.formatwarning


def format_warning(message, category, filename, lineno, line=None) -> str:
    if issubclass(category, LitexpWarning):
        return f"litexp: warning: {message}\n"
    return _default_formatwarning(message, category, filename, lineno, line)


def configure_output(quiet: bool = False) -> None:
    """Silence the notices above (and, with ``quiet``, the model summary); format litexp's warnings."""
    for pattern, _reason in NOTICES:
        warnings.filterwarnings("ignore", message=pattern)
    warnings.formatwarning = format_warning
    for name in INFO_LOGGERS:
        logger = logging.getLogger(name)
        if _QUIET_INFO not in logger.filters:
            logger.addFilter(_QUIET_INFO)
    logging.getLogger(SUMMARY_LOGGER).setLevel(logging.WARNING if quiet else logging.INFO)


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) and math.isfinite(value) else str(value)


def result_paragraph(run_dir: Path) -> Optional[str]:
    """One paragraph on how a fit ended: status, epochs and time, best metric, test metric, where the files are."""
    try:
        summary = json.loads((Path(run_dir) / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    fit = summary.get("fit") or {}
    parts = [f"litexp: fit {summary.get('status', 'ended')} after {fit.get('epochs', 0)} epoch(s) in "
             f"{fit.get('wall_time_s', 0):.1f} s"]
    metrics = fit.get("metrics") or {}
    if fit.get("monitor") and fit.get("best_score") is not None:
        parts.append(f"best {fit['monitor']} {_number(fit['best_score'])} (checkpoints/best.ckpt)")
    else:
        shown = [f"{key} {_number(value)}" for key, value in metrics.items() if key.endswith("/loss")]
        if shown:
            parts.append("last " + ", ".join(shown))
    test = (summary.get("test") or {}).get("metrics") or {}
    if test:
        parts.append("test: " + ", ".join(f"{key} {_number(value)}" for key, value in test.items()))
    if fit.get("error"):
        parts.append(f"stopped by: {fit['error']}")
    files = [name for name in ("summary.json", "metrics.csv", "curves.png", "config.yaml", "checkpoints", "wandb")
             if (Path(run_dir) / name).exists()]
    text = "; ".join(parts) + f". Files in {run_dir}: {', '.join(files)}."
    offline = sorted((Path(run_dir) / "wandb").glob("offline-run-*"))
    if offline:
        text += f" W&B ran offline; upload it with: wandb sync {offline[-1]}"
    return text
