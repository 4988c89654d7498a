"""Squared-error regression of ``num_outputs`` targets from ``in_features`` inputs."""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from jsonargparse.typing import PositiveInt

from lit_models.tasks.base import Task


class RegressionTask(Task):
    """Mean squared error; logs ``<stage>/loss``."""

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
        loss = F.mse_loss(self(features), targets)
        self.metrics_of(stage)["loss"].update(loss.detach(), weight=targets.shape[0])
        return loss

    def predict_step(self, batch, batch_idx):
        features, targets = batch
        return {"target": targets.squeeze(-1), "predicted": self(features).squeeze(-1)}
