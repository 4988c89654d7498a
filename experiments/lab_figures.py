"""What the lab's reports show beyond the table: figures drawn from the runs, and findings in numbers.

A figure function takes the comparison and the report folder, writes its PNG (and the numbers behind
it as JSON) there, and returns the report's markdown lines; a finding returns sentences with numbers.
"""

from __future__ import annotations

import importlib
import json
import math
import statistics
from pathlib import Path
from typing import Any, Callable

import torch
import yaml
from torch import nn
from torch.nn import functional as F

from experiments.compare import Comparison, Variant, epoch_curves


# -- reading runs back ------------------------------------------------------------------------------
def run_config(run: Path) -> dict[str, Any]:
    return yaml.safe_load((run / "config.yaml").read_text())


def class_from(path: str) -> type:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


class _HparamsLoader(yaml.SafeLoader):
    """Safe YAML plus the tuples Lightning writes into hparams.yaml (``input_shape``)."""


_HparamsLoader.add_constructor("tag:yaml.org,2002:python/tuple",
                               lambda loader, node: tuple(loader.construct_sequence(node)))


def fresh_task(run: Path, seed: int = 0) -> nn.Module:
    """The run's task as it was before training (its hyperparameters, initialised with ``seed``); also for a
    run that diverged before its first checkpoint."""
    hparams = yaml.load((run / "hparams.yaml").read_text(), Loader=_HparamsLoader)
    cls = class_from(run_config(run)["model"]["class_path"])
    torch.manual_seed(seed)
    return cls(**{key: value for key, value in hparams.items() if not key.startswith("_")})


def trained_task(run: Path) -> nn.Module:
    """The run's task from its last checkpoint."""
    config = run_config(run)
    cls = class_from(config["model"]["class_path"])
    return cls.load_from_checkpoint(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def training_batch(run: Path, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``size`` training samples of the run's split, as the model sees them (no augmentation)."""
    config = run_config(run)["data"]
    datamodule = class_from(config["class_path"])(**config.get("init_args", {}))
    datamodule.setup("fit")
    tensors = datamodule.load("train")
    indices = torch.as_tensor(datamodule.train_indices[:size])
    return datamodule.transform_batch(tuple(tensor[indices] for tensor in tensors), training=False)


def metric_curves(run: Path, keys: tuple[str, ...]) -> dict[str, list[float]]:
    curves: dict[str, list[float]] = {}
    for key in keys:
        curves[key] = epoch_curves(run, key)[key]
    return curves


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def MaxNLocator(**kwargs: Any):  # noqa: N802 - matplotlib's class, imported where a plot is drawn
    from matplotlib.ticker import MaxNLocator as locator

    return locator(**kwargs)


# -- the recipes' own figures ---------------------------------------------------------------------
def activation_outputs(task: nn.Module, inputs: torch.Tensor) -> list[torch.Tensor]:
    """The output of every activation layer of ``task`` on ``inputs`` (one forward pass, in order)."""
    outputs: list[torch.Tensor] = []
    kinds = (nn.Sigmoid, nn.Tanh, nn.ReLU)
    hooks = [module.register_forward_hook(lambda _m, _i, out: outputs.append(out.detach().flatten()))
             for module in task.modules() if isinstance(module, kinds)]
    try:
        with torch.no_grad():
            task.train()
            task(inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return outputs


def layer_gradient_norms(task: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """The gradient norm of every Linear layer's weight for one batch's cross-entropy, input side first."""
    task.train()
    task.zero_grad()
    F.cross_entropy(task(inputs), labels).backward()
    return [module.weight.grad.norm().item() for module in task.modules() if isinstance(module, nn.Linear)]


def activation_histograms(comparison: Comparison, out: Path) -> list[str]:
    """The book's figure: each hidden layer's activations after one forward pass, per activation and init."""
    plt = pyplot()
    by_activation: dict[str, list[Variant]] = {}
    for variant in comparison.variants:
        by_activation.setdefault(variant.name.split("-")[0], []).append(variant)
    inputs, _ = training_batch(comparison.run(comparison.variants[0], 0), 1000)
    lines = ["## Activations after one forward pass", "",
             "1,000 training images through the untrained network; each panel is one hidden layer's outputs "
             "(the share of exact zeros and the standard deviation above it; for ReLU the positive outputs, "
             "each row on its own scale up to its 99th percentile).", ""]
    stats = []
    for activation, variants in by_activation.items():
        outputs = {variant.name: activation_outputs(fresh_task(comparison.run(variant, 0)), inputs)
                   for variant in variants}
        layers = max(len(values) for values in outputs.values())
        bounded = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}.get(activation)
        figure, axes = plt.subplots(len(variants), layers, figsize=(2.3 * layers, 1.7 * len(variants)),
                                    squeeze=False, sharex=bounded is not None)
        for row, variant in enumerate(variants):
            span = bounded
            if span is None:  # ReLU: the positive outputs, each init on its own scale (they differ by 1e9)
                positive = torch.cat([values[values > 0] for values in outputs[variant.name]])
                span = (0.0, float(torch.quantile(positive[:100_000], 0.99)) if len(positive) else 1.0)
            for column, values in enumerate(outputs[variant.name]):
                axis = axes[row][column]
                shown_values = values if bounded is not None else values[values > 0]
                axis.hist(shown_values.numpy(), bins=30, range=span, color=f"C{row}")
                zeros = float((values == 0).float().mean())
                shown = f", {zeros:.0%} zero" if zeros >= 0.005 else ""
                axis.set_title(f"layer {column + 1}: std {values.std():.3g}{shown}", fontsize=7)
                axis.tick_params(labelsize=6)
                axis.set_yticks([])
                stats.append((variant.name, column + 1, float(values.std()), zeros))
            axes[row][0].set_ylabel(variant.name.split("-", 1)[1], fontsize=8)
        figure.suptitle(f"{activation}: activations per hidden layer (rows: initialisation)", fontsize=10)
        figure.tight_layout()
        name = f"activations_{activation}.png"
        figure.savefig(out / name, dpi=100)
        plt.close(figure)
        lines += [f"![{activation} activations per layer]({name})", ""]
    lines += ["| variant | std of layer 1 | std of the last layer | zeros in the last layer |",
              "| --- | --- | --- | --- |"]
    for variant in comparison.variants:
        mine = [entry for entry in stats if entry[0] == variant.name]
        lines.append(f"| {variant.name} | {mine[0][2]:.3g} | {mine[-1][2]:.3g} | {mine[-1][3]:.0%} |")
    table_rows = [{"variant": v, "layer": layer, "std": std, "zeros": zeros} for v, layer, std, zeros in stats]
    (out / "activations.json").write_text(json.dumps(table_rows, indent=1) + "\n")
    return [*lines, ""]


def gradient_norms(comparison: Comparison, out: Path) -> list[str]:
    """Per-layer gradient norms on one batch, before training and after it."""
    plt = pyplot()
    inputs, labels = training_batch(comparison.run(comparison.variants[0], 0), 256)
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    norms: dict[str, dict[str, list[float]]] = {}
    for index, variant in enumerate(comparison.variants):
        run = comparison.run(variant, 0)
        trained = (run / "checkpoints" / "last.ckpt").exists()  # a run that diverged at once has none
        norms[variant.name] = {"before training": layer_gradient_norms(fresh_task(run), inputs, labels),
                               "after training": layer_gradient_norms(trained_task(run), inputs, labels)
                               if trained else []}
        for axis, moment in zip(axes, ("before training", "after training"), strict=True):
            values = norms[variant.name][moment]
            axis.plot(range(1, len(values) + 1), values, marker="o", color=f"C{index}", label=variant.name)
    for axis, moment in zip(axes, ("before training", "after training"), strict=True):
        axis.set_yscale("log")
        axis.set_xlabel("linear layer (1 = next to the input)")
        axis.set_title(f"gradient norm of each layer's weight, {moment}", fontsize=9)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("||dL/dW|| (one batch of 256)")
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / "gradient_norms.png", dpi=110)
    plt.close(figure)
    (out / "gradient_norms.json").write_text(json.dumps(norms, indent=1) + "\n")
    lines = ["## Gradient norm per layer", "", "One batch of 256 training images; the ratio is the first layer's "
             "gradient norm over the last layer's (1 = gradients reach the input side undiminished).", "",
             "![gradient norm per layer](gradient_norms.png)", "",
             "| variant | first/last before training | first/last after training |", "| --- | --- | --- |"]
    for name, moments in norms.items():
        ratios = [f"{moments[m][0] / moments[m][-1]:.2g}" if moments[m] else "no checkpoint"
                  for m in ("before training", "after training")]
        lines.append(f"| {name} | {ratios[0]} | {ratios[1]} |")
    return [*lines, ""]


def lr_per_step(model: dict[str, Any], epochs: int, steps: int) -> list[float]:
    """The learning rate of each of ``steps`` training steps under the task options ``model`` (lr, scheduler,
    step_size, gamma), from the same scheduler code a run uses, stepped as Lightning steps it."""
    from lit_models.optim import SCHEDULERS, Schedule, build_optimizer, build_scheduler

    per_epoch = max(1, steps // max(1, epochs))
    optimizer = build_optimizer("sgd", [{"params": [nn.Parameter(torch.zeros(1))]}], float(model["lr"]), 0.0)
    name = model.get("scheduler")
    scheduler = None
    if name:
        schedule = Schedule(epochs, steps, int(model.get("step_size", 10)), float(model.get("gamma", 0.1)))
        scheduler = build_scheduler(name, optimizer, schedule)["scheduler"]
    rates = []
    for step in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if scheduler is not None and (SCHEDULERS[name].interval == "step" or (step + 1) % per_epoch == 0):
            scheduler.step()
    return rates


def learning_rates(comparison: Comparison, out: Path) -> list[str]:
    """The learning rate of every step of each variant's runs."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6.5, 3.8))
    for index, variant in enumerate(comparison.variants):
        run = comparison.run(variant, 0)
        summary = json.loads((run / "summary.json").read_text())["fit"]
        epochs, steps = int(summary["epochs"]), int(summary["global_steps"])
        rates = lr_per_step(run_config(run)["model"]["init_args"], epochs, steps)
        axis.plot([step * epochs / steps for step in range(steps)], rates, color=f"C{index}", label=variant.name)
    axis.set_xlabel("epoch")
    axis.set_ylabel("learning rate")
    axis.set_title("learning rate per step", fontsize=9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / "learning_rates.png", dpi=110)
    plt.close(figure)
    return ["## Learning rate per step", "", "![learning rate per step](learning_rates.png)", ""]


def generalisation_gap(comparison: Comparison, out: Path) -> list[str]:
    """Training and validation loss per epoch, and their gap (mean over seeds)."""
    plt = pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    lines = ["## Training and validation loss", "",
             "Training loss is the mean over the epoch's batches (with dropout active where a variant has it).", "",
             "![training and validation loss, and their gap](gap.png)", "",
             "| variant | final train/loss | final val/loss | gap | lowest val/loss (epoch) |",
             "| --- | --- | --- | --- | --- |"]
    for index, variant in enumerate(comparison.variants):
        curves = [metric_curves(comparison.run(variant, seed), ("train/loss", "val/loss"))
                  for seed in range(comparison.seeds)]
        length = min(min(len(c["train/loss"]), len(c["val/loss"])) for c in curves)
        if length == 0:
            continue
        train = [statistics.fmean(c["train/loss"][i] for c in curves) for i in range(length)]
        val = [statistics.fmean(c["val/loss"][i] for c in curves) for i in range(length)]
        epochs = range(1, length + 1)
        axes[0].plot(epochs, train, linestyle="--", color=f"C{index}")
        axes[0].plot(epochs, val, color=f"C{index}", label=variant.name)
        axes[1].plot(epochs, [v - t for v, t in zip(val, train, strict=True)], color=f"C{index}", label=variant.name)
        lowest = min(range(length), key=val.__getitem__)
        lines.append(f"| {variant.name} | {train[-1]:.4f} | {val[-1]:.4f} | {val[-1] - train[-1]:.4f} | "
                     f"{val[lowest]:.4f} ({lowest + 1}) |")
    axes[0].set_title("loss per epoch (dashed: training, solid: validation)", fontsize=9)
    axes[1].set_title("gap: validation loss - training loss", fontsize=9)
    for axis in axes:
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
    if all(y > 0 for line in axes[0].get_lines() for y in line.get_ydata()):
        axes[0].set_yscale("log")
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / "gap.png", dpi=110)
    plt.close(figure)
    return [*lines, ""]


def polynomial_fits(comparison: Comparison, out: Path) -> list[str]:
    """Each degree's fitted curve over the training points, and the learned coefficients."""
    plt = pyplot()
    first = comparison.run(comparison.variants[0], 0)
    config = run_config(first)["data"]
    data = class_from(config["class_path"])(**config.get("init_args", {}))
    data.setup("fit")
    features, targets = data.load("train")
    train = torch.as_tensor(data.train_indices)
    x_train, y_train = features[train, 0], targets[train, 0]  # feature 1 is x itself
    grid = torch.linspace(-3.0, 3.0, 200)
    coefficients = data.coefficients
    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    axis.scatter(x_train.numpy(), y_train.numpy(), s=8, color="grey", label="training points")
    powers = torch.arange(1, 21)
    factorials = torch.exp(torch.lgamma(powers + 1.0))
    true = coefficients[0] + sum(c * grid ** i / math.factorial(i) for i, c in enumerate(coefficients) if i)
    axis.plot(grid.numpy(), true.numpy(), color="black", linestyle=":", label="true function")
    lines = ["## The fitted polynomials", "", "![fitted curves over the training points](fit.png)", "",
             "| variant | learned bias and coefficients of x^i/i! (seed 0) |", "| --- | --- |"]
    for index, variant in enumerate(comparison.variants):
        if not (comparison.run(variant, 0) / "checkpoints" / "last.ckpt").exists():
            lines.append(f"| {variant.name} | no checkpoint (the run diverged) |")
            continue
        task = trained_task(comparison.run(variant, 0)).eval()
        degree = task.hparams.in_features
        terms = grid[:, None] ** powers[:degree] / factorials[:degree]
        with torch.no_grad():
            axis.plot(grid.numpy(), task(terms)[:, 0].numpy(), color=f"C{index}", label=variant.name)
        layer = next(module for module in task.modules() if isinstance(module, nn.Linear))
        learned = layer.bias.detach()[:1].tolist() + layer.weight.detach()[0].tolist()
        shown = ", ".join(f"{value:.2f}" for value in learned[:6]) + (", ..." if len(learned) > 6 else "")
        lines.append(f"| {variant.name} | {shown} |")
    lines.append(f"| true | {', '.join(f'{value:.2f}' for value in coefficients)}, 0, ... |")
    axis.set_ylim(float(y_train.min()) - 5, float(y_train.max()) + 5)
    axis.set_xlabel("x")
    axis.set_ylabel("y")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    axis.set_title("fitted polynomials (seed 0)", fontsize=9)
    figure.tight_layout()
    figure.savefig(out / "fit.png", dpi=110)
    plt.close(figure)
    return [*lines, ""]


# -- findings in numbers -------------------------------------------------------------------------
def ranking(comparison: Comparison) -> list[str]:
    """Best, ties and worst by the compared metric, with their numbers."""
    scored = [row for row in comparison.rows if math.isfinite(row["final"][0])]
    if not scored:
        return ["No variant produced a result."]
    ordered = sorted(scored, key=lambda row: row["final"][0], reverse=comparison.maximize)

    def show(row: dict[str, Any]) -> str:
        mean, std = row["final"]
        return f"{row['variant']} {mean:.4f}" + (f" ± {std:.4f}" if comparison.seeds > 1 else "")

    ties = [show(row) for row in ordered[1:] if str(row.get("verdict", "")).startswith("tie")]
    text = [f"Best final `{comparison.metric}`: {show(ordered[0])}"
            + (f"; tied within the spread: {', '.join(ties)}" if ties else "")
            + (f"; worst: {show(ordered[-1])}." if len(ordered) > 1 else ".")]
    failed = [row["variant"] for row in comparison.rows if row not in scored or "diverged" in row["statuses"]]
    if failed:
        text.append(f"Diverged or without a result: {', '.join(failed)}.")
    return text


def epochs_to_target(target: float) -> Callable[[Comparison, Path], list[str]]:
    def finding(comparison: Comparison, out: Path) -> list[str]:
        parts = []
        for row in comparison.rows:
            reached = []
            for curve in row["curves"]:
                values = curve.get(comparison.metric, [])
                hits = [epoch + 1 for epoch, value in enumerate(values) if value >= target]
                reached.append(str(hits[0]) if hits else "never")
            parts.append(f"{row['variant']} at epoch {' / '.join(reached)}")
        return [f"Epochs to reach {comparison.metric} >= {target} (per seed): {'; '.join(parts)}."]

    return finding


def final_gaps(comparison: Comparison, out: Path) -> list[str]:
    parts = []
    for variant in comparison.variants:
        gaps = []
        for seed in range(comparison.seeds):
            curves = metric_curves(comparison.run(variant, seed), ("train/loss", "val/loss"))
            if curves["train/loss"] and curves["val/loss"]:
                gaps.append(curves["val/loss"][-1] - curves["train/loss"][-1])
        if gaps:
            parts.append(f"{variant.name} {statistics.fmean(gaps):.3f}")
    return [f"Final gap (validation loss - training loss, mean over seeds): {', '.join(parts)}."]


def lowest_training_loss(comparison: Comparison, out: Path) -> list[str]:
    rows = [row for row in comparison.rows if math.isfinite(row["train_loss"][0])]
    ordered = sorted(rows, key=lambda row: row["train_loss"][0])
    shown = ", ".join(f"{row['variant']} {row['train_loss'][0]:.3f}" for row in ordered)
    return [f"Final training loss, lowest first (mean over seeds): {shown}."]


def best_init_per_activation(comparison: Comparison, out: Path) -> list[str]:
    """Per activation: the inits ranked by the compared metric, and those that did not learn."""
    lines = []
    for activation in ("sigmoid", "tanh", "relu"):
        rows = [row for row in comparison.rows if row["variant"].startswith(activation + "-")]
        scored = sorted((row for row in rows if math.isfinite(row["final"][0])), key=lambda row: row["final"][0],
                        reverse=comparison.maximize)
        shown = ", ".join(f"{row['variant'].split('-', 1)[1]} {row['final'][0]:.3f}" for row in scored)
        failed = [row["variant"].split("-", 1)[1] for row in rows if row not in scored or "diverged" in row["statuses"]]
        lines.append(f"{activation}: final `{comparison.metric}` by init, best first: {shown}"
                     + (f"; diverged: {', '.join(failed)}" if failed else "") + ".")
    stats = json.loads((out / "activations.json").read_text()) if (out / "activations.json").exists() else []
    last = {}
    for entry in stats:
        last[entry["variant"]] = entry  # the last hidden layer's entry wins
    if last:
        lines.append("Spread (std) of the last hidden layer's activations before training: "
                     + ", ".join(f"{name} {entry['std']:.3g}" for name, entry in last.items()) + ".")
    return lines


def gradient_ratios(comparison: Comparison, out: Path) -> list[str]:
    norms = json.loads((out / "gradient_norms.json").read_text())
    shown = ", ".join(f"{name} {moments['before training'][0] / moments['before training'][-1]:.2g}"
                      for name, moments in norms.items())
    return [f"Gradient norm of the first layer over the last, before training: {shown}."]


def relative_to_first(comparison: Comparison, out: Path) -> list[str]:
    """Each variant's final training and validation loss as a multiple of the first variant's."""
    base = comparison.rows[0]
    parts = []
    for row in comparison.rows[1:]:
        if math.isfinite(row["train_loss"][0]) and math.isfinite(row["val_loss"][0]):
            parts.append(f"{row['variant']} x{row['train_loss'][0] / base['train_loss'][0]:.3g} (training) and "
                         f"x{row['val_loss'][0] / base['val_loss'][0]:.3g} (validation)")
    return [f"Final losses against {base['variant']}'s: {'; '.join(parts)}."]
