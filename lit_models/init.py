"""Weight initialisation by name, as the book's chapters choose it.

``default`` keeps PyTorch's own initialisation; the others reset every Linear/Conv weight and zero
the biases (normalisation layers keep weight 1, bias 0). ``zero`` sets the weights to zero as well:
the book's example of a symmetry that training cannot break.
"""

from __future__ import annotations

from torch import nn

INIT_SCHEMES = ("default", "zero", "normal", "xavier", "he")


def init_weights(network: nn.Module, scheme: str = "default", std: float = 0.01) -> None:
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown init {scheme!r}; choose one of {', '.join(INIT_SCHEMES)}")
    if scheme == "default":
        return
    for module in network.modules():
        if not isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            continue
        if scheme == "zero":
            nn.init.zeros_(module.weight)
        elif scheme == "normal":
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif scheme == "xavier":
            nn.init.xavier_uniform_(module.weight)
        else:  # he: fan_in keeps the forward variance of ReLU networks
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)
