"""What a finished study leaves behind: ``report.json``, ``report.md`` and plots (PNG and HTML).

The report is written once the best parameters have been refit on the whole training split and
evaluated on the test split; it is written to a temporary name and renamed, so a report on disk is
always complete.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np
import optuna
from optuna.trial import TrialState

# optuna.visualization.plot_<name> (plotly, HTML) and optuna.visualization.matplotlib.plot_<name> (PNG)
PLOTS = ("optimization_history", "param_importances", "parallel_coordinate", "slice")
MIN_TRIALS_FOR_IMPORTANCE = 10  # fANOVA importances from fewer completed trials are mostly noise


def trial_counts(study: optuna.Study) -> dict[str, int]:
    counts = {state.name: 0 for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL,
                                          TrialState.RUNNING, TrialState.WAITING)}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] += 1
    counts["finished"] = counts["COMPLETE"] + counts["PRUNED"]
    return counts


def compute_facts(study: optuna.Study, num_folds: int) -> dict[str, Any]:
    """Time and epochs summed over the study's trials (every run and worker that worked on it)."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    fit_time = sum(t.user_attrs.get("fit_time_s", 0.0) for t in trials)
    durations = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in trials)
    epochs = sum(sum(t.user_attrs.get("fold_epochs", [])) for t in trials)
    budget = sum(num_folds * t.user_attrs.get("max_epochs", 0) for t in trials)
    starts = [t.datetime_start for t in trials]
    ends = [t.datetime_complete for t in trials]
    span = (max(ends) - min(starts)).total_seconds() if trials else 0.0
    return {
        "trials_fit_time_s": round(fit_time, 2),  # inside Trainer.fit, summed over folds and trials
        "trials_duration_s": round(durations, 2),  # trial start to end (adds building the runs)
        "search_span_s": round(span, 2),  # first trial start to last trial end
        "epochs_run": epochs,
        "epochs_without_pruning": budget,  # the same finished trials, every fold to max_epochs
    }


def write_json(path: Path, data: dict) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(partial, path)


def write_stored_study_plots(storage: Optional[str], study_dir: str, study_name: str, metric: str) -> dict:
    """:func:`write_plots` of a study read from its storage (in a process of its own, next to the refit)."""
    from experiments.study_store import open_storage

    study = optuna.load_study(study_name=study_name, storage=open_storage(storage, Path(study_dir)))
    return write_plots(study, Path(study_dir) / "plots", metric)


def write_plots(study: optuna.Study, plot_dir: Path, metric: str) -> dict[str, dict[str, str]]:
    """One PNG (matplotlib) and one HTML (plotly) per plot; a plot that cannot be drawn says why."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna import visualization
    from optuna.visualization import matplotlib as mpl_visualization

    plot_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, dict[str, str]] = {}
    completed = sum(trial.state == optuna.trial.TrialState.COMPLETE for trial in study.trials)
    for name in PLOTS:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = getattr(mpl_visualization, f"plot_{name}")(study, target_name=metric)
                figure = np.ravel(axes)[0].figure
                readable(figure, completed)
                figure.savefig(plot_dir / f"{name}.png", dpi=100, bbox_inches="tight")
                plt.close(figure)
                getattr(visualization, f"plot_{name}")(study, target_name=metric).write_html(
                    plot_dir / f"{name}.html", include_plotlyjs="directory")
            written[name] = {"png": f"plots/{name}.png", "html": f"plots/{name}.html"}
            if name == "param_importances" and completed < MIN_TRIALS_FOR_IMPORTANCE:
                written[name]["note"] = (f"drawn from {completed} completed trials: too few for importances to mean "
                                         f"much (take them seriously from about {MIN_TRIALS_FOR_IMPORTANCE})")
        except Exception as error:  # e.g. importances need two completed trials with varied parameters
            plt.close("all")
            written[name] = {"skipped": f"{type(error).__name__}: {error}"}
    return written


def readable(figure, completed: int) -> None:
    """Panels wide enough for their labels; a long parameter name wraps at its dots."""
    axes = [axis for axis in figure.axes if axis.get_label() != "<colorbar>"]
    figure.set_size_inches(max(figure.get_size_inches()[0], 3.4 * len(axes) + 1.5), figure.get_size_inches()[1])
    from matplotlib.ticker import NullFormatter

    for axis in axes:
        if axis.get_xscale() == "log":
            axis.xaxis.set_minor_formatter(NullFormatter())  # minor labels of a short log range collide
        label = axis.get_xlabel()
        if len(label) > 18 and "." in label:
            head, _, tail = label.rpartition(".")
            axis.set_xlabel(f"{head}.\n{tail}", fontsize=9)
    figure.text(0.01, 0.01, f"{completed} completed trials", fontsize=8, color="grey")


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def markdown(report: dict) -> str:
    study, best, test, counts, facts = (report["study"], report["best"], report["test"], report["trials"],
                                        report["time"])
    lines = [
        f"# Study `{study['name']}`",
        "",
        f"{study['num_folds']}-fold cross-validation of `{', '.join(study['configs'])}` over `{study['search']}`, "
        f"{study['direction']} `{study['metric']}` (fold mean); sampler {study['sampler']}, pruner {study['pruner']}.",
        "",
        "## Best trial",
        "",
        f"Trial {best['number']}: {study['metric']} = {_number(best['value'])} +/- {_number(best['std'])} "
        f"over folds ({', '.join(_number(v) for v in best['fold_values'])}).",
        "",
        "| parameter | value |",
        "|---|---|",
        *[f"| `{key}` | {_number(value)} |" for key, value in best["params"].items()],
        "",
        "## Test split (refit on the whole training split, evaluated once)",
        "",
        "| metric | value |",
        "|---|---|",
        *[f"| `{key}` | {_number(value)} |" for key, value in test["metrics"].items()],
        "",
        "## Trials",
        "",
        "| state | count |",
        "|---|---|",
        *[f"| {state} | {count} |" for state, count in counts.items()],
        "",
        "## Time and compute",
        "",
        *[f"- {key}: {_number(value)}" for key, value in facts.items()],
        "",
        "## Plots",
        "",
    ]
    for name, files in report["plots"].items():
        if "png" in files:
            note = f" ({files['note']})" if files.get("note") else ""
            lines.append(f"- {name}{note}: ![{name}]({files['png']}) ([interactive]({files['html']}))")
        else:
            lines.append(f"- {name}: not drawn ({files['skipped']})")
    return "\n".join(lines) + "\n"


def write_report(study_dir: Path, report: dict) -> None:
    write_json(study_dir / "report.json", report)
    partial = study_dir / "report.md.partial"
    partial.write_text(markdown(report))
    os.replace(partial, study_dir / "report.md")


def main(argv: list[str]) -> int:
    """``python -m experiments.study_report STORAGE|- STUDY_DIR STUDY_NAME METRIC``: the study's plots into
    ``STUDY_DIR/plots`` (``-``: the study directory's own SQLite file); prints what was written, as JSON."""
    storage, study_dir, study_name, metric = argv
    plots = write_stored_study_plots(None if storage == "-" else storage, study_dir, study_name, metric)
    print(json.dumps(plots))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
