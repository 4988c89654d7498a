"""W&B as a dashboard user sees it, read back from the offline run files (W&B's own records, never a mocked
logger): tags, config, summary facts, learning curves and each task's media; a study's own run in its group."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from experiments.cli import CONFIG_DIR, main
from experiments.wandb_media import log_study
from experiments.wandb_records import read_finished_run
from tests.fake_data import english_like_text

QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-dir"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))


def offline_run(run_dir: Path):
    (folder,) = (run_dir / "wandb").glob("offline-run-*")
    return read_finished_run(folder)


def test_classification_run_has_tags_facts_curves_and_media(fake_data_dir, offline, tmp_path):
    code = main(["fit", "--config", str(CONFIG_DIR / "fashion_mnist" / "mlp.yaml"), "--trainer.max_epochs=2",
                 "--data.batch_size=32", "--test", "--run.root", str(tmp_path / "runs"), "--run.version", "v0",
                 "--wandb.group", "grid", *QUIET])
    assert code == 0
    run = offline_run(tmp_path / "runs" / "mlp-fashionmnist" / "v0")
    assert run.finished and run.group == "grid"
    assert run.tags == ["task:ClassificationTask", "network:mlp", "data:FashionMNIST", "split:holdout"]
    assert run.config["model"]["init_args"]["network"] == "mlp"  # the resolved config
    assert run.summary["status"] == "completed" and run.summary["fit.epochs"] == 2
    assert "data.split_fingerprint" in run.summary and "versions.torch" in run.summary
    assert run.summary["test.metrics.test/acc"] == pytest.approx(run.summary["test/acc"])
    curves = [row["val/acc"] for row in run.history if "val/acc" in row]
    assert len(curves) == 2  # one point per epoch
    media = run.media()
    for stage in ("val", "test"):
        assert media[f"{stage}/confusion_matrix"] == "image-file"
        assert media[f"{stage}/misclassified"] == "image-file"
        assert media[f"{stage}/confusion_matrix_chart_table"] == "table-file"


def test_language_model_run_logs_generated_samples(offline, tmp_path):
    text = tmp_path / "book.txt"
    text.write_text(english_like_text(300, seed=3), encoding="utf-8")
    code = main(["fit", "--config", str(CONFIG_DIR / "text" / "gru_timemachine.yaml"), "--data.path", str(text),
                 "--data.batch_size=16", "--data.num_steps=16", "--model.network_args={hidden_size: 16}",
                 "--trainer.max_epochs=1", "--run.root", str(tmp_path / "runs"), "--run.version", "v0", *QUIET])
    assert code == 0
    (run_dir,) = (tmp_path / "runs").glob("*/v0")
    run = offline_run(run_dir)
    assert run.media()["val/samples"] == "table-file"
    assert "task:LanguageModelTask" in run.tags


def test_translation_run_logs_translations_with_attention(offline, tmp_path):
    code = main(["fit", "--config", str(CONFIG_DIR / "translation" / "toy_attention.yaml"), "--trainer.max_epochs=1",
                 "--run.root", str(tmp_path / "runs"), "--run.version", "v0", *QUIET])
    assert code == 0
    (run_dir,) = (tmp_path / "runs").glob("*/v0")
    run = offline_run(run_dir)
    media = run.media()
    assert media["val/translations"] == "table-file" and media["val/attention"] == "images/separated"
    images = list(run_dir.glob("wandb/offline-run-*/files/media/images/**/*.png"))
    assert images  # the attention heatmaps


def test_a_study_has_its_own_run_with_trials_plots_and_test(offline, tmp_path):
    study = optuna.create_study(direction="maximize")
    for value in (0.5, 0.9, 0.7):
        trial = study.ask()
        trial.suggest_float("model.lr", 0.01, 1.0, log=True)
        trial.set_user_attr("fold_values", [value, value])
        study.tell(trial, value)
    plot = tmp_path / "plots" / "slice.png"
    plot.parent.mkdir()
    plot.write_bytes((CONFIG_DIR.parent / "reports" / "zoo.png").read_bytes())
    report = {"study": {"name": "lenet-lr"},
              "best": {"number": 1, "value": 0.9, "std": 0.01, "params": {"model.lr": 0.1}},
              "test": {"metrics": {"test/acc": 0.88}}, "trials": {"complete": 3},
              "plots": {"slice": {"png": "plots/slice.png"}}}
    run_id = log_study(study, report, tmp_path, ["--wandb.mode=offline"])
    (folder,) = (tmp_path / "wandb").glob(f"offline-run-*-{run_id}")
    run = read_finished_run(folder)
    assert run.group == "lenet-lr" and run.tags == ["study"]
    assert run.media() == {"study/trials": "table-file", "study/slice": "image-file"}
    assert run.summary["test.test/acc"] == 0.88 and run.summary["best.params.model.lr"] == 0.1


def test_a_comparison_groups_its_runs_and_adds_its_table(offline, tmp_path):
    root = tmp_path / "runs"
    assert main(["compare", "--config", str(CONFIG_DIR / "synthetic" / "linear_regression.yaml"), "--vary",
                 "model.optimizer=sgd,adam", "--name", "opt", "--root", str(root), "--trainer.max_epochs=1",
                 *QUIET]) == 0
    study = root / "compare-opt"
    (folder,) = (study / "wandb").glob("offline-run-*")
    comparison = read_finished_run(folder)
    assert comparison.group == "opt" and comparison.tags == ["comparison"]
    assert comparison.media() == {"comparison/table": "table-file", "comparison/curves": "image-file"}
    variant = offline_run(study / "optimizer-adam" / "seed0")
    assert variant.group == "opt" and variant.name == "opt/optimizer-adam/seed0"


def test_detection_run_logs_pictures_of_its_predictions(fake_data_dir, offline, tmp_path):
    small = ["--data.canvas_size=64", "--data.num_train=24", "--data.num_test=10", "--data.batch_size=8",
             "--data.val_fraction=0.34", "--trainer.max_epochs=1", "--trainer.limit_train_batches=2"]
    code = main(["fit", "--config", str(CONFIG_DIR / "detection" / "ssd.yaml"), *small, "--run.root",
                 str(tmp_path / "runs"), "--run.version", "v0", *QUIET])
    assert code == 0
    (run_dir,) = (tmp_path / "runs").glob("*/v0")
    assert offline_run(run_dir).media()["val/predictions"] == "image-file"
