"""Epoch time of ``litexp fit`` against a plain PyTorch loop over the same tensors.

Both train the same network with the same batch size, optimizer and learning rate on the same
training indices, and run one validation pass per epoch, in this process: the plain loop before
and after the litexp run, so the ratio stays fair on a shared machine. Run:

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

from datamodules import FashionMNIST
from experiments.cli import CONFIG_DIR, main
from lit_models import build_network
from lit_models.init import init_weights
from lit_models.optim import build_optimizer, parameter_groups


def plain_pytorch_epochs(config: dict, epochs: int) -> list[float]:
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
    times = []
    for epoch in range(epochs):
        start = time.perf_counter()
        network.train()
        order = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(epoch))]
        for batch in torch.split(order, batch_size):
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
        print(f"plain pytorch  epoch {epoch}: {times[-1]:.2f}s  val acc {correct / len(val):.4f}", flush=True)
    return times


def litexp_epochs(config_path: Path, epochs: int) -> list[float]:
    with tempfile.TemporaryDirectory() as root:
        code = main(["fit", "--config", str(config_path), f"--trainer.max_epochs={epochs}", "--wandb.mode=offline",
                     "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
                     "--run.root", root])
        if code != 0:
            raise SystemExit(code)
        (summary_path,) = Path(root).glob("*/*/summary.json")
        summary = json.loads(summary_path.read_text())
    for epoch, seconds in enumerate(summary["fit"]["epoch_times_s"]):
        print(f"litexp fit     epoch {epoch}: {seconds:.2f}s", flush=True)
    print(f"litexp fit     final val acc {summary['fit']['metrics']['val/acc']:.4f}")
    return summary["fit"]["epoch_times_s"]


def steady(times: list[float]) -> float:
    """Median epoch time without the first epoch (warm-up), when there is more than one."""
    return statistics.median(times[1:] if len(times) > 1 else times)


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=CONFIG_DIR / "fashion_mnist" / "lenet.yaml")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    config = yaml.safe_load(args.config.read_text())
    torch.manual_seed(0)
    # plain loop before and after the litexp run, so machine load drifting during the run hits both
    before = plain_pytorch_epochs(config, args.epochs)
    lightning = litexp_epochs(args.config, args.epochs)
    after = plain_pytorch_epochs(config, args.epochs)
    plain = [steady(before), steady(after)]
    print(f"\nthreads: {torch.get_num_threads()}  batch: {config['data']['init_args']['batch_size']}")
    print(f"plain pytorch epoch (median after warm-up; before / after): {plain[0]:.2f}s / {plain[1]:.2f}s")
    print(f"litexp fit epoch    (median, after warm-up): {steady(lightning):.2f}s")
    print(f"ratio litexp / plain: {steady(lightning) / statistics.mean(plain):.3f}")


if __name__ == "__main__":
    run()
