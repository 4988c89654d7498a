"""Networks by name: one table that the CLI, the search spaces and the tests all read.

A builder is a plain function returning an ``nn.Module``; ``kind`` says which task can drive it
(and which inputs the tests feed it). Registering the same name twice is a bug and fails loudly.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from litexp.errors import LitexpError

KINDS = ("image_classifier", "regressor", "language_model", "word_embedding", "seq2seq", "detector", "segmenter")


@dataclass(frozen=True)
class NetworkEntry:
    name: str
    kind: str
    builder: Callable[..., nn.Module]

    def arguments(self) -> list[str]:
        return list(inspect.signature(self.builder).parameters)


_NETWORKS: dict[str, NetworkEntry] = {}


def register_network(name: str, kind: str = "image_classifier"):
    """Decorator: ``@register_network("lenet")`` above a builder function."""
    if kind not in KINDS:
        raise ValueError(f"unknown network kind {kind!r}; expected one of {KINDS}")

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _NETWORKS:
            raise ValueError(f"network {name!r} is already registered")
        _NETWORKS[name] = NetworkEntry(name, kind, builder)
        return builder

    return decorate


def list_networks(kind: str | None = None) -> list[str]:
    return sorted(n for n, e in _NETWORKS.items() if kind is None or e.kind == kind)


def get_network_entry(name: str, kind: str | None = None) -> NetworkEntry:
    entry = _NETWORKS.get(name)
    if entry is None or (kind is not None and entry.kind != kind):
        raise LitexpError(f"unknown network {name!r}; valid networks: {', '.join(list_networks(kind))}")
    return entry


def build_network(name: str, kind: str | None = None, **kwargs: Any) -> nn.Module:
    """Build network ``name``; unknown names and unknown arguments are user errors."""
    entry = get_network_entry(name, kind)
    accepted = entry.arguments()
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise LitexpError(
            f"network {name!r} has no argument {', '.join(map(repr, unknown))}; "
            f"its arguments are: {', '.join(accepted)}"
        )
    try:
        return entry.builder(**kwargs)
    except (TypeError, ValueError) as error:
        raise LitexpError(f"cannot build network {name!r}: {error}") from error
