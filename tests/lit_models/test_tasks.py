"""Tasks: initialisation by name, user errors, metrics per stage, checkpoints that load with weights_only."""

from __future__ import annotations

import csv
import inspect

import lightning.pytorch as pl
import pytest
import torch

from lit_models import ClassificationTask, LitexpError
from lit_models.init import init_weights


@pytest.mark.parametrize("scheme", ["normal", "xavier", "he"])
def test_init_schemes_reset_weights_and_zero_biases(scheme):
    torch.manual_seed(0)
    layer = torch.nn.Linear(400, 300)
    init_weights(layer, scheme, std=0.01)
    assert torch.all(layer.bias == 0)
    expected_std = {"normal": 0.01, "xavier": (2 / 700) ** 0.5, "he": (2 / 400) ** 0.5}[scheme]
    assert layer.weight.std().item() == pytest.approx(expected_std, rel=0.05)


def test_bad_learning_rate_and_unknown_network_are_user_errors():
    with pytest.raises(LitexpError, match="lr must be a finite number > 0"):
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


def test_metrics_are_logged_once_per_epoch_under_their_names(tmp_path):
    torch.manual_seed(0)
    model = ClassificationTask(network="softmax_regression", input_shape=(1, 4, 4), num_classes=3, lr=0.5)
    images, labels = torch.randn(64, 1, 4, 4), torch.randint(0, 3, (64,))
    dataset = torch.utils.data.TensorDataset(images, labels)
    train = torch.utils.data.DataLoader(dataset, batch_size=8)  # 8 steps per epoch
    val = torch.utils.data.DataLoader(dataset, batch_size=16)
    logger = pl.loggers.CSVLogger(tmp_path, name="", version="")
    trainer = pl.Trainer(max_epochs=2, logger=logger, log_every_n_steps=3, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, train, val)
    with open(tmp_path / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    logged = {name: [int(row["step"]) for row in rows if row.get(name)] for name in rows[0] if "/" in name}
    assert set(logged) == {"train/loss", "train/acc", "val/loss", "val/acc", "train/step_loss"}
    assert set(model.metrics) == {"train/loss", "train/acc", "val/loss", "val/acc", "test/loss", "test/acc"}
    assert [len(logged[name]) for name in ("train/loss", "train/acc", "val/loss", "val/acc")] == [2, 2, 2, 2]
    assert logged["train/step_loss"] == [2, 5, 8, 11, 14]  # every log_every_n_steps, not every step
    # val/acc is the accuracy over the whole validation split, of the model as it ended
    model.eval()
    with torch.no_grad():
        accuracy = (model(images).argmax(dim=-1) == labels).float().mean().item()
    last_val_acc = [row["val/acc"] for row in rows if row["val/acc"]][-1]
    assert float(last_val_acc) == pytest.approx(accuracy)
    assert trainer.callback_metrics["val/acc"].item() == pytest.approx(accuracy)


def test_zero_init_and_adadelta_are_chosen_by_name():
    model = ClassificationTask(network="mlp", network_args={"hidden_sizes": [8]}, input_shape=(1, 4, 4),
                               num_classes=3, init="zero", optimizer="adadelta", lr=1.0)
    weights = [module.weight for module in model.modules() if isinstance(module, torch.nn.Linear)]
    assert all(torch.all(weight == 0) for weight in weights)
    assert isinstance(model.configure_optimizers(), torch.optim.Adadelta)


def test_batch_norm_sits_between_affine_map_and_activation():
    mlp = ClassificationTask(network="mlp", network_args={"hidden_sizes": [8, 8], "batch_norm": True,
                                                          "activation": "sigmoid"}, input_shape=(1, 4, 4),
                             num_classes=3).network
    kinds = [type(module).__name__ for module in mlp.layers]
    assert kinds == ["Flatten", "Linear", "BatchNorm1d", "Sigmoid", "Linear", "BatchNorm1d", "Sigmoid", "Linear"]
    lenet = ClassificationTask(network="lenet", network_args={"variant": "batch_norm"}, input_shape=(1, 28, 28),
                               num_classes=10).network
    names = {type(module).__name__ for module in lenet.modules()}
    assert {"BatchNorm2d", "BatchNorm1d", "Sigmoid", "AvgPool2d"} <= names and "ReLU" not in names
    assert lenet(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_the_hook_name_is_a_plain_attribute_and_modules_still_register():
    model = ClassificationTask(network="softmax_regression", input_shape=(1, 4, 4), num_classes=3)
    model._current_fx_name = "training_step"  # Lightning's bookkeeping: set without nn.Module's search
    assert model._current_fx_name == "training_step" and "_current_fx_name" not in model._modules
    model.head = torch.nn.Linear(2, 2)  # every other attribute goes through nn.Module as before
    assert "head" in model._modules and "head.weight" in dict(model.named_parameters())
    # Lightning passes batch_idx after reading the signature (kept on the function, read once)
    assert list(inspect.signature(model.training_step).parameters) == ["batch", "batch_idx"]
