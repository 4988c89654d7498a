"""MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100 as uint8 tensors, decoded once and cached.

Files follow torchvision's layout under ``data_dir`` and are checked against their canonical
checksums before they are decoded by torchvision's own dataset classes. Missing files are
downloaded (``download: true``); Debian's ``dataset-fashion-mnist`` package is used when present.
Scaling to [0, 1], resizing and normalisation run on whole batches on the training device.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path
from typing import Any, Optional, Sequence

import kornia.augmentation as K
import torch
import torch.nn.functional as F
import torchvision.datasets as tvd
from jsonargparse.typing import NonNegativeFloat, NonNegativeInt, PositiveInt
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from datamodules.base import DataModule
from datamodules.files import checksum_error, data_dir_path, file_digest, network_timeout
from litexp.errors import LitexpError

DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
DECODED: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}  # this process's decoded splits
DECODED_KEPT = 4  # a dataset's train and test split, and one other dataset's


class VisionDataModule(DataModule):
    """Image classification data held as ``uint8`` tensors of shape (N, C, H, W)."""

    abstract = True  # a base: not offered as --data

    dataset_class: type = tvd.VisionDataset
    channels: int = 1
    image_size: int = 28
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)

    def __init__(
        self,
        data_dir: Optional[str] = None,
        download: bool = True,
        resize: Optional[PositiveInt] = None,
        normalize: bool = True,
        classes: Optional[list[int]] = None,
        crop_padding: NonNegativeInt = 0,
        horizontal_flip: bool = False,
        color_jitter: NonNegativeFloat = 0.0,
        random_erasing: NonNegativeFloat = 0.0,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            data_dir: where the dataset files live (default: ``$LITEXP_DATA_DIR`` or the user cache).
            download: fetch missing files from the canonical URLs (checked by checksum).
            resize: resize images to this side length on the device (the book uses 224 or 96).
            normalize: subtract the dataset mean and divide by its std after scaling to [0, 1].
            classes: keep only these class labels, renumbered 0..k-1 in the order given
                (e.g. ``[5, 6, 7, 8, 9]`` to fine-tune on the other half of a dataset).
            crop_padding: training augmentation: pad by this many pixels, then crop back at random.
            horizontal_flip: training augmentation: flip half of the images left to right.
            color_jitter: training augmentation: random brightness/contrast (and saturation/hue for
                RGB) change of up to this fraction.
            random_erasing: training augmentation: probability of erasing a random rectangle.
            kwargs: the split and batch options of :class:`datamodules.base.DataModule`.
        """
        super().__init__(**kwargs)
        self.data_dir = data_dir_path(data_dir)
        self.download = download
        self.resize = int(resize) if resize else None
        self.normalize = normalize
        self.classes = self._check_classes(classes)
        if self.classes is not None:
            self.num_classes = len(self.classes)
        self.crop_padding = int(crop_padding)
        self.horizontal_flip = bool(horizontal_flip)
        self.color_jitter = float(color_jitter)
        self.random_erasing = float(random_erasing)
        if self.random_erasing > 1:
            raise LitexpError(f"random_erasing is a probability in [0, 1], got {random_erasing}")
        self._augmentation: Optional[nn.Module] = None

    def _check_classes(self, classes: Optional[Sequence[int]]) -> Optional[tuple[int, ...]]:
        if classes is None:
            return None
        valid = range(type(self).num_classes)
        chosen = tuple(int(c) for c in classes)
        if not chosen or len(set(chosen)) != len(chosen) or any(c not in valid for c in chosen):
            raise LitexpError(f"classes must be distinct labels in 0..{len(valid) - 1}, got {list(classes)}")
        return chosen

    @property
    def input_shape(self) -> tuple[int, int, int]:
        side = self.resize or self.image_size
        return (self.channels, side, side)

    # -- files ---------------------------------------------------------------------------------
    def ensure_files(self) -> None:
        """Make the raw files present and verified, or raise one clear error saying how."""
        raise NotImplementedError

    def decode(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Read the verified raw files of ``split`` into (uint8 images (N, C, H, W), int64 labels)."""
        raise NotImplementedError

    def source_files(self) -> list[Path]:
        raise NotImplementedError

    def _download(self) -> None:
        try:
            with network_timeout():  # torchvision's downloader, which checks the archives' md5
                self.dataset_class(str(self.data_dir), train=True, download=True)
                self.dataset_class(str(self.data_dir), train=False, download=True)
        except Exception as error:  # urllib, socket and checksum errors alike
            raise LitexpError(self._missing_message(f"download failed: {error}")) from error

    def _missing_message(self, reason: str) -> str:
        names = ", ".join(path.name for path in self.source_files())
        return (
            f"{type(self).__name__} data not found in {self.raw_dir} ({reason}); put {names} there, "
            f"or point data_dir / LITEXP_DATA_DIR at a folder that has them, or allow download: true"
        )

    @property
    def raw_dir(self) -> Path:
        raise NotImplementedError

    # -- decoded-tensor cache ----------------------------------------------------------------------
    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self.load_all(split)
        if self.classes is None:
            return images, labels
        relabel = torch.full((type(self).num_classes,), -1, dtype=torch.long)
        relabel[list(self.classes)] = torch.arange(len(self.classes))
        keep = relabel[labels] >= 0
        return images[keep], relabel[labels[keep]]

    def load_all(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Every image of ``split``, from the cache when its source files are unchanged.

        Decoded once per process: the runs of a study (every fold of every trial) share the tensors,
        which nobody modifies in place (batches are converted into new tensors)."""
        cache = self.data_dir / "litexp-cache" / f"{type(self).__name__}-{split}.pt"
        key = (str(cache.resolve()), json.dumps(self._source_stamp()))
        if key in DECODED:
            return DECODED[key]
        images, labels = DECODED[key] = self._load_all(split, cache)
        while len(DECODED) > DECODED_KEPT:
            DECODED.pop(next(iter(DECODED)))  # the oldest
        return images, labels

    def _load_all(self, split: str, cache: Path) -> tuple[torch.Tensor, torch.Tensor]:
        if cache.exists():
            try:
                cached = torch.load(cache, weights_only=True)
            except Exception:  # an unreadable cache is rebuilt from the source files
                cached = {}
            if cached.get("sources") == self._source_stamp():
                return cached["images"], cached["labels"]
        self.ensure_files()
        images, labels = self.decode(split)
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(f".tmp{os.getpid()}")
        torch.save({"images": images, "labels": labels, "sources": self._source_stamp()}, partial)
        os.replace(partial, cache)  # atomic: concurrent ranks never read a half-written cache
        return images, labels

    def _source_stamp(self) -> list:
        """Size and mtime of every source file: any change re-verifies and re-decodes."""
        stamp = []
        for path in self.source_files():
            if not path.exists():
                return []
            info = path.stat()
            stamp.append([path.name, info.st_size, info.st_mtime_ns])
        return stamp

    # -- batches on the device ------------------------------------------------------------------
    def transform_batch(self, batch, training: bool):
        images, labels = batch  # (B, C, H, W) uint8, (B,) int64
        images = images.float().div_(255.0)
        if self.resize and self.resize != images.shape[-1]:
            images = F.interpolate(images, size=(self.resize, self.resize), mode="bilinear",
                                   align_corners=False, antialias=True)
        if training:
            images = self.augment(images)
        if self.normalize:
            mean = images.new_tensor(self.mean).view(1, -1, 1, 1)
            std = images.new_tensor(self.std).view(1, -1, 1, 1)
            images = (images - mean) / std
        return images, labels

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """Per-sample random augmentation of a whole training batch, (B, C, H, W) in [0, 1].

        Runs on the batch's device; every image draws its own crop, flip, jitter and erased box.
        """
        if self._augmentation is None:
            self._augmentation = self.build_augmentation(images.shape[1], images.shape[-1])
        return self._augmentation(images) if len(self._augmentation) else images

    def build_augmentation(self, channels: int, side: int) -> nn.Sequential:
        """The kornia pipeline that the augmentation options ask for (empty when none is set)."""
        steps: list[nn.Module] = []
        if self.crop_padding:
            steps.append(K.RandomCrop((side, side), padding=self.crop_padding))
        if self.horizontal_flip:
            steps.append(K.RandomHorizontalFlip())
        if self.color_jitter:
            jitter = self.color_jitter
            # saturation and hue mean nothing for grey images
            colour = {"saturation": jitter, "hue": min(jitter, 0.5)} if channels == 3 else {}
            steps.append(K.ColorJitter(brightness=jitter, contrast=jitter, **colour))
        if self.random_erasing:
            steps.append(K.RandomErasing(p=self.random_erasing))
        return nn.Sequential(*steps)

    def summary(self) -> dict:
        facts = super().summary()
        if self.classes is not None:
            facts["classes"] = list(self.classes)
        options = {"crop_padding": self.crop_padding, "horizontal_flip": self.horizontal_flip,
                   "color_jitter": self.color_jitter, "random_erasing": self.random_erasing}
        facts["augmentation"] = {name: value for name, value in options.items() if value}
        return facts


class IdxDataModule(VisionDataModule):
    """The MNIST family: four IDX files, gzip-compressed in the canonical downloads."""

    abstract = True  # a base: not offered as --data

    #: md5 of the decompressed IDX files, where known; lets recompressed copies (Debian) verify
    content_md5: dict[str, str] = {}
    #: other folders that may hold the ``.gz`` files (read-only system copies)
    system_dirs: tuple[str, ...] = ()

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / self.dataset_class.__name__ / "raw"

    def archive_md5(self) -> dict[str, str]:
        return {os.path.basename(url): md5 for url, md5 in self.dataset_class.resources}

    def source_files(self) -> list[Path]:
        return [self.raw_dir / name[: -len(".gz")] for name in self.archive_md5()]

    def ensure_files(self) -> None:
        missing = [path for path in self.source_files() if not path.exists()]
        archives = {raw: self._find_archive(raw.name + ".gz") for raw in missing}
        if missing and all(archives.values()):  # all or nothing: no half-filled raw folder
            for archive in archives.values():
                self._verify_archive(archive)
            for raw, archive in archives.items():
                self.raw_dir.mkdir(parents=True, exist_ok=True)
                partial = raw.with_suffix(".partial")
                with gzip.open(archive, "rb") as source, open(partial, "wb") as target:
                    shutil.copyfileobj(source, target)
                os.replace(partial, raw)
            system = sorted({str(archive.parent) for archive in archives.values() if archive.parent != self.raw_dir})
            if system:
                rank_zero_info(f"litexp: using the system copy of {type(self).__name__} in {', '.join(system)} "
                               f"(decompressed once into {self.raw_dir})")
        if any(not path.exists() for path in self.source_files()):
            if not self.download:
                raise LitexpError(self._missing_message("download: false"))
            self._download()
        for raw in self.source_files():
            expected = self.content_md5.get(raw.name)
            if expected and file_digest(raw) != expected:
                raise checksum_error(raw)

    def _find_archive(self, name: str) -> Optional[Path]:
        for folder in (self.raw_dir, *map(Path, self.system_dirs)):
            if (folder / name).exists():
                return folder / name
        return None

    def _verify_archive(self, archive: Path) -> None:
        if file_digest(archive) == self.archive_md5()[archive.name]:
            return
        expected = self.content_md5.get(archive.name[: -len(".gz")])
        try:
            content_ok = expected is not None and file_digest(archive, gunzip=True) == expected
        except (OSError, EOFError):
            content_ok = False
        if not content_ok:
            raise checksum_error(archive)

    def decode(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            dataset = self.dataset_class(str(self.data_dir), train=split == "train", download=False)
            images, labels = dataset.data, dataset.targets  # (N, 28, 28) uint8, (N,) int64
        except (RuntimeError, ValueError, AssertionError, OSError) as error:
            raise LitexpError(f"cannot decode {type(self).__name__} {split} files in {self.raw_dir}: {error}; "
                              f"the files are corrupt or truncated, delete them and run again") from error
        if len(images) != len(labels):
            raise LitexpError(f"{type(self).__name__} {split} files in {self.raw_dir} disagree: "
                              f"{len(images)} images but {len(labels)} labels; delete them and run again")
        return images.unsqueeze(1).contiguous(), labels.long()


class MNIST(IdxDataModule):
    """Handwritten digits, 60k/10k 28x28 grey images, 10 classes."""

    dataset_class = tvd.MNIST
    num_classes = 10
    mean = (0.1307,)
    std = (0.3081,)


class FashionMNIST(IdxDataModule):
    """Zalando's clothing images, 60k/10k 28x28 grey images, 10 classes (the book's default)."""

    dataset_class = tvd.FashionMNIST
    num_classes = 10
    mean = (0.2860,)
    std = (0.3530,)
    content_md5 = {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    }
    system_dirs = (DEBIAN_FASHION_MNIST,)


class CIFAR10(VisionDataModule):
    """60k 32x32 colour images in 10 classes (python pickle batches)."""

    dataset_class = tvd.CIFAR10
    channels = 3
    image_size = 32
    num_classes = 10
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / self.dataset_class.base_folder

    def file_md5s(self) -> dict[str, str]:
        cls = self.dataset_class
        table = {name: md5 for name, md5 in cls.train_list + cls.test_list}
        table[cls.meta["filename"]] = cls.meta["md5"]
        return table

    def source_files(self) -> list[Path]:
        return [self.raw_dir / name for name in self.file_md5s()]

    def ensure_files(self) -> None:
        if any(not path.exists() for path in self.source_files()):
            archive = self.data_dir / self.dataset_class.filename
            if archive.exists() or self.download:
                self._download()  # torchvision checks the archive's md5 and extracts it
            else:
                raise LitexpError(self._missing_message("download: false"))
        for path in self.source_files():
            if file_digest(path) != self.file_md5s()[path.name]:
                raise checksum_error(path)

    def decode(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            dataset = self.dataset_class(str(self.data_dir), train=split == "train", download=False)
        except (RuntimeError, ValueError, OSError, EOFError, KeyError) as error:
            raise LitexpError(f"cannot decode {type(self).__name__} {split} files in {self.raw_dir}: {error}; "
                              f"delete them and run again") from error
        images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()  # (N, 32, 32, 3) -> (N, 3, 32, 32)
        return images, torch.as_tensor(dataset.targets, dtype=torch.long)


class CIFAR100(CIFAR10):
    """60k 32x32 colour images in 100 fine-grained classes."""

    dataset_class = tvd.CIFAR100
    num_classes = 100
    mean = (0.5071, 0.4865, 0.4409)
    std = (0.2673, 0.2564, 0.2762)
