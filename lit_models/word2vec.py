"""word2vec: skip-gram with negative sampling, its LightningModule, and the embeddings as a file.

Each training example is (center word, one context word, K noise words drawn with probability
proportional to freq^0.75, see ``datamodules.skipgram``). The loss is the book's: binary
cross-entropy that scores the context word 1 and the noise words 0, summed over the K + 1 words.
The center vectors are the word embeddings; they are written in word2vec's text format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F
from jsonargparse.typing import PositiveInt
from torch import nn

from lit_models.registry import register_network
from lit_models.tasks import KeepsVocab, Task
from litexp.errors import LitexpError


class SkipGram(nn.Module):
    """Two embedding tables: words as centers (the exported vectors) and as context words."""

    def __init__(self, vocab_size: int, embedding_dim: int = 100) -> None:
        super().__init__()
        self.center = nn.Embedding(vocab_size, embedding_dim)
        self.context = nn.Embedding(vocab_size, embedding_dim)
        nn.init.normal_(self.center.weight, std=embedding_dim ** -0.5)
        nn.init.zeros_(self.context.weight)  # word2vec's own start: every score begins at 0

    def forward(self, centers: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
        # centers (B,), others (B, K + 1) -> scores (B, K + 1): dot products of the vectors
        return torch.einsum("bd,bkd->bk", self.center(centers), self.context(others))

    @property
    def embeddings(self) -> torch.Tensor:
        return self.center.weight


@register_network("skipgram", kind="word_embedding")
def skipgram(vocab_size: int, embedding_dim: int = 100) -> nn.Module:
    return SkipGram(vocab_size, embedding_dim)


class Word2VecTask(KeepsVocab, Task):
    """Trains word vectors; at the end of ``fit`` writes ``embeddings.txt`` into the run directory."""

    kind = "word_embedding"
    monitor = "val/loss"
    data_attributes = ("vocab_size",)

    def __init__(self, network: str = "skipgram", network_args: Optional[dict[str, Any]] = None,
                 vocab_size: PositiveInt = 32, **kwargs: Any) -> None:
        super().__init__(network, network_args, **kwargs)

    def network_inputs(self) -> dict[str, Any]:
        return {"vocab_size": self.hparams.vocab_size}

    def _step(self, batch: tuple[torch.Tensor, ...], stage: str) -> torch.Tensor:
        centers, contexts, noise = batch  # (B,), (B,), (B, K)
        others = torch.cat([contexts[:, None], noise], dim=1)  # (B, K + 1)
        labels = torch.zeros_like(others, dtype=torch.float)
        labels[:, 0] = 1.0
        scores = self.network(centers, others)
        loss = F.binary_cross_entropy_with_logits(scores, labels, reduction="none").sum(dim=1).mean()
        self.metrics_of(stage)["loss"].update(loss.detach(), weight=centers.numel())
        return loss

    def on_fit_end(self) -> None:
        if self.trainer.is_global_zero and self.vocab is not None and self.trainer.default_root_dir:
            save_embeddings(Path(self.trainer.default_root_dir) / "embeddings.txt", self.vocab["tokens"],
                            self.network.embeddings)


# -- the embeddings file and nearest words ---------------------------------------------------------
def save_embeddings(path: Path, tokens: list[str], vectors: torch.Tensor) -> None:
    """word2vec text format: a ``count dim`` header, then ``word v1 v2 ...`` per line."""
    vectors = vectors.detach().float().cpu()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as handle:
        handle.write(f"{len(tokens)} {vectors.shape[1]}\n")
        for token, vector in zip(tokens, vectors.tolist(), strict=True):
            handle.write(token + " " + " ".join(f"{value:.6g}" for value in vector) + "\n")
    partial.replace(path)


def load_embeddings(path: Path) -> tuple[list[str], torch.Tensor]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        count, dim = map(int, lines[0].split())
        rows = [line.rsplit(" ", dim) for line in lines[1: count + 1]]
        tokens = [row[0] for row in rows]
        vectors = torch.tensor([[float(value) for value in row[1:]] for row in rows])
    except (OSError, ValueError, IndexError, UnicodeDecodeError) as error:
        raise LitexpError(f"cannot read embeddings from {path}: {error}; give a word2vec text file "
                          f"(a 'count dim' header, then one word and its vector per line)") from error
    if vectors.shape != (count, dim):
        raise LitexpError(f"{path}: the header says {count} x {dim} but the file holds {tuple(vectors.shape)}")
    return tokens, vectors


def nearest_words(tokens: list[str], vectors: torch.Tensor, word: str, k: int = 10) -> list[tuple[str, float]]:
    """The ``k`` words whose vectors have the largest cosine similarity with ``word``'s."""
    if word not in tokens:
        raise LitexpError(f"{word!r} is not in the vocabulary ({len(tokens)} words); try another word")
    unit = F.normalize(vectors.float(), dim=1)
    query = tokens.index(word)
    similarity = unit @ unit[query]  # (V,)
    similarity[query] = -float("inf")
    for unused in ("<pad>", "<bos>", "<eos>"):  # reserved tokens that never occur keep random vectors
        if unused in tokens:
            similarity[tokens.index(unused)] = -float("inf")
    values, indices = similarity.topk(min(k, len(tokens) - 1))
    return [(tokens[i], float(v)) for v, i in zip(values.tolist(), indices.tolist(), strict=True)]


def analogy(tokens: list[str], vectors: torch.Tensor, a: str, b: str, c: str, k: int = 10) -> list[tuple[str, float]]:
    """a : b = c : ?, the ``k`` words nearest (by cosine) to unit(b) - unit(a) + unit(c), none of a, b, c."""
    missing = [word for word in (a, b, c) if word not in tokens]
    if missing:
        raise LitexpError(f"{', '.join(map(repr, missing))} not in the vocabulary ({len(tokens)} words); "
                          f"try other words")
    unit = F.normalize(vectors.float(), dim=1)
    index = {word: tokens.index(word) for word in (a, b, c)}
    query = F.normalize(unit[index[b]] - unit[index[a]] + unit[index[c]], dim=0)
    similarity = unit @ query  # (V,)
    for word in (a, b, c, "<pad>", "<bos>", "<eos>", "<unk>"):
        if word in tokens:
            similarity[tokens.index(word)] = -float("inf")
    values, indices = similarity.topk(min(k, len(tokens) - 3))
    return [(tokens[i], float(v)) for v, i in zip(values.tolist(), indices.tolist(), strict=True)
            if v > -float("inf")]
