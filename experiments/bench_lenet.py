"""Epoch time of ``litexp fit`` against a plain PyTorch loop over the same tensors.

Both train the same network with the same batch size, optimizer and learning rate on the same
training indices, and run one validation pass per epoch, in this process: the plain loop before
and after the litexp run, so the ratio stays fair on a shared machine. litexp runs as a user gets
it by default: CSV and W&B (offline) loggers, checkpoints, run summary; only the progress bar is off.

Besides the epoch times it prints the median time of one training step (from the start of one
batch to the start of the next: data, step, hooks, logging), which other processes on a shared
machine disturb far less than whole epochs, and the per-step overhead in milliseconds. Run:

    python -m experiments.bench_lenet --epochs 3 [--config experiments/configs/fashion_mnist/lenet.yaml]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from lightning.pytorch.callbacks import Callback

from datamodules import FashionMNIST
from experiments.cli import CONFIG_DIR, main
from lit_models import build_network
from lit_models.init import init_weights
from lit_models.optim import build_optimizer, parameter_groups


class StepClock(Callback):
    """Writes, per epoch, the seconds between the starts of consecutive training batches to ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.starts: list[list[float]] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.starts.append([])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.starts[-1].append(time.perf_counter())

    def on_fit_end(self, trainer, pl_module) -> None:
        Path(self.path).write_text(json.dumps([intervals(starts) for starts in self.starts]))


def intervals(starts: list[float]) -> list[float]:
    return [later - earlier for earlier, later in zip(starts[:-1], starts[1:], strict=True)]


def plain_pytorch_epochs(config: dict, epochs: int) -> tuple[list[float], list[list[float]]]:
    model_args, data_args = config["model"]["init_args"], config["data"]["init_args"]
    data = FashionMNIST(**data_args)
    data.setup("fit")
    images, labels = data.load("train")
    train, val = torch.as_tensor(data.train_indices), torch.as_tensor(data.val_indices)
    network = build_network(model_args["network"], in_channels=1, num_classes=10, image_size=28,
                            **model_args.get("network_args", {}))
    init_weights(network, model_args.get("init", "default"), model_args.get("init_std", 0.01))
    lr = float(model_args["lr"])
    groups = parameter_groups(network.named_parameters(), float(model_args.get("weight_decay", 0.0)))
    optimizer = build_optimizer(model_args.get("optimizer", "sgd"), groups, lr, float(model_args.get("momentum", 0.9)))
    batch_size = int(data_args["batch_size"])
    times, step_times = [], []
    for epoch in range(epochs):
        start = time.perf_counter()
        network.train()
        order = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(epoch))]
        starts = []
        for batch in torch.split(order, batch_size):
            starts.append(time.perf_counter())
            inputs, _ = data.transform_batch((images[batch], labels[batch]), training=True)
            loss = F.cross_entropy(network(inputs), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        network.eval()
        correct = 0
        with torch.inference_mode():
            for batch in torch.split(val, batch_size):
                inputs, _ = data.transform_batch((images[batch], labels[batch]), training=False)
                correct += (network(inputs).argmax(1) == labels[batch]).sum().item()
        times.append(time.perf_counter() - start)
        step_times.append(intervals(starts))
        print(f"plain pytorch  epoch {epoch}: {times[-1]:.2f}s  val acc {correct / len(val):.4f}", flush=True)
    return times, step_times


def litexp_epochs(config_path: Path, epochs: int) -> tuple[list[float], list[list[float]]]:
    with tempfile.TemporaryDirectory() as root:
        clock = Path(root) / "step_times.json"
        code = main(["fit", "--config", str(config_path), f"--trainer.max_epochs={epochs}", "--wandb.mode=offline",
                     "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
                     "--trainer.callbacks+=experiments.bench_lenet.StepClock", f"--trainer.callbacks.path={clock}",
                     "--run.root", str(Path(root) / "runs")])
        if code != 0:
            raise SystemExit(code)
        (summary_path,) = Path(root).glob("runs/*/*/summary.json")
        summary = json.loads(summary_path.read_text())
        step_times = json.loads(clock.read_text())
    for epoch, seconds in enumerate(summary["fit"]["epoch_times_s"]):
        print(f"litexp fit     epoch {epoch}: {seconds:.2f}s", flush=True)
    print(f"litexp fit     final val acc {summary['fit']['metrics']['val/acc']:.4f}")
    return summary["fit"]["epoch_times_s"], step_times


def steady(times: list, quantile: float = 0.5) -> float:
    """Median (or another quantile) without the first epoch (warm-up), when there is more than one;
    of epoch times or, given a list per epoch, of step times."""
    after_warm_up = times[1:] if len(times) > 1 else times
    if after_warm_up and isinstance(after_warm_up[0], list):
        after_warm_up = [step for epoch in after_warm_up for step in epoch]
    if quantile == 0.5 or len(after_warm_up) < 2:
        return statistics.median(after_warm_up)
    return statistics.quantiles(after_warm_up, n=100)[round(100 * quantile) - 1]


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=CONFIG_DIR / "fashion_mnist" / "lenet.yaml")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = yaml.safe_load(args.config.read_text())
    torch.manual_seed(0)
    # plain loop before and after the litexp run, so machine load drifting during the run hits both
    before, before_steps = plain_pytorch_epochs(config, args.epochs)
    lightning, lightning_steps = litexp_epochs(args.config, args.epochs)
    after, after_steps = plain_pytorch_epochs(config, args.epochs)
    plain = [steady(before), steady(after)]
    print(f"\nthreads: {torch.get_num_threads()}  batch: {config['data']['init_args']['batch_size']}")
    print(f"plain pytorch epoch (median after warm-up; before / after): {plain[0]:.2f}s / {plain[1]:.2f}s")
    print(f"litexp fit epoch    (median, after warm-up): {steady(lightning):.2f}s")
    print(f"ratio litexp / plain, epochs: {steady(lightning) / statistics.mean(plain):.3f}")
    # the 10th percentile of step times is the step that no other process slowed down
    for quantile, label in ((0.5, "median"), (0.1, "10th percentile")):
        plain_step = statistics.mean([steady(before_steps, quantile), steady(after_steps, quantile)])
        litexp_step = steady(lightning_steps, quantile)
        print(f"step time, {label}: plain {1000 * steady(before_steps, quantile):.2f} / "
              f"{1000 * steady(after_steps, quantile):.2f} ms, litexp {1000 * litexp_step:.2f} ms, overhead "
              f"{1000 * (litexp_step - plain_step):+.2f} ms per step, ratio {litexp_step / plain_step:.3f}")


if __name__ == "__main__":
    run()
