"""``litexp fit|validate|test|predict`` end to end on small real-format data."""

from __future__ import annotations

import pytest
import torch

from experiments.cli import CONFIG_DIR, DEFAULT_CONFIG, main, with_default_config
from tests.experiments.conftest import read_summary


def write_diabetes_csv(path):
    """scikit-learn's diabetes table as the README writes it (sex as a category)."""
    import csv

    from sklearn.datasets import load_diabetes

    data = load_diabetes(scaled=False)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6", "progression"])
        for row, target in zip(data.data, data.target, strict=True):
            writer.writerow([row[0], {1.0: "female", 2.0: "male"}[row[1]], *row[2:], target])
    return path


EXPERIMENT_CONFIGS = sorted(p for p in CONFIG_DIR.rglob("*.yaml") if p.parent.name != "trainer")


@pytest.mark.parametrize("config", EXPERIMENT_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_config_runs_with_fast_dev_run(fake_data_dir, litexp, config, tmp_path):
    # one small batch per stage: this checks that the config instantiates and runs, not accuracy
    extra = []
    if config.parent.name == "tabular":  # the README writes this table from scikit-learn's copy
        extra = [f"--data.path={write_diabetes_csv(tmp_path / 'diabetes.csv')}"]
    if "train_size:" in config.read_text():  # a subset larger than the fake data's few hundred images
        extra = ["--data.train_size=50"]
    code, run_dir = litexp("fit", "--config", str(config), "--trainer.fast_dev_run=true", "--test",
                           "--data.batch_size=4", *extra)
    assert code == 0
    summary = read_summary(run_dir)
    assert summary["fit"]["global_steps"] == 1
    assert summary["test"]["metrics"]["test/loss"] > 0


def test_fit_writes_the_run_directory(fake_data_dir, litexp):
    code, run_dir = litexp("fit", "--config", str(CONFIG_DIR / "fashion_mnist/mlp.yaml"),
                           "--trainer.max_epochs=2", "--data.batch_size=64", "--test")
    assert code == 0
    assert {"config.yaml", "metrics.csv", "summary.json", "checkpoints"} <= {p.name for p in run_dir.iterdir()}
    assert {"best.ckpt", "last.ckpt"} == {p.name for p in (run_dir / "checkpoints").iterdir()}
    header = (run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "test/acc"} <= set(header)
    config_text = (run_dir / "config.yaml").read_text()
    assert "network: mlp" in config_text and "batch_size: 64" in config_text
    summary = read_summary(run_dir)
    assert summary["fit"]["epochs"] == 2 and len(summary["fit"]["epoch_times_s"]) == 2
    assert 0 <= summary["fit"]["metrics"]["val/acc"] <= 1
    assert summary["fit"]["monitor"] == "val/acc"
    assert summary["test"]["metrics"]["test/acc"] > 0.3  # learnable fake data, far above chance (0.1)
    assert summary["test"]["checkpoint"].endswith("best.ckpt")
    assert summary["seed"] == 0 and summary["versions"]["torch"]
    assert summary["data"]["split_fingerprint"] and summary["data"]["val_size"] == 30
    assert summary["device"]["accelerator"] == "cpu"
    assert summary["model"]["parameters"] > 0

    checkpoint = torch.load(run_dir / "checkpoints/best.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["network"] == "mlp"


def test_test_validate_and_predict_from_a_checkpoint(fake_data_dir, litexp):
    config = str(CONFIG_DIR / "fashion_mnist/softmax.yaml")
    assert litexp("fit", "--config", config, "--trainer.max_epochs=1")[0] == 0
    checkpoint = next(litexp.root.glob("*/*/checkpoints/best.ckpt"))
    config = checkpoint.parent.parent / "config.yaml"  # the run's resolved config
    for command in ("test", "validate", "predict"):
        code, run_dir = litexp(command, "--config", str(config), "--ckpt_path", str(checkpoint),
                               "--run.name", command)
        assert code == 0, command
    test_summary = read_summary(litexp.root / "test" / next((litexp.root / "test").iterdir()).name)
    assert 0 <= test_summary["test"]["metrics"]["test/acc"] <= 1
    predictions = next((litexp.root / "predict").iterdir()) / "predictions.csv"
    rows = predictions.read_text().splitlines()
    assert rows[0] == "label,predicted,confidence" and len(rows) == 1 + 100


def test_linear_regression_recovers_the_book_parameters(litexp):
    code, run_dir = litexp("fit", "--config", str(CONFIG_DIR / "synthetic/linear_regression.yaml"), "--test")
    assert code == 0
    model = read_summary(run_dir)["model"]
    assert model["w"] == pytest.approx([2.0, -3.4], abs=0.02)
    assert model["b"] == pytest.approx(4.2, abs=0.02)
    assert read_summary(run_dir)["data"]["true_w"] == [2.0, -3.4]


def test_fit_without_arguments_means_the_default_experiment():
    assert with_default_config(["fit"]) == ["fit", "--config", str(DEFAULT_CONFIG)]
    assert with_default_config(["fit", "--trainer.max_epochs=1"])[1:3] == ["--config", str(DEFAULT_CONFIG)]
    assert with_default_config(["fit", "--config", "x.yaml"]) == ["fit", "--config", "x.yaml"]
    assert "network: lenet" in DEFAULT_CONFIG.read_text() and "FashionMNIST" in DEFAULT_CONFIG.read_text()


def test_print_config_shows_the_resolved_default(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--print_config"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "network: lenet" in printed and "datamodules.FashionMNIST" in printed


def test_wandb_offline_run_is_written_without_a_login(fake_data_dir, litexp, monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: not logged in
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    code, run_dir = litexp("fit", "--config", str(CONFIG_DIR / "fashion_mnist/softmax.yaml"),
                           "--trainer.max_epochs=1", "--wandb.group", "g1")
    assert code == 0
    offline_runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1


def test_wandb_auto_mode_follows_the_login(monkeypatch, tmp_path):
    from experiments.run import resolve_wandb_mode

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert resolve_wandb_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_wandb_mode("auto") == "online"
    assert resolve_wandb_mode("disabled") == "disabled"
