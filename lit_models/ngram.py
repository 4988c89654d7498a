"""A count-based n-gram language model: the number every neural language model has to beat.

Unigram (order 1), bigram (2) or trigram (3) counts from the training blocks, smoothed so that no
token has probability zero: ``add_k`` adds ``k`` to every count of the longest context;
``witten_bell`` interpolates each order with the next lower one, trusting a context more the more
often it was seen and the fewer different tokens followed it. The unigram is add-k smoothed in both.
"""

from __future__ import annotations

import collections
import math
from typing import Literal, Sequence

Smoothing = Literal["add_k", "witten_bell"]
Ranges = Sequence[tuple[int, int]]


class NGramModel:
    def __init__(self, vocab_size: int, order: int = 3, smoothing: Smoothing = "witten_bell", k: float = 1.0) -> None:
        if order not in (1, 2, 3):
            raise ValueError(f"order must be 1, 2 or 3, got {order}")
        if smoothing not in ("add_k", "witten_bell"):
            raise ValueError(f"unknown smoothing {smoothing!r}; choose add_k or witten_bell")
        self.vocab_size, self.order, self.smoothing, self.k = vocab_size, order, smoothing, float(k)
        self.counts = [collections.Counter() for _ in range(order + 1)]  # counts[n][(ctx..., token)]
        self.context_counts = [collections.Counter() for _ in range(order + 1)]  # counts[n][ctx]
        self.followers = [collections.Counter() for _ in range(order + 1)]  # distinct tokens after ctx
        self.total = 0

    def fit(self, ids: Sequence[int], ranges: Ranges) -> NGramModel:
        """Count the n-grams inside each range ``[begin, end)`` of ``ids`` (never across a range's border)."""
        for begin, end in ranges:
            piece = list(ids[begin:end])
            self.total += len(piece)
            for n in range(1, self.order + 1):
                for gram in zip(*(piece[i:] for i in range(n)), strict=False):
                    if self.counts[n][gram] == 0:
                        self.followers[n][gram[:-1]] += 1
                    self.counts[n][gram] += 1
                    self.context_counts[n][gram[:-1]] += 1
        return self

    def prob(self, context: tuple[int, ...], token: int) -> float:
        """P(token | the last ``order - 1`` tokens of ``context``)."""
        p = (self.counts[1][(token,)] + self.k) / (self.total + self.k * self.vocab_size)
        for n in range(2, self.order + 1):
            if len(context) < n - 1:
                break
            history = tuple(context[len(context) - (n - 1):])
            seen = self.context_counts[n][history]
            count = self.counts[n][(*history, token)]
            if self.smoothing == "add_k":
                p = (count + self.k) / (seen + self.k * self.vocab_size) if n == self.order else p
            elif seen:
                types = self.followers[n][history]
                p = (count + types * p) / (seen + types)
        return p

    def perplexity(self, ids: Sequence[int], ranges: Ranges) -> float:
        """exp(mean negative log-likelihood) of every token in the ranges, each given the ones before it."""
        total_nll, count = 0.0, 0
        for begin, end in ranges:
            piece = list(ids[begin:end])
            for position, token in enumerate(piece):
                context = tuple(piece[max(0, position - self.order + 1): position])
                total_nll -= math.log(self.prob(context, token))
                count += 1
        if count == 0:
            raise ValueError("no tokens to score")
        return math.exp(total_nll / count)
