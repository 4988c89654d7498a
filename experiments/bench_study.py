"""Benchmark of ``litexp tune``: a study's overhead, and what pruning saves.

Runs the README's MLP study (Fashion-MNIST, ``experiments/search/mlp.yaml``, 12 trials, 3 folds)
twice in this process, with the median pruner and without it, with the same sampler seed (so the
same trials are drawn), and prints:

- the overhead ratio: the study's wall time (from ``tune``'s start to its report, the process's
  imports not included; they are printed apart) over the time spent inside ``Trainer.fit`` by all
  its fits (every fold of every trial, and the refit);
- where the rest went (building runs, the search's bookkeeping, the refit's test, plots and report);
- epochs run with and without pruning, and the best value of each (with its fold std).

    python -m experiments.bench_study [--trials 12] [--folds 3] [--out runs/bench-study] [--wandb auto]

W&B runs as a user gets it by default (``auto``: offline without a login); ``--wandb disabled`` to
leave it out. Figures are ratios measured in one run; a shared machine makes absolute times noisy.
"""

from __future__ import annotations

import time

IMPORT_START = time.perf_counter()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import lightning.pytorch as pl  # noqa: E402
import optuna  # noqa: E402

from experiments import tune  # noqa: E402
from experiments.cli import CONFIG_DIR  # noqa: E402

IMPORT_S = time.perf_counter() - IMPORT_START
SEARCH = Path(__file__).resolve().parent / "search" / "mlp.yaml"
CONFIG = CONFIG_DIR / "fashion_mnist" / "mlp.yaml"


class Stopwatch:
    """Time spent inside ``Trainer.fit`` and ``Trainer.test`` while it is installed."""

    def __init__(self) -> None:
        self.seconds = {"fit": 0.0, "test": 0.0}
        self.calls = {"fit": 0, "test": 0}

    @contextlib.contextmanager
    def installed(self):
        originals = {name: getattr(pl.Trainer, name) for name in self.seconds}

        def timed(name):
            def wrapper(*args, **kwargs):
                start = time.perf_counter()
                try:
                    return originals[name](*args, **kwargs)
                finally:
                    self.seconds[name] += time.perf_counter() - start
                    self.calls[name] += 1
            return wrapper

        for name in originals:
            setattr(pl.Trainer, name, timed(name))
        try:
            yield self
        finally:
            for name, original in originals.items():
                setattr(pl.Trainer, name, original)


def run_study(out: Path, name: str, pruner: str, trials: int, folds: int) -> dict:
    study_dir = out / name
    shutil.rmtree(study_dir, ignore_errors=True)
    watch = Stopwatch()
    started_at = time.time()
    start = time.perf_counter()
    with watch.installed():
        code = tune.main(["--config", str(CONFIG), "--search", str(SEARCH), "--n-trials", str(trials),
                          "--folds", str(folds), "--pruner", pruner, "--study-dir", str(study_dir),
                          "--study-name", name, "--quiet"])
    wall = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"the {name} study failed (exit {code})")
    report = json.loads((study_dir / "report.json").read_text())
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{study_dir / 'study.db'}")
    finished = [t for t in study.trials if t.state.is_finished()]
    first_start = min(t.datetime_start for t in finished).timestamp()
    last_end = max(t.datetime_complete for t in finished).timestamp()
    trials_fit = sum(t.user_attrs.get("fit_time_s", 0.0) for t in finished)
    return {
        "wall_s": wall, "fit_s": watch.seconds["fit"], "test_s": watch.seconds["test"],
        "fits": watch.calls["fit"], "ratio": wall / watch.seconds["fit"],
        "startup_s": first_start - started_at, "search_s": last_end - first_start, "trials_fit_s": trials_fit,
        "epochs_run": report["time"]["epochs_run"], "epochs_without_pruning": report["time"]["epochs_without_pruning"],
        "best": report["best"], "test": report["test"]["metrics"], "trials": report["trials"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench_study", description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--out", default="runs/bench-study")
    parser.add_argument("--wandb", choices=("auto", "offline", "disabled"), default="auto")
    options = parser.parse_args(argv)
    if options.wandb != "auto":
        os.environ["WANDB_MODE"] = options.wandb
    out = Path(options.out)
    results = {pruner: run_study(out, f"mlp-{pruner}", pruner, options.trials, options.folds)
               for pruner in ("none", "median")}
    (out / "bench_study.json").write_text(json.dumps({"import_s": IMPORT_S, **results}, indent=2))

    from experiments.run import resolve_wandb_mode

    threads = os.environ.get("OMP_NUM_THREADS", "default")
    print(f"README MLP study: {options.trials} trials x {options.folds} folds, Fashion-MNIST, "
          f"W&B {resolve_wandb_mode('auto')}, {os.cpu_count()} CPUs, torch threads {threads}")
    print(f"imports before the study (not in the wall time): {IMPORT_S:.1f} s")
    print("| pruner | wall (s) | Trainer.fit (s) | fits | ratio wall/fit | before the first trial (s) | "
          "search, outside fits (s) | refit's test (s) | after the refit (s) | epochs run | best value ± fold std | "
          "test acc |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for pruner, row in results.items():
        search_overhead = row["search_s"] - row["trials_fit_s"]
        refit_fit = row["fit_s"] - row["trials_fit_s"]
        after = row["wall_s"] - row["startup_s"] - row["search_s"] - refit_fit - row["test_s"]
        print(f"| {pruner} | {row['wall_s']:.1f} | {row['fit_s']:.1f} | {row['fits']} | {row['ratio']:.3f} | "
              f"{row['startup_s']:.1f} | {search_overhead:.1f} | {row['test_s']:.1f} | {after:.1f} | "
              f"{row['epochs_run']} | {row['best']['value']:.4f} ± {row['best']['std']:.4f} (trial "
              f"{row['best']['number']}) | {row['test'].get('test/acc', float('nan')):.4f} |")
    none, median = results["none"], results["median"]
    saved = 1 - median["epochs_run"] / none["epochs_run"]
    gap = abs(median["best"]["value"] - none["best"]["value"])
    same = gap <= max(none["best"]["std"], median["best"]["std"])
    print(f"overhead ratio (no pruning): {none['ratio']:.3f}; with pruning: {median['ratio']:.3f}")
    print(f"pruning saved {saved:.0%} of the epochs ({median['epochs_run']} run of {none['epochs_run']}); "
          f"best value {median['best']['value']:.4f} vs {none['best']['value']:.4f} unpruned: a gap of {gap:.4f}, "
          f"{'within' if same else 'outside'} one fold std")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
