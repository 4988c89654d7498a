"""Tasks whose network reads word embeddings (language models, seq2seq encoders): start them from
pretrained vectors, freeze them, or train them at their own learning rate.

The vectors are loaded at the start of ``fit``, once the data's vocabulary is known, and only
there: a resumed fit, ``validate`` and ``test`` take the embedding from the checkpoint. The
coverage (how many vocabulary words had a vector) is printed and kept in ``summary.json``.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from lightning.pytorch.utilities import rank_zero_info

from lit_models.optim import parameter_groups
from lit_models.pretrained_vectors import find_module, load_pretrained
from litexp.errors import LitexpError


class PretrainedEmbedding:
    """Mixin: ``embedding_names`` lists where the embedding may sit in the networks of this task;
    ``embedding_vocab`` says which vocabulary its rows follow. Call ``configure_embedding`` from ``__init__``."""

    embedding_names: tuple[str, ...] = ()
    pretrained_embeddings: Optional[str] = None
    embedding_lr_multiplier: float = 1.0
    pretrained_coverage: Optional[dict[str, Any]] = None

    def configure_embedding(self, pretrained_embeddings: Optional[str], freeze_embeddings: bool,
                            embedding_lr_multiplier: float) -> None:
        if not (0.0 <= embedding_lr_multiplier < math.inf):
            raise LitexpError(f"embedding_lr_multiplier must be a finite number >= 0, got {embedding_lr_multiplier}")
        self.pretrained_embeddings = pretrained_embeddings
        self.embedding_lr_multiplier = 0.0 if freeze_embeddings else float(embedding_lr_multiplier)
        if self.embedding_lr_multiplier != 1.0 or pretrained_embeddings:
            name, module = self.embedding_module()
            if module is None:
                raise LitexpError(f"the network has no learned embedding ({name}; one-hot input?); set "
                                  f"network_args.embedding_dim to give it one")
            if self.embedding_lr_multiplier == 0.0:
                module.requires_grad_(False)  # frozen: left out of the optimizer, no gradient computed

    def embedding_module(self):
        return find_module(self.network, self.embedding_names)

    def embedding_vocab(self, vocab: dict[str, Any]) -> list[str]:
        return vocab["tokens"]

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage != "fit" or not self.pretrained_embeddings:
            return
        vocab = self._data_vocab()
        if vocab is None:
            raise LitexpError("pretrained_embeddings needs a text DataModule with a vocabulary")
        name, module = self.embedding_module()
        coverage = load_pretrained(module, self.pretrained_embeddings, self.embedding_vocab(vocab), what=name)
        rank_zero_info(f"pretrained embeddings {self.pretrained_embeddings}: {coverage}")
        self.pretrained_coverage = {"pretrained_embeddings": str(self.pretrained_embeddings),
                                    "embedding_words_found": coverage.found, "embedding_words": coverage.total,
                                    "embedding_coverage": round(coverage.fraction, 4)}

    def optimizer_groups(self) -> list[dict]:
        """The embedding in groups of its own at ``lr * embedding_lr_multiplier`` (none when frozen)."""
        if self.embedding_lr_multiplier == 1.0:
            return super().optimizer_groups()
        name, module = self.embedding_module()
        own = {id(parameter) for parameter in module.parameters()}
        named = list(self.named_parameters())
        groups = parameter_groups([(n, p) for n, p in named if id(p) not in own], self.hparams.weight_decay)
        if self.embedding_lr_multiplier > 0:
            embedding_groups = parameter_groups([(n, p) for n, p in named if id(p) in own], self.hparams.weight_decay)
            groups += [{**group, "lr": self.lr * self.embedding_lr_multiplier} for group in embedding_groups]
        return groups

    def summary(self) -> dict[str, Any]:
        facts = super().summary()
        if self.embedding_lr_multiplier != 1.0:
            facts["embedding_lr_multiplier"] = self.embedding_lr_multiplier
        return {**facts, **(self.pretrained_coverage or {})}
