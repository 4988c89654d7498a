"""``litexp lab``: a recipe runs its comparison and writes its report, figures and the index; the probes
behind the figures measure what the chapters say they measure."""

from __future__ import annotations

import json

import pytest
import torch

from experiments import lab, lab_figures
from experiments.cli import main
from lit_models import ClassificationTask

QUIET = ["--wandb.mode=disabled", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


def deep_mlp(activation: str, init: str, std: float = 0.01, batch_norm: bool = False) -> ClassificationTask:
    torch.manual_seed(0)
    return ClassificationTask(network="mlp", network_args={"hidden_sizes": [100] * 5, "activation": activation,
                                                           "batch_norm": batch_norm},
                              input_shape=(1, 28, 28), num_classes=10, init=init, init_std=std)


def test_polynomial_recipe_end_to_end_and_reused(tmp_path, capsys):
    command = ["lab", "polynomial", "--seeds", "1", "--root", str(tmp_path / "runs"), "--out", str(tmp_path / "out"),
               "--trainer.max_epochs=3", *QUIET]
    assert main(command) == 0
    folder = tmp_path / "out" / "polynomial"
    report = (folder / "report.md").read_text()
    for section in ("## Finding", "## Results", "## Training and validation loss", "## The fitted polynomials",
                    "| degree19 | 1 (completed) |",
                    "Regenerate: `litexp lab polynomial --seeds 1 --trainer.max_epochs=3`"):
        assert section in report
    for picture in ("curves.png", "gap.png", "fit.png"):
        assert (folder / picture).read_bytes().startswith(b"\x89PNG")
    results = json.loads((folder / "results.json").read_text())
    assert [row["variant"] for row in results] == ["degree3", "degree1", "degree19"]
    index = (tmp_path / "out" / "README.md").read_text()
    assert "(polynomial/report.md)" in index and "Best final `val/loss`" in index
    # the fitted degree-19 model has 19 weights: one per feature x^i/i!
    summary = json.loads((tmp_path / "runs" / "compare-lab-polynomial" / "degree19" / "seed0" / "summary.json")
                         .read_text())
    assert summary["model"]["parameters"] == 20

    capsys.readouterr()
    assert main([*command, "--quiet"]) == 0  # a rerun reuses every run; a display option is no other base
    assert "running" not in capsys.readouterr().out


def test_vanishing_recipe_measures_gradients_per_layer(tmp_path, fake_data_dir):
    command = ["lab", "vanishing", "--seeds", "1", "--root", str(tmp_path / "runs"), "--out", str(tmp_path / "out"),
               "--trainer.max_epochs=1", "--data.batch_size=64", *QUIET]
    assert main(command) == 0
    folder = tmp_path / "out" / "vanishing"
    assert (folder / "gradient_norms.png").read_bytes().startswith(b"\x89PNG")
    norms = json.loads((folder / "gradient_norms.json").read_text())
    assert set(norms) == {"sigmoid", "sigmoid-bn", "relu", "relu-bn"}
    ratio = {name: moments["before training"][0] / moments["before training"][-1] for name, moments in norms.items()}
    assert all(len(moments["before training"]) == 9 for moments in norms.values())  # 8 hidden layers and the head
    # sigmoid's derivative is at most 1/4: eight layers shrink the gradient by orders of magnitude; batch norm and
    # ReLU keep it
    assert ratio["sigmoid"] < ratio["sigmoid-bn"] / 100 and ratio["sigmoid"] < ratio["relu"] / 100
    assert "## Gradient norm per layer" in (folder / "report.md").read_text()


def test_activation_probe_shows_the_books_distributions():
    inputs = torch.randn(500, 1, 28, 28)
    zero = lab_figures.activation_outputs(deep_mlp("sigmoid", "zero"), inputs)
    assert len(zero) == 5 and all(torch.all(values == 0.5) for values in zero)  # zero weights: every unit alike
    big = lab_figures.activation_outputs(deep_mlp("sigmoid", "normal", std=1.0), inputs)[-1]
    saturated = float(((big < 0.02) | (big > 0.98)).float().mean())
    xavier = lab_figures.activation_outputs(deep_mlp("sigmoid", "xavier"), inputs)[-1]
    assert saturated > 0.3 and float(((xavier < 0.02) | (xavier > 0.98)).float().mean()) < 0.01
    small = lab_figures.activation_outputs(deep_mlp("relu", "normal", std=0.01), inputs)[-1]
    he = lab_figures.activation_outputs(deep_mlp("relu", "he"), inputs)[-1]
    assert small.std() < 1e-3 < he.std()  # N(0, 0.01) lets ReLU activations die out layer by layer; He keeps them


def test_learning_rates_follow_each_schedule():
    base = {"lr": 0.3, "step_size": 4, "gamma": 0.1}
    constant = lab_figures.lr_per_step({**base, "scheduler": None}, epochs=10, steps=100)
    assert constant == [0.3] * 100
    step = lab_figures.lr_per_step({**base, "scheduler": "step"}, epochs=10, steps=100)
    assert step[39] == pytest.approx(0.3) and step[40] == pytest.approx(0.03) and step[80] == pytest.approx(0.003)
    cosine = lab_figures.lr_per_step({**base, "scheduler": "cosine"}, epochs=10, steps=100)
    assert cosine[0] == pytest.approx(0.3) and cosine[50] == pytest.approx(0.15) and cosine[-1] < 0.01
    cycle = lab_figures.lr_per_step({**base, "scheduler": "one_cycle"}, epochs=10, steps=100)
    assert max(cycle) == pytest.approx(0.3, rel=1e-3) and cycle[0] < 0.02 and cycle[-1] < 1e-4
    assert 20 <= cycle.index(max(cycle)) <= 40  # the rise takes the first 30 % of the steps


def test_bad_lab_commands_are_one_line(capsys):
    for command, message in ((["lab", "nothing"], "unknown recipe 'nothing'"),
                             (["lab", "init", "--seeds", "0"], "--seeds must be at least 1"),
                             (["lab", "init", "stray"], "unexpected argument 'stray'")):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert main(["lab", "list"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in lab.RECIPES)


def test_every_recipe_names_a_config_and_distinct_variants():
    for recipe in lab.RECIPES.values():
        assert (lab.CONFIGS / recipe.config).is_file()
        names = [variant.name for variant in recipe.variants]
        assert len(set(names)) == len(names) and recipe.seeds >= 1
