"""Small dataset files in the real on-disk formats (IDX, CIFAR python pickles), written by tests.

The real parsing code reads them; their checksums are patched into the tables the loaders check.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np
import torchvision.datasets as tvd


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    """IDX: magic (0, 0, dtype 0x08 = uint8, ndim), big-endian dims, then the raw bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)
    return path


def labelled_images(num: int, num_classes: int, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Each class is a fixed random template plus noise, so any model can learn it in a few steps."""
    templates = np.random.default_rng(1234).integers(0, 256, size=(num_classes, *shape))
    rng = np.random.default_rng(seed)
    labels = np.arange(num) % num_classes
    rng.shuffle(labels)
    noise = rng.integers(0, 256, size=(num, *shape))
    images = (0.7 * templates[labels] + 0.3 * noise).astype(np.uint8)
    return images, labels.astype(np.uint8)


def write_idx_dataset(root: Path, folder: str, num_train: int = 300, num_test: int = 100,
                      compress: bool = False) -> list[Path]:
    raw = root / folder / "raw"
    written = []
    for split, num, seed in (("train", num_train, 0), ("t10k", num_test, 1)):
        images, labels = labelled_images(num, 10, (28, 28), seed)
        written.append(write_idx(raw / f"{split}-images-idx3-ubyte", images, compress))
        written.append(write_idx(raw / f"{split}-labels-idx1-ubyte", labels, compress))
    return written


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_cifar(root: Path, num_classes: int, per_batch: int = 60, num_test: int = 100) -> dict[str, str]:
    """CIFAR-10 (5 train batches + test + batches.meta) or CIFAR-100 (train + test + meta) pickles.

    Returns {file name: md5} for patching torchvision's checksum tables.
    """
    cls = tvd.CIFAR10 if num_classes == 10 else tvd.CIFAR100
    folder = root / cls.base_folder
    folder.mkdir(parents=True, exist_ok=True)
    label_key = "labels" if num_classes == 10 else "fine_labels"
    sums = {}
    for index, (name, _) in enumerate(cls.train_list + cls.test_list):
        is_test = [name, _] in cls.test_list
        num = num_test if is_test else max(per_batch, 10 * num_classes)
        images, labels = labelled_images(num, num_classes, (3, 32, 32), seed=10 + index)
        entry = {"data": images.reshape(num, -1), label_key: labels.astype(int).tolist(), "batch_label": name}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
        sums[name] = md5(folder / name)
    meta_key = cls.meta["key"]
    (folder / cls.meta["filename"]).write_bytes(
        pickle.dumps({meta_key: [f"class{i}" for i in range(num_classes)]}, protocol=2))
    sums[cls.meta["filename"]] = md5(folder / cls.meta["filename"])
    return sums


def patch_cifar_checksums(monkeypatch, cls, sums: dict[str, str]) -> None:
    monkeypatch.setattr(cls, "train_list", [[name, sums[name]] for name, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[name, sums[name]] for name, _ in cls.test_list])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": sums[cls.meta["filename"]]})


# -- text corpora -----------------------------------------------------------------------------------
WORDS = ("the time traveller said that we could see a machine of brass and ivory in the laboratory "
         "it was late and the lamp burned while he spoke of the fourth dimension and of the future").split()


def english_like_text(num_sentences: int, seed: int) -> str:
    """Sentences of a small vocabulary with a Markov structure: learnable, never random noise."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(num_sentences):
        start = int(rng.integers(len(WORDS)))
        length = int(rng.integers(5, 12))
        words = [WORDS[(start + step * 3 + int(rng.integers(2))) % len(WORDS)] for step in range(length)]
        lines.append(" ".join(words).capitalize() + ".")
    return "\n".join(lines) + "\n"


def sha1(path: Path) -> str:
    return "sha1:" + hashlib.sha1(path.read_bytes()).hexdigest()


def write_text_corpora(root: Path) -> dict[str, str]:
    """The Time Machine (one text file) and PTB (ptb.zip with train/valid/test) in litexp's layout.

    Returns {corpus name: checksum} for patching ``datamodules.corpora.CORPORA``.
    """
    import zipfile

    folder = root / "text" / "timemachine"
    folder.mkdir(parents=True)
    (folder / "timemachine.txt").write_text(english_like_text(600, seed=0), encoding="utf-8")
    folder = root / "text" / "ptb"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "ptb.zip", "w") as archive:
        for split, (sentences, seed) in {"train": (600, 1), "valid": (60, 2), "test": (80, 3)}.items():
            text = english_like_text(sentences, seed).lower().replace(".", "").replace(" ivory ", " <unk> ")
            archive.writestr(f"ptb/ptb.{split}.txt", text)
    return {"timemachine": sha1(root / "text/timemachine/timemachine.txt"), "ptb": sha1(folder / "ptb.zip")}


def patch_text_checksums(monkeypatch, sums: dict[str, str]) -> None:
    import dataclasses

    from datamodules import corpora

    for name, checksum in sums.items():
        monkeypatch.setitem(corpora.CORPORA, name, dataclasses.replace(corpora.CORPORA[name], checksum=checksum))


# -- translation pairs ------------------------------------------------------------------------------
PAIR_WORDS = (("i", "je"), ("you", "tu"), ("see", "vois"), ("the", "le"), ("cat", "chat"), ("dog", "chien"),
              ("big", "grand"), ("small", "petit"), ("house", "maison"), ("car", "voiture"))


def fra_eng_lines(num_pairs: int, seed: int = 0) -> str:
    """Lines in the format of the book's fra.txt: ``English<TAB>French<TAB>tatoeba attribution``.

    French ``!`` and ``?`` follow a narrow no-break space, as in the real file; each French word is a
    fixed translation of the English one, so a model can learn the pairs.
    """
    rng = np.random.default_rng(seed)
    lines = []
    for number in range(num_pairs):
        picks = rng.integers(len(PAIR_WORDS), size=int(rng.integers(1, 6)))
        mark = "!?."[number % 3]
        english = " ".join(PAIR_WORDS[i][0] for i in picks).capitalize() + mark
        french = " ".join(PAIR_WORDS[i][1] for i in picks).capitalize() + ("\u202f" + mark if mark != "." else mark)
        lines.append(f"{english}\t{french}\tCC-BY 2.0 (France) Attribution: tatoeba.org #{1000 + number} (CM)")
    return "\n".join(lines) + "\n"


def write_fra_eng_zip(path: Path, text: str) -> str:
    """``fra-eng.zip`` holding ``fra-eng/fra.txt`` (the real archive's layout); returns its sha1 checksum."""
    import zipfile

    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("fra-eng/fra.txt", text)
    return sha1(path)
