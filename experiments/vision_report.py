"""Detection and segmentation on CPU: train each config, test it once, write ``experiments/reports/vision.md``.

    python -m experiments.vision_report                  # train every entry, then write the table
    python -m experiments.vision_report --only ssd       # one entry (entries can run in parallel)
    python -m experiments.vision_report --render-only    # the table from the runs already there

Each entry runs ``litexp fit --config <config> --test`` as a child process (one intra-op thread: on a
shared CPU, small convolutions run several times faster without thread hand-offs) into
``<root>/<name>/report``, then ``litexp predict`` on its best checkpoint, which draws the pictures.
The table reads each run's ``summary.json``: test metrics of the best checkpoint, epochs, fit time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from experiments.cli import CONFIG_DIR

REPORT_DIR = Path(__file__).resolve().parent / "reports"
REPOSITORY = CONFIG_DIR.parents[1]  # config paths in the commands are relative to it
DEFAULT_ROOT = "runs/vision-report"


@dataclass(frozen=True)
class Entry:
    name: str
    label: str
    config: str  # relative to experiments/configs
    metrics: tuple[str, ...]  # test metrics shown, in order
    target: tuple[str, float]  # (metric, the target for a CPU-sized run)


ENTRIES = (
    Entry("ssd", "TinySSD (d2l 14.7)", "detection/ssd.yaml", ("test/map50", "test/map"), ("test/map50", 0.5)),
    Entry("fast_rcnn", "RoI-pooling detector (d2l 14.8)", "detection/fast_rcnn.yaml", ("test/map50", "test/map"),
          ("test/map50", 0.5)),
    Entry("fcn", "FCN, ResNet-18 backbone (d2l 14.11)", "segmentation/fcn.yaml", ("test/miou", "test/pixel_acc"),
          ("test/miou", 0.6)),
    Entry("fcn_long", "FCN, 16 epochs", "segmentation/fcn_long.yaml", ("test/miou", "test/pixel_acc"),
          ("test/miou", 0.6)),
)


def fit_command(entry: Entry, root: Path) -> list[str]:
    return ["litexp", "fit", "--config", f"experiments/configs/{entry.config}", "--test", "--run.root", str(root),
            "--run.name", entry.name, "--run.version", "report", "--run.overwrite", "true",
            "--wandb.mode", "disabled", "--trainer.enable_progress_bar", "false"]


def run_entry(entry: Entry, root: Path, fit: bool = True) -> None:
    """Fit and test (unless ``fit`` is False: the run is there already), then predict with pictures."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    litexp = [sys.executable, "-m", "experiments"]
    command = fit_command(entry, root)
    record: dict = {}
    if fit:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([*litexp, *command[1:]], check=True, env=environment, cwd=REPOSITORY)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        record["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    run_dir = root / entry.name / "report"
    predict = ["predict", "--ckpt_path", str(run_dir), "--run.name", entry.name, "--run.version", "report-predict",
               "--run.root", str(root), "--run.overwrite", "true", "--trainer.enable_progress_bar", "false"]
    subprocess.run([*litexp, *predict], check=True, env=environment, cwd=REPOSITORY)
    record_path = run_dir / "report.json"
    if not fit and record_path.exists():  # keep the CPU time the fit measured
        record = {**json.loads(record_path.read_text()), **record}
    record["command"] = "OMP_NUM_THREADS=1 " + " ".join(fit_command(entry, Path(DEFAULT_ROOT)))
    record_path.write_text(json.dumps(record) + "\n")
    picture = root / entry.name / "report-predict" / "pictures.png"
    if picture.exists():
        (REPORT_DIR / "vision").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(picture, REPORT_DIR / "vision" / f"{entry.name}.png")


def render(root: Path) -> str:
    lines = ["# Detection and segmentation on CPU", "",
             "Scenes of 1-4 real Fashion-MNIST items on 64 px canvases (`datamodules.detection`): training and "
             "validation canvases from the training items, test canvases from the test items (unseen). "
             "Test metrics of the best checkpoint (by validation mAP@0.5 or mean IoU); one CPU thread per run on a "
             "shared 2-core machine. Regenerate with `python -m experiments.vision_report` "
             "(`--render-only` rewrites this table from the runs).", "",
             "| model | config | test metrics | target | epochs | fit time (wall, CPU) | command |",
             "|---|---|---|---|---|---|---|"]
    for entry in ENTRIES:
        run_dir = root / entry.name / "report"
        summary_path = run_dir / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        if summary.get("status") != "completed" or "test" not in summary:
            state = summary.get("status", "not run")
            lines.append(f"| {entry.label} | `{entry.config}` | {state} | {entry.target[0]} >= {entry.target[1]} "
                         f"| | | |")
            continue
        record_path = run_dir / "report.json"
        record = json.loads(record_path.read_text()) if record_path.exists() else {}
        test = summary.get("test", {}).get("metrics", {})
        shown = ", ".join(f"{name.split('/')[1]} {test[name]:.3f}" for name in entry.metrics if name in test)
        metric, goal = entry.target
        reached = test.get(metric)
        verdict = "met" if reached is not None and reached >= goal else "not met"
        fit = summary.get("fit", {})
        minutes = (fit.get("wall_time_s") or 0) / 60
        command = record.get("command", " ".join(fit_command(entry, Path(DEFAULT_ROOT))))
        cpu = f" ({record['cpu_s'] / 60:.1f} CPU min)" if "cpu_s" in record else ""
        lines.append(f"| {entry.label} | `{entry.config}` | {shown} | {metric.split('/')[1]} >= {goal} ({verdict}) "
                     f"| {fit.get('epochs')} | {minutes:.1f} min{cpu} | `{command}` |")
    pictures = [entry for entry in ENTRIES if (REPORT_DIR / "vision" / f"{entry.name}.png").exists()]
    if pictures:
        lines += ["", "Predictions on test canvases (`litexp predict` on the best checkpoint; left ground truth, "
                  "right prediction):", ""]
        lines += [f"![{entry.label}](vision/{entry.name}.png)" for entry in pictures]
    notes = REPORT_DIR / "vision_notes.md"
    if notes.exists():
        lines += ["", notes.read_text().strip()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.vision_report", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=[entry.name for entry in ENTRIES],
                        help="train only this entry (repeatable); the table lists every entry")
    parser.add_argument("--render-only", action="store_true", help="write the table from the existing runs")
    parser.add_argument("--predict-only", action="store_true",
                        help="skip the fits: predict (pictures) with the runs already there, then write the table")
    parser.add_argument("--root", default=DEFAULT_ROOT, help="where the runs go")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    if not args.render_only:
        for entry in ENTRIES:
            if args.only is None or entry.name in args.only:
                run_entry(entry, root, fit=not args.predict_only)
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    (REPORT_DIR / "vision.md").write_text(render(root))
    print(f"wrote {REPORT_DIR / 'vision.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
