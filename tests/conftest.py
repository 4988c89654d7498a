"""Shared fixtures: W&B never goes online, and small fake datasets stand in for the real ones."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torchvision.datasets as tvd

from datamodules import vision
from tests.fake_data import (
    fra_eng_lines,
    patch_cifar_checksums,
    patch_text_checksums,
    write_cifar,
    write_fra_eng_zip,
    write_idx_dataset,
    write_text_corpora,
)

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(scope="session")
def _fake_data_template(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("fake-data")
    write_idx_dataset(root, "MNIST")
    write_idx_dataset(root, "FashionMNIST")
    sums = {10: write_cifar(root, 10), 100: write_cifar(root, 100), "text": write_text_corpora(root)}
    sums["text"]["fra-eng"] = write_fra_eng_zip(root / "text" / "fra-eng" / "fra-eng.zip", fra_eng_lines(300))
    return root, sums


@pytest.fixture
def fake_data_dir(_fake_data_template, tmp_path, monkeypatch) -> Path:
    """A private copy of small MNIST, Fashion-MNIST, CIFAR-10, CIFAR-100, Time Machine and PTB files.

    ``LITEXP_DATA_DIR`` points at it and the checksum tables know its files, so every vision
    DataModule reads it through the real verification and decoding path.
    """
    template, sums = _fake_data_template
    root = tmp_path / "data"
    shutil.copytree(template, root)
    monkeypatch.setenv("LITEXP_DATA_DIR", str(root))
    monkeypatch.setattr(vision.FashionMNIST, "content_md5", {})
    monkeypatch.setattr(vision.FashionMNIST, "system_dirs", ())
    patch_cifar_checksums(monkeypatch, tvd.CIFAR10, sums[10])
    patch_cifar_checksums(monkeypatch, tvd.CIFAR100, sums[100])
    patch_text_checksums(monkeypatch, sums["text"])
    return root
