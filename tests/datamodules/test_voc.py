"""Banana-detection and Pascal VOC files (written here in their real formats) and a user's own image folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules import BananaDetection, ImageFolder, VOCDetection, VOCSegmentation
from litexp.errors import LitexpError


def write_image(path: Path, width: int, height: int, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def write_bananas(root: Path, rows: dict[str, list[tuple]]) -> Path:
    for split, entries in rows.items():
        folder = root / "banana-detection" / f"bananas_{split}"
        lines = ["img_name,label,xmin,ymin,xmax,ymax"]
        for index, (label, *box) in enumerate(entries):
            write_image(folder / "images" / f"{index}.png", 64, 64, seed=index)
            lines.append(f"{index}.png,{label}," + ",".join(str(v) for v in box))
        (folder / "label.csv").write_text("\n".join(lines) + "\n")
    return root


def test_banana_files_become_padded_boxes(tmp_path):
    root = write_bananas(tmp_path, {"train": [(0, 8, 16, 32, 48)] * 4, "val": [(0, 0, 0, 64, 64)] * 2})
    data = BananaDetection(data_dir=str(root), image_size=32, batch_size=2, val_fraction=0.5)
    images, boxes = data.load("train")
    assert images.shape == (4, 3, 32, 32) and boxes.shape == (4, 1, 5)
    torch.testing.assert_close(boxes[0, 0], torch.tensor([0, 0.125, 0.25, 0.5, 0.75]))
    data.setup("test")
    assert data.load("test")[1][0, 0].tolist() == [0, 0, 0, 1, 1]


@pytest.mark.parametrize("box, message", [((0, 8, 16, 80, 48), "outside the 64x64 image"),
                                          ((0, 30, 16, 30, 48), "empty or inverted"),
                                          ((3, 8, 16, 32, 48), "unknown class id 3")])
def test_bad_banana_boxes_are_one_line_and_nothing_is_cached(tmp_path, box, message):
    root = write_bananas(tmp_path, {"train": [(0, 8, 16, 32, 48), box]})
    with pytest.raises(LitexpError, match=message):
        BananaDetection(data_dir=str(root), image_size=32).load("train")
    assert not (root / "litexp-cache").exists()


def test_an_empty_image_file_is_one_line(tmp_path):
    root = write_bananas(tmp_path, {"train": [(0, 8, 16, 32, 48)] * 2})
    (root / "banana-detection/bananas_train/images/1.png").write_bytes(b"")
    with pytest.raises(LitexpError, match="1.png is empty"):
        BananaDetection(data_dir=str(root), image_size=32).load("train")


ANNOTATION = """<annotation><filename>{name}.jpg</filename><size><width>48</width><height>40</height></size>
{objects}</annotation>"""
OBJECT = "<object><name>{label}</name><difficult>0</difficult><bndbox><xmin>{0}</xmin><ymin>{1}</ymin>" \
         "<xmax>{2}</xmax><ymax>{3}</ymax></bndbox></object>"


def write_voc(root: Path, objects: dict[str, list[tuple]], mask_size: tuple[int, int] = (48, 40),
              mask_value: int = 12) -> Path:
    for folder in ("Main", "Segmentation"):
        (root / "ImageSets" / folder).mkdir(parents=True, exist_ok=True)
        for split in ("train", "val"):
            (root / "ImageSets" / folder / f"{split}.txt").write_text("\n".join(objects) + "\n")
    (root / "Annotations").mkdir(exist_ok=True)
    for index, (name, items) in enumerate(objects.items()):
        write_image(root / "JPEGImages" / f"{name}.jpg", 48, 40, seed=index)
        body = "".join(OBJECT.format(*box, label=label) for label, *box in items)
        (root / "Annotations" / f"{name}.xml").write_text(ANNOTATION.format(name=name, objects=body))
        mask = np.zeros(mask_size[::-1], dtype=np.uint8)
        mask[10:20, 5:25] = mask_value  # dog
        mask[9, 5:25] = 255  # the border VOC marks as void
        picture = Image.fromarray(mask, mode="P")
        picture.putpalette([0, 0, 0, 128, 0, 0] * 128)
        (root / "SegmentationClass").mkdir(exist_ok=True)
        picture.save(root / "SegmentationClass" / f"{name}.png")
    return root


def test_voc_detection_reads_annotations(tmp_path):
    root = write_voc(tmp_path / "VOC", {"a": [("dog", 6, 11, 25, 20), ("cat", 1, 1, 48, 40)], "b": []})
    images, boxes = VOCDetection(root=str(root), data_dir=str(tmp_path), image_size=32).load("train")
    assert images.shape == (2, 3, 32, 32) and boxes.shape == (2, 2, 5)
    torch.testing.assert_close(boxes[0, 0], torch.tensor([11, 5 / 48, 10 / 40, 25 / 48, 20 / 40]))
    assert boxes[0, 1, 0] == 7 and boxes[1, :, 0].tolist() == [-1, -1]  # an image without objects is all padding


@pytest.mark.parametrize("item, message", [(("unicorn", 6, 11, 25, 20), "unknown class 'unicorn'"),
                                           (("dog", 6, 11, 60, 20), "outside the 48x40 image"),
                                           (("dog", 26, 11, 25, 20), "empty or inverted")])
def test_bad_voc_annotations_are_one_line(tmp_path, item, message):
    root = write_voc(tmp_path / "VOC", {"a": [item]})
    with pytest.raises(LitexpError, match=message):
        VOCDetection(root=str(root), data_dir=str(tmp_path), image_size=32).load("train")
    assert not (tmp_path / "litexp-cache").exists()


def test_voc_segmentation_masks(tmp_path):
    root = write_voc(tmp_path / "VOC", {"a": [], "b": []})
    images, masks = VOCSegmentation(root=str(root), data_dir=str(tmp_path), image_size=40).load("train")
    assert images.shape == (2, 3, 40, 40) and masks.shape == (2, 40, 40)
    assert set(masks.unique().tolist()) == {0, 12, 255}


@pytest.mark.parametrize("options, message", [({"mask_size": (40, 40)}, "a mask must have its image's size"),
                                              ({"mask_value": 42}, "unknown class ids \\[42\\]")])
def test_bad_voc_masks_are_one_line(tmp_path, options, message):
    root = write_voc(tmp_path / "VOC", {"a": []}, **options)
    with pytest.raises(LitexpError, match=message):
        VOCSegmentation(root=str(root), data_dir=str(tmp_path), image_size=32).load("train")


def write_image_folder(root: Path, suffix: str) -> Path:
    for split, count in (("train", 6), ("test", 2)):
        for label in ("cats", "dogs"):
            for index in range(count):
                write_image(root / split / label / f"{index}{suffix}", 20 + index, 24, seed=index)
    return root


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_image_folder_decodes_once_and_splits(tmp_path, suffix):
    root = write_image_folder(tmp_path / "photos", suffix)
    data = ImageFolder(root=str(root), cache_size=16, resize=24, data_dir=str(tmp_path), batch_size=4,
                       num_folds=3, fold=1)
    assert data.class_names == ("cats", "dogs") and data.input_shape == (3, 24, 24)
    data.setup("fit")
    assert len(data.val_indices) == 4 and len(data.train_indices) == 8
    images, labels = data.transform_batch(next(iter(data.train_dataloader())), training=True)
    assert images.shape == (4, 3, 24, 24) and set(labels.tolist()) <= {0, 1}
    assert len(list((tmp_path / "litexp-cache").glob("ImageFolder-*.pt"))) == 1


def test_image_folder_from_a_csv(tmp_path):
    root = write_image_folder(tmp_path / "photos", ".png")
    for split in ("train", "test"):
        lines = ["file,label"] + [f"{split}/{label}/{index}.png,{label}" for label in ("cats", "dogs")
                                  for index in range(2)]
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
    data = ImageFolder(root=str(root), train="train.csv", test="test.csv", channels=1, data_dir=str(tmp_path))
    images, labels = data.load("test")
    assert images.shape == (4, 1, 64, 64) and labels.tolist() == [0, 0, 1, 1]


def test_image_folder_errors_are_one_line(tmp_path):
    with pytest.raises(LitexpError, match="not a folder"):
        ImageFolder(root=str(tmp_path / "missing"))
    root = write_image_folder(tmp_path / "photos", ".png")
    (root / "train" / "cats" / "0.png").write_bytes(b"not a png")
    with pytest.raises(LitexpError, match="cannot decode image"):
        ImageFolder(root=str(root), data_dir=str(tmp_path)).load("train")


def test_banana_archive_is_checked_and_unpacked(tmp_path, monkeypatch):
    import shutil
    import zipfile

    from datamodules import voc
    from tests.fake_data import sha1

    source = write_bananas(tmp_path / "source", {"train": [(0, 8, 16, 32, 48)] * 2})
    target = tmp_path / "data"
    target.mkdir()
    archive = target / "banana-detection.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        for file in (source / "banana-detection").rglob("*"):
            opened.write(file, file.relative_to(source))
    monkeypatch.setattr(voc, "BANANA_CHECKSUM", "sha1:" + "0" * 40)
    with pytest.raises(LitexpError, match="checksum mismatch"):
        BananaDetection(data_dir=str(target), image_size=32, download=False).load("train")
    monkeypatch.setattr(voc, "BANANA_CHECKSUM", sha1(archive))
    images, boxes = BananaDetection(data_dir=str(target), image_size=32, download=False).load("train")
    assert images.shape == (2, 3, 32, 32) and boxes.shape == (2, 1, 5)
    shutil.rmtree(target)
    target.mkdir()
    with pytest.raises(LitexpError, match="label.csv not found"):
        BananaDetection(data_dir=str(target), download=False).load("train")
