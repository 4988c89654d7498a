"""Sequence to sequence (machine translation): teacher-forced training, decoded evaluation."""

from __future__ import annotations

from typing import Any, Literal, Optional

import torch
from jsonargparse.typing import NonNegativeFloat, PositiveInt
from torchmetrics import Metric
from torchmetrics.text import BLEUScore

from lit_models import decoding
from lit_models.decoding import EOS, UNK, decode, masked_cross_entropy, teacher_forcing_inputs
from lit_models.tasks.base import Task
from lit_models.tasks.keeps_vocab import KeepsVocab, vocab_tokens
from lit_models.tasks.pretrained_embedding import PretrainedEmbedding


class Seq2SeqTask(PretrainedEmbedding, KeepsVocab, Task):
    """Translation; logs ``<stage>/loss`` and, at validation and test, ``<stage>/bleu``.

    A batch is ``(src, src_len, tgt, tgt_len)``: token ids padded to ``num_steps`` and their valid
    lengths; ``tgt`` ends with ``<eos>``. The decoder reads ``<bos>`` + ``tgt[:-1]`` (teacher forcing)
    and the loss is the cross-entropy over the valid target positions only. Validation and test
    also decode every source sentence (greedy, or beam search with ``beam_size > 1`` and length
    normalisation ``length_penalty``) and score the corpus BLEU of the decoded sentences
    (torchmetrics; ``bleu_weights: book`` weighs p_n by 1/2^n as the book does, ``uniform`` as
    standard BLEU). BLEU is counted on target token ids; an ``<unk>`` in a reference matches nothing.
    """

    kind = "seq2seq"
    monitor = "val/bleu"
    monitor_mode = "max"
    data_attributes = ("src_vocab_size", "tgt_vocab_size", "max_len")
    embedding_names = ("encoder.embedding", "src_embedding")  # the source embedding of the encoder

    def __init__(
        self,
        network: str = "seq2seq_attention",
        network_args: Optional[dict[str, Any]] = None,
        src_vocab_size: PositiveInt = 32,
        tgt_vocab_size: PositiveInt = 32,
        max_len: PositiveInt = 9,
        beam_size: PositiveInt = 1,
        length_penalty: NonNegativeFloat = 0.75,
        bleu_n_gram: PositiveInt = 2,
        bleu_weights: Literal["book", "uniform"] = "book",
        pretrained_embeddings: Optional[str] = None,
        freeze_embeddings: bool = False,
        embedding_lr_multiplier: float = 1.0,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            network: a registered seq2seq network (seq2seq, seq2seq_attention, transformer).
            network_args: its arguments (embed_size, num_hiddens, num_layers, dropout, ...).
            src_vocab_size: source vocabulary size (linked from the data).
            tgt_vocab_size: target vocabulary size (linked from the data).
            max_len: longest decoded sentence in tokens, ``<eos>`` included (linked from the data's ``max_len``,
                its ``num_steps``).
            beam_size: 1 decodes greedily; more runs beam search at validation and test.
            length_penalty: beam search ranks finished sentences by log P / length ** length_penalty.
            bleu_n_gram: longest n-gram BLEU counts (the book uses 2).
            bleu_weights: ``book`` (p_n weighted 1/2^n) or ``uniform`` (1/N, standard BLEU).
            pretrained_embeddings: a text vector file loaded into the encoder's source embedding at fit start.
            freeze_embeddings: keep the encoder's source embedding fixed.
            embedding_lr_multiplier: the source embedding trains at ``lr`` times this (0 freezes it).
        """
        super().__init__(network, network_args, **kwargs)
        self.max_len = int(max_len)
        self.beam_size = int(beam_size)
        self.length_penalty = float(length_penalty)
        self.configure_embedding(pretrained_embeddings, freeze_embeddings, embedding_lr_multiplier)

    def network_inputs(self) -> dict[str, Any]:
        return {"src_vocab_size": self.hparams.src_vocab_size, "tgt_vocab_size": self.hparams.tgt_vocab_size}

    def embedding_vocab(self, vocab: dict[str, Any]) -> list[str]:
        return vocab["source"]["tokens"]

    def stage_metrics(self, stage: str) -> dict[str, Metric]:
        if stage == "train":  # training decodes nothing
            return super().stage_metrics(stage)
        n_gram = int(self.hparams.bleu_n_gram)
        weights = decoding.bleu_weights(n_gram, self.hparams.bleu_weights)
        return {**super().stage_metrics(stage), "bleu": BLEUScore(n_gram, weights=weights)}

    def forward(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        return self.network(src, src_len, tgt_in)

    def translate_ids(self, src: torch.Tensor, src_len: torch.Tensor, beam_size: Optional[int] = None,
                      max_len: Optional[int] = None):
        """Decoded hypotheses (:class:`lit_models.decoding.Hypothesis`) for a batch of source ids."""
        was_training = self.network.training
        self.network.eval()
        try:
            return decode(self.network, src, src_len, max_len or self.max_len, beam_size or self.beam_size,
                          self.length_penalty)
        finally:
            self.network.train(was_training)

    def _step(self, batch: tuple[torch.Tensor, ...], stage: str) -> torch.Tensor:
        src, src_len, tgt, tgt_len = batch  # (B, S), (B,), (B, T), (B,)
        logits = self(src, src_len, teacher_forcing_inputs(tgt))  # (B, T, V)
        loss = masked_cross_entropy(logits, tgt, tgt_len)
        metrics = self.metrics_of(stage)
        metrics["loss"].update(loss.detach(), weight=tgt_len.sum())
        if stage != "train":
            hypotheses = self.translate_ids(src, src_len)
            predictions = [" ".join(map(str, h.tokens)) for h in hypotheses]
            references = [[reference_text(row[: int(length)])]
                          for row, length in zip(tgt.tolist(), tgt_len.tolist(), strict=True)]
            metrics["bleu"].update(predictions, references)
        return loss

    def predict_step(self, batch, batch_idx):
        src, src_len, tgt, tgt_len = batch
        hypotheses = self.translate_ids(src, src_len)
        source, target = vocab_tokens(self.vocab)["source"], vocab_tokens(self.vocab)["target"]
        return {
            "source": [" ".join(words(source, row[: int(n)])) for row, n in zip(src.tolist(), src_len, strict=True)],
            "reference": [" ".join(words(target, row[: int(n)])) for row, n in zip(tgt.tolist(), tgt_len, strict=True)],
            "translation": [" ".join(words(target, h.tokens)) for h in hypotheses],
        }


def reference_text(ids: list[int]) -> str:
    """A reference sentence as id text for BLEU: ``<eos>`` dropped, ``<unk>`` made unmatchable."""
    return " ".join("unk-ref" if token == UNK else str(token) for token in ids if token != EOS)


def words(tokens: list[str], ids: list[int]) -> list[str]:
    """Ids to words, stopping at ``<eos>`` and leaving out ``<pad>`` and ``<bos>``."""
    out = []
    for index in ids:
        token = tokens[index]
        if token == "<eos>":
            break
        if token not in ("<pad>", "<bos>"):
            out.append(token)
    return out
