"""A user's own image files: decoded once into a tensor cache, then batched like every other DataModule.

``ImageFolder`` reads one folder per class (``root/<class>/<image>``) or a CSV of ``file,label``
(paths relative to the CSV) for a training and a test part. Images (PNG, JPEG, ...) are decoded
once, resized to ``cache_size`` and cached as uint8 tensors; the resize to the network's input size
(``resize``), scaling and normalisation run on the device. Fine-tuning a zoo network on one's own
classes is then one config (``ClassificationTask`` with ``pretrained`` + ``ImageFolder``).

The helpers here (:func:`read_image`, :class:`FileCache`) serve the detection and segmentation
formats in :mod:`datamodules.voc` too.
"""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F
from jsonargparse.typing import PositiveInt
from torchvision.io import ImageReadMode, decode_image

from datamodules.base import DataModule
from datamodules.files import data_dir_path
from litexp.errors import LitexpError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def read_image(path: Path, channels: int = 3) -> torch.Tensor:
    """(C, H, W) uint8 of an image file, grey (``channels=1``) or RGB; a missing, empty or undecodable
    file is one line that names it."""
    if not path.is_file():
        raise LitexpError(f"image file {path} does not exist; fix the list or annotation that names it")
    if path.stat().st_size == 0:
        raise LitexpError(f"image file {path} is empty; replace or remove it")
    try:
        return decode_image(str(path), mode=ImageReadMode.GRAY if channels == 1 else ImageReadMode.RGB)
    except (RuntimeError, ValueError) as error:
        raise LitexpError(f"cannot decode image {path} ({str(error).splitlines()[0]}); replace or remove it") from None


def resize_image(image: torch.Tensor, size: int) -> torch.Tensor:
    """(C, H, W) uint8 -> (C, size, size) uint8, antialiased bilinear."""
    if image.shape[-2:] == (size, size):
        return image
    resized = F.interpolate(image[None].float(), size=(size, size), mode="bilinear", align_corners=False,
                            antialias=True)[0]
    return resized.round().clamp(0, 255).to(torch.uint8)


class FileCache:
    """Decoded tensors of one split in ``<data_dir>/litexp-cache``, valid while the source files are unchanged."""

    def __init__(self, data_dir: Path, name: str, key: dict[str, Any]) -> None:
        digest = hashlib.sha1(repr(sorted(key.items())).encode()).hexdigest()[:12]
        self.path = data_dir / "litexp-cache" / f"{name}-{digest}.pt"

    @staticmethod
    def stamp(files: list[Path]) -> list:
        return [[str(path), path.stat().st_size, path.stat().st_mtime_ns] for path in files if path.exists()]

    def get(self, files: list[Path]) -> Optional[dict[str, torch.Tensor]]:
        if not self.path.exists():
            return None
        try:
            cached = torch.load(self.path, weights_only=True)
        except Exception:  # an unreadable cache is decoded again
            return None
        return cached["tensors"] if cached.get("sources") == self.stamp(files) else None

    def put(self, files: list[Path], tensors: dict[str, torch.Tensor]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(f".tmp{os.getpid()}")
        torch.save({"tensors": tensors, "sources": self.stamp(files)}, partial)
        os.replace(partial, self.path)  # atomic: concurrent ranks never read a half-written cache


class ImageFolder(DataModule):
    """Classification of a user's own images: ``root/train/<class>/*`` and ``root/test/<class>/*``, or CSVs."""

    def __init__(
        self,
        root: str = "",
        train: str = "train",
        test: str = "test",
        channels: int = 3,
        cache_size: PositiveInt = 64,
        resize: Optional[PositiveInt] = None,
        normalize: bool = True,
        data_dir: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            root: the folder that holds the training and test parts.
            train: the training part under ``root``: a folder of class folders, or a CSV file of ``file,label``.
            test: the test part, in the same form.
            channels: 1 (grey) or 3 (RGB); every image is converted.
            cache_size: side the images are decoded to and cached at.
            resize: side the network sees, resized on the device (default: ``cache_size``).
            normalize: scale to [-1, 1] after scaling to [0, 1].
            data_dir: where the decoded cache goes (default: ``$LITEXP_DATA_DIR`` or the user cache).
            kwargs: the split and batch options of :class:`datamodules.base.DataModule`.
        """
        super().__init__(**kwargs)
        if channels not in (1, 3):
            raise LitexpError(f"channels must be 1 or 3, got {channels}")
        self.root = Path(root).expanduser()
        if not root or not self.root.is_dir():
            raise LitexpError(f"ImageFolder root {root!r} is not a folder; give --data.root the folder that holds "
                              f"{train!r} and {test!r}")
        self.parts = {"train": self.root / train, "test": self.root / test}
        self.channels = int(channels)
        self.cache_size = int(cache_size)
        self.resize = int(resize) if resize else None
        self.normalize = normalize
        self.data_dir = data_dir_path(data_dir)
        self.class_names = self._class_names()
        self.num_classes = len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        side = self.resize or self.cache_size
        return (self.channels, side, side)

    def _class_names(self) -> tuple[str, ...]:
        part = self.parts["train"]
        if part.is_dir():
            names = sorted(entry.name for entry in part.iterdir() if entry.is_dir() and not entry.name.startswith("."))
        elif part.suffix.lower() == ".csv" and part.is_file():
            names = sorted({label for _, label in self._csv_rows(part)})
        else:
            raise LitexpError(f"{part} is neither a folder of class folders nor a CSV file of file,label rows")
        if len(names) < 2:
            raise LitexpError(f"{part} holds {len(names)} class(es); classification needs at least 2")
        return tuple(names)

    @staticmethod
    def _csv_rows(path: Path) -> list[tuple[Path, str]]:
        try:
            with open(path, newline="", encoding="utf-8") as handle:
                rows = list(csv.reader(handle))
        except (UnicodeDecodeError, csv.Error) as error:
            raise LitexpError(f"cannot read {path} as a CSV file ({error})") from None
        if rows and [cell.strip().lower() for cell in rows[0][:2]] == ["file", "label"]:
            rows = rows[1:]
        bad = next((number for number, row in enumerate(rows, 2) if len(row) < 2 or not row[0].strip()), None)
        if bad is not None:
            raise LitexpError(f"{path}, line {bad}: expected 'file,label'")
        return [(path.parent / row[0].strip(), row[1].strip()) for row in rows]

    def listing(self, split: str) -> list[tuple[Path, str]]:
        part = self.parts[split]
        if part.is_dir():
            return [(file, folder.name) for folder in sorted(part.iterdir()) if folder.is_dir()
                    for file in sorted(folder.iterdir()) if file.suffix.lower() in IMAGE_SUFFIXES]
        if part.suffix.lower() == ".csv" and part.is_file():
            return self._csv_rows(part)
        raise LitexpError(f"{part} is neither a folder of class folders nor a CSV file of file,label rows")

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        listing = self.listing(split)
        if not listing:
            raise LitexpError(f"{self.parts[split]} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        unknown = sorted({label for _, label in listing} - set(self.class_names))
        if unknown:
            raise LitexpError(f"{self.parts[split]} has classes the training part lacks: {', '.join(unknown)}")
        files = [file for file, _ in listing]
        cache = FileCache(self.data_dir, "ImageFolder", {"part": str(self.parts[split].resolve()),
                                                         "size": self.cache_size, "channels": self.channels})
        cached = cache.get(files)
        if cached is None:
            images = torch.stack([resize_image(read_image(file, self.channels), self.cache_size) for file in files])
            labels = torch.tensor([self.class_names.index(label) for _, label in listing])
            cached = {"images": images, "labels": labels}
            cache.put(files, cached)
        return cached["images"], cached["labels"]

    def transform_batch(self, batch, training: bool):
        images, labels = batch  # (B, C, cache_size, cache_size) uint8, (B,)
        images = images.float().div_(255.0)
        if self.resize and self.resize != images.shape[-1]:
            images = F.interpolate(images, size=(self.resize, self.resize), mode="bilinear", align_corners=False,
                                   antialias=True)
        if self.normalize:
            images = (images - 0.5) / 0.5
        return images, labels

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "root": str(self.root), "classes": list(self.class_names)}
