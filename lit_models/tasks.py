"""Task LightningModules: the loss, metrics, optimizer and logging around a registered network.

Step logic is written once per task. Networks are plain ``nn.Module`` objects built by name from
the registry, so a new architecture needs no new LightningModule.
Metric names: ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``, ``test/loss``, ``test/acc``.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from jsonargparse.typing import NonNegativeFloat, PositiveFloat, PositiveInt
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy
from torchmetrics.text import BLEUScore, Perplexity

from lit_models import decoding
from lit_models.decoding import EOS, UNK, decode, masked_cross_entropy, teacher_forcing_inputs
from lit_models.finetune import backbone_parameters, load_pretrained
from lit_models.init import init_weights
from lit_models.optim import build_optimizer, build_scheduler, parameter_groups
from lit_models.registry import build_network
from litexp.errors import LitexpError

OptimizerName = Literal["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"]
SchedulerName = Optional[Literal["step", "cosine", "one_cycle"]]
InitName = Literal["default", "normal", "xavier", "he"]
STAGES = ("train", "val", "test")


class Task(pl.LightningModule):
    """What every task shares: the optimizer, the schedule, the initialisation, run summaries.

    Subclasses build ``self.network`` and then call :meth:`_finish_init`.
    """

    #: metric that picks the best checkpoint, and whether larger is better
    monitor: str = "val/loss"
    monitor_mode: str = "min"
    #: attributes the DataModule must provide (the CLI links them into the task's arguments)
    data_attributes: tuple[str, ...] = ()

    def __init__(
        self,
        optimizer: OptimizerName = "sgd",
        lr: PositiveFloat = 0.1,
        weight_decay: NonNegativeFloat = 0.0,
        momentum: NonNegativeFloat = 0.9,
        scheduler: SchedulerName = None,
        step_size: PositiveInt = 10,
        gamma: PositiveFloat = 0.1,
        init: InitName = "default",
        init_std: PositiveFloat = 0.01,
    ) -> None:
        super().__init__()
        self.optimizer_name = optimizer
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.momentum = float(momentum)
        self.scheduler_name = scheduler
        self.step_size = int(step_size)
        self.gamma = float(gamma)
        self.init_scheme = init
        self.init_std = float(init_std)
        if self.lr <= 0:
            raise LitexpError(f"lr must be > 0, got {lr}")

    def _finish_init(self, network: nn.Module) -> None:
        self.network = network
        init_weights(self.network, self.init_scheme, self.init_std)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.network(inputs)

    def optimizer_groups(self) -> list[dict]:
        """Optimizer parameter groups (a fine-tuned backbone gets a group of its own)."""
        return parameter_groups(self.named_parameters(), self.weight_decay, self.lr)

    def configure_optimizers(self):
        groups = self.optimizer_groups()
        optimizer = build_optimizer(self.optimizer_name, groups, self.lr, self.momentum)
        if self.scheduler_name is None:
            return optimizer
        trainer = self.trainer
        scheduler = build_scheduler(
            self.scheduler_name,
            optimizer,
            lr=self.lr,
            max_epochs=max(1, trainer.max_epochs or 1),
            total_steps=int(trainer.estimated_stepping_batches),
            step_size=self.step_size,
            gamma=self.gamma,
        )
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    # step logic is written once per task, in ``_step(batch, stage)``; the hooks only name the stage
    def _step(self, batch, stage: str) -> torch.Tensor:
        raise NotImplementedError

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def summary(self) -> dict[str, Any]:
        """Facts about the trained model for ``summary.json`` (networks may add their own)."""
        facts: dict[str, Any] = {"parameters": sum(p.numel() for p in self.parameters())}
        network_summary = getattr(self.network, "summary", None)
        if callable(network_summary):
            facts.update(network_summary())
        return facts


class ClassificationTask(Task):
    """Cross-entropy classification of images (or any fixed-size input) into ``num_classes``.

    Fine-tuning: ``pretrained`` (a litexp checkpoint, a torchvision weights file or
    ``torchvision:<WeightsEnum>``) loads the network's feature layers and gives it a fresh
    Xavier-initialised head; the backbone trains at ``lr * backbone_lr_mult`` or not at all
    (``freeze_backbone``). See :mod:`lit_models.finetune`.
    """

    monitor = "val/acc"
    monitor_mode = "max"
    data_attributes = ("num_classes", "input_shape")

    def __init__(
        self,
        network: str = "lenet",
        network_args: Optional[dict[str, Any]] = None,
        num_classes: PositiveInt = 10,
        input_shape: tuple[int, int, int] = (1, 28, 28),
        pretrained: Optional[str] = None,
        backbone_lr_mult: PositiveFloat = 1.0,
        freeze_backbone: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.backbone_lr_mult = float(backbone_lr_mult)
        if self.backbone_lr_mult <= 0:
            raise LitexpError(f"backbone_lr_mult must be > 0 (use freeze_backbone to stop it), got {backbone_lr_mult}")
        self.num_classes = int(num_classes)
        self.input_shape = tuple(input_shape)
        channels, height, width = self.input_shape
        if height != width:
            raise ValueError(f"input_shape must hold square images, got {self.input_shape}")
        network_module = build_network(
            network,
            kind="image_classifier",
            in_channels=channels,
            num_classes=self.num_classes,
            image_size=height,
            **(network_args or {}),
        )
        self._finish_init(network_module)
        if pretrained:
            load_pretrained(self.network, pretrained)
        if freeze_backbone:
            backbone_parameters(self.network)  # a network without a features/head split is an error
            for parameter in backbone_parameters(self.network):
                parameter.requires_grad_(False)
        # keyed by the logged name; metric objects sync exactly across DDP ranks (sums and counts)
        self.metrics = nn.ModuleDict({f"{stage}/loss": MeanMetric() for stage in STAGES})
        self.metrics.update({f"{stage}/acc": MulticlassAccuracy(self.num_classes, average="micro") for stage in STAGES})

    def optimizer_groups(self) -> list[dict]:
        if self.backbone_lr_mult == 1.0:
            return super().optimizer_groups()
        backbone = {id(parameter) for parameter in backbone_parameters(self.network)}
        named = list(self.named_parameters())
        rest = [(name, p) for name, p in named if id(p) not in backbone]
        features = [(name, p) for name, p in named if id(p) in backbone]
        return (parameter_groups(rest, self.weight_decay, self.lr)
                + parameter_groups(features, self.weight_decay, self.lr * self.backbone_lr_mult))

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        images, labels = batch  # (B, C, H, W) float, (B,) int64
        logits = self(images)  # (B, num_classes)
        loss = F.cross_entropy(logits, labels)
        self.metrics[f"{stage}/loss"].update(loss.detach(), weight=labels.numel())
        self.metrics[f"{stage}/acc"].update(logits.detach(), labels)
        for name in (f"{stage}/loss", f"{stage}/acc"):
            self.log(name, self.metrics[name], on_step=False, on_epoch=True, prog_bar=True)
        if stage == "train":
            self.log("train/step_loss", loss.detach(), on_step=True, on_epoch=False, prog_bar=False)
        return loss

    def predict_step(self, batch, batch_idx):
        images, labels = batch
        probabilities = self(images).softmax(dim=-1)  # (B, num_classes)
        confidence, predicted = probabilities.max(dim=-1)
        return {"label": labels, "predicted": predicted, "confidence": confidence}


class RegressionTask(Task):
    """Squared-error regression of ``num_outputs`` targets from ``in_features`` inputs."""

    data_attributes = ("in_features", "num_outputs")

    def __init__(
        self,
        network: str = "linear_regression",
        network_args: Optional[dict[str, Any]] = None,
        in_features: PositiveInt = 2,
        num_outputs: PositiveInt = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        network_module = build_network(
            network, kind="regressor", in_features=in_features, num_outputs=num_outputs, **(network_args or {})
        )
        self._finish_init(network_module)
        self.metrics = nn.ModuleDict({f"{stage}/loss": MeanMetric() for stage in STAGES})

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        features, targets = batch  # (B, in_features), (B, num_outputs)
        loss = F.mse_loss(self(features), targets)
        self.metrics[f"{stage}/loss"].update(loss.detach(), weight=targets.shape[0])
        self.log(f"{stage}/loss", self.metrics[f"{stage}/loss"], on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def predict_step(self, batch, batch_idx):
        features, targets = batch
        return {"target": targets.squeeze(-1), "predicted": self(features).squeeze(-1)}


class KeepsVocab:
    """Mixin for tasks on text: the data's vocabulary travels inside every checkpoint.

    Generation and embedding export after loading then use exactly the ids the model was trained
    with; evaluating a checkpoint on data with another vocabulary is an error.
    """

    vocab: Optional[dict[str, Any]] = None  # Vocab.to_dict(): plain lists, loads with weights_only=True

    def _data_vocab(self) -> Optional[dict[str, Any]]:
        vocab = getattr(getattr(self.trainer, "datamodule", None), "vocab", None)
        if vocab is None:
            return None
        return vocab if isinstance(vocab, dict) else vocab.to_dict()

    def on_fit_start(self) -> None:
        self.vocab = self._data_vocab() or self.vocab

    def _check_vocab(self) -> None:
        data_vocab = self._data_vocab()
        if self.vocab is not None and data_vocab is not None and _vocab_tokens(data_vocab) != _vocab_tokens(self.vocab):
            raise LitexpError("the checkpoint's vocabulary differs from the data's (another corpus, level or "
                              "min_freq?); evaluate it with the data settings it was trained with")

    def on_validation_start(self) -> None:
        self._check_vocab()

    def on_test_start(self) -> None:
        self._check_vocab()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["vocab"] = self.vocab

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.vocab = checkpoint.get("vocab")


def _vocab_tokens(vocab: dict[str, Any]) -> Any:
    """The token lists of a vocabulary dict, or of each side of a {"source": ..., "target": ...} pair."""
    if "tokens" in vocab:
        return vocab["tokens"]
    return {side: _vocab_tokens(part) for side, part in vocab.items() if isinstance(part, dict)}


class LanguageModelTask(KeepsVocab, Task):
    """Next-token prediction over windows of tokens; ``ppl`` = exp(mean token negative log-likelihood).

    With ``carry_state`` (sequential sampling) the hidden state of one training batch starts the
    next one, detached so that backpropagation stops at the batch border; it is reset every epoch.
    At fit start an n-gram model (``ngram_order``, 0 = off) is counted on the same training blocks
    and scored on the validation blocks: ``summary.json`` reports it next to ``val/ppl``.
    """

    monitor = "val/ppl"
    monitor_mode = "min"
    data_attributes = ("vocab_size",)

    def __init__(
        self,
        network: str = "gru_lm",
        network_args: Optional[dict[str, Any]] = None,
        vocab_size: PositiveInt = 32,
        carry_state: bool = False,
        ngram_order: int = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        if ngram_order not in (0, 1, 2, 3):
            raise LitexpError(f"ngram_order must be 0 (off), 1, 2 or 3, got {ngram_order}")
        self.vocab_size = int(vocab_size)
        self.carry_state = carry_state
        self.ngram_order = ngram_order
        self._finish_init(build_network(network, kind="language_model", vocab_size=self.vocab_size,
                                        **(network_args or {})))
        self.metrics = nn.ModuleDict({f"{stage}/loss": MeanMetric() for stage in STAGES})
        self.metrics.update({f"{stage}/ppl": Perplexity() for stage in STAGES})
        self._state = None  # hidden state carried between training batches (sequential sampling)
        self.baseline: dict[str, Any] = {}

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

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        inputs, targets = batch  # (B, T) int64 each
        carry = stage == "train" and self.carry_state
        state = self._state if carry and _batch_of(self._state) == inputs.shape[0] else None
        logits, state = self(inputs, state)  # (B, T, V)
        if carry:  # keep the values, cut the graph: backpropagation ends at this batch
            self._state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        self.metrics[f"{stage}/loss"].update(loss.detach(), weight=targets.numel())
        self.metrics[f"{stage}/ppl"].update(logits.detach().float(), targets)
        for name in (f"{stage}/loss", f"{stage}/ppl"):
            self.log(name, self.metrics[name], on_step=False, on_epoch=True, prog_bar=True)
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


class Seq2SeqTask(KeepsVocab, Task):
    """Sequence to sequence (machine translation): teacher-forced training, decoded evaluation.

    A batch is ``(src, src_len, tgt, tgt_len)``: token ids padded to ``num_steps`` and their valid
    lengths; ``tgt`` ends with ``<eos>``. The decoder reads ``<bos>`` + ``tgt[:-1]`` (teacher forcing)
    and the loss is the cross-entropy over the valid target positions only. Validation and test
    also decode every source sentence (greedy, or beam search with ``beam_size > 1`` and length
    normalisation ``length_penalty``) and score the corpus BLEU of the decoded sentences
    (torchmetrics; ``bleu_weights: book`` weighs p_n by 1/2^n as the book does, ``uniform`` as
    standard BLEU). BLEU is counted on target token ids; an ``<unk>`` in a reference matches nothing.
    """

    monitor = "val/bleu"
    monitor_mode = "max"
    data_attributes = ("src_vocab_size", "tgt_vocab_size", "max_len")

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
        """
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.max_len = int(max_len)
        self.beam_size = int(beam_size)
        self.length_penalty = float(length_penalty)
        self._finish_init(build_network(network, kind="seq2seq", src_vocab_size=int(src_vocab_size),
                                        tgt_vocab_size=int(tgt_vocab_size), **(network_args or {})))
        weights = decoding.bleu_weights(int(bleu_n_gram), bleu_weights)
        self.metrics = nn.ModuleDict({f"{stage}/loss": MeanMetric() for stage in STAGES})
        self.metrics.update({f"{stage}/bleu": BLEUScore(int(bleu_n_gram), weights=weights)
                             for stage in ("val", "test")})

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
        self.metrics[f"{stage}/loss"].update(loss.detach(), weight=tgt_len.sum())
        self.log(f"{stage}/loss", self.metrics[f"{stage}/loss"], on_step=False, on_epoch=True, prog_bar=True)
        if stage != "train":
            hypotheses = self.translate_ids(src, src_len)
            predictions = [" ".join(map(str, h.tokens)) for h in hypotheses]
            references = [[reference_text(row[: int(length)])]
                          for row, length in zip(tgt.tolist(), tgt_len.tolist(), strict=True)]
            self.metrics[f"{stage}/bleu"].update(predictions, references)
            self.log(f"{stage}/bleu", self.metrics[f"{stage}/bleu"], on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def predict_step(self, batch, batch_idx):
        src, src_len, tgt, tgt_len = batch
        hypotheses = self.translate_ids(src, src_len)
        source, target = _vocab_tokens(self.vocab)["source"], _vocab_tokens(self.vocab)["target"]
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
