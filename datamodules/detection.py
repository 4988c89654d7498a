"""Detection and segmentation scenes composed from real Fashion-MNIST items (d2l 14.6-14.9 on this machine).

No detection dataset can be downloaded here, so the scenes are made of real images: each canvas holds
1-4 Fashion-MNIST items resized to random sides and placed at random positions (some overlapping, a
later item hiding the earlier one's pixels). Items of the official training split make the training
canvases (and hence the validation ones); items of the test split make the test canvases, so test
images stay unseen. The scenes are a pure function of the options and ``compose_seed``, composed once
and cached as tensors:

- images ``(N, 1, S, S)`` uint8;
- boxes ``(N, max_objects, 5)`` float rows ``(class, x1, y1, x2, y2)``, corners normalised to [0, 1],
  the item's tight box (pixels above ``FOREGROUND``); rows of class ``-1`` pad images with fewer items;
- masks ``(N, S, S)`` uint8, ``class + 1`` on an item's visible pixels, 0 for background.

``ComposedDetection`` serves (images, boxes), ``ComposedSegmentation`` (images, masks); hold-out and
K-fold validation, loaders and the test lock come from :class:`datamodules.base.DataModule`.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from jsonargparse.typing import PositiveInt

from datamodules.base import DataModule
from datamodules.vision import FashionMNIST
from litexp.errors import LitexpError

FOREGROUND = 32  # an item's pixel above this grey level is part of the item (box and mask)
FASHION_CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle boot")


def compose_scenes(items: torch.Tensor, labels: torch.Tensor, num_scenes: int, canvas_size: int,
                   objects: tuple[int, int], sides: tuple[int, int], max_overlap: float,
                   seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Compose ``num_scenes`` canvases from ``items`` (N, 28, 28) uint8: (images, padded boxes, masks)."""
    rng = np.random.default_rng(seed)
    size = canvas_size
    images = torch.zeros(num_scenes, 1, size, size, dtype=torch.uint8)
    masks = torch.zeros(num_scenes, size, size, dtype=torch.uint8)
    boxes = torch.full((num_scenes, objects[1], 5), -1.0)
    boxes[:, :, 1:] = 0.0
    for scene in range(num_scenes):
        placed: list[list[float]] = []
        for _ in range(int(rng.integers(objects[0], objects[1] + 1))):
            index, side = int(rng.integers(len(items))), int(rng.integers(sides[0], sides[1] + 1))
            item = F.interpolate(items[index][None, None].float(), size=(side, side), mode="bilinear",
                                 align_corners=False, antialias=True)[0, 0].round().clamp(0, 255).to(torch.uint8)
            foreground = item > FOREGROUND
            rows, cols = foreground.any(dim=1).nonzero().flatten(), foreground.any(dim=0).nonzero().flatten()
            if len(rows) == 0:
                continue  # an all-dark item: nothing to see or find
            for _attempt in range(10):  # a free enough place, or the item is left out
                x, y = (int(v) for v in rng.integers(0, size - side + 1, size=2))
                box = [x + int(cols[0]), y + int(rows[0]), x + int(cols[-1]) + 1, y + int(rows[-1]) + 1]
                if all(_iou(box, other) <= max_overlap for other in placed):
                    break
            else:
                continue
            region = images[scene, 0, y:y + side, x:x + side]
            region[foreground] = item[foreground]  # the later item hides what it covers
            masks[scene, y:y + side, x:x + side][foreground] = int(labels[index]) + 1
            boxes[scene, len(placed)] = torch.tensor([float(labels[index]), *(v / size for v in box)])
            placed.append(box)
    return images, boxes, masks


def _iou(a: list[float], b: list[float]) -> float:
    """IoU of two pixel boxes during composition (one pair at a time; torchvision's box_iou works on batches)."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


class SceneData(DataModule):
    """Images with boxes or masks, held as tensors: what composed scenes and files on disk share.

    A subclass says which targets it serves (``target_names``: ``("boxes",)`` or ``("masks",)``) and
    provides ``composed(split)``, a dict of ``images`` and those targets.
    """

    abstract = True  # a base: not offered as --data
    stratify = False  # no single label per image
    target_names: tuple[str, ...] = ()
    channels: int = 1

    def __init__(self, horizontal_flip: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.horizontal_flip = bool(horizontal_flip)
        self.canvas_size = 0  # the side of the images (set by the subclass)
        self.options: dict[str, Any] = {}  # what decides the data (cache key and fingerprint)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.canvas_size, self.canvas_size)

    def composed(self, split: str) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def load(self, split: str) -> tuple[torch.Tensor, ...]:
        scenes = self.composed(split)
        return (scenes["images"], *(scenes[name] for name in self.target_names))

    def fingerprint_arrays(self) -> tuple[np.ndarray, ...]:
        digest = hashlib.sha1(json.dumps(self.options, sort_keys=True).encode()).digest()
        return (np.frombuffer(digest, dtype=np.uint8),)

    def transform_batch(self, batch, training: bool):
        images, targets = batch  # (B, C, S, S) uint8, boxes (B, M, 5) or masks (B, S, S)
        images = images.float().div_(255.0)
        if training and self.horizontal_flip:
            flip = torch.rand(images.shape[0], device=images.device) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
            targets = self.flip_targets(targets, flip)
        return images, targets

    def flip_targets(self, targets: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
        """Mirror the targets of the images where ``flip`` (B,) is True."""
        if self.target_names == ("masks",):
            return torch.where(flip[:, None, None], targets.flip(-1), targets)
        flipped = targets.clone()
        flipped[..., 1], flipped[..., 3] = 1.0 - targets[..., 3], 1.0 - targets[..., 1]
        return torch.where(flip[:, None, None], flipped, targets)

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "scenes": dict(self.options), "horizontal_flip": self.horizontal_flip}


class ComposedScenes(SceneData):
    """Canvases of Fashion-MNIST items; a subclass says which targets it serves (``target_names``)."""

    abstract = True  # a base: not offered as --data
    num_classes = len(FASHION_CLASSES)  # object classes; targets use class + 1 where 0 is background
    class_names = FASHION_CLASSES

    def __init__(
        self,
        data_dir: Optional[str] = None,
        download: bool = True,
        canvas_size: PositiveInt = 64,
        num_train: PositiveInt = 3000,
        num_test: PositiveInt = 500,
        min_objects: PositiveInt = 1,
        max_objects: PositiveInt = 4,
        min_side: PositiveInt = 16,
        max_side: PositiveInt = 32,
        max_overlap: float = 0.3,
        compose_seed: int = 0,
        horizontal_flip: bool = False,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            data_dir: where Fashion-MNIST lives (as for ``FashionMNIST``); the composed cache goes there too.
            download: fetch Fashion-MNIST when missing.
            canvas_size: side of the square canvases in pixels.
            num_train: canvases composed from the training items (validation is cut from them).
            num_test: canvases composed from the test items.
            min_objects: fewest items per canvas.
            max_objects: most items per canvas (the padded boxes tensor has this many rows).
            min_side: smallest side an item (28 px) is resized to.
            max_side: largest side; at most ``canvas_size``.
            max_overlap: the largest IoU of a new item's box with one already placed.
            compose_seed: seed of the composition (the test canvases use ``compose_seed + 1``).
            horizontal_flip: training augmentation: flip half of the canvases (and their targets).
            kwargs: the split and batch options of :class:`datamodules.base.DataModule`.
        """
        super().__init__(horizontal_flip=horizontal_flip, **kwargs)
        if min_objects > max_objects:
            raise LitexpError(f"min_objects ({min_objects}) must not exceed max_objects ({max_objects})")
        if not 8 <= min_side <= max_side <= canvas_size:
            raise LitexpError(f"item sides must satisfy 8 <= min_side <= max_side <= canvas_size, got "
                              f"min_side={min_side}, max_side={max_side}, canvas_size={canvas_size}")
        if not 0.0 <= max_overlap < 1.0:
            raise LitexpError(f"max_overlap is an IoU in [0, 1), got {max_overlap}")
        self.items = FashionMNIST(data_dir=data_dir, download=download)
        self.options = {"canvas_size": int(canvas_size), "num_train": int(num_train), "num_test": int(num_test),
                        "objects": [int(min_objects), int(max_objects)], "sides": [int(min_side), int(max_side)],
                        "max_overlap": float(max_overlap), "compose_seed": int(compose_seed)}
        self.canvas_size = int(canvas_size)

    def composed(self, split: str) -> dict[str, torch.Tensor]:
        """Images, boxes and masks of ``split``, from the cache when these options made it before."""
        if split not in ("train", "test"):
            raise ValueError(f"unknown split {split!r}")
        key = hashlib.sha1(json.dumps(self.options, sort_keys=True).encode()).hexdigest()[:12]
        cache = self.items.data_dir / "litexp-cache" / f"ComposedScenes-{split}-{key}.pt"
        if cache.exists():
            try:
                return torch.load(cache, weights_only=True)
            except Exception:  # an unreadable cache is composed again
                pass
        items, labels = self.items.load_all(split)
        options = self.options
        images, boxes, masks = compose_scenes(
            items[:, 0], labels, options["num_train" if split == "train" else "num_test"], options["canvas_size"],
            tuple(options["objects"]), tuple(options["sides"]), options["max_overlap"],
            options["compose_seed"] + (split == "test"))
        scenes = {"images": images, "boxes": boxes, "masks": masks}
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(f".tmp{os.getpid()}")
        torch.save(scenes, partial)
        os.replace(partial, cache)  # atomic: concurrent ranks never read a half-written cache
        return scenes


class ComposedDetection(ComposedScenes):
    """Object detection: (images (B, 1, S, S), boxes (B, max_objects, 5)) per batch."""

    target_names = ("boxes",)


class ComposedSegmentation(ComposedScenes):
    """Semantic segmentation: (images (B, 1, S, S), masks (B, S, S) with 0 = background, class + 1 = item)."""

    target_names = ("masks",)
