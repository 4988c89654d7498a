"""A short run on the real Fashion-MNIST, when Debian's dataset-fashion-mnist is installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamodules.vision import DEBIAN_FASHION_MNIST
from experiments.cli import CONFIG_DIR
from tests.experiments.conftest import read_summary

pytestmark = pytest.mark.skipif(
    not (Path(DEBIAN_FASHION_MNIST) / "train-images-idx3-ubyte.gz").exists(),
    reason="needs Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist)",
)


def test_one_epoch_of_modern_lenet_on_real_fashion_mnist(litexp, tmp_path, monkeypatch):
    monkeypatch.setenv("LITEXP_DATA_DIR", str(tmp_path / "data"))  # found via the Debian copy, verified
    code, run_dir = litexp("fit", "--config", str(CONFIG_DIR / "fashion_mnist/lenet_modern.yaml"),
                           "--trainer.max_epochs=1", "--test")
    assert code == 0
    summary = read_summary(run_dir)
    assert summary["data"]["train_size"] == 54000 and summary["data"]["val_size"] == 6000
    assert summary["fit"]["metrics"]["val/acc"] > 0.82
    assert summary["test"]["metrics"]["test/acc"] > 0.82
