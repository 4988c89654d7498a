"""Where text comes from: UTF-8 files and folders, named corpora fetched from their canonical URLs, and
the base of every DataModule that reads a corpus (:class:`CorpusDataModule`).

A named corpus lives in ``<data_dir>/text/<name>/``; its download is checked by checksum before use
(a ``.zip`` is then unpacked next to it). Files already in place are used offline.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from datamodules import files
from datamodules.base import DataModule
from litexp.errors import LitexpError


@dataclass(frozen=True)
class NamedCorpus:
    url: str
    checksum: str  # "<hash algorithm>:<hex digest>" of the downloaded file
    train: tuple[str, ...]  # files of the training part (members of the archive for a .zip)
    test: tuple[str, ...] = ()  # the official test file, if any
    pairs: bool = False  # tab-separated sentence pairs (translation), not running text


D2L_DATA = "http://d2l-data.s3-accelerate.amazonaws.com/"
CORPORA = {
    "timemachine": NamedCorpus(D2L_DATA + "timemachine.txt", "sha1:090b5e7e70c295757f55df93cb0a180b9691891a",
                               train=("timemachine.txt",)),
    # the official validation file is appended to the training part: hold-out validation is its tail
    "ptb": NamedCorpus(D2L_DATA + "ptb.zip", "sha1:319d85e578af0cdc590547f26231e4e31cdf1e42",
                       train=("ptb/ptb.train.txt", "ptb/ptb.valid.txt"), test=("ptb/ptb.test.txt",)),
    "tiny_shakespeare": NamedCorpus(
        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        "sha256:86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed", train=("input.txt",)),
    "wikitext2": NamedCorpus(
        "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip",
        "sha1:3c914d17d80b1459be871a5039ac23e752a53cbe",
        train=("wikitext-2/wiki.train.tokens", "wikitext-2/wiki.valid.tokens"), test=("wikitext-2/wiki.test.tokens",)),
    # English-French sentence pairs (tab-separated, tatoeba attribution in a third column) for translation
    "fra-eng": NamedCorpus(D2L_DATA + "fra-eng.zip", "sha1:94646ad1522d915e7b0f9296181140edcf86a4f5",
                           train=("fra-eng/fra.txt",), pairs=True),
}


#: corpora of running text, for language models
TEXT_CORPORA = tuple(name for name, spec in CORPORA.items() if not spec.pairs)


def named_corpus_files(name: str, data_dir: Path, download: bool) -> tuple[list[Path], list[Path]]:
    """(training files, test files) of a named corpus, downloaded and verified when needed."""
    if name not in CORPORA:
        raise LitexpError(f"unknown corpus {name!r}; valid corpora: {', '.join(CORPORA)} (or give a file with path)")
    spec = CORPORA[name]
    folder = data_dir / "text" / name
    download_path = folder / spec.url.rsplit("/", 1)[-1]
    members = [folder / member for member in (*spec.train, *spec.test)]
    is_archive = download_path.suffix == ".zip"
    if is_archive and all(path.exists() for path in members):
        return members[: len(spec.train)], members[len(spec.train):]
    if not download_path.exists():
        if not download:
            raise LitexpError(f"corpus {name!r} not found in {folder} (download: false); put "
                              f"{download_path.name} there, point data_dir / LITEXP_DATA_DIR at a folder that has "
                              f"text/{name}/{download_path.name}, or allow download: true")
        folder.mkdir(parents=True, exist_ok=True)
        try:
            files.fetch(spec.url, download_path)
        except Exception as error:  # urllib, socket and OS errors alike
            raise LitexpError(f"corpus {name!r} not found in {folder} and its download from {spec.url} failed "
                              f"({error}); put {download_path.name} there by hand") from error
    if not files.has_checksum(download_path, spec.checksum):
        raise files.checksum_error(download_path)
    if is_archive:
        try:
            with zipfile.ZipFile(download_path) as archive:
                for member in (*spec.train, *spec.test):
                    archive.extract(member, folder)
        except (zipfile.BadZipFile, KeyError) as error:
            raise LitexpError(f"cannot extract {download_path}: {error}; delete it and run again") from error
    return members[: len(spec.train)], members[len(spec.train):]


def read_text(paths: list[Path]) -> str:
    """The UTF-8 text of a file, or of every file under a folder (sorted by name), one after the other."""
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise LitexpError(f"text file or folder {path} does not exist; check --data.path")
        files.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
    if not files:
        raise LitexpError(f"folder {paths[0]} holds no files; give a UTF-8 text file or a folder of them")
    texts = []
    for file in files:
        data = file.read_bytes()
        try:
            if b"\x00" in data:
                raise UnicodeDecodeError("utf-8", data, data.index(b"\x00"), data.index(b"\x00") + 1, "NUL byte")
            texts.append(data.decode("utf-8"))
        except UnicodeDecodeError as error:
            raise LitexpError(f"{file} is not UTF-8 text (byte {error.start}: {error.reason}); "
                              f"give a plain text file") from error
    text = "\n".join(texts)
    if not text.strip():
        raise LitexpError(f"{', '.join(map(str, files[:3]))}: the text is empty; give a file with text in it")
    return text


class CorpusDataModule(DataModule):
    """A DataModule over a text file or folder (``path``) or a named corpus (``corpus``).

    Subclasses (language models, word2vec, translation) add their own options, give ``corpus`` their
    own default, and forward the rest here with ``**kwargs``.
    """

    abstract = True  # a base: not offered as --data
    stratify = False
    #: the named corpora this kind of DataModule can read, and how its messages call them and a file
    corpus_names: tuple[str, ...] = TEXT_CORPORA
    corpus_label: str = "corpus"
    path_label: str = "a text file or folder"

    def __init__(
        self,
        path: Optional[str] = None,
        corpus: Optional[str] = None,
        data_dir: Optional[str] = None,
        download: bool = True,
        test_fraction: float = 0.1,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            path: a UTF-8 text file or a folder of them; replaces ``corpus`` when given.
            corpus: a named corpus (see the subclass for its default and choices).
            data_dir: where named corpora live (default: ``$LITEXP_DATA_DIR`` or the user cache).
            download: fetch a missing named corpus from its canonical URL (checked by checksum).
            test_fraction: fraction held out for test when the corpus has no test file of its own.
            kwargs: the split and batch options of :class:`datamodules.base.DataModule`.
        """
        super().__init__(**kwargs)
        if not path and not corpus:
            raise LitexpError(f"give {self.path_label} (path) or a named {self.corpus_label} "
                              f"({', '.join(self.corpus_names)})")
        if not path and corpus not in self.corpus_names:
            raise LitexpError(f"unknown {self.corpus_label} {corpus!r}; valid corpora: {', '.join(self.corpus_names)} "
                              f"(or give {self.path_label} with path)")
        if not 0.0 <= test_fraction < 1.0:
            raise LitexpError(f"test_fraction must lie in [0, 1), got {test_fraction}")
        self.path, self.corpus = path, corpus
        self.data_dir = files.data_dir_path(data_dir)
        self.download = download
        self.test_fraction = float(test_fraction)

    @property
    def source(self) -> str:
        return str(self.path or self.corpus)

    def __str__(self) -> str:
        return f"{type(self).__name__}({self.source}, batch_size={self.batch_size})"

    def read_corpus(self) -> tuple[str, Optional[str]]:
        """(training text, test text or None): ``path`` wins over ``corpus``."""
        if self.path:
            return read_text([Path(self.path).expanduser()]), None
        train_files, test_files = named_corpus_files(self.corpus, self.data_dir, self.download)
        return read_text(train_files), (read_text(test_files) if test_files else None)

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "source": self.source}


class TokenCorpus(CorpusDataModule):
    """A corpus read as one token stream with one vocabulary (language models, word2vec).

    The vocabulary is read lazily, so that the CLI can link ``vocab_size`` right after construction.
    """

    abstract = True  # a base: not offered as --data

    def read_tokens(self, tokenizer) -> tuple[list[str], list[str]]:
        """(training tokens, test tokens): the corpus' own test text, else its last ``test_fraction``."""
        text, test_text = self.read_corpus()
        tokens = tokenizer(text)
        if test_text is not None:
            return tokens, tokenizer(test_text)
        boundary = len(tokens) - int(round(len(tokens) * self.test_fraction))
        return tokens[:boundary], tokens[boundary:]

    def _read(self) -> None:
        """Read, split and encode the corpus once, setting ``self._vocab`` (from the training part only)."""
        raise NotImplementedError

    @property
    def vocab(self):
        self._read()
        return self._vocab

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

