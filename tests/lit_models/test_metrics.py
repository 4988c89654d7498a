"""The epoch means every task logs: weighted by batch size, equal to torchmetrics' own, summable across ranks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import torchmetrics
from torchmetrics.classification import MulticlassAccuracy
from torchmetrics.text import Perplexity as TorchmetricsPerplexity

from lit_models import ClassificationTask, LanguageModelTask
from lit_models.metrics import Fraction, Perplexity, WeightedMean


def test_weighted_mean_weights_each_batch_by_its_count():
    metric = WeightedMean()
    metric.update(torch.tensor(1.0), 1)
    metric.update(torch.tensor(3.0), weight=3)
    assert metric.compute().item() == pytest.approx(2.5)  # (1*1 + 3*3) / 4; the unweighted mean is 2.0


def test_weighted_mean_equals_torchmetrics_mean_metric_on_uneven_batches():
    generator = torch.Generator().manual_seed(0)
    ours, theirs = WeightedMean(), torchmetrics.MeanMetric(nan_strategy="error")
    for size in (256, 256, 17, 128, 3):
        value = torch.rand((), generator=generator) * 5
        ours.update(value, size)
        theirs.update(value, weight=size)
    assert ours.compute().item() == pytest.approx(theirs.compute().item(), rel=1e-6)


def test_weighted_mean_takes_tensor_weights_and_shows_a_nan_as_nan():
    metric = WeightedMean()
    metric.update(torch.tensor(2.0), torch.tensor(4))  # seq2seq passes a token count tensor
    assert metric.compute().item() == pytest.approx(2.0)
    metric.update(torch.tensor(float("nan")), 1)  # no filtering, no error: a diverged loss is visible
    assert math.isnan(metric.compute().item())


def test_states_merge_by_sum_as_ddp_ranks_do():
    whole, first, second = WeightedMean(), WeightedMean(), WeightedMean()
    batches = [(torch.tensor(0.5), 10), (torch.tensor(2.0), 30), (torch.tensor(1.0), 5)]
    for value, weight in batches:
        whole.update(value, weight)
    first.update(*batches[0])
    for value, weight in batches[1:]:
        second.update(value, weight)
    first.merge_state(second)  # the same reduction (sum) torchmetrics applies across ranks in compute()
    assert first.weight.item() == 45 and first.total.item() == pytest.approx(whole.total.item())
    assert first.compute().item() == pytest.approx(whole.compute().item())


def test_perplexity_from_the_loss_equals_torchmetrics_perplexity_of_the_logits():
    generator = torch.Generator().manual_seed(1)
    ours, theirs = Perplexity(), TorchmetricsPerplexity()
    for batch, steps in ((4, 7), (4, 7), (2, 3)):  # the last batch holds fewer tokens
        logits = torch.randn(batch, steps, 11, generator=generator)
        targets = torch.randint(0, 11, (batch, steps), generator=generator)
        loss = F.cross_entropy(logits.reshape(-1, 11), targets.reshape(-1))
        ours.update(loss, targets.numel())
        theirs.update(logits, targets)
    assert ours.compute().item() == pytest.approx(theirs.compute().item(), rel=1e-5)


def test_accuracy_as_a_fraction_equals_torchmetrics_accuracy_exactly():
    generator = torch.Generator().manual_seed(2)
    ours, theirs = Fraction(), MulticlassAccuracy(7, average="micro")
    for size in (64, 64, 5):
        logits = torch.randn(size, 7, generator=generator)
        labels = torch.randint(0, 7, (size,), generator=generator)
        ours.update((logits.argmax(dim=-1) == labels).sum(), labels.numel())
        theirs.update(logits, labels)
    assert ours.compute().item() == theirs.compute().item()  # integer counts: the same float
    assert ours.weight.item() == 133


def test_tasks_log_the_example_weighted_loss_and_the_token_perplexity():
    task = ClassificationTask(network="lenet", num_classes=10, input_shape=(1, 28, 28))
    assert isinstance(task.metrics["train/loss"], WeightedMean)
    images, labels = torch.rand(6, 1, 28, 28), torch.tensor([0, 1, 2, 3, 4, 5])
    task._step((images, labels), "val")
    predicted = task(images).argmax(dim=-1)
    assert task.metrics["val/acc"].compute().item() == pytest.approx((predicted == labels).float().mean().item())
    language_model = LanguageModelTask(network="rnn_lm", vocab_size=12)
    assert isinstance(language_model.metrics["val/ppl"], Perplexity)
    tokens = torch.randint(0, 12, (2, 5))
    loss = language_model._step((tokens, tokens.roll(-1, dims=1)), "val")
    metrics = language_model.metrics_of("val")
    assert metrics["ppl"].compute().item() == pytest.approx(math.exp(loss.item()), rel=1e-5)
    assert metrics["loss"].compute().item() == pytest.approx(loss.item(), rel=1e-6)


def test_a_checkpoint_of_the_older_torchmetrics_states_resumes_without_them():
    task = ClassificationTask(network="lenet", num_classes=10, input_shape=(1, 28, 28))
    old = {"train_metric_states": {
        "loss": {"states": {"mean_value": torch.tensor(9.0), "weight": torch.tensor(3.0)}, "updates": 3},
        "acc": {"states": {"tp": torch.tensor(5), "fp": torch.tensor(1), "tn": torch.tensor(0),
                           "fn": torch.tensor(1)}, "updates": 3},
    }}
    task.on_load_checkpoint(old)  # MeanMetric's and MulticlassAccuracy's states: not these metrics'
    assert not task.metrics["train/loss"].update_called and task.metrics["train/loss"].weight.item() == 0
    saved = {}
    task._step((torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])), "train")
    task.on_save_checkpoint(saved)
    resumed = ClassificationTask(network="lenet", num_classes=10, input_shape=(1, 28, 28))
    resumed.on_load_checkpoint(saved)  # its own states come back exactly
    assert resumed.metrics["train/loss"].weight.item() == 4
    assert resumed.metrics["train/acc"].compute().item() == task.metrics["train/acc"].compute().item()


def test_an_update_writes_plain_attributes_and_the_states_stay_metric_states():
    metric = Fraction()
    metric.update(torch.tensor(3), 4)
    assert metric._update_count == 1 and metric.update_called
    assert set(metric.metric_state) == {"total", "weight"} and metric.compute().item() == 0.75
    metric.reset()
    assert metric.total.item() == 0 and metric.weight.item() == 0 and not metric.update_called
    with pytest.raises(RuntimeError, match="const"):
        metric.higher_is_better = False  # torchmetrics' own guard still applies
