"""Pretrained word vectors: read the common text format, map them onto a task's vocabulary, and load
them into a network's embedding, frozen or trained at its own learning rate.

The text format is what GloVe, fastText and word2vec write: one word and its numbers per line,
separated by spaces, with an optional ``count dim`` header line (word2vec and fastText have one,
GloVe does not). Words of the vocabulary that the file lacks are initialised at random with the
spread of the pretrained vectors, so they neither stand out nor all coincide; ``<pad>`` starts at 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from litexp.errors import LitexpError


def _parse(path: Path, number: int, fields: list[str], dim: int) -> list[float]:
    if len(fields) - 1 != dim or dim == 0:
        raise LitexpError(f"{path}, line {number}: {len(fields) - 1} numbers after the word where the file's vectors "
                          f"have {dim}; every line must be a word and {dim} numbers (ragged rows?)")
    try:
        return [float(value) for value in fields[1:]]
    except ValueError as error:
        raise LitexpError(f"{path}, line {number}: {error}; every line must be a word and its numbers") from error


def read_vectors(path: str | Path) -> tuple[list[str], torch.Tensor]:
    """(words, vectors (N, D)) of a text vector file; the first of a repeated word wins."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise LitexpError(f"vector file {path} does not exist; give a text file with a word and its numbers per line")
    rows: dict[str, list[float]] = {}
    dim: Optional[int] = None
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                fields = line.rstrip("\n\r ").split(" ")
                if not line.strip():
                    continue
                if number == 1 and len(fields) == 2 and all(field.isdigit() for field in fields):
                    dim = int(fields[1])  # the word2vec / fastText header: count dim
                    continue
                dim = len(fields) - 1 if dim is None else dim
                vector = _parse(path, number, fields, dim)
                rows.setdefault(fields[0], vector)
    except UnicodeDecodeError as error:
        raise LitexpError(f"{path} is not UTF-8 text (byte {error.start}); give a text vector file") from error
    if not rows:
        raise LitexpError(f"{path} holds no vectors; give a text file with a word and its numbers per line")
    return list(rows), torch.tensor(list(rows.values()))


@dataclass(frozen=True)
class Coverage:
    """How much of a vocabulary a vector file covers."""

    found: int
    total: int
    missing: tuple[str, ...]  # a few of the words without a vector, most frequent first

    @property
    def fraction(self) -> float:
        return self.found / self.total if self.total else 0.0

    def __str__(self) -> str:
        examples = f" (e.g. {', '.join(self.missing)})" if self.missing else ""
        return f"{self.found} of {self.total} words ({self.fraction:.1%}) have a pretrained vector{examples}"


RESERVED = ("<unk>", "<pad>", "<bos>", "<eos>")


def vectors_for_vocab(vocab_tokens: list[str], words: list[str], vectors: torch.Tensor, source: str = "the file",
                      seed: int = 0) -> tuple[torch.Tensor, Coverage]:
    """A (V, D) matrix in the vocabulary's order: the file's vector where it has the word (else its lower-case
    form), a random one of the same spread where not; ``<pad>`` is 0. Reserved tokens do not count in coverage."""
    index = {word: row for row, word in enumerate(words)}
    generator = torch.Generator().manual_seed(seed)
    spread = float(vectors.std()) if vectors.numel() > 1 else 1.0
    matrix = torch.randn(len(vocab_tokens), vectors.shape[1], generator=generator) * spread
    found, missing, total = 0, [], 0
    for position, token in enumerate(vocab_tokens):
        row = index.get(token, index.get(token.lower()))
        if row is not None:
            matrix[position] = vectors[row]
        if token in RESERVED:
            continue
        total += 1
        if row is not None:
            found += 1
        elif len(missing) < 5:
            missing.append(token)
    if "<pad>" in vocab_tokens:
        matrix[vocab_tokens.index("<pad>")] = 0.0
    if found == 0:
        raise LitexpError(f"none of the {total} words of the task's vocabulary has a vector in {source} "
                          f"(vocabulary e.g. {', '.join(missing)}; file e.g. {', '.join(words[:5])}); "
                          f"give vectors of the same language and tokenization (level: word, lowercase)")
    return matrix, Coverage(found, total, tuple(missing))


def load_pretrained(embedding: Optional[nn.Module], path: str | Path, vocab_tokens: list[str],
                    what: str = "the embedding") -> Coverage:
    """Copy the file's vectors, in the vocabulary's order, into ``embedding`` (an ``nn.Embedding``)."""
    if not isinstance(embedding, nn.Embedding):
        raise LitexpError(f"{what} is not a learned embedding (one-hot input?); set network_args.embedding_dim to the "
                          f"vectors' dimension to give the network one")
    words, vectors = read_vectors(path)
    if vectors.shape[1] != embedding.embedding_dim:
        raise LitexpError(f"{path} holds vectors of dimension {vectors.shape[1]} but {what} has dimension "
                          f"{embedding.embedding_dim}; set the network's embedding size to {vectors.shape[1]}")
    if len(vocab_tokens) != embedding.num_embeddings:
        raise LitexpError(f"the vocabulary has {len(vocab_tokens)} words but {what} has {embedding.num_embeddings} "
                          f"rows; link vocab_size from the data")
    matrix, coverage = vectors_for_vocab(vocab_tokens, words, vectors, str(path))
    with torch.no_grad():
        embedding.weight.copy_(matrix)
    return coverage


def find_module(network: nn.Module, names: tuple[str, ...]) -> tuple[str, Optional[nn.Module]]:
    """The first of the dotted ``names`` that the network has (e.g. ``encoder.input.embedding``)."""
    modules = dict(network.named_modules())
    for name in names:
        if name in modules:
            return name, modules[name]
    return names[0], None
