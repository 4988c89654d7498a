"""``litexp lab``: the chapters' experiments, each one command that runs its comparison and writes its report.

    litexp lab list                         the recipes and what each shows
    litexp lab optimizers [--seeds N] [--root runs] [--out experiments/reports/lab] [litexp fit overrides ...]
    litexp lab all                          every recipe in turn

A recipe is a base config (``experiments/configs/...``) and named variants, run by ``litexp compare``:
every variant and seed is a normal run in ``<root>/compare-lab-<recipe>/<variant>/seed<k>/``, reused on
a rerun. The report goes to ``<out>/<recipe>/``: ``report.md`` (what the chapter shows, the table with
mean ± std over seeds and ties, the finding in numbers, the command), ``curves.png`` and the recipe's
own figures (activation histograms, gradient norms per layer, learning rates, the train/validation
gap, the fitted polynomials). ``<out>/README.md`` lists every recipe's finding.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from experiments.compare import (
    DISPLAY_OPTIONS,
    Comparison,
    ComparisonStopped,
    Variant,
    how_compared,
    plot,
    run_comparison,
    table,
    write_results,
)
from experiments.lab_figures import (
    activation_histograms,
    best_init_per_activation,
    epochs_to_target,
    final_gaps,
    generalisation_gap,
    gradient_norms,
    gradient_ratios,
    learning_rates,
    lowest_training_loss,
    polynomial_fits,
    ranking,
    relative_to_first,
)
from experiments.wandb_media import log_comparison
from litexp.errors import LitexpError

CONFIGS = Path(__file__).resolve().parent / "configs"
REPORTS = Path("experiments") / "reports" / "lab"  # relative: from the repository root, the committed reports


def network_args(**args: Any) -> str:
    return "--model.network_args=" + json.dumps(args, separators=(",", ":"))


@dataclass(frozen=True)
class Recipe:
    """One chapter's experiment: a base config, its variants, and the figures beyond the curves."""

    name: str
    title: str
    source: str  # where the books tell it
    question: str  # what the experiment shows
    config: str  # relative to experiments/configs
    variants: tuple[Variant, ...]
    seeds: int = 2
    metric: Optional[str] = None
    #: extra sections: (comparison, output folder) -> markdown lines (figures they wrote, tables)
    extras: tuple[Callable[[Comparison, Path], list[str]], ...] = ()
    #: recipe-specific findings: (comparison, output folder) -> sentences
    findings: tuple[Callable[[Comparison, Path], list[str]], ...] = field(default=())


# -- the recipes --------------------------------------------------------------------------------------
OPTIMIZER_RATES = {"sgd": 0.1, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.01, "rmsprop": 0.001,
                   "adadelta": 1.0, "adam": 0.001}
INITS = {"zero": ["--model.init=zero"], "normal1": ["--model.init=normal", "--model.init_std=1.0"],
         "normal0.01": ["--model.init=normal", "--model.init_std=0.01"], "xavier": ["--model.init=xavier"],
         "he": ["--model.init=he"]}
DEEP = [100] * 5
VANISHING = [100] * 8

RECIPES: dict[str, Recipe] = {recipe.name: recipe for recipe in (
    Recipe("optimizers", "Optimizers side by side", "d2l 12 (optimization algorithms); Deep Learning from Scratch 6.1",
           "The same MLP (one hidden layer of 256 ReLU units) trained by each optimizer at a learning rate usual for "
           "it: how fast the training loss falls and where the validation accuracy ends. Momentum and Nesterov run at "
           "lr 0.01 with momentum 0.9, so that their effective step, lr / (1 - momentum), is plain SGD's 0.1.",
           "fashion_mnist/mlp.yaml",
           tuple(Variant(name, (f"--model.optimizer={name}", f"--model.lr={lr}", "--model.momentum=0.9"),
                         f"{name}, lr {lr}" + (", momentum 0.9" if name in ("momentum", "nesterov") else ""))
                 for name, lr in OPTIMIZER_RATES.items()),
           findings=(lowest_training_loss,)),
    Recipe("schedules", "Learning-rate schedules", "d2l 12.11 (learning rate scheduling)",
           "The same MLP and SGD at a peak rate of 0.3, with the rate held constant, divided by 10 every 4 epochs "
           "(step), annealed along a cosine, or raised and lowered in one cycle.",
           "fashion_mnist/mlp.yaml",
           (Variant("constant", ("--model.lr=0.3",), "constant lr 0.3"),
            Variant("step", ("--model.lr=0.3", "--model.scheduler=step", "--model.step_size=4", "--model.gamma=0.1"),
                    "lr 0.3, x0.1 every 4 epochs"),
            Variant("cosine", ("--model.lr=0.3", "--model.scheduler=cosine"), "cosine from 0.3 to 0"),
            Variant("one_cycle", ("--model.lr=0.3", "--model.scheduler=one_cycle"), "one cycle, peak 0.3")),
           extras=(learning_rates,), findings=(lowest_training_loss,)),
    Recipe("init", "Initialisation and activation distributions", "Deep Learning from Scratch 6.2; d2l 5.4",
           "Five hidden layers of 100 units with sigmoid, tanh or ReLU, their weights set to zero, N(0, 1), "
           "N(0, 0.01), Xavier or He: how each layer's activations are spread after one forward pass, and how "
           "each network then trains.",
           "lab/deep_mlp.yaml",
           tuple(Variant(f"{act}-{init}", (network_args(hidden_sizes=DEEP, activation=act), *flags),
                         f"{act}, init {init}")
                 for act in ("sigmoid", "tanh", "relu") for init, flags in INITS.items()),
           seeds=1, extras=(activation_histograms,), findings=(best_init_per_activation,)),
    Recipe("vanishing", "Vanishing gradients", "d2l 5.4 (numerical stability); d2l 8.5 (batch norm)",
           "Eight hidden layers of 100 units, Xavier init: the gradient that reaches each layer with sigmoid vs ReLU, "
           "with and without batch norm, before and after training.",
           "lab/vanishing.yaml",
           tuple(Variant(f"{act}{'-bn' if bn else ''}", (network_args(hidden_sizes=VANISHING, activation=act,
                                                                       batch_norm=bn),),
                         f"{act}{' with batch norm' if bn else ''}")
                 for act in ("sigmoid", "relu") for bn in (False, True)),
           extras=(gradient_norms,), findings=(gradient_ratios,)),
    Recipe("overfitting", "Overfitting and regularisation", "d2l 3.7 (weight decay), 5.6 (dropout); "
           "Deep Learning from Scratch 6.4",
           "An MLP with two hidden layers of 256 units trained on 300 images for 100 epochs: no regularisation, "
           "weight decay 0.01, dropout 0.5, or both; how far validation loss drifts from training loss.",
           "lab/overfitting.yaml",
           (Variant("none", (), "no regularisation"),
            Variant("weight_decay", ("--model.weight_decay=0.01",), "weight decay 0.01"),
            Variant("dropout", (network_args(hidden_sizes=[256, 256], activation="relu", dropout=0.5),), "dropout 0.5"),
            Variant("both", ("--model.weight_decay=0.01",
                             network_args(hidden_sizes=[256, 256], activation="relu", dropout=0.5)),
                    "weight decay 0.01 and dropout 0.5")),
           extras=(generalisation_gap,), findings=(final_gaps,)),
    Recipe("polynomial", "Under- and overfitting a polynomial", "d2l 3.6 (generalisation)",
           "The book's cubic with noise, 100 training points, fitted by linear regression on x^i/i! up to degree 3 "
           "(the true form), 1 (a line: underfits) and 19 (overfits).",
           "lab/polynomial.yaml",
           (Variant("degree3", ("--data.degree=3",), "features x .. x^3/3!"),
            Variant("degree1", ("--data.degree=1",), "feature x only"),
            Variant("degree19", ("--data.degree=19",), "features x .. x^19/19!")),
           extras=(generalisation_gap, polynomial_fits), findings=(final_gaps, relative_to_first)),
    Recipe("batchnorm", "Batch normalisation", "d2l 8.5 (batch normalization)",
           "The book's LeNet (sigmoid, average pooling, SGD lr 0.9) without and with batch norm before every "
           "sigmoid: the curves and the epochs it takes to reach 80 % validation accuracy.",
           "fashion_mnist/lenet.yaml",
           (Variant("lenet", ("--model.network_args={\"variant\":\"book\"}",), "LeNet"),
            Variant("lenet-bn", ("--model.network_args={\"variant\":\"batch_norm\"}",), "LeNet with batch norm")),
           findings=(epochs_to_target(0.8),)),
)}


# -- running one recipe -------------------------------------------------------------------------------
def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="litexp lab", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("recipe", help=f"one of {', '.join(RECIPES)}, 'all', or 'list'")
    parser.add_argument("--seeds", type=int, default=None, help="runs per variant (default: the recipe's)")
    parser.add_argument("--root", type=Path, default=Path("runs"), help="where compare-lab-<recipe>/ goes")
    parser.add_argument("--out", type=Path, default=REPORTS,
                        help="where <recipe>/report.md goes (default: experiments/reports/lab: from the repository "
                             "root, the committed reports)")
    args, overrides = parser.parse_known_args(argv)
    stray = [arg for arg in overrides if not arg.startswith("--")]
    if stray:
        raise LitexpError(f"unexpected argument {stray[0]!r}; write litexp fit overrides as --key=value "
                          f"(e.g. --trainer.max_epochs=3)")
    if args.recipe not in (*RECIPES, "all", "list"):
        raise LitexpError(f"unknown recipe {args.recipe!r}; choose one of {', '.join(RECIPES)}, all, or list")
    if args.seeds is not None and args.seeds < 1:
        raise LitexpError(f"--seeds must be at least 1, got {args.seeds}")
    return args, overrides


def run_recipe(recipe: Recipe, seeds: Optional[int], root: Path, out: Path, overrides: list[str]) -> Path:
    seeds = seeds or recipe.seeds
    config = CONFIGS / recipe.config
    comparison = run_comparison(config, list(recipe.variants), seeds, f"lab-{recipe.name}", root, overrides,
                                recipe.metric)
    folder = out / recipe.name
    folder.mkdir(parents=True, exist_ok=True)
    base = [arg for arg in overrides if not arg.startswith(DISPLAY_OPTIONS)]
    command = " ".join(["litexp lab", recipe.name, *([f"--seeds {seeds}"] if seeds != recipe.seeds else []),
                        *base])
    plot(comparison.rows, comparison.metric, folder / "curves.png")
    write_results(comparison, folder / "results.json")
    extra = [line for section in recipe.extras for line in section(comparison, folder)]  # writes what findings read
    findings = ranking(comparison) + [line for finding in recipe.findings for line in finding(comparison, folder)]
    variants = ["| variant | what it changes |", "| --- | --- |",
                *(f"| {variant.name} | {variant.label or ' '.join(variant.overrides) or 'the base'} |"
                  for variant in recipe.variants)]
    lines = [f"# {recipe.title}", "", f"*{recipe.source}.* {recipe.question}", "",
             f"Regenerate: `{command}` (runs in `{comparison.study}/`, reused on a rerun). Times are wall seconds "
             "on a shared 2-core CPU: noisy, compare them only as rough ratios.", "",
             f"Base: `experiments/configs/{recipe.config}` {' '.join(base)}".rstrip(), "", *variants, "",
             "## Finding", "", *(f"- {line}" for line in findings), "",
             "## Results", "", how_compared(comparison), "", *table(comparison), "",
             "![training loss and validation metric per epoch](curves.png)", "", *extra]
    (folder / "report.md").write_text("\n".join(lines).rstrip() + "\n")
    log_comparison(comparison, folder / "curves.png", overrides)
    (folder / "finding.json").write_text(json.dumps({"recipe": recipe.name, "title": recipe.title,
                                                     "command": command, "finding": findings}, indent=1) + "\n")
    write_index(out)
    return folder


def write_index(out: Path) -> None:
    """``<out>/README.md``: every recipe whose report exists, with its finding."""
    lines = ["# The fundamentals lab", "", "Each recipe is one `litexp lab <name>` command; its folder holds the "
             "report, the curves and its figures.", ""]
    for name, recipe in RECIPES.items():
        path = out / name / "finding.json"
        if not path.exists():
            continue
        finding = json.loads(path.read_text())
        lines += [f"## [{recipe.title}]({name}/report.md)", "", f"`{finding['command']}`", "",
                  *(f"- {line}" for line in finding["finding"]), ""]
    (out / "README.md").write_text("\n".join(lines))


def main(argv: list[str]) -> int:
    try:
        args, overrides = parse_args(argv)
        if args.recipe == "list":
            for recipe in RECIPES.values():
                print(f"{recipe.name:12} {recipe.title}: {len(recipe.variants)} variants x {recipe.seeds} seed(s), "
                      f"experiments/configs/{recipe.config}")
            return 0
        chosen = list(RECIPES.values()) if args.recipe == "all" else [RECIPES[args.recipe]]
        for recipe in chosen:
            folder = run_recipe(recipe, args.seeds, args.root, args.out, overrides)
            print(f"litexp lab: wrote {folder / 'report.md'}", flush=True)
    except ComparisonStopped as stop:
        print(f"litexp lab: {stop}", file=sys.stderr)
        return stop.code
    except LitexpError as error:
        print(f"litexp: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
