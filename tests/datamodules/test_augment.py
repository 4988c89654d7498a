"""Batched augmentation on the device (training split only) and the class filter."""

from __future__ import annotations

import json

import pytest
import torch

from datamodules import CIFAR10, FashionMNIST
from experiments.cli import CONFIG_DIR, main
from litexp.errors import LitexpError


def identical_batch(channels: int = 1, side: int = 28, size: int = 16) -> torch.Tensor:
    torch.manual_seed(0)
    image = torch.rand(1, channels, side, side)
    return image.expand(size, -1, -1, -1).contiguous()  # (B, C, H, W): one image, B times


def distinct_outputs(images: torch.Tensor) -> int:
    return len({tuple(image.flatten().tolist()) for image in images})


@pytest.mark.parametrize("option", [{"crop_padding": 4}, {"horizontal_flip": True}, {"color_jitter": 0.4},
                                    {"random_erasing": 1.0}])
def test_each_image_of_a_batch_draws_its_own_parameters(option):
    data = FashionMNIST(**option)
    augmented = data.augment(identical_batch())
    assert augmented.shape == (16, 1, 28, 28)
    assert distinct_outputs(augmented) > 1  # the same input, different random parameters per image
    assert 0.0 <= augmented.min() and augmented.max() <= 1.0


def test_crop_parameters_differ_within_one_batch():
    data = FashionMNIST(crop_padding=4)
    data.augment(identical_batch())
    crop = data._augmentation[0]
    boxes = crop._params["src"]  # (B, 4, 2): the crop box each image drew
    assert len({tuple(box.flatten().tolist()) for box in boxes}) > 1


def test_colour_jitter_changes_rgb_images_per_sample():
    augmented = CIFAR10(color_jitter=0.3).augment(identical_batch(channels=3, side=32))
    assert augmented.shape == (16, 3, 32, 32) and distinct_outputs(augmented) > 1


def test_no_option_means_no_augmentation():
    images = identical_batch()
    assert torch.equal(FashionMNIST().augment(images), images)


def test_only_the_training_batches_are_augmented():
    data = FashionMNIST(crop_padding=4, horizontal_flip=True, random_erasing=1.0)
    raw = (identical_batch() * 255).to(torch.uint8)
    labels = torch.zeros(16, dtype=torch.long)
    evaluated, _ = data.transform_batch((raw, labels), training=False)
    assert distinct_outputs(evaluated) == 1
    trained, _ = data.transform_batch((raw, labels), training=True)
    assert distinct_outputs(trained) > 1


def test_augmentation_options_come_from_the_config(fake_data_dir, tmp_path):
    config = tmp_path / "augmented.yaml"
    config.write_text((CONFIG_DIR / "fashion_mnist/lenet_modern.yaml").read_text()
                      + "    crop_padding: 2\n    horizontal_flip: true\n    random_erasing: 0.25\n")
    code = main(["fit", "--config", str(config), "--trainer.fast_dev_run=true", "--data.batch_size=4",
                 "--run.root", str(tmp_path / "runs"), "--trainer.enable_progress_bar=false"])
    assert code == 0
    (summary,) = (tmp_path / "runs").glob("*/*/summary.json")
    augmentation = json.loads(summary.read_text())["data"]["augmentation"]
    assert augmentation == {"crop_padding": 2, "horizontal_flip": True, "random_erasing": 0.25}


def test_class_filter_keeps_and_renumbers_the_chosen_classes(fake_data_dir):
    everything = FashionMNIST()
    images, labels = everything.load("train")
    chosen = FashionMNIST(classes=[7, 2])
    assert chosen.num_classes == 2 and chosen.input_shape == (1, 28, 28)
    kept_images, kept_labels = chosen.load("train")
    assert set(kept_labels.tolist()) == {0, 1}
    assert torch.equal(kept_images[kept_labels == 0], images[labels == 7])  # 7 -> 0, 2 -> 1, in order given
    assert torch.equal(kept_images[kept_labels == 1], images[labels == 2])
    assert len(kept_labels) == int(((labels == 7) | (labels == 2)).sum())


@pytest.mark.parametrize("classes", [[], [3, 3], [10], [-1]])
def test_bad_class_lists_are_user_errors(classes):
    with pytest.raises(LitexpError, match="classes must be distinct labels in 0..9"):
        FashionMNIST(classes=classes)


def test_erasing_probability_above_one_is_a_user_error():
    with pytest.raises(LitexpError, match="random_erasing"):
        FashionMNIST(random_erasing=1.5)
