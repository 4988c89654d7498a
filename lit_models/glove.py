"""GloVe: word vectors fitted to the logarithms of co-occurrence counts by weighted least squares.

For every non-zero count x_ij (see ``datamodules.cooccurrence``) the model predicts
log x_ij ~ u_i . v_j + b_i + c_j, and the loss weighs each squared error by
h(x_ij) = min(1, (x_ij / x_max) ** alpha), so that rare pairs count less and frequent ones do not
dominate (the book: x_max = 100, alpha = 0.75). The exported vectors are u + v, the sum of a word's
center and context vectors, as GloVe's authors and the book do. They are written in the same text
format as word2vec's, so ``litexp word2vec nearest|analogy`` reads both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch
from jsonargparse.typing import PositiveFloat, PositiveInt
from torch import nn

from lit_models.registry import register_network
from lit_models.tasks import KeepsVocab, Task
from lit_models.word2vec import save_embeddings


class GloVe(nn.Module):
    """Center and context vectors with one bias each; ``forward`` gives the predicted log counts."""

    def __init__(self, vocab_size: int, embedding_dim: int = 100) -> None:
        super().__init__()
        self.center = nn.Embedding(vocab_size, embedding_dim)
        self.context = nn.Embedding(vocab_size, embedding_dim)
        self.center_bias = nn.Embedding(vocab_size, 1)
        self.context_bias = nn.Embedding(vocab_size, 1)
        for table in (self.center, self.context):  # GloVe's own start: small uniform vectors
            nn.init.uniform_(table.weight, -0.5 / embedding_dim, 0.5 / embedding_dim)
        nn.init.zeros_(self.center_bias.weight)
        nn.init.zeros_(self.context_bias.weight)

    def forward(self, rows: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        # rows (B,), columns (B,) -> predicted log counts (B,)
        dots = (self.center(rows) * self.context(columns)).sum(dim=-1)
        return dots + self.center_bias(rows)[:, 0] + self.context_bias(columns)[:, 0]

    @property
    def embeddings(self) -> torch.Tensor:
        return self.center.weight + self.context.weight


@register_network("glove", kind="word_embedding")
def glove(vocab_size: int, embedding_dim: int = 100) -> nn.Module:
    return GloVe(vocab_size, embedding_dim)


def glove_weights(counts: torch.Tensor, x_max: float, alpha: float) -> torch.Tensor:
    """h(x) = min(1, (x / x_max) ** alpha): 1 for pairs seen x_max times or more."""
    return (counts / x_max).pow(alpha).clamp(max=1.0)


class GloVeTask(KeepsVocab, Task):
    """Fits GloVe vectors; at the end of ``fit`` writes ``embeddings.txt`` (u + v) into the run directory."""

    kind = "word_embedding"
    monitor = "val/loss"
    data_attributes = ("vocab_size",)

    def __init__(self, network: str = "glove", network_args: Optional[dict[str, Any]] = None,
                 vocab_size: PositiveInt = 32, x_max: PositiveFloat = 100.0, alpha: PositiveFloat = 0.75,
                 **kwargs: Any) -> None:
        """
        Args:
            network: a registered co-occurrence embedding network (glove).
            network_args: its arguments (embedding_dim).
            vocab_size: linked from the data.
            x_max: counts at or above it get the full weight 1.
            alpha: the exponent of the weight below ``x_max``.
        """
        super().__init__(network, network_args, **kwargs)
        self.x_max, self.alpha = float(x_max), float(alpha)

    def network_inputs(self) -> dict[str, Any]:
        return {"vocab_size": self.hparams.vocab_size}

    def _step(self, batch: tuple[torch.Tensor, ...], stage: str) -> torch.Tensor:
        rows, columns, counts = batch  # (B,), (B,), (B,) float
        predicted = self.network(rows, columns)
        loss = (glove_weights(counts, self.x_max, self.alpha) * (predicted - counts.log()) ** 2).mean()
        self.metrics_of(stage)["loss"].update(loss.detach(), weight=rows.numel())
        return loss

    def on_fit_end(self) -> None:
        if self.trainer.is_global_zero and self.vocab is not None and self.trainer.default_root_dir:
            save_embeddings(Path(self.trainer.default_root_dir) / "embeddings.txt", self.vocab["tokens"],
                            self.network.embeddings)
