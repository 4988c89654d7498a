"""The CNN zoo's reference table: train every CNN with its config, compare with the book.

Each model is trained by ``litexp fit --config <its config> --test`` in this process; its
``summary.json`` gives the parameters, epoch times and accuracies. Rows are kept in
``zoo.json`` next to the report and merged run by run, so the table can be filled a few models
at a time (CPU time is scarce; the book-faithful 224/96 px rows want a GPU):

    litexp zoo --models lenet,bn_lenet,nin --epochs 10 --max-minutes 20   # writes ./reports/zoo.*
    litexp zoo --render-only --report-dir experiments/reports   # rewrite the repository's table from zoo.json

Images/s counts training images over the whole epoch time (training and validation passes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from experiments.cli import CONFIG_DIR
from experiments.cli import main as litexp_main
from litexp.errors import LitexpError


@dataclass(frozen=True)
class ZooEntry:
    name: str
    label: str
    config: str  # relative to experiments/configs
    book: Optional[tuple[float, float]]  # the book's (train acc, test acc) after 10 epochs, d2l v0.17.5


FASHION = "fashion_mnist"
ENTRIES = (
    ZooEntry("lenet", "LeNet (28 px)", f"{FASHION}/lenet.yaml", (0.831, 0.789)),
    ZooEntry("bn_lenet", "BN-LeNet (28 px, ReLU, max pool)", f"{FASHION}/lenet_modern.yaml", (0.897, 0.836)),
    ZooEntry("alexnet", "AlexNet small (28 px)", f"{FASHION}/alexnet.yaml", (0.880, 0.882)),
    ZooEntry("vgg", "VGG-11 half width, BN (28 px)", f"{FASHION}/vgg.yaml", (0.931, 0.922)),
    ZooEntry("nin", "NiN small (28 px)", f"{FASHION}/nin.yaml", (0.795, 0.785)),
    ZooEntry("googlenet", "GoogLeNet small (28 px)", f"{FASHION}/googlenet.yaml", (0.913, 0.883)),
    ZooEntry("resnet18", "ResNet-18 small (28 px)", f"{FASHION}/resnet18.yaml", (0.997, 0.918)),
    ZooEntry("resnet34", "ResNet-34 small (28 px)", f"{FASHION}/resnet34.yaml", None),
    ZooEntry("resnet50", "ResNet-50 small (28 px)", f"{FASHION}/resnet50.yaml", None),
    ZooEntry("densenet", "DenseNet small (28 px)", f"{FASHION}/densenet.yaml", (0.950, 0.821)),
    ZooEntry("alexnet_book", "AlexNet (224 px, book)", f"{FASHION}/alexnet_book.yaml", (0.880, 0.882)),
    ZooEntry("vgg_book", "VGG-11 narrow (224 px, book)", f"{FASHION}/vgg_book.yaml", (0.931, 0.922)),
    ZooEntry("nin_book", "NiN (224 px, book)", f"{FASHION}/nin_book.yaml", (0.795, 0.785)),
    ZooEntry("googlenet_book", "GoogLeNet (96 px, book)", f"{FASHION}/googlenet_book.yaml", (0.913, 0.883)),
    ZooEntry("resnet18_book", "ResNet-18 (96 px, book)", f"{FASHION}/resnet18_book.yaml", (0.997, 0.918)),
    ZooEntry("densenet_book", "DenseNet (96 px, book)", f"{FASHION}/densenet_book.yaml", (0.950, 0.821)),
)
BY_NAME = {entry.name: entry for entry in ENTRIES}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="litexp zoo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="all", help=f"comma-separated subset of: {', '.join(BY_NAME)}")
    parser.add_argument("--epochs", type=int, default=None, help="override max_epochs (default: the config's)")
    parser.add_argument("--max-minutes", type=int, default=None, help="stop each model's training after this long")
    parser.add_argument("--accelerator", default="auto", help="Trainer accelerator (cpu, gpu, auto)")
    parser.add_argument("--report-dir", type=Path, default=Path("reports"),
                        help="where zoo.json/md/png live (default: ./reports; this repository's table: "
                             "experiments/reports)")
    parser.add_argument("--root", type=Path, default=Path("runs") / "zoo",
                        help="where each model's run goes (<root>/<model>/<time>/), W&B offline files included")
    parser.add_argument("--wandb-mode", default="auto", choices=("auto", "online", "offline", "disabled"),
                        help="W&B for the zoo's runs, in the group 'zoo' (default auto: online when logged in)")
    parser.add_argument("--render-only", action="store_true", help="only rewrite zoo.md and zoo.png from zoo.json")
    parser.add_argument("extra", nargs="*", help="more litexp fit options for every model (after --)")
    return parser.parse_args(argv)


def chosen_entries(models: str) -> list[ZooEntry]:
    if models == "all":
        return list(ENTRIES)
    names = [name.strip() for name in models.split(",") if name.strip()]
    unknown = [name for name in names if name not in BY_NAME]
    if unknown:
        raise LitexpError(f"unknown zoo model {', '.join(unknown)}; choose from {', '.join(BY_NAME)}")
    return [BY_NAME[name] for name in names]


def train(entry: ZooEntry, args: argparse.Namespace, root: Path) -> dict:
    """Run ``litexp fit --test`` for one model and turn its summary into a table row."""
    argv = ["fit", "--config", str(CONFIG_DIR / entry.config), "--test", "--run.root", str(root),
            "--run.name", entry.name, f"--wandb.mode={args.wandb_mode}", "--wandb.group=zoo",
            "--trainer.enable_progress_bar=false",
            f"--trainer.accelerator={args.accelerator}", *args.extra]
    if args.epochs:
        argv.append(f"--trainer.max_epochs={args.epochs}")
    if args.max_minutes:
        minutes = max(1, round(args.max_minutes))
        argv.append(f"--trainer.max_time=00:{minutes // 60:02d}:{minutes % 60:02d}:00")  # DD:HH:MM:SS
    if litexp_main(argv) != 0:
        raise LitexpError(f"training {entry.name} failed; run the same 'litexp fit' to see why")
    summary_path = max((root / entry.name).glob("*/summary.json"), key=lambda path: path.stat().st_mtime)
    summary = json.loads(summary_path.read_text())
    fit, data = summary["fit"], summary["data"]
    epoch_time = statistics.median(fit["epoch_times_s"])
    return {
        "parameters": summary["model"]["parameters"],
        "epochs": len(fit["epoch_times_s"]),
        "epoch_time_s": round(epoch_time, 1),
        "images_per_s": round(data["train_size"] / epoch_time),
        "train_acc": round(fit["metrics"]["train/acc"], 4),
        "val_acc": round(fit["metrics"]["val/acc"], 4),
        "test_acc": round(summary["test"]["metrics"]["test/acc"], 4),
        "device": summary["device"].get("name") or summary["device"].get("accelerator"),
        "batch_size": data["batch_size"],
    }


# -- report ---------------------------------------------------------------------------------------
NOTE = """Fashion-MNIST, 54k training / 6k validation images (hold-out, seed 0), test on the 10k test
images with the best checkpoint by val/acc. Train acc is the last epoch's running accuracy (dropout
and augmentation on), as in the book. Epoch time covers the training and validation passes;
images/s = training images / epoch time. Book numbers: d2l v0.17.5, 10 epochs, on a GPU."""


def render(rows: dict, report_dir: Path) -> None:
    lines = ["# CNN zoo on Fashion-MNIST", "", NOTE, "",
             "| model | config | params | epochs | epoch time (s) | images/s | device | train acc | val acc "
             "| test acc | book train / test | test vs book |",
             "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---|---|"]
    for entry in ENTRIES:
        book = f"{entry.book[0]:.3f} / {entry.book[1]:.3f}" if entry.book else "-"
        row = rows.get(entry.name)
        if row is None:
            lines.append(f"| {entry.label} | `{entry.config}` | | | | | | | | | {book} | not measured |")
            continue
        verdict = "-" if not entry.book else ("meets" if row["test_acc"] >= entry.book[1] else "below")
        lines.append(
            f"| {entry.label} | `{entry.config}` | {row['parameters']:,} | {row['epochs']} | {row['epoch_time_s']} "
            f"| {row['images_per_s']} | {row['device']} | {row['train_acc']:.3f} | {row['val_acc']:.3f} "
            f"| {row['test_acc']:.3f} | {book} | {verdict} |")
    notes = (report_dir / "zoo_notes.md")
    if notes.exists():
        lines += ["", notes.read_text().strip()]
    lines += ["", "![test accuracy against the book](zoo.png)", ""]
    (report_dir / "zoo.md").write_text("\n".join(lines))
    chart(rows, report_dir / "zoo.png")


def chart(rows: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [entry for entry in ENTRIES if entry.name in rows]
    if not measured:
        return
    figure, axis = plt.subplots(figsize=(max(6, 1.1 * len(measured)), 4))
    positions = range(len(measured))
    axis.bar([p - 0.2 for p in positions], [rows[e.name]["test_acc"] for e in measured], 0.4, label="litexp test acc")
    axis.bar([p + 0.2 for p in positions], [e.book[1] if e.book else 0 for e in measured], 0.4, label="book test acc")
    axis.set_xticks(list(positions), [e.name for e in measured], rotation=30, ha="right")
    axis.set_ylim(0.7, 1.0)
    axis.set_ylabel("Fashion-MNIST test accuracy")
    axis.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)  # above: covers no bar
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    results = args.report_dir / "zoo.json"
    rows = json.loads(results.read_text()) if results.exists() else {}
    try:
        entries = [] if args.render_only else chosen_entries(args.models)
        for entry in entries:
            row = train(entry, args, args.root)
            rows[entry.name] = row
            print(f"zoo: {entry.name}: {json.dumps(row)}", flush=True)
            args.report_dir.mkdir(parents=True, exist_ok=True)
            partial = results.with_suffix(".json.partial")
            partial.write_text(json.dumps(rows, indent=2, sort_keys=True) + "\n")
            partial.replace(results)  # every finished model is kept, even if a later one fails
    except LitexpError as error:
        print(f"litexp: error: {error}", file=sys.stderr)
        return 2
    render(rows, args.report_dir)
    print(f"zoo: wrote {args.report_dir / 'zoo.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
