"""Language models: next-token prediction over windows of tokens, with an n-gram baseline."""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from jsonargparse.typing import PositiveInt
from torchmetrics import Metric

from lit_models.metrics import Perplexity
from lit_models.tasks.base import Task
from lit_models.tasks.keeps_vocab import KeepsVocab
from lit_models.tasks.pretrained_embedding import PretrainedEmbedding
from litexp.errors import LitexpError


class LanguageModelTask(PretrainedEmbedding, KeepsVocab, Task):
    """Next-token prediction; ``ppl`` = exp(mean token negative log-likelihood).

    With ``carry_state`` (sequential sampling) the hidden state of one training batch starts the
    next one, detached so that backpropagation stops at the batch border; it is reset every epoch.
    At fit start an n-gram model (``ngram_order``, 0 = off) is counted on the same training blocks
    and scored on the validation blocks: ``summary.json`` reports it next to ``val/ppl``.
    The token embedding (``network_args.embedding_dim``) may start from pretrained vectors
    (``pretrained_embeddings``), stay frozen, or train at ``lr * embedding_lr_multiplier``.
    """

    kind = "language_model"
    monitor = "val/ppl"
    monitor_mode = "min"
    data_attributes = ("vocab_size",)
    embedding_names = ("encoder.input.embedding",)

    def __init__(
        self,
        network: str = "gru_lm",
        network_args: Optional[dict[str, Any]] = None,
        vocab_size: PositiveInt = 32,
        carry_state: bool = False,
        ngram_order: int = 3,
        pretrained_embeddings: Optional[str] = None,
        freeze_embeddings: bool = False,
        embedding_lr_multiplier: float = 1.0,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            network: a registered language model (rnn_lm, gru_lm, lstm_lm).
            network_args: its arguments (hidden_size, num_layers, dropout, embedding_dim, ...).
            vocab_size: linked from the data.
            carry_state: carry the hidden state between training batches (linked from sequential sampling).
            ngram_order: the n-gram baseline counted at fit start (0: none).
            pretrained_embeddings: a text vector file (a word and its numbers per line, optional ``count dim``
                header) loaded into the token embedding at fit start, in the vocabulary's order.
            freeze_embeddings: keep the token embedding fixed.
            embedding_lr_multiplier: the token embedding trains at ``lr`` times this (0 freezes it).
        """
        if ngram_order not in (0, 1, 2, 3):
            raise LitexpError(f"ngram_order must be 0 (off), 1, 2 or 3, got {ngram_order}")
        super().__init__(network, network_args, **kwargs)
        self.vocab_size = int(vocab_size)
        self.carry_state = carry_state
        self.ngram_order = ngram_order
        self._state = None  # hidden state carried between training batches (sequential sampling)
        self.baseline: dict[str, Any] = {}
        self.configure_embedding(pretrained_embeddings, freeze_embeddings, embedding_lr_multiplier)

    def network_inputs(self) -> dict[str, Any]:
        return {"vocab_size": self.hparams.vocab_size}

    def stage_metrics(self, stage: str) -> dict[str, Metric]:
        return {**super().stage_metrics(stage), "ppl": Perplexity()}

    def forward(self, tokens: torch.Tensor, state=None):
        return self.network(tokens, state)

    def on_fit_start(self) -> None:
        super().on_fit_start()
        datamodule = getattr(self.trainer, "datamodule", None)
        if self.ngram_order and hasattr(datamodule, "val_ranges") and datamodule.val_ranges:
            from lit_models.ngram import NGramModel

            ids = datamodule.load("train")[0].tolist()
            model = NGramModel(self.vocab_size, self.ngram_order).fit(ids, datamodule.train_ranges)
            self.baseline = {"ngram_order": self.ngram_order, "smoothing": model.smoothing,
                             "ngram_val_ppl": round(model.perplexity(ids, datamodule.val_ranges), 4)}

    def on_train_epoch_start(self) -> None:
        self._state = None

    # a fit resumed mid-epoch goes on with the hidden state the stopped one carried
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        if self._state is not None:
            checkpoint["carried_state"] = list(self._state) if isinstance(self._state, tuple) else self._state

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get("carried_state")
        if state is not None:  # read onto the CPU: moved to the device where the next step runs
            self._state = tuple(state) if isinstance(state, list) else state

    def on_train_start(self) -> None:
        if self._state is not None:
            self._state = (tuple(s.to(self.device) for s in self._state) if isinstance(self._state, tuple)
                           else self._state.to(self.device))

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        inputs, targets = batch  # (B, T) int64 each
        carry = stage == "train" and self.carry_state
        state = self._state if carry and _batch_of(self._state) == inputs.shape[0] else None
        logits, state = self(inputs, state)  # (B, T, V)
        if carry:  # keep the values, cut the graph: backpropagation ends at this batch
            self._state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        metrics = self.metrics_of(stage)
        metrics["loss"].update(loss.detach(), weight=targets.numel())
        metrics["ppl"].update(loss.detach(), weight=targets.numel())  # exp of the same token mean
        return loss

    def predict_step(self, batch, batch_idx):
        inputs, targets = batch
        logits, _ = self(inputs)
        nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none").mean(dim=1)  # (B,)
        return {"window_nll": nll, "window_ppl": nll.exp()}

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), **self.baseline}


def _batch_of(state) -> Optional[int]:
    if state is None:
        return None
    return (state[0] if isinstance(state, tuple) else state).shape[1]
