"""A run's learning curves: per-epoch metrics read from ``metrics.csv`` and drawn into ``curves.png``.

Every fit writes ``curves.png`` when it ends (completed, stopped or diverged) and again after a
resume: one panel per measured quantity (loss, acc, ppl, ...), a line per stage (train, val).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Optional

STAGE_STYLES = {"train": "--", "val": "-", "test": ":"}


def epoch_metrics(run: Path) -> dict[str, dict[int, float]]:
    """``{metric: {epoch: value}}`` for every epoch-level column of the run's metrics.csv (step columns left out)."""
    metrics: dict[str, dict[int, float]] = {}
    try:
        with open(Path(run) / "metrics.csv", newline="") as handle:
            for row in csv.DictReader(handle):
                if not row.get("epoch"):
                    continue
                epoch = int(float(row["epoch"]))
                for key, value in row.items():
                    if key in ("epoch", "step") or not value or "step" in key.split("/")[-1] or "/" not in key:
                        continue
                    metrics.setdefault(key, {})[epoch] = float(value)
    except (OSError, ValueError):
        return {}
    return metrics


def curve(metrics: dict[str, dict[int, float]], key: str) -> list[float]:
    """The values of ``key`` in epoch order (epochs without it skipped)."""
    values = metrics.get(key, {})
    return [values[epoch] for epoch in sorted(values)]


def write_curves(run: Path) -> Optional[Path]:
    """Draw ``<run>/curves.png`` from its metrics.csv; None when no epoch has been logged yet."""
    metrics = epoch_metrics(run)
    quantities = sorted({key.split("/", 1)[1] for key in metrics if key.split("/", 1)[0] in ("train", "val")},
                        key=lambda name: (name != "loss", name))
    if not quantities:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, axes = plt.subplots(1, len(quantities), figsize=(4.6 * len(quantities), 3.6), squeeze=False)
    for axis, quantity in zip(axes[0], quantities, strict=True):
        for stage, style in STAGE_STYLES.items():
            values = metrics.get(f"{stage}/{quantity}")
            if not values:
                continue
            epochs = sorted(values)
            if stage == "test":  # one evaluation of the best checkpoint, after the last epoch
                last = max((epoch for key, series in metrics.items() if key.startswith("train/") for epoch in series),
                           default=epochs[-1])
                axis.plot([last + 1], [values[epochs[-1]]], marker="*", markersize=10, linestyle="none",
                          label=f"test/{quantity} (best checkpoint)")
                continue
            axis.plot([epoch + 1 for epoch in epochs], [values[epoch] for epoch in epochs], linestyle=style,
                      marker="o" if len(epochs) < 30 else None, markersize=3, label=f"{stage}/{quantity}")
        finite = [y for line in axis.get_lines() for y in line.get_ydata() if math.isfinite(y)]
        if quantity in ("loss", "ppl") and finite and min(finite) > 0 and max(finite) / min(finite) > 20:
            axis.set_yscale("log")  # a loss that falls by orders of magnitude stays readable
        axis.set_title(quantity, fontsize=10)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(Path(run).as_posix(), fontsize=8)
    figure.tight_layout()
    path = Path(run) / "curves.png"
    partial = path.with_name("curves.partial.png")
    figure.savefig(partial, dpi=100)
    plt.close(figure)
    partial.replace(path)
    return path
