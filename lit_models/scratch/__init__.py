"""Deep learning from scratch: numpy float64 layers, optimizers and networks with hand-written backward
passes, checked against numerical gradients and against PyTorch in the tests.

Read in this order: ``perceptron`` (gates and the XOR limit), ``layers`` (affine, activations, softmax with
loss, batch norm, dropout), ``conv`` (im2col convolution and pooling), ``gradcheck`` (central differences),
``optimizers`` (SGD to Adam, each matching ``torch.optim``), ``network`` (a two-layer net trained by backprop).
Nothing here uses autograd; the only dependency is numpy.
"""

from lit_models.scratch.conv import AveragePooling, Convolution, MaxPooling, col2im, im2col
from lit_models.scratch.gradcheck import gradient_check, numerical_gradient, relative_error
from lit_models.scratch.layers import (
    Affine,
    BatchNormalization,
    Dropout,
    Layer,
    ReLU,
    Sigmoid,
    SoftmaxWithLoss,
    Tanh,
)
from lit_models.scratch.network import TwoLayerNet, train
from lit_models.scratch.optimizers import SGD, Adadelta, AdaGrad, Adam, Momentum, Nesterov, Optimizer, RMSProp
from lit_models.scratch.perceptron import (
    and_gate,
    nand_gate,
    or_gate,
    perceptron,
    separating_weights,
    train_perceptron,
    xor_gate,
)

__all__ = [
    "SGD",
    "AdaGrad",
    "Adadelta",
    "Adam",
    "Affine",
    "AveragePooling",
    "BatchNormalization",
    "Convolution",
    "Dropout",
    "Layer",
    "MaxPooling",
    "Momentum",
    "Nesterov",
    "Optimizer",
    "RMSProp",
    "ReLU",
    "Sigmoid",
    "SoftmaxWithLoss",
    "Tanh",
    "TwoLayerNet",
    "and_gate",
    "col2im",
    "gradient_check",
    "im2col",
    "nand_gate",
    "numerical_gradient",
    "or_gate",
    "perceptron",
    "relative_error",
    "separating_weights",
    "train",
    "train_perceptron",
    "xor_gate",
]
