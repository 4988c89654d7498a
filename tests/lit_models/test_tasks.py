"""Tasks: initialisation by name, user errors, metrics per stage, checkpoints that load with weights_only."""

from __future__ import annotations

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
