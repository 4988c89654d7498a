"""The contract of every task: a registered network, metrics per stage, the optimizer, run summaries.

A task names the registry ``kind`` of the networks it drives, the inputs it hands their builders
(:meth:`Task.network_inputs`), the metrics of one stage (:meth:`Task.stage_metrics`) and the step
(``_step(batch, stage)``, which returns the loss and updates ``self.metrics_of(stage)``). ``Task``
does the rest in one place: it saves the hyperparameters, builds and initialises the network,
builds one ``MetricCollection`` per stage, the optimizer and the schedule, and logs every metric
once per epoch.

Metrics are updated inside the step and logged at the end of the epoch (``log_dict`` of the
computed ``MetricCollection``): no ``self.log`` runs per step (each call costs about half a
millisecond in Lightning, moving its whole result collection). torchmetrics syncs the sums and
counts exactly across DDP ranks in ``compute``.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Literal, Optional

import lightning.pytorch as pl
import torch
from jsonargparse.typing import NonNegativeFloat, PositiveFloat, PositiveInt
from torchmetrics import Metric, MetricCollection

from lit_models.init import INIT_SCHEMES, init_weights
from lit_models.metrics import WeightedMean
from lit_models.optim import OptimizerName, Schedule, SchedulerName, build_optimizer, build_scheduler, parameter_groups
from lit_models.registry import build_network
from litexp.errors import LitexpError

InitName = Literal[INIT_SCHEMES]  # type: ignore[valid-type]
STAGES = ("train", "val", "test")


class Task(pl.LightningModule):
    """What every task shares; a subclass sets ``kind`` and gives its own ``network`` default."""

    #: registry kind of the networks this task drives (see ``lit_models.registry.KINDS``)
    kind: str = ""
    #: metric that picks the best checkpoint, and whether larger is better
    monitor: str = "val/loss"
    monitor_mode: str = "min"
    #: attributes the DataModule must provide (the CLI links them into the task's arguments)
    data_attributes: tuple[str, ...] = ()

    def __init__(
        self,
        network: str = "",
        network_args: Optional[dict[str, Any]] = None,
        optimizer: OptimizerName = "sgd",
        lr: PositiveFloat = 0.1,
        weight_decay: NonNegativeFloat = 0.0,
        momentum: NonNegativeFloat = 0.9,
        scheduler: Optional[SchedulerName] = None,
        step_size: PositiveInt = 10,
        gamma: PositiveFloat = 0.1,
        init: InitName = "default",
        init_std: PositiveFloat = 0.01,
    ) -> None:
        super().__init__()
        if not 0 < lr < math.inf:
            raise LitexpError(f"lr must be a finite number > 0, got {lr}")
        # every __init__ argument of the concrete task (its own and these) goes into the checkpoint,
        # so ``load_from_checkpoint`` rebuilds the same network
        self.save_hyperparameters()
        inputs = self.network_inputs()
        clash = sorted(set(inputs) & set(network_args or {}))
        if clash:
            raise LitexpError(f"network_args must not set {', '.join(clash)}: {type(self).__name__} passes it "
                              f"from the data; remove it from network_args")
        self.network = build_network(network, kind=self.kind, **inputs, **(network_args or {}))
        init_weights(self.network, init, float(init_std))
        for stage in STAGES:  # attributes ``train_metrics``, ``val_metrics``, ``test_metrics``
            collection = MetricCollection(self.stage_metrics(stage), prefix=f"{stage}/", compute_groups=False)
            setattr(self, f"{stage}_metrics", collection)

    # -- what a task says about itself ----------------------------------------------------------
    def network_inputs(self) -> dict[str, Any]:
        """Arguments of the network builder that come from the data (read from ``self.hparams``)."""
        return {}

    def stage_metrics(self, stage: str) -> dict[str, Metric]:
        """The metrics of one stage by short name; they are logged as ``<stage>/<name>``.

        Every task has ``loss``, the mean over the epoch's examples (or tokens): a subclass adds its own
        to ``super().stage_metrics(stage)``. No NaN filtering: a diverged loss shows as NaN, and there
        is no per-step NaN check (a device sync on a GPU); see :mod:`lit_models.metrics`.
        """
        return {"loss": WeightedMean()}

    def metrics_of(self, stage: str) -> MetricCollection:
        """The metrics of ``stage``; ``self.metrics_of("val")["acc"]`` is logged as ``val/acc``."""
        return getattr(self, f"{stage}_metrics")

    @property
    def metrics(self) -> dict[str, Metric]:
        """Every metric by its logged name (``train/loss``, ``val/acc``, ...)."""
        return {name: collection[name] for collection in map(self.metrics_of, STAGES) for name in collection.keys()}

    @property
    def lr(self) -> float:
        """The learning rate: one value, kept in the hyperparameters."""
        return float(self.hparams.lr)

    @lr.setter
    def lr(self, value: float) -> None:  # the learning-rate finder writes it
        self.hparams.lr = value

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.network(inputs)

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning names the running hook in ``_current_fx_name``, set and restored around each hook call
        # (about 40 writes a batch); ``nn.Module.__setattr__`` first looks for a parameter, module or
        # buffer of that name (2 us a call, 0.1 ms of a step). A hook's name is never one of those.
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    # -- optimizer and schedule -------------------------------------------------------------------
    def optimizer_groups(self) -> list[dict]:
        """Optimizer parameter groups (a fine-tuned backbone gets a group with its own ``lr``)."""
        return parameter_groups(self.named_parameters(), self.hparams.weight_decay)

    def configure_optimizers(self):
        hparams = self.hparams
        optimizer = build_optimizer(hparams.optimizer, self.optimizer_groups(), self.lr, hparams.momentum)
        if hparams.scheduler is None:
            return optimizer
        schedule = Schedule(max_epochs=max(1, self.trainer.max_epochs or 1),
                            total_steps=int(self.trainer.estimated_stepping_batches),
                            step_size=hparams.step_size, gamma=hparams.gamma)
        return {"optimizer": optimizer, "lr_scheduler": build_scheduler(hparams.scheduler, optimizer, schedule)}

    # -- steps: written once per task in ``_step(batch, stage)``; the hooks only name the stage -----
    def _step(self, batch, stage: str) -> torch.Tensor:
        raise NotImplementedError

    def training_step(self, batch, batch_idx):
        loss = self._step(batch, "train")
        # the step loss only on the steps the loggers write (every ``log_every_n_steps``, counted as
        # Lightning counts them): a ``self.log`` call costs about a millisecond, more than the metrics
        if (self.global_step + 1) % max(1, self.trainer.log_every_n_steps) == 0:
            self.log("train/step_loss", loss.detach(), on_step=True, on_epoch=False)
        return loss

    # Lightning reads training_step's arguments on every step (whether to pass ``batch_idx``); a
    # function's ``__signature__`` is what ``inspect`` returns without parsing it again (0.04 ms a step)
    training_step.__signature__ = inspect.signature(training_step)  # type: ignore[attr-defined]

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def _log_epoch(self, stage: str) -> None:
        """Log the stage's metrics over the epoch, then start them afresh."""
        metrics = self.metrics_of(stage)
        if not any(metric.update_called for metric in metrics.values()):
            return  # no batch in this stage (e.g. limit_val_batches=0)
        # compute() already holds every rank's sums and counts; sync_dist keeps Lightning's DDP checks quiet
        self.log_dict(metrics.compute(), prog_bar=True, sync_dist=True)
        metrics.reset()

    # -- checkpoints: the epoch's training metrics so far, so that a fit resumed mid-epoch logs the same ----
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        metrics = self.metrics_of("train")
        checkpoint["train_metric_states"] = {
            name: {"states": dict(metric.metric_state), "updates": metric._update_count}
            for name, metric in metrics.items(keep_base=True) if metric.update_called
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        metrics = self.metrics_of("train")
        for name, saved in checkpoint.get("train_metric_states", {}).items():
            # a checkpoint of an older metric class (other state names) leaves the metric as it is: the
            # resumed epoch then logs the mean of its remaining batches
            if name in metrics.keys(keep_base=True) and set(saved["states"]) == set(metrics[name].metric_state):
                metric = metrics[name]
                for state, value in saved["states"].items():
                    setattr(metric, state, value)
                metric._update_count = saved["updates"]
                metric._computed = None

    def summary(self) -> dict[str, Any]:
        """Facts about the trained model for ``summary.json`` (networks may add their own)."""
        facts: dict[str, Any] = {"parameters": sum(p.numel() for p in self.parameters())}
        network_summary = getattr(self.network, "summary", None)
        if callable(network_summary):
            facts.update(network_summary())
        return facts
