"""Fine-tuning: load a network's feature layers from a trained model, give it a fresh head.

``pretrained`` names where the features come from:

- a litexp checkpoint (``runs/<name>/<version>/checkpoints/best.ckpt``): the ``network.features``
  tensors are loaded by name, so the network must be built with the same ``network_args``;
- a torchvision weights file (``resnet18-f37072fd.pth``, a plain state dict): its tensors up to the
  classifier are matched to ours in order, shape by shape (our ResNet and VGG-11 follow
  torchvision's layer order), so ImageNet weights fit a 3-channel network of the same family;
- ``torchvision:<WeightsEnum>`` such as ``torchvision:ResNet18_Weights.IMAGENET1K_V1``: the same,
  fetched by torchvision (into its cache; needs the network once).

Every file loads with ``weights_only=True``. The head is rebuilt by the builder for the new
``num_classes`` and Xavier-initialised here. Anything that does not fit is one clear error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from litexp.errors import LitexpError

TORCHVISION_PREFIX = "torchvision:"
TORCHVISION_HEADS = ("fc.", "classifier.", "heads.", "head.")  # torchvision's classifier names


def backbone_and_head(network: nn.Module) -> tuple[nn.Module, nn.Module]:
    features, head = getattr(network, "features", None), getattr(network, "head", None)
    if not isinstance(features, nn.Module) or not isinstance(head, nn.Module):
        raise LitexpError(f"{type(network).__name__} has no 'features' and 'head' parts, so it cannot be "
                          f"fine-tuned; choose a CNN of the zoo (lenet, alexnet, vgg11, nin, googlenet, resnet18, "
                          f"densenet)")
    return features, head


def reset_head(head: nn.Module) -> None:
    """Xavier-uniform weights and zero biases for every dense/conv layer of the new head."""
    for module in head.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def _read(path: Path) -> dict:
    if not path.is_file():
        raise LitexpError(f"pretrained weights {path} not found; give the path of a litexp checkpoint "
                          f"(runs/.../checkpoints/best.ckpt) or of a torchvision .pth file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip and weights_only refusals alike
        raise LitexpError(f"cannot read pretrained weights {path}: {error}; it must be a litexp checkpoint "
                          f"or a torchvision state dict saved with torch.save") from error


def _torchvision_state(name: str) -> dict:
    from torchvision.models import get_weight

    try:
        weights = get_weight(name)
    except (ValueError, KeyError, AttributeError) as error:
        raise LitexpError(f"unknown torchvision weights {name!r}; use a name such as ResNet18_Weights.IMAGENET1K_V1") \
            from error
    try:
        return weights.get_state_dict(progress=False)
    except Exception as error:  # no network, bad download
        raise LitexpError(f"cannot fetch torchvision weights {name}: {error}; download the .pth file "
                          f"elsewhere and pass its path as pretrained") from error


def _load_by_name(features: nn.Module, state: dict, source: str) -> None:
    """A litexp checkpoint: ``network.features.*`` tensors, names and shapes must match exactly."""
    prefix = "network.features."
    tensors = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
    own = features.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    wrong = sorted(key for key in set(own) & set(tensors) if own[key].shape != tensors[key].shape)
    if missing or unexpected or wrong:
        problems = [f"{len(missing)} missing (e.g. {missing[0]})" if missing else "",
                    f"{len(unexpected)} unexpected (e.g. {unexpected[0]})" if unexpected else "",
                    f"{len(wrong)} of another shape (e.g. {wrong[0]}: {tuple(tensors[wrong[0]].shape)} "
                    f"in the checkpoint, {tuple(own[wrong[0]].shape)} here)" if wrong else ""]
        raise LitexpError(f"checkpoint {source} does not fit this network's feature layers: "
                          f"{'; '.join(p for p in problems if p)}; build the same network with the same "
                          f"network_args and input channels as the checkpoint's run")
    features.load_state_dict(tensors)


def _load_in_order(features: nn.Module, state: dict, source: str) -> None:
    """A torchvision state dict: tensors before the classifier, matched to ours in order."""
    theirs = [(key, value) for key, value in state.items() if not key.startswith(TORCHVISION_HEADS)]
    own = list(features.state_dict().items())
    if len(theirs) != len(own):
        raise LitexpError(f"weights {source} have {len(theirs)} feature tensors, this network has {len(own)}; "
                          f"choose the network of the same architecture (e.g. resnet18 for resnet18 weights)")
    for (their_key, value), (key, target) in zip(theirs, own, strict=True):
        if value.shape != target.shape:
            raise LitexpError(f"weights {source} do not fit: {their_key} {tuple(value.shape)} vs {key} "
                              f"{tuple(target.shape)}; use the same architecture, width and in_channels (3 for "
                              f"ImageNet weights)")
    features.load_state_dict({key: value for (_, value), (key, _) in zip(theirs, own, strict=True)})


def load_pretrained(network: nn.Module, pretrained: str) -> None:
    """Load the feature layers of ``network`` from ``pretrained``; give it a fresh Xavier head."""
    features, head = backbone_and_head(network)
    if pretrained.startswith(TORCHVISION_PREFIX):
        _load_in_order(features, _torchvision_state(pretrained[len(TORCHVISION_PREFIX):]), pretrained)
    else:
        loaded = _read(Path(pretrained).expanduser())
        if isinstance(loaded, dict) and "state_dict" in loaded:
            _load_by_name(features, loaded["state_dict"], pretrained)
        elif isinstance(loaded, dict) and all(isinstance(v, torch.Tensor) for v in loaded.values()):
            _load_in_order(features, loaded, pretrained)
        else:
            raise LitexpError(f"{pretrained} is neither a litexp checkpoint nor a state dict of tensors")
    reset_head(head)


def backbone_parameters(network: nn.Module) -> Iterable[nn.Parameter]:
    return backbone_and_head(network)[0].parameters()
