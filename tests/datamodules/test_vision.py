"""Vision DataModules read real-format files (IDX, CIFAR pickles) and fail clearly on bad ones."""

from __future__ import annotations

import gzip
import logging
import shutil

import pytest
import torch

from datamodules import CIFAR10, CIFAR100, MNIST, FashionMNIST, vision
from litexp.errors import LitexpError
from tests.fake_data import md5, write_idx_dataset


@pytest.mark.parametrize("cls,shape,classes", [(MNIST, (1, 28, 28), 10), (FashionMNIST, (1, 28, 28), 10),
                                               (CIFAR10, (3, 32, 32), 10), (CIFAR100, (3, 32, 32), 100)])
def test_files_decode_to_uint8_tensors(fake_data_dir, cls, shape, classes):
    data = cls(val_fraction=0.4)
    images, labels = data.load("train")
    assert images.dtype == torch.uint8 and images.shape[1:] == shape
    assert labels.dtype == torch.int64 and labels.max() < classes
    assert data.input_shape == shape and data.num_classes == classes
    data.setup("fit")
    assert len(data.train_indices) + len(data.val_indices) == len(labels)


def test_idx_values_survive_the_round_trip(fake_data_dir):
    from tests.fake_data import labelled_images

    expected_images, expected_labels = labelled_images(300, 10, (28, 28), seed=0)
    images, labels = MNIST().load("train")
    assert torch.equal(images[:, 0], torch.from_numpy(expected_images))
    assert torch.equal(labels, torch.from_numpy(expected_labels).long())


def test_gzipped_idx_files_are_verified_and_extracted(tmp_path, monkeypatch):
    archives = write_idx_dataset(tmp_path, "MNIST", compress=True)
    sums = {path.name: md5(path) for path in archives}
    monkeypatch.setattr(vision.tvd.MNIST, "resources", [(f"http://x/{name}", sums[name]) for name in sums])
    images, _ = MNIST(data_dir=str(tmp_path), download=False).load("test")
    assert images.shape == (100, 1, 28, 28)


def test_system_copy_is_used_when_data_dir_is_empty(tmp_path, monkeypatch, caplog):
    """Debian's dataset-fashion-mnist installs recompressed .gz files: checked by content md5."""
    system = tmp_path / "system"
    archives = write_idx_dataset(system, "x", compress=True)
    for path in archives:
        shutil.move(path, system / path.name)
    contents = {path.name[:-3]: md5_of_gunzip(system / path.name) for path in archives}
    monkeypatch.setattr(FashionMNIST, "system_dirs", (str(system),))
    monkeypatch.setattr(FashionMNIST, "content_md5", contents)
    data = FashionMNIST(data_dir=str(tmp_path / "empty"), download=False)
    with caplog.at_level(logging.INFO, logger="lightning.pytorch"):  # whatever set it to WARNING before
        assert data.load("train")[0].shape == (300, 1, 28, 28)
    said = [record.getMessage() for record in caplog.records if "system copy" in record.getMessage()]
    assert said == [f"litexp: using the system copy of FashionMNIST in {system} (decompressed once into "
                    f"{data.raw_dir})"]


def test_download_false_with_no_files_anywhere_is_one_error_and_writes_nothing(tmp_path, monkeypatch):
    system = tmp_path / "system"
    archives = write_idx_dataset(system, "x", compress=True)
    archives[0].unlink()  # an incomplete system copy is not used at all
    for path in archives[1:]:
        shutil.move(path, system / path.name)
    monkeypatch.setattr(FashionMNIST, "system_dirs", (str(system),))
    empty = tmp_path / "empty"
    with pytest.raises(LitexpError, match=r"data not found in .*\(download: false\)"):
        FashionMNIST(data_dir=str(empty), download=False).load("train")
    assert not empty.exists() or not any(empty.rglob("*-ubyte"))


def md5_of_gunzip(path):
    import hashlib

    return hashlib.md5(gzip.open(path).read()).hexdigest()


def test_cache_is_reused_and_refreshed_when_files_change(fake_data_dir, monkeypatch):
    data = MNIST()
    first, _ = data.load("train")
    calls = []
    monkeypatch.setattr(MNIST, "decode", lambda self, split: calls.append(split) or (first, first))
    MNIST().load("train")
    assert calls == []  # served from the decoded cache
    raw = fake_data_dir / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    raw.write_bytes(raw.read_bytes())  # touch: new mtime
    import os

    os.utime(raw, ns=(raw.stat().st_atime_ns, raw.stat().st_mtime_ns + 10**9))
    MNIST().load("train")
    assert calls == ["train"]


def test_truncated_idx_file_is_a_clear_error(fake_data_dir):
    raw = fake_data_dir / "MNIST" / "raw" / "train-images-idx3-ubyte"
    raw.write_bytes(raw.read_bytes()[:5000])
    with pytest.raises(LitexpError, match="corrupt or truncated"):
        MNIST().load("train")


def test_corrupt_fashion_mnist_file_fails_its_checksum(fake_data_dir, monkeypatch):
    raw = fake_data_dir / "FashionMNIST" / "raw" / "train-labels-idx1-ubyte"
    monkeypatch.setattr(FashionMNIST, "content_md5", {raw.name: md5(raw)})
    raw.write_bytes(raw.read_bytes()[:-1] + b"\x07")
    with pytest.raises(LitexpError, match=f"checksum mismatch for {raw}"):
        FashionMNIST().load("train")


def test_corrupt_cifar_file_fails_its_checksum(fake_data_dir):
    batch = fake_data_dir / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:-10])
    with pytest.raises(LitexpError, match="checksum mismatch for .*data_batch_3"):
        CIFAR10().load("train")


def test_missing_data_without_download_names_the_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(FashionMNIST, "system_dirs", ())
    with pytest.raises(LitexpError, match=f"not found in {tmp_path}.*train-images-idx3-ubyte.*download: true"):
        FashionMNIST(data_dir=str(tmp_path), download=False).load("train")


def test_failed_download_is_a_clear_error(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(vision.tvd.CIFAR10, "download", offline)
    with pytest.raises(LitexpError, match="download failed: network is unreachable"):
        CIFAR10(data_dir=str(tmp_path), download=True).load("train")


def test_fit_never_reads_the_test_split(fake_data_dir, monkeypatch):
    data = FashionMNIST()
    loaded = []
    original = FashionMNIST.load
    monkeypatch.setattr(FashionMNIST, "load", lambda self, split: loaded.append(split) or original(self, split))
    data.prepare_data()
    data.setup("fit")
    data.train_dataloader(), data.val_dataloader()
    assert loaded and set(loaded) == {"train"}
    with pytest.raises(RuntimeError, match="test split"):
        data.test_dataloader()
    data.setup("test")
    assert loaded.count("test") == 1


def test_batches_are_scaled_resized_and_normalized_on_the_device(fake_data_dir):
    data = CIFAR10(resize=40, batch_size=8)
    data.setup("fit")
    raw_images, labels = next(iter(data.train_dataloader()))
    assert raw_images.dtype == torch.uint8 and raw_images.shape == (8, 3, 32, 32)
    images, same_labels = data.transform_batch((raw_images, labels), training=False)
    assert images.shape == (8, 3, 40, 40) and images.dtype == torch.float32
    assert torch.equal(labels, same_labels)
    plain = CIFAR10(normalize=False).transform_batch((raw_images, labels), training=False)[0]
    assert 0.0 <= plain.min() and plain.max() <= 1.0
    assert data.input_shape == (3, 40, 40)


@pytest.mark.parametrize("kwargs,message", [({"num_folds": 4, "fold": 4}, "fold must lie in 0..3"),
                                            ({"num_folds": 40}, "larger than the smallest class"),
                                            ({"batch_size": 0}, "batch_size must be a positive")])
def test_bad_split_settings_are_user_errors(fake_data_dir, kwargs, message):
    with pytest.raises(LitexpError, match=message):
        MNIST(**kwargs).setup("fit")


def test_train_size_trains_on_a_subset_and_says_so(fake_data_dir):
    data = FashionMNIST(val_fraction=0.2, train_size=40)
    data.setup("fit")
    full = FashionMNIST(val_fraction=0.2)
    full.setup("fit")
    assert len(data.train_indices) == 40 and set(data.train_indices) <= set(full.train_indices)
    assert list(data.val_indices) == list(full.val_indices)
    facts = data.summary()
    assert facts["train_size"] == 40 and facts["train_subset"] == 40
    assert facts["split_fingerprint"] != full.summary()["split_fingerprint"]
