"""Epoch time of ``litexp fit`` against a plain PyTorch loop over the same tensors, epoch by epoch.

Both train the same network with the same batch size, optimizer and learning rate on the same
training indices, and run one validation pass per epoch, in this process and on the same threads.
litexp runs as a user gets it by default: CSV and W&B (offline) loggers, both checkpoints, the run
summary, signal handling; only the progress bar is off.

The plain loop's epochs are interleaved with litexp's: a plain epoch runs before every litexp epoch
and one after the last, so each litexp epoch is compared with the mean of the plain epochs right
before and after it. Load from other processes on a shared machine then hits both sides of each
ratio alike; the reported ratio is the median of these per-epoch ratios after the first (warm-up)
epoch. Both sides share the process's allocator, set as every litexp command sets it
(``experiments/memory.py``): left to glibc's adaptive thresholds, one side or the other took
hundreds of thousands of page faults per epoch in some processes and not in others, a 5 to 20 %
swing of the ratio either way; the bench prints both sides' faults per epoch. It also prints the
median and 10th-percentile time of one training step (from the start of
one batch to the start of the next: data, step, hooks, logging) on both sides. Run:

    python -m experiments.bench_lenet --epochs 5 [--threads 1] [--processes 3] \
        [--config experiments/configs/fashion_mnist/lenet.yaml]

The same code measures a different ratio in different processes (1.04 to 1.06 for the book LeNet,
steady within each process): ``--processes N`` measures in N fresh processes, one after another, and
reports each one's ratio and their median.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from lightning.pytorch.callbacks import Callback

from datamodules import FashionMNIST
from experiments.cli import CONFIG_DIR, main
from experiments.memory import keep_freed_memory
from lit_models import build_network
from lit_models.init import init_weights
from lit_models.optim import build_optimizer, parameter_groups


def intervals(starts: list[float]) -> list[float]:
    return [later - earlier for earlier, later in zip(starts[:-1], starts[1:], strict=True)]


class PlainLoop:
    """The same training as the config's, written as a plain PyTorch loop."""

    def __init__(self, config: dict) -> None:
        model_args, data_args = config["model"]["init_args"], config["data"]["init_args"]
        self.data = FashionMNIST(**data_args)
        self.data.setup("fit")
        self.images, self.labels = self.data.load("train")
        self.train = torch.as_tensor(self.data.train_indices)
        self.val = torch.as_tensor(self.data.val_indices)
        self.network = build_network(model_args["network"], in_channels=1, num_classes=10, image_size=28,
                                     **model_args.get("network_args", {}))
        init_weights(self.network, model_args.get("init", "default"), model_args.get("init_std", 0.01))
        groups = parameter_groups(self.network.named_parameters(), float(model_args.get("weight_decay", 0.0)))
        self.optimizer = build_optimizer(model_args.get("optimizer", "sgd"), groups, float(model_args["lr"]),
                                         float(model_args.get("momentum", 0.9)))
        self.batch_size = int(data_args["batch_size"])
        self.epochs_done = 0

    def epoch(self) -> tuple[float, list[float], float]:
        """(seconds, step intervals, validation accuracy) of one training epoch and its validation."""
        start = time.perf_counter()
        self.network.train()
        generator = torch.Generator().manual_seed(self.epochs_done)
        order = self.train[torch.randperm(len(self.train), generator=generator)]
        starts = []
        for batch in torch.split(order, self.batch_size):
            starts.append(time.perf_counter())
            inputs, _ = self.data.transform_batch((self.images[batch], self.labels[batch]), training=True)
            loss = F.cross_entropy(self.network(inputs), self.labels[batch])
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        self.network.eval()
        correct = 0
        with torch.inference_mode():
            for batch in torch.split(self.val, self.batch_size):
                inputs, _ = self.data.transform_batch((self.images[batch], self.labels[batch]), training=False)
                correct += (self.network(inputs).argmax(1) == self.labels[batch]).sum().item()
        self.epochs_done += 1
        return time.perf_counter() - start, intervals(starts), correct / len(self.val)


class Interleave(Callback):
    """Runs a plain-loop epoch before each litexp epoch and after the last; times both; writes ``path``.

    A litexp epoch is timed from the end of the plain epoch before it to the start of the next one
    (its training, validation, checkpoints and logs all count).
    """

    def __init__(self, config: str, path: str) -> None:
        self.config, self.path = config, path
        self.plain: list[tuple[float, list[float], float]] = []
        self.litexp: list[float] = []
        self.litexp_steps: list[list[float]] = []
        self.faults: dict[str, list[int]] = {"plain": [], "litexp": []}  # minor page faults per epoch
        self._epoch_start = 0.0
        self._faults_at = 0

    def on_fit_start(self, trainer, pl_module) -> None:
        self.loop = PlainLoop(yaml.safe_load(Path(self.config).read_text()))

    def _plain_epoch(self) -> None:
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        if self._epoch_start:
            self.litexp.append(time.perf_counter() - self._epoch_start)
            self.faults["litexp"].append(faults - self._faults_at)
        self.plain.append(self.loop.epoch())
        self._epoch_start = time.perf_counter()
        self._faults_at = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        self.faults["plain"].append(self._faults_at - faults)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._plain_epoch()
        self.litexp_steps.append([])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.litexp_steps[-1].append(time.perf_counter())

    def on_train_end(self, trainer, pl_module) -> None:
        self._plain_epoch()
        Path(self.path).write_text(json.dumps({
            "plain": [seconds for seconds, _, _ in self.plain],
            "plain_steps": [steps for _, steps, _ in self.plain],
            "plain_val_acc": self.plain[-1][2],
            "litexp": self.litexp,
            "litexp_steps": [intervals(starts) for starts in self.litexp_steps],
            "faults": self.faults,
        }))


def quantile(values: list[float], q: float) -> float:
    return statistics.median(values) if q == 0.5 else statistics.quantiles(values, n=100)[round(100 * q) - 1]


def measure(config: Path, epochs: int) -> dict:
    """One ``litexp fit`` interleaved with the plain loop, in this process: every figure the report prints."""
    allocator_set = keep_freed_memory()  # as litexp's main() sets it, for both sides of the comparison
    with tempfile.TemporaryDirectory() as root:
        results = Path(root) / "times.json"
        code = main(["fit", "--config", str(config), f"--trainer.max_epochs={epochs}",
                     "--wandb.mode=offline", "--trainer.enable_progress_bar=false",
                     "--trainer.enable_model_summary=false", "--trainer.callbacks+=experiments.bench_lenet.Interleave",
                     f"--trainer.callbacks.config={config}", f"--trainer.callbacks.path={results}",
                     "--run.root", str(Path(root) / "runs")])
        if code != 0:
            raise SystemExit(code)
        times = json.loads(results.read_text())
        (summary_path,) = Path(root).glob("runs/*/*/summary.json")
        summary = json.loads(summary_path.read_text())
    plain, litexp = times["plain"], times["litexp"]
    steady = list(range(1, len(litexp)) if len(litexp) > 1 else range(len(litexp)))
    plain_steps = [step for steps in times["plain_steps"][1:] for step in steps]
    litexp_steps = [step for i in steady for step in times["litexp_steps"][i]]
    return {
        "plain": plain, "litexp": litexp, "steady": steady,
        "ratios": [litexp[i] / ((plain[i] + plain[i + 1]) / 2) for i in steady],
        "val_acc": {"plain": times["plain_val_acc"], "litexp": summary["fit"]["metrics"]["val/acc"]},
        "faults": {"plain": statistics.median(times["faults"]["plain"][1:]),
                   "litexp": statistics.median([times["faults"]["litexp"][i] for i in steady])},
        "allocator_set": allocator_set, "threads": torch.get_num_threads(),
        "steps": {label: {"plain": quantile(plain_steps, q), "litexp": quantile(litexp_steps, q)}
                  for q, label in ((0.5, "median"), (0.1, "10th percentile"))},
    }


def report(result: dict, batch_size: int) -> None:
    plain, litexp, steady, ratios = result["plain"], result["litexp"], result["steady"], result["ratios"]
    for epoch, seconds in enumerate(litexp):
        print(f"epoch {epoch}: plain {plain[epoch]:.2f}s | litexp {seconds:.2f}s | plain {plain[epoch + 1]:.2f}s")
    print(f"final val acc: plain {result['val_acc']['plain']:.4f}, litexp {result['val_acc']['litexp']:.4f}")
    print(f"\nthreads: {result['threads']}  batch: {batch_size}")
    print(f"epoch time, median after warm-up: plain {statistics.median(plain[1:]):.2f}s, "
          f"litexp {statistics.median([litexp[i] for i in steady]):.2f}s")
    print(f"ratio litexp / plain, epochs (median of per-epoch ratios, each against the plain epochs around it): "
          f"{statistics.median(ratios):.3f}  (per epoch: {', '.join(f'{r:.3f}' for r in ratios)})")
    print(f"page faults per epoch, median after warm-up: plain {result['faults']['plain']:.0f}, "
          f"litexp {result['faults']['litexp']:.0f} (allocator: "
          f"{'thresholds fixed' if result['allocator_set'] else 'as the environment sets it'}, "
          f"see experiments/memory.py)")
    for label, step in result["steps"].items():
        ours, theirs = step["litexp"], step["plain"]
        print(f"step time, {label}: plain {1000 * theirs:.2f} ms, litexp {1000 * ours:.2f} ms, overhead "
              f"{1000 * (ours - theirs):+.2f} ms per step, ratio {ours / theirs:.3f}")


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=CONFIG_DIR / "fashion_mnist" / "lenet.yaml")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--processes", type=int, default=1,
                        help="measure in this many fresh processes, one after another, and report each one's ratio "
                             "and their median (the same code measures 1.04 to 1.06 in different processes)")
    parser.add_argument("--json", type=Path, default=None, help=argparse.SUPPRESS)  # a child's results, for the parent
    args = parser.parse_args()
    if args.processes < 1 or args.epochs < 1:
        parser.error("--processes and --epochs must be at least 1")
    batch_size = yaml.safe_load(args.config.read_text())["data"]["init_args"]["batch_size"]
    if args.processes == 1:
        if args.threads:
            torch.set_num_threads(args.threads)
        result = measure(args.config, args.epochs)
        if args.json:
            args.json.write_text(json.dumps(result))
        else:
            report(result, batch_size)
        return
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for number in range(args.processes):
            path = Path(folder) / f"process{number}.json"
            command = [sys.executable, "-m", "experiments.bench_lenet", "--config", str(args.config),
                       "--epochs", str(args.epochs), "--processes", "1", "--json", str(path),
                       *(["--threads", str(args.threads)] if args.threads else [])]
            child = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if child.returncode != 0:
                sys.stderr.write(child.stderr)
                raise SystemExit(f"bench_lenet: process {number} failed (exit {child.returncode}); its output is above")
            results.append(json.loads(path.read_text()))
            result = results[-1]
            step = result["steps"]["median"]
            print(f"process {number}: ratio {statistics.median(result['ratios']):.3f} (per epoch "
                  f"{min(result['ratios']):.3f} to {max(result['ratios']):.3f}), step overhead "
                  f"{1000 * (step['litexp'] - step['plain']):+.2f} ms over {1000 * step['plain']:.2f} ms, "
                  f"page faults per epoch {result['faults']['plain']:.0f} / {result['faults']['litexp']:.0f}",
                  flush=True)
    ratios = [statistics.median(result["ratios"]) for result in results]
    print(f"\nthreads: {results[0]['threads']}  batch: {batch_size}  epochs: {args.epochs} per process")
    print(f"ratio litexp / plain, median of {len(ratios)} processes (each the median of its steady epochs): "
          f"{statistics.median(ratios):.3f}  (processes: {', '.join(f'{r:.3f}' for r in ratios)})")


if __name__ == "__main__":
    run()
