"""Optimizers, schedules and initialisation by name; checkpoints that load with weights_only."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from lit_models import ClassificationTask, LitexpError
from lit_models.init import init_weights
from lit_models.optim import OPTIMIZERS, build_optimizer, parameter_groups


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_builds_and_lowers_a_loss(name):
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 1)
    inputs, targets = torch.randn(64, 4), torch.randn(64, 1)
    groups = parameter_groups(layer.named_parameters(), weight_decay=1e-4, lr=0.05)
    optimizer = build_optimizer(name, groups, lr=0.05, momentum=0.9)
    first = None
    for _ in range(20):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(layer(inputs), targets)
        first = first if first is not None else loss.item()
        loss.backward()
        optimizer.step()
    assert loss.item() < first


def test_momentum_names_differ_only_in_momentum():
    params = [torch.nn.Parameter(torch.zeros(2, 2))]
    assert build_optimizer("sgd", [{"params": params}], 0.1, 0.9).defaults["momentum"] == 0.0
    assert build_optimizer("momentum", [{"params": params}], 0.1, 0.9).defaults["momentum"] == 0.9
    assert build_optimizer("nesterov", [{"params": params}], 0.1, 0.9).defaults["nesterov"] is True


def test_weight_decay_skips_biases_and_norms():
    network = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))
    decayed, plain = parameter_groups(network.named_parameters(), weight_decay=0.1, lr=1.0)
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert [p.shape for p in decayed["params"]] == [torch.Size([3, 3])]
    assert len(plain["params"]) == 3  # linear bias, norm weight, norm bias


@pytest.mark.parametrize("scheme", ["normal", "xavier", "he"])
def test_init_schemes_reset_weights_and_zero_biases(scheme):
    torch.manual_seed(0)
    layer = torch.nn.Linear(400, 300)
    init_weights(layer, scheme, std=0.01)
    assert torch.all(layer.bias == 0)
    expected_std = {"normal": 0.01, "xavier": (2 / 700) ** 0.5, "he": (2 / 400) ** 0.5}[scheme]
    assert layer.weight.std().item() == pytest.approx(expected_std, rel=0.05)


@pytest.mark.parametrize("scheduler", ["step", "cosine", "one_cycle"])
def test_schedulers_change_the_learning_rate(scheduler, tmp_path):
    model = ClassificationTask(network="softmax_regression", input_shape=(1, 4, 4), num_classes=2,
                               scheduler=scheduler, step_size=1, lr=0.1)
    images, labels = torch.randn(32, 1, 4, 4), torch.randint(0, 2, (32,))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels), batch_size=8)
    trainer = pl.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, loader)
    assert trainer.optimizers[0].param_groups[0]["lr"] != pytest.approx(0.1)


def test_bad_learning_rate_and_unknown_network_are_user_errors():
    with pytest.raises(LitexpError, match="lr must be > 0"):
        ClassificationTask(lr=0.0)
    with pytest.raises(LitexpError, match="valid networks"):
        ClassificationTask(network="resnet999")


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    model = ClassificationTask(network="mlp", network_args={"hidden_sizes": [8]}, input_shape=(1, 6, 6),
                               num_classes=3, optimizer="adam", lr=0.01)
    trainer = pl.Trainer(max_epochs=0, logger=False, enable_progress_bar=False, default_root_dir=tmp_path)
    trainer.strategy.connect(model)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    restored = ClassificationTask.load_from_checkpoint(path, weights_only=True)
    assert restored.hparams.network_args == {"hidden_sizes": [8]}
    assert restored.hparams.optimizer == "adam"
    images = torch.randn(2, 1, 6, 6)
    model.eval(), restored.eval()
    assert torch.equal(model(images), restored(images))
