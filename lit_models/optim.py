"""Optimizers and learning-rate schedules by name: one table each, read by the tasks' CLI choices.

Weight decay applies to weight matrices and kernels only (``ndim > 1``), not to biases or
normalisation parameters: the book's weight-decay chapter decays the weights alone.
The learning rate is given once, to :func:`build_optimizer`; a parameter group carries its own
``lr`` only when it trains at another rate (a fine-tuned backbone).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Literal

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, OneCycleLR, StepLR

from litexp.errors import LitexpError

# name -> (groups, lr, momentum) -> optimizer; plain "sgd" is the book's minibatch SGD: no momentum
# unless asked for by name
OPTIMIZERS: dict[str, Callable[[list[dict], float, float], Optimizer]] = {
    "sgd": lambda groups, lr, momentum: torch.optim.SGD(groups, lr=lr, momentum=0.0),
    "momentum": lambda groups, lr, momentum: torch.optim.SGD(groups, lr=lr, momentum=momentum),
    "nesterov": lambda groups, lr, momentum: torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=True),
    "adagrad": lambda groups, lr, momentum: torch.optim.Adagrad(groups, lr=lr),
    "rmsprop": lambda groups, lr, momentum: torch.optim.RMSprop(groups, lr=lr, momentum=0.0),
    "adadelta": lambda groups, lr, momentum: torch.optim.Adadelta(groups, lr=lr),  # the book's lr is 1.0
    "adam": lambda groups, lr, momentum: torch.optim.Adam(groups, lr=lr),
    "adamw": lambda groups, lr, momentum: torch.optim.AdamW(groups, lr=lr),
}


@dataclass(frozen=True)
class Schedule:
    """What a scheduler may read: the length of the run and the step-decay options."""

    max_epochs: int
    total_steps: int
    step_size: int
    gamma: float


@dataclass(frozen=True)
class SchedulerEntry:
    build: Callable[[Optimizer, Schedule], LRScheduler]
    interval: Literal["epoch", "step"]  # when Lightning steps it


SCHEDULERS: dict[str, SchedulerEntry] = {
    "step": SchedulerEntry(lambda optimizer, s: StepLR(optimizer, step_size=s.step_size, gamma=s.gamma), "epoch"),
    "cosine": SchedulerEntry(lambda optimizer, s: CosineAnnealingLR(optimizer, T_max=max(1, s.max_epochs)), "epoch"),
    # the peak rate per group: a fine-tuned backbone keeps its smaller learning rate
    "one_cycle": SchedulerEntry(
        lambda optimizer, s: OneCycleLR(optimizer, max_lr=[group["lr"] for group in optimizer.param_groups],
                                        total_steps=max(1, s.total_steps)),
        "step",
    ),
}

# the CLI's choices, derived from the tables so that the two never drift apart
OptimizerName = Literal[tuple(OPTIMIZERS)]  # type: ignore[valid-type]
SchedulerName = Literal[tuple(SCHEDULERS)]  # type: ignore[valid-type]


def parameter_groups(parameters: Iterable[tuple[str, nn.Parameter]], weight_decay: float) -> list[dict]:
    """Trainable parameters in a decayed group (``ndim > 1``) and an undecayed one; empty groups dropped."""
    decay, no_decay = [], []
    for _, parameter in parameters:
        if parameter.requires_grad:
            (decay if parameter.ndim > 1 else no_decay).append(parameter)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


def _lookup(table: dict, kind: str, name: str):
    if name not in table:
        raise LitexpError(f"unknown {kind} {name!r}; choose one of {', '.join(table)}")
    return table[name]


def build_optimizer(name: str, groups: list[dict], lr: float, momentum: float) -> Optimizer:
    """Optimizer ``name`` over ``groups``; ``lr`` is the rate of every group that names none."""
    return _lookup(OPTIMIZERS, "optimizer", name)(groups, lr, momentum)


def build_scheduler(name: str, optimizer: Optimizer, schedule: Schedule) -> dict:
    """A Lightning ``lr_scheduler`` dict; one-cycle steps per batch, the others per epoch."""
    entry = _lookup(SCHEDULERS, "scheduler", name)
    return {"scheduler": entry.build(optimizer, schedule), "interval": entry.interval}
