"""Squared-error regression of ``num_outputs`` targets from ``in_features`` inputs."""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from jsonargparse.typing import PositiveInt
from torchmetrics import MeanSquaredError, Metric

from lit_models.tasks.base import Task


class RegressionTask(Task):
    """Mean squared error; logs ``<stage>/loss`` and ``<stage>/rmse`` (its root over the epoch's examples;
    with a log target, the log-RMSE)."""

    kind = "regressor"
    data_attributes = ("in_features", "num_outputs")

    def __init__(
        self,
        network: str = "linear_regression",
        network_args: Optional[dict[str, Any]] = None,
        in_features: PositiveInt = 2,
        num_outputs: PositiveInt = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(network, network_args, **kwargs)

    def network_inputs(self) -> dict[str, Any]:
        return {"in_features": self.hparams.in_features, "num_outputs": self.hparams.num_outputs}

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        features, targets = batch  # (B, in_features), (B, num_outputs)
        predicted = self(features)
        loss = F.mse_loss(predicted, targets)
        metrics = self.metrics_of(stage)
        metrics["loss"].update(loss.detach(), weight=targets.shape[0])
        metrics["rmse"].update(predicted.detach(), targets)
        return loss

    def stage_metrics(self, stage: str) -> dict[str, Metric]:
        return {**super().stage_metrics(stage), "rmse": MeanSquaredError(squared=False)}

    def predict_step(self, batch, batch_idx):
        features, targets = batch
        return {"target": targets.squeeze(-1), "predicted": self(features).squeeze(-1)}
