"""Detection and segmentation through litexp: fit, test, predict with pictures, on small composed canvases."""

from __future__ import annotations

import csv

import pytest
import torch

from experiments.cli import CONFIG_DIR
from tests.experiments.conftest import read_summary

SMALL = ["--data.canvas_size=64", "--data.num_train=24", "--data.num_test=10", "--data.batch_size=8",
         "--data.val_fraction=0.34", "--trainer.max_epochs=1", "--trainer.limit_train_batches=2"]


@pytest.fixture(autouse=True)
def one_thread():
    """Small convolutions on a busy CPU run several times faster without intra-op thread hand-offs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("config, metric", [("detection/ssd.yaml", "test/map50"),
                                            ("segmentation/fcn.yaml", "test/miou")])
def test_fit_test_and_predict_with_pictures(fake_data_dir, litexp, config, metric):
    extra = ["--model.network_args={backbone_args: {stem: small, width: 4}}"] if "fcn" in config else []
    code, run_dir = litexp("fit", "--config", str(CONFIG_DIR / config), "--test", *SMALL, *extra)
    assert code == 0
    summary = read_summary(run_dir)
    assert 0.0 <= summary["test"]["metrics"][metric] <= 1.0
    assert summary["data"]["scenes"]["canvas_size"] == 64
    code, _ = litexp("predict", "--ckpt_path", str(run_dir), "--run.name", "predicted", "--run.version", "one")
    assert code == 0
    predicted = litexp.root / "predicted" / "one"
    with open(predicted / "predictions.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 10
    picture = predicted / "pictures.png"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_detection_and_classification_data_do_not_mix(fake_data_dir, litexp, capsys):
    code, _ = litexp("fit", "--config", str(CONFIG_DIR / "detection/ssd.yaml"), "--data=FashionMNIST",
                     "--trainer.fast_dev_run=true")
    assert code == 2
    assert "error" in capsys.readouterr().err


def test_fine_tuning_on_ones_own_image_folders_is_one_config(tmp_path, litexp):
    from tests.datamodules.test_voc import write_image_folder

    root = write_image_folder(tmp_path / "photos", ".jpg")
    config = tmp_path / "mine.yaml"
    config.write_text(f"""
model:
  class_path: lit_models.ClassificationTask
  init_args: {{network: resnet18, network_args: {{width: 4}}, optimizer: adam, lr: 0.001}}
data:
  class_path: datamodules.ImageFolder
  init_args: {{root: {root}, cache_size: 32, batch_size: 4, val_fraction: 0.25, data_dir: {tmp_path}}}
""")
    code, run_dir = litexp("fit", "--config", str(config), "--trainer.fast_dev_run=true", "--test")
    assert code == 0
    assert read_summary(run_dir)["data"]["classes"] == ["cats", "dogs"]
