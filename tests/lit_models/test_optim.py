"""Optimizers and schedules by name: one table each, the CLI's choices, weight decay, intervals."""

from __future__ import annotations

import typing

import lightning.pytorch as pl
import pytest
import torch

from lit_models import ClassificationTask, LitexpError, Task
from lit_models.optim import (
    OPTIMIZERS,
    SCHEDULERS,
    OptimizerName,
    Schedule,
    SchedulerName,
    build_optimizer,
    build_scheduler,
    parameter_groups,
)

# name -> (torch class, momentum it must use given momentum=0.9, nesterov); None: the class has no momentum
EXPECTED_OPTIMIZERS = {
    "sgd": (torch.optim.SGD, 0.0, False),
    "momentum": (torch.optim.SGD, 0.9, False),
    "nesterov": (torch.optim.SGD, 0.9, True),
    "adagrad": (torch.optim.Adagrad, None, None),
    "rmsprop": (torch.optim.RMSprop, 0.0, None),
    "adadelta": (torch.optim.Adadelta, None, None),
    "adam": (torch.optim.Adam, None, None),
    "adamw": (torch.optim.AdamW, None, None),
}
EXPECTED_INTERVALS = {"step": "epoch", "cosine": "epoch", "one_cycle": "step"}


def test_the_cli_choices_are_the_table_keys():
    assert typing.get_args(OptimizerName) == tuple(OPTIMIZERS) == tuple(EXPECTED_OPTIMIZERS)
    assert typing.get_args(SchedulerName) == tuple(SCHEDULERS) == tuple(EXPECTED_INTERVALS)
    hints = typing.get_type_hints(Task.__init__)  # what LightningCLI reads
    assert typing.get_args(hints["optimizer"]) == tuple(OPTIMIZERS)
    assert typing.get_args(hints["scheduler"]) == (SchedulerName, type(None))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_is_its_torch_class_with_its_momentum(name):
    optimizer_class, momentum, nesterov = EXPECTED_OPTIMIZERS[name]
    optimizer = build_optimizer(name, [{"params": [torch.nn.Parameter(torch.zeros(2, 2))]}], lr=0.3, momentum=0.9)
    assert type(optimizer) is optimizer_class
    assert optimizer.param_groups[0]["lr"] == 0.3
    if momentum is not None:
        assert optimizer.defaults["momentum"] == momentum
    if nesterov is not None:
        assert optimizer.defaults["nesterov"] is nesterov


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_lowers_a_loss(name):
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 1)
    inputs, targets = torch.randn(64, 4), torch.randn(64, 1)
    optimizer = build_optimizer(name, parameter_groups(layer.named_parameters(), weight_decay=1e-4), 0.05, 0.9)
    losses = []
    for _ in range(20):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(layer(inputs), targets)
        losses.append(loss.item())
        loss.backward()
        optimizer.step()
    assert losses[-1] < losses[0]


def test_weight_decay_only_on_weight_matrices_and_kernels():
    network = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(),
                                  torch.nn.Linear(2, 3))
    network[1].weight.requires_grad_(False)  # frozen parameters are left out
    optimizer = build_optimizer("adamw", parameter_groups(network.named_parameters(), weight_decay=0.1), 0.1, 0.9)
    decay = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    for parameter in network.parameters():
        if not parameter.requires_grad:
            assert id(parameter) not in decay
        else:
            assert decay[id(parameter)] == (0.1 if parameter.ndim > 1 else 0.0)
    assert [p.ndim for p in network.parameters() if decay.get(id(p)) == 0.1] == [4, 2]


def test_a_group_with_its_own_rate_keeps_it():
    head, backbone = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    groups = parameter_groups(head.named_parameters(), 0.0) + [
        {**group, "lr": 0.01} for group in parameter_groups(backbone.named_parameters(), 0.0)]
    optimizer = build_optimizer("momentum", groups, lr=0.1, momentum=0.9)
    assert [group["lr"] for group in optimizer.param_groups] == [0.1, 0.1, 0.01, 0.01]


class RecordLearningRate(pl.Callback):
    def __init__(self) -> None:
        self.rates: list[list[float]] = []  # per epoch, the rate each batch trained with

    def on_train_epoch_start(self, trainer, pl_module):
        self.rates.append([])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.rates[-1].append(trainer.optimizers[0].param_groups[0]["lr"])


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_every_scheduler_steps_at_its_interval(scheduler, tmp_path):
    assert SCHEDULERS[scheduler].interval == EXPECTED_INTERVALS[scheduler]
    model = ClassificationTask(network="softmax_regression", input_shape=(1, 4, 4), num_classes=2,
                               scheduler=scheduler, step_size=1, gamma=0.5, lr=0.1)
    images, labels = torch.randn(32, 1, 4, 4), torch.randint(0, 2, (32,))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels), batch_size=8)
    record = RecordLearningRate()
    trainer = pl.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path, callbacks=[record])
    trainer.fit(model, loader)
    within_epoch = [len(set(rates)) for rates in record.rates]
    firsts = [rates[0] for rates in record.rates]
    if EXPECTED_INTERVALS[scheduler] == "epoch":
        assert within_epoch == [1, 1, 1] and len(set(firsts)) == 3
    else:
        assert within_epoch == [4, 4, 4]
    if scheduler == "step":
        assert firsts == pytest.approx([0.1, 0.05, 0.025])


def test_unknown_names_are_user_errors():
    params = [{"params": [torch.nn.Parameter(torch.zeros(2))]}]
    with pytest.raises(LitexpError, match="unknown optimizer 'adamax'; choose one of sgd, momentum"):
        build_optimizer("adamax", params, 0.1, 0.9)
    optimizer = build_optimizer("sgd", params, 0.1, 0.9)
    with pytest.raises(LitexpError, match="unknown scheduler 'linear'; choose one of step, cosine, one_cycle"):
        build_scheduler("linear", optimizer, Schedule(max_epochs=1, total_steps=1, step_size=1, gamma=0.1))
