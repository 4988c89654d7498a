"""Real detection and segmentation formats, for users who have the files: the book's banana-detection
set (d2l 14.6) and Pascal VOC folders (d2l 14.9).

Images are decoded once, resized to ``image_size`` and cached as uint8 tensors (boxes normalised to
[0, 1], masks resized by nearest neighbour), then served exactly like the composed scenes of
:mod:`datamodules.detection`: boxes ``(N, max_objects, 5)`` padded with class ``-1``, masks
``(N, S, S)`` with 0 for background and ``class + 1`` for objects (VOC's 255 border pixels stay
255, which the segmentation task ignores). Bad annotations (a box outside its image, an empty or
inverted box, an unknown class, a mask of another size than its image) stop the loading with one
line that names the file, before anything is cached.
"""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ElementTree
import zipfile
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from jsonargparse.typing import PositiveInt
from PIL import Image

from datamodules.detection import SceneData
from datamodules.files import checksum_error, data_dir_path, fetch, has_checksum
from datamodules.images import FileCache, read_image, resize_image
from litexp.errors import LitexpError

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
               "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")
VOID = 255  # VOC's label of object borders and unclear pixels
BANANA_URL = "http://d2l-data.s3-accelerate.amazonaws.com/banana-detection.zip"
BANANA_CHECKSUM = "sha1:5de26c8fce5ccdea9f91267273464dc968d20d72"  # the book's d2l.DATA_HUB entry


def checked_box(box: list[float], width: int, height: int, where: str) -> list[float]:
    """(x1, y1, x2, y2) in pixels -> normalised corners; outside the image or empty is one line."""
    x1, y1, x2, y2 = box
    if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
        problem = "empty or inverted" if x2 <= x1 or y2 <= y1 else f"outside the {width}x{height} image"
        raise LitexpError(f"{where}: box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) is {problem}; fix the annotation")
    return [x1 / width, y1 / height, x2 / width, y2 / height]


def pad_boxes(per_image: list[list[list[float]]]) -> torch.Tensor:
    """Rows ``(class, x1, y1, x2, y2)`` per image -> ``(N, max_objects, 5)``, padded with class -1."""
    longest = max(1, max((len(rows) for rows in per_image), default=1))
    boxes = torch.zeros(len(per_image), longest, 5)
    boxes[:, :, 0] = -1
    for index, rows in enumerate(per_image):
        if rows:
            boxes[index, :len(rows)] = torch.tensor(rows)
    return boxes


class FileDetection(SceneData):
    """Detection data read from files (the split, batches and flip are :class:`SceneData`'s)."""

    abstract = True
    channels = 3
    target_names = ("boxes",)

    def __init__(self, data_dir: Optional[str] = None, image_size: PositiveInt = 256, horizontal_flip: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(horizontal_flip=horizontal_flip, **kwargs)
        self.data_dir = data_dir_path(data_dir)
        self.image_size = self.canvas_size = int(image_size)
        self.options = {"image_size": self.image_size, "source": type(self).__name__}

    def read(self, split: str) -> tuple[list[Path], torch.Tensor, list[list[list[float]]]]:
        """(source files, images (N, 3, S, S) uint8, per-image rows (class, x1, y1, x2, y2) normalised)."""
        raise NotImplementedError

    def source_list(self, split: str) -> Path:
        raise NotImplementedError

    def composed(self, split: str) -> dict[str, torch.Tensor]:
        listing = self.source_list(split)
        if not listing.is_file():
            raise LitexpError(f"{type(self).__name__}: {listing} not found; put the dataset's files under "
                              f"{self.data_dir} (data_dir / LITEXP_DATA_DIR)")
        cache = FileCache(self.data_dir, type(self).__name__, {"split": split, "list": str(listing.resolve()),
                                                              "size": self.image_size})
        cached = cache.get([listing])
        if cached is None:
            _, images, rows = self.read(split)
            cached = {"images": images, "boxes": pad_boxes(rows)}
            cache.put([listing], cached)
        return cached


class BananaDetection(FileDetection):
    """The book's banana-detection set: ``<data_dir>/banana-detection/bananas_{train,val}/label.csv`` +
    ``images/``; one banana (class 0) per 256 px image; ``bananas_val`` is the test part."""

    num_classes = 1
    class_names = ("banana",)

    def __init__(self, download: bool = True, **kwargs: Any) -> None:
        """
        Args:
            download: fetch the book's ``banana-detection.zip`` (checked by checksum) when the files are missing.
            kwargs: ``data_dir``, ``image_size``, ``horizontal_flip`` and the split and batch options.
        """
        super().__init__(**kwargs)
        self.download = download

    def composed(self, split: str) -> dict[str, torch.Tensor]:
        if not self.source_list(split).is_file():
            self.fetch_archive()
        return super().composed(split)

    def fetch_archive(self) -> None:
        """Download (when allowed) and unpack ``banana-detection.zip`` into ``data_dir``; all or nothing."""
        archive = self.data_dir / "banana-detection.zip"
        if not archive.exists():
            if not self.download:
                return  # composed() says which file is missing
            self.data_dir.mkdir(parents=True, exist_ok=True)
            try:
                fetch(BANANA_URL, archive)
            except OSError as error:
                raise LitexpError(f"cannot download {BANANA_URL} ({error}); put banana-detection.zip or its "
                                  f"unpacked folder into {self.data_dir}") from None
        if not has_checksum(archive, BANANA_CHECKSUM):
            raise checksum_error(archive)
        try:
            with zipfile.ZipFile(archive) as opened:
                opened.extractall(self.data_dir)
        except zipfile.BadZipFile as error:
            raise LitexpError(f"cannot extract {archive}: {error}; delete it and run again") from None

    def source_list(self, split: str) -> Path:
        return self.data_dir / "banana-detection" / f"bananas_{'train' if split == 'train' else 'val'}" / "label.csv"

    def read(self, split: str):
        listing = self.source_list(split)
        with open(listing, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        expected = {"img_name", "label", "xmin", "ymin", "xmax", "ymax"}
        if not rows or not expected <= set(rows[0]):
            raise LitexpError(f"{listing}: expected the columns {', '.join(sorted(expected))}")
        files, images, boxes = [], [], []
        for number, row in enumerate(rows, 2):
            file = listing.parent / "images" / row["img_name"]
            image = read_image(file)
            label = int(row["label"])
            if label != 0:
                raise LitexpError(f"{listing}, line {number}: unknown class id {label}; banana-detection has class 0")
            box = checked_box([float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")], image.shape[2],
                              image.shape[1], f"{listing}, line {number}")
            files.append(file)
            images.append(resize_image(image, self.image_size))
            boxes.append([[label, *box]])
        return files, torch.stack(images), boxes


class VOCFolder:
    """Pascal VOC's layout under ``root``: ``JPEGImages/``, ``Annotations/``, ``SegmentationClass/``,
    ``ImageSets/{Main,Segmentation}/<list>.txt``."""

    def __init__(self, root: Path, train_list: str, test_list: str) -> None:
        self.root = root
        self.lists = {"train": train_list, "test": test_list}

    def names(self, kind: str, split: str) -> tuple[Path, list[str]]:
        listing = self.root / "ImageSets" / kind / f"{self.lists[split]}.txt"
        if not listing.is_file():
            raise LitexpError(f"Pascal VOC list {listing} not found; give --data.root the folder that holds "
                              f"JPEGImages, Annotations and ImageSets")
        return listing, [line.strip() for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]


class VOCDetection(FileDetection):
    """Pascal VOC detection: objects of ``Annotations/<name>.xml`` (``difficult`` ones kept) on ``JPEGImages``."""

    num_classes = len(VOC_CLASSES)
    class_names = VOC_CLASSES

    def __init__(self, root: str = "", train_list: str = "train", test_list: str = "val", **kwargs: Any) -> None:
        """
        Args:
            root: the VOC folder (e.g. ``VOCdevkit/VOC2012``).
            train_list: the ``ImageSets/Main`` list of the training part.
            test_list: the list of the test part (VOC's ``val`` when the test annotations are not public).
            kwargs: ``image_size``, ``horizontal_flip``, ``data_dir`` (the cache) and the split and batch options.
        """
        super().__init__(**kwargs)
        self.voc = VOCFolder(Path(root).expanduser(), train_list, test_list)

    def source_list(self, split: str) -> Path:
        return self.voc.names("Main", split)[0]

    def read(self, split: str):
        _, names = self.voc.names("Main", split)
        files, images, boxes = [], [], []
        for name in names:
            annotation = self.voc.root / "Annotations" / f"{name}.xml"
            try:
                objects = ElementTree.parse(annotation).getroot().findall("object")
            except (OSError, ElementTree.ParseError) as error:
                raise LitexpError(f"cannot read annotation {annotation} ({error})") from None
            image = read_image(self.voc.root / "JPEGImages" / f"{name}.jpg")
            rows = []
            for item in objects:
                label = (item.findtext("name") or "").strip()
                if label not in VOC_CLASSES:
                    raise LitexpError(f"{annotation}: unknown class {label!r}; Pascal VOC's classes are "
                                      f"{', '.join(VOC_CLASSES)}")
                try:
                    box = [float(item.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")]
                except (TypeError, ValueError):
                    raise LitexpError(f"{annotation}: object {label!r} has no numeric bndbox") from None
                box[0], box[1] = box[0] - 1, box[1] - 1  # VOC counts pixels from 1, inclusive corners
                rows.append([VOC_CLASSES.index(label), *checked_box(box, image.shape[2], image.shape[1],
                                                                    str(annotation))])
            files.append(annotation)
            images.append(resize_image(image, self.image_size))
            boxes.append(rows)
        return files, torch.stack(images), boxes


class VOCSegmentation(SceneData):
    """Pascal VOC semantic segmentation: ``SegmentationClass/<name>.png`` (palette indices: 0 background,
    1-20 classes, 255 void) on ``JPEGImages/<name>.jpg``; the image is resized bilinearly, the mask by
    nearest neighbour."""

    num_classes = len(VOC_CLASSES)
    class_names = VOC_CLASSES
    channels = 3
    target_names = ("masks",)

    def __init__(self, root: str = "", train_list: str = "train", test_list: str = "val",
                 data_dir: Optional[str] = None, image_size: PositiveInt = 256, horizontal_flip: bool = False,
                 **kwargs: Any) -> None:
        """
        Args:
            root: the VOC folder (e.g. ``VOCdevkit/VOC2012``).
            train_list: the ``ImageSets/Segmentation`` list of the training part.
            test_list: the list of the test part.
            data_dir: where the decoded cache goes.
            image_size: side the images and masks are resized to.
            horizontal_flip: training augmentation: flip half of the images and their masks.
            kwargs: the split and batch options of :class:`datamodules.base.DataModule`.
        """
        super().__init__(horizontal_flip=horizontal_flip, **kwargs)
        self.voc = VOCFolder(Path(root).expanduser(), train_list, test_list)
        self.data_dir = data_dir_path(data_dir)
        self.image_size = self.canvas_size = int(image_size)
        self.options = {"image_size": self.image_size, "source": "VOCSegmentation"}

    def composed(self, split: str) -> dict[str, torch.Tensor]:
        listing, names = self.voc.names("Segmentation", split)
        cache = FileCache(self.data_dir, "VOCSegmentation", {"split": split, "list": str(listing.resolve()),
                                                            "size": self.image_size})
        cached = cache.get([listing])
        if cached is None:
            images, masks = [], []
            for name in names:
                image = read_image(self.voc.root / "JPEGImages" / f"{name}.jpg")
                mask = self.read_mask(self.voc.root / "SegmentationClass" / f"{name}.png", image.shape[1:])
                images.append(resize_image(image, self.image_size))
                masks.append(F.interpolate(mask[None, None].float(), size=(self.image_size,) * 2,
                                           mode="nearest")[0, 0].to(torch.uint8))
            cached = {"images": torch.stack(images), "masks": torch.stack(masks)}
            cache.put([listing], cached)
        return cached

    def read_mask(self, path: Path, size: tuple[int, int]) -> torch.Tensor:
        if not path.is_file() or path.stat().st_size == 0:
            raise LitexpError(f"mask {path} is missing or empty; every listed image needs its SegmentationClass PNG")
        try:
            with Image.open(path) as picture:
                if picture.mode not in ("P", "L"):
                    raise LitexpError(f"mask {path} is a {picture.mode} image; VOC masks are palette (P) PNGs of "
                                      f"class indices")
                mask = torch.from_numpy(np.array(picture, dtype=np.uint8))
        except OSError as error:
            raise LitexpError(f"cannot decode mask {path} ({error}); replace it") from None
        if tuple(mask.shape) != tuple(size):
            raise LitexpError(f"mask {path} is {mask.shape[1]}x{mask.shape[0]} but its image is {size[1]}x{size[0]}; "
                              f"a mask must have its image's size")
        unknown = sorted(set(mask.unique().tolist()) - set(range(len(VOC_CLASSES) + 1)) - {VOID})
        if unknown:
            raise LitexpError(f"mask {path} has unknown class ids {unknown}; VOC uses 0-{len(VOC_CLASSES)} and {VOID}")
        return mask
