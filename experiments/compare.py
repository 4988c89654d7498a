"""``litexp compare``: variants of one experiment, each a normal run, side by side in one report.

    litexp compare --config experiments/configs/fashion_mnist/mlp.yaml \\
        --vary model.optimizer=sgd,momentum,adam [--vary data.batch_size=64,256] [--seeds 2] \\
        [--name optimizers] [--root runs] [--metric val/acc] [litexp fit overrides ...]

Every combination of the ``--vary`` values is a variant; every variant runs once per seed
(``seed_everything`` 0, 1, ...) as a normal ``litexp fit`` run in
``<root>/compare-<name>/<variant>/seed<k>/`` with the W&B group ``<name>``. A run that completed
is reused, one that was stopped is resumed (``litexp fit --resume``), so a rerun with more variants
or seeds only runs what is missing. The comparison keeps its base config and overrides in
``compare.json``: a rerun with other ones stops with one line (choose another ``--name``).

``report.md`` holds a table (the metric's final value as mean +- std over seeds, its best epoch,
the final losses, the time) where a variant whose mean lies within the spread of the best one is
called a tie, and ``curves.png`` the training loss and the validation metric per epoch (mean over
seeds, the band from the lowest to the highest seed).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from experiments.curves import curve, epoch_metrics
from experiments.run import check_plain_name
from litexp.errors import LitexpError

MAXIMIZED = ("acc", "bleu", "f1", "auroc", "precision", "recall")
#: overrides that change how a run is shown or logged, not what it computes: not part of the comparison's base
DISPLAY_OPTIONS = ("--wandb.", "--trainer.enable_progress_bar", "--trainer.enable_model_summary", "--quiet",
                   "--no_quiet")


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="litexp compare", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--config", required=True, type=Path, help="the base litexp fit config")
    parser.add_argument("--vary", action="append", required=True, metavar="KEY=V1,V2,...",
                        help="a litexp fit option and its values (repeat for a grid)")
    parser.add_argument("--seeds", type=int, default=1, help="runs per variant, seeds 0..N-1 (default 1)")
    parser.add_argument("--name", default=None, help="the comparison's name (default: the varied keys)")
    parser.add_argument("--root", type=Path, default=Path("runs"), help="where compare-<name>/ goes")
    parser.add_argument("--metric", default=None, help="the compared metric (default: the task's monitor)")
    parser.add_argument("--direction", choices=("maximize", "minimize"), default=None)
    args, overrides = parser.parse_known_args(argv)
    stray = [arg for arg in overrides if not arg.startswith("--")]
    if stray:
        raise LitexpError(f"unexpected argument {stray[0]!r}; write litexp fit overrides as --key=value "
                          f"(e.g. --trainer.max_epochs=3)")
    if args.seeds < 1:
        raise LitexpError(f"--seeds must be at least 1, got {args.seeds}")
    if not args.config.is_file():
        raise LitexpError(f"config file {args.config} does not exist; give a litexp fit config")
    return args, overrides


def parse_vary(options: list[str]) -> dict[str, list[str]]:
    varied: dict[str, list[str]] = {}
    for option in options:
        key, _, values = option.partition("=")
        key = key.strip().removeprefix("--")
        choices = [value.strip() for value in values.split(",") if value.strip()]
        if not key or not choices:
            raise LitexpError(f"--vary {option!r}: write KEY=V1,V2,... (e.g. --vary model.optimizer=sgd,adam)")
        if key in varied:
            raise LitexpError(f"--vary names {key} twice; give its values once, comma-separated")
        varied[key] = choices
    return varied


def slug(assignment: dict[str, str]) -> str:
    """A plain folder name for a variant: ``optimizer-sgd_batch_size-64``."""
    parts = [f"{key.split('.')[-1]}-{value}" for key, value in assignment.items()]
    name = re.sub(r"[^A-Za-z0-9_.=-]+", "", "_".join(parts)).lstrip(".") or "variant"
    check_plain_name("name", name)
    return name


def check_settings(study: Path, settings: dict[str, Any]) -> None:
    """A comparison's base config and overrides are fixed once chosen; variants and seeds may grow."""
    path = study / "compare.json"
    if path.exists():
        stored = json.loads(path.read_text())
        for key in ("config", "overrides"):
            if stored.get(key) != settings[key]:
                raise LitexpError(f"{study} compares variants of another base ({key} differs); rerun with its "
                                  f"settings or choose another --name")
    study.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(settings, indent=2) + "\n")
    partial.replace(path)


def read_summary(run: Path) -> dict[str, Any]:
    try:
        return json.loads((run / "summary.json").read_text())
    except (OSError, ValueError):
        return {}


def run_variant(run: Path, command: list[str]) -> int:
    """Run, resume or reuse one run; the exit status of what ran (0 when reused)."""
    from experiments.cli import main

    status = read_summary(run).get("status")
    if status in ("completed", "diverged", "failed"):
        return 0  # done: reused as it is (a diverged or failed run is reported as such)
    if status in ("running", "interrupted") and (run / "checkpoints" / "last.ckpt").exists():
        print(f"litexp compare: resuming {run}", flush=True)
        return main(["fit", "--resume", str(run)])
    overwrite = ["--run.overwrite=true"] if run.exists() else []  # a run that died before its first epoch
    print(f"litexp compare: running {run}", flush=True)
    return main([*command, *overwrite])


def epoch_curves(run: Path, metric: str) -> dict[str, list[float]]:
    """Per-epoch ``train/loss`` and ``metric`` from the run's metrics.csv (epoch rows only)."""
    metrics = epoch_metrics(run)
    return {key: curve(metrics, key) for key in ("train/loss", metric)}


def mean_std(values: list[float]) -> tuple[float, float]:
    finite = [value for value in values if value is not None and math.isfinite(value)]
    if not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else 0.0


def collect(study: Path, variants: list[Variant], seeds: int, metric: str) -> list[dict[str, Any]]:
    rows = []
    for variant in variants:
        runs = [study / variant.name / f"seed{seed}" for seed in range(seeds)]
        summaries = [read_summary(run) for run in runs]
        finals = [(s.get("fit") or {}).get("metrics", {}).get(metric) for s in summaries]
        curves = [epoch_curves(run, metric) for run in runs]
        rows.append({
            "variant": variant.name, "label": variant.label or " ".join(variant.overrides),
            "runs": [str(run) for run in runs],
            "statuses": [s.get("status", "missing") for s in summaries],
            "final": mean_std(finals),
            "train_loss": mean_std([(s.get("fit") or {}).get("metrics", {}).get("train/loss") for s in summaries]),
            "val_loss": mean_std([(s.get("fit") or {}).get("metrics", {}).get("val/loss") for s in summaries]),
            "time_s": mean_std([(s.get("fit") or {}).get("wall_time_s") for s in summaries]),
            "curves": curves,
        })
    return rows


def verdicts(rows: list[dict[str, Any]], maximize: bool, seeds: int) -> None:
    """``best``, ``tie`` (the mean lies within the spread of the best) or the gap to the best."""
    scored = [row for row in rows if math.isfinite(row["final"][0])]
    if not scored:
        return
    best = (max if maximize else min)(scored, key=lambda row: row["final"][0])
    for row in rows:
        mean, std = row["final"]
        if row is best:
            row["verdict"] = "best"
        elif not math.isfinite(mean):
            row["verdict"] = "no result"
        elif seeds > 1 and abs(mean - best["final"][0]) <= max(std, best["final"][1]):
            row["verdict"] = "tie with the best (within the spread)"
        else:
            row["verdict"] = f"{mean - best['final'][0]:+.4g} from the best"


def plot(rows: list[dict[str, Any]], metric: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for row in rows:
        for axis, key in zip(axes, ("train/loss", metric), strict=True):
            series = [curve[key] for curve in row["curves"] if curve[key]]
            if not series:
                continue
            length = min(map(len, series))
            epochs = list(range(1, length + 1))
            mean = [statistics.fmean(s[i] for s in series) for i in range(length)]
            (line,) = axis.plot(epochs, mean, marker="o", markersize=3, label=row["variant"])
            if len(series) > 1:
                axis.fill_between(epochs, [min(s[i] for s in series) for i in range(length)],
                                  [max(s[i] for s in series) for i in range(length)], color=line.get_color(),
                                  alpha=0.15)
    for axis, key in zip(axes, ("train/loss", metric), strict=True):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        if key.endswith("loss") and all(y > 0 for line in axis.get_lines() for y in line.get_ydata()):
            axis.set_yscale("log")  # losses of very different variants stay readable
        axis.set_xlabel("epoch")
        axis.set_ylabel(key)
        axis.set_title(key + (" (mean over seeds; band: lowest to highest)" if len(rows[0]["curves"]) > 1 else ""),
                       fontsize=9)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def table(comparison: Comparison) -> list[str]:
    """The report's table: one row per variant."""
    seeds = comparison.seeds

    def cell(pair: tuple[float, float], digits: int = 4) -> str:
        mean, std = pair
        if not math.isfinite(mean):
            return "-"
        return f"{mean:.{digits}f} ± {std:.{digits}f}" if seeds > 1 else f"{mean:.{digits}f}"

    metric = comparison.metric
    lines = [f"| variant | runs | final {metric} | train/loss | val/loss | time (s) | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in comparison.rows:
        runs = ", ".join(sorted(set(row["statuses"])))
        lines.append(f"| {row['variant']} | {len(row['statuses'])} ({runs}) | {cell(row['final'])} | "
                     f"{cell(row['train_loss'])} | {cell(row['val_loss'])} | {cell(row['time_s'], 1)} | "
                     f"{row.get('verdict', '-')} |")
    return lines


def how_compared(comparison: Comparison) -> str:
    seeds = comparison.seeds
    spread = "mean ± std over seeds" if seeds > 1 else "one seed: no spread, so no tie can be called"
    better = "higher" if comparison.maximize else "lower"
    return (f"{seeds} seed(s) per variant ({spread}). Compared: final `{comparison.metric}` ({better} is better); "
            f"a variant whose mean lies within the spread of the best one's is a tie.")


def write_report(comparison: Comparison, out: Path, base: str, varied: str, command: str) -> None:
    """``report.md``, ``curves.png`` and ``results.json`` of a comparison, in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    plot(comparison.rows, comparison.metric, out / "curves.png")
    lines = [f"# Comparison: {comparison.name}", "", f"Base: {base}", "",
             f"Varied: {varied}; {how_compared(comparison)}", "", *table(comparison), "",
             "![training loss and validation metric per epoch](curves.png)", "",
             f"Runs: `{comparison.study}/<variant>/seed<k>/`; W&B group `{comparison.name}`. Regenerate: `{command}`",
             ""]
    (out / "report.md").write_text("\n".join(lines))
    write_results(comparison, out / "results.json")


def write_results(comparison: Comparison, path: Path) -> None:
    results = [{key: value for key, value in row.items() if key != "curves"} for row in comparison.rows]
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")


@dataclass(frozen=True)
class Variant:
    """One variant of a comparison: its folder name and the ``litexp fit`` overrides that make it."""

    name: str
    overrides: tuple[str, ...]
    label: str = ""  # how the report describes it (default: the overrides)


def grid(varied: dict[str, list[str]]) -> list[Variant]:
    """Every combination of the ``--vary`` values, in order."""
    variants = []
    for values in itertools.product(*varied.values()):
        assignment = dict(zip(varied, values, strict=True))
        variants.append(Variant(slug(assignment), tuple(f"--{key}={value}" for key, value in assignment.items()),
                                ", ".join(f"{key}={value}" for key, value in assignment.items())))
    return variants


@dataclass
class Comparison:
    """The runs of a comparison and what was measured; ``run(variant, seed)`` is where a run lives."""

    name: str
    study: Path
    variants: list[Variant]
    seeds: int
    metric: str
    maximize: bool
    rows: list[dict[str, Any]]

    def run(self, variant: Variant, seed: int) -> Path:
        return self.study / variant.name / f"seed{seed}"


def run_comparison(config: Path, variants: list[Variant], seeds: int, name: str, root: Path,
                   overrides: list[str], metric: Optional[str] = None, direction: Optional[str] = None) -> Comparison:
    """Run (or reuse, or resume) every variant and seed; collect their results; raise on a failed run."""
    check_plain_name("name", name)
    names = [variant.name for variant in variants]
    if len(set(names)) != len(names):
        raise LitexpError(f"two variants share a name ({names}); give each its own")
    study = root / f"compare-{name}"
    base_overrides = [arg for arg in overrides if not arg.startswith(DISPLAY_OPTIONS)]
    check_settings(study, {"config_path": str(config), "config": config.read_text(), "overrides": base_overrides,
                           "variants": {variant.name: list(variant.overrides) for variant in variants},
                           "seeds": seeds})
    for variant in variants:
        for seed in range(seeds):
            run = study / variant.name / f"seed{seed}"
            command = ["fit", "--config", str(config), *overrides, *variant.overrides,
                       f"--seed_everything={seed}", "--run.root", str(study), "--run.name", variant.name,
                       "--run.version", f"seed{seed}", "--wandb.group", name, "--wandb.name",
                       f"{name}/{variant.name}/seed{seed}"]
            code = run_variant(run, command)
            if code != 0 and read_summary(run).get("status") == "diverged":
                code = 0  # a variant whose loss blew up is a result: reported as diverged, the rest go on
            if code != 0:
                raise ComparisonStopped(f"stopped at {variant.name}/seed{seed} (exit {code}); rerun the same command "
                                        f"to go on: completed runs are reused", code)
            metric = metric or (read_summary(run).get("fit") or {}).get("monitor")
    metric = metric or "val/loss"
    maximize = direction == "maximize" if direction else metric.split("/")[-1].startswith(MAXIMIZED)
    rows = collect(study, variants, seeds, metric)
    verdicts(rows, maximize, seeds)
    return Comparison(name, study, variants, seeds, metric, maximize, rows)


class ComparisonStopped(Exception):
    """A run of the comparison failed; ``code`` is its exit status."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def main(argv: list[str]) -> int:
    from experiments.wandb_media import log_comparison

    try:
        args, overrides = parse_args(argv)
        varied = parse_vary(args.vary)
        name = args.name or "_".join(key.split(".")[-1] for key in varied)
        comparison = run_comparison(args.config, grid(varied), args.seeds, name, args.root, overrides,
                                    args.metric, args.direction)
        vary = " ".join(f"--vary {key}={','.join(values)}" for key, values in varied.items())
        base = [arg for arg in overrides if not arg.startswith(DISPLAY_OPTIONS)]
        command = " ".join(["litexp compare --config", str(args.config), vary, f"--seeds {args.seeds}",
                            f"--name {name}", *base])
        write_report(comparison, comparison.study, base=f"`{args.config}` {' '.join(base)}".rstrip(),
                     varied=", ".join(f"`{k}` = {v}" for k, v in varied.items()), command=command)
        log_comparison(comparison, comparison.study / "curves.png", overrides)
    except ComparisonStopped as stop:
        print(f"litexp compare: {stop}", file=sys.stderr)
        return stop.code
    except LitexpError as error:
        print(f"litexp: error: {error}", file=sys.stderr)
        return 2
    print(f"litexp compare: wrote {comparison.study / 'report.md'} and {comparison.study / 'curves.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
