"""Where data files live and how they arrive: the data directory, downloads with a timeout, checksums.

Every DataModule family uses these: the vision files (through torchvision's own downloaders, under
:func:`network_timeout`) and the named text corpora (:func:`fetch`). A file is checked before it is
decoded; a mismatch is one message (:func:`checksum_error`) that says how to recover.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import socket
import urllib.request
from pathlib import Path
from typing import Iterator

from litexp.errors import LitexpError

DOWNLOAD_TIMEOUT_S = 30.0  # no download may hang on a dead network


def default_data_dir() -> str:
    """``$LITEXP_DATA_DIR``, else the user cache directory (``$XDG_CACHE_HOME/litexp/data``)."""
    if os.environ.get("LITEXP_DATA_DIR"):
        return os.environ["LITEXP_DATA_DIR"]
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache_home, "litexp", "data")


def data_dir_path(data_dir: str | None) -> Path:
    """The ``data_dir`` option as a path (default: :func:`default_data_dir`)."""
    return Path(data_dir or default_data_dir()).expanduser()


def file_digest(path: Path, algorithm: str = "md5", gunzip: bool = False) -> str:
    """Hex digest of a file, or of its decompressed content (``gunzip``), read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with (gzip.open(path, "rb") if gunzip else open(path, "rb")) as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def has_checksum(path: Path, checksum: str) -> bool:
    """``checksum`` is ``"<algorithm>:<hex digest>"`` (``md5:...``, ``sha1:...``, ``sha256:...``)."""
    algorithm, expected = checksum.split(":")
    return file_digest(path, algorithm) == expected


def checksum_error(path: Path) -> LitexpError:
    return LitexpError(f"checksum mismatch for {path}: the file is corrupt or truncated; "
                       f"delete it and run again to fetch a fresh copy")


@contextlib.contextmanager
def network_timeout(seconds: float = DOWNLOAD_TIMEOUT_S) -> Iterator[None]:
    """Every socket opened inside (torchvision's downloaders too) gives up after ``seconds``."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def fetch(url: str, target: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> None:
    """Download ``url`` to ``target`` (written to a partial file first, so nothing is half-written)."""
    partial = target.with_name(target.name + ".partial")
    try:
        with network_timeout(timeout), urllib.request.urlopen(url, timeout=timeout) as response, \
                open(partial, "wb") as handle:
            while chunk := response.read(1 << 20):
                handle.write(chunk)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
