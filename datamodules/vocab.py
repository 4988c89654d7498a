"""Tokens and vocabularies shared by every text DataModule (language models, word2vec, translation).

``Tokenizer`` cuts text into characters or words; ``Vocab`` maps tokens to ids with the reserved
tokens first (``<unk>`` is id 0) and the rest by falling frequency in the *training* text. A
vocabulary travels in checkpoints as plain lists (``to_dict``), so they load with ``weights_only``.
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass
from typing import Any, Iterable, Literal

RESERVED_TOKENS = ("<unk>", "<pad>", "<bos>", "<eos>")
Level = Literal["char", "word"]
Punctuation = Literal["keep", "split", "drop"]


@dataclass(frozen=True)
class Tokenizer:
    """Characters or words; ``punctuation``: keep as is, ``split`` into own tokens, ``drop``
    (every run of non-letters becomes one space, as the book prepares The Time Machine)."""

    level: Level = "char"
    lowercase: bool = True
    punctuation: Punctuation = "keep"

    def __call__(self, text: str) -> list[str]:
        if self.lowercase:
            text = text.lower()
        if self.punctuation == "drop":
            text = re.sub(r"[\W\d_]+", " ", text).strip()
        if self.level == "char":
            return list(text)
        if self.punctuation == "split":
            return re.findall(r"<\w+>|\w+|[^\w\s]", text)  # "<unk>" stays one token
        return text.split()

    def join(self, tokens: Iterable[str]) -> str:
        return ("" if self.level == "char" else " ").join(tokens)

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "lowercase": self.lowercase, "punctuation": self.punctuation}


class Vocab:
    """Token <-> id. Reserved tokens come first (``<unk>`` is id 0), then tokens by falling frequency."""

    def __init__(self, tokens: list[str], freqs: list[int], tokenizer: Tokenizer = Tokenizer()) -> None:
        self.tokens = list(tokens)
        self.freqs = list(freqs)  # how often each token occurs in the training text (0 for reserved)
        self.tokenizer = tokenizer
        self.ids = {token: index for index, token in enumerate(self.tokens)}

    @classmethod
    def build(cls, pieces: Iterable[list[str]], min_freq: int = 1, tokenizer: Tokenizer = Tokenizer(),
              reserved: tuple[str, ...] = RESERVED_TOKENS) -> Vocab:
        counter: collections.Counter = collections.Counter()
        for piece in pieces:
            counter.update(piece)
        kept = sorted((t for t, c in counter.items() if c >= min_freq and t not in reserved),
                      key=lambda t: (-counter[t], t))
        return cls([*reserved, *kept], [counter[t] for t in reserved] + [counter[t] for t in kept], tokenizer)

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.tokens == other.tokens and self.tokenizer == other.tokenizer

    @property
    def unk(self) -> int:
        return self.ids["<unk>"]

    def encode(self, tokens: Iterable[str]) -> list[int]:
        unk = self.unk
        return [self.ids.get(token, unk) for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[index] for index in ids]

    def token_freqs(self) -> list[tuple[str, int]]:
        return sorted(zip(self.tokens, self.freqs, strict=True), key=lambda pair: -pair[1])

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and strings: stored in checkpoints, which load with ``weights_only=True``."""
        return {"tokens": self.tokens, "freqs": self.freqs, "tokenizer": self.tokenizer.to_dict()}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Vocab:
        return cls(state["tokens"], state["freqs"], Tokenizer(**state["tokenizer"]))
