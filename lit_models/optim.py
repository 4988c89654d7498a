"""Optimizers and learning-rate schedules by name, so configs and search spaces stay flat.

Weight decay applies to weight matrices and kernels only (``ndim > 1``), not to biases or
normalisation parameters: the book's weight-decay chapter decays the weights alone.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
SCHEDULERS = ("step", "cosine", "one_cycle")


def parameter_groups(parameters: Iterable[tuple[str, nn.Parameter]], weight_decay: float, lr: float) -> list[dict]:
    decay, no_decay = [], []
    for _, parameter in parameters:
        if parameter.requires_grad:
            (decay if parameter.ndim > 1 else no_decay).append(parameter)
    groups = [{"params": decay, "weight_decay": weight_decay, "lr": lr}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "lr": lr})
    return [g for g in groups if g["params"]]


def build_optimizer(name: str, groups: list[dict], lr: float, momentum: float) -> torch.optim.Optimizer:
    if name in ("sgd", "momentum", "nesterov"):
        # plain "sgd" is the book's minibatch SGD: no momentum unless asked for by name
        return torch.optim.SGD(
            groups, lr=lr, momentum=0.0 if name == "sgd" else momentum, nesterov=name == "nesterov"
        )
    if name == "adagrad":
        return torch.optim.Adagrad(groups, lr=lr)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, momentum=0.0)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def build_scheduler(
    name: str,
    optimizer: torch.optim.Optimizer,
    lr: float,
    max_epochs: int,
    total_steps: int,
    step_size: int,
    gamma: float,
) -> dict:
    """A Lightning ``lr_scheduler`` dict; one-cycle steps per batch, the others per epoch."""
    if name == "step":
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
        return {"scheduler": scheduler, "interval": "epoch"}
    if name == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, max_epochs))
        return {"scheduler": scheduler, "interval": "epoch"}
    if name == "one_cycle":
        # per group: a fine-tuned backbone keeps its smaller learning rate
        max_lr = [group["lr"] for group in optimizer.param_groups]
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=max(1, total_steps))
        return {"scheduler": scheduler, "interval": "step"}
    raise ValueError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")
