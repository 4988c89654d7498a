"""Every hand-written layer's backward pass agrees with central differences, and its forward and backward
passes agree with PyTorch autograd on the ``torch.nn.functional`` counterpart, in float64.

Tolerances: a gradient check passes below 1e-7 relative error (measured errors are about 1e-10 to 3e-10); the
comparison with PyTorch is to 1e-10 relative and 1e-12 absolute (the two differ only in summation order).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lit_models.scratch import (
    Affine,
    AveragePooling,
    BatchNormalization,
    Convolution,
    Dropout,
    MaxPooling,
    ReLU,
    Sigmoid,
    SoftmaxWithLoss,
    Tanh,
    col2im,
    gradient_check,
    im2col,
    numerical_gradient,
)

GRADCHECK_TOLERANCE = 1e-7
TORCH_RTOL, TORCH_ATOL = 1e-10, 1e-12
DROPOUT_RATIO = 0.3
DROPOUT_SEED = 7


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _batch_norm(num_features: int, train: bool) -> BatchNormalization:
    # non-trivial scale, shift and running statistics, so that every term of the formulas is exercised
    rng = _rng()
    layer = BatchNormalization(num_features)
    layer.params["gamma"][:] = rng.uniform(0.5, 1.5, num_features)
    layer.params["beta"][:] = rng.standard_normal(num_features)
    if not train:
        layer.running_mean = rng.standard_normal(num_features)
        layer.running_var = rng.uniform(0.5, 2.0, num_features)
    return layer


def _torch_dropout_mask(shape: tuple[int, ...]) -> np.ndarray:
    """The keep-mask that ``F.dropout`` draws under ``DROPOUT_SEED`` for a tensor of this shape."""
    torch.manual_seed(DROPOUT_SEED)
    return F.dropout(torch.ones(shape, dtype=torch.float64), DROPOUT_RATIO, training=True).numpy() != 0


def _torch_dropout(x: torch.Tensor) -> torch.Tensor:
    torch.manual_seed(DROPOUT_SEED)
    return F.dropout(x, DROPOUT_RATIO, training=True)


def _cases() -> list:
    """(layer, input, forward keyword arguments, the same computation in torch as f(x, **params))."""
    rng = _rng()
    labels = np.array([0, 2, 1, 4, 2])
    soft_targets = rng.dirichlet(np.ones(5), size=5)  # (N, K), rows sum to 1
    mask_shape = (4, 3, 2, 2)
    cases = [
        ("affine", Affine(rng.standard_normal((6, 4)), rng.standard_normal(4)), (5, 6), {},
         lambda x, W, b: F.linear(x, W.T, b)),
        ("affine-on-feature-maps", Affine(rng.standard_normal((12, 3)), rng.standard_normal(3)), (4, 3, 2, 2), {},
         lambda x, W, b: F.linear(x.flatten(1), W.T, b)),
        ("relu", ReLU(), (4, 7), {}, F.relu),
        ("sigmoid", Sigmoid(), (4, 7), {}, torch.sigmoid),
        ("tanh", Tanh(), (4, 7), {}, torch.tanh),
        ("softmax-loss-labels", SoftmaxWithLoss(), (5, 5), {"t": labels},
         lambda x: F.cross_entropy(x, torch.from_numpy(labels))),
        ("softmax-loss-probabilities", SoftmaxWithLoss(), (5, 5), {"t": soft_targets},
         lambda x: F.cross_entropy(x, torch.from_numpy(soft_targets))),
        ("conv", Convolution(rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)), (2, 2, 5, 5), {},
         lambda x, W, b: F.conv2d(x, W, b)),
        ("conv-stride2-pad1", Convolution(rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4), 2, 1),
         (2, 3, 6, 5), {}, lambda x, W, b: F.conv2d(x, W, b, stride=2, padding=1)),
        ("max-pool-2x2", MaxPooling(2, 2), (2, 3, 4, 6), {}, lambda x: F.max_pool2d(x, 2)),
        ("max-pool-3x3-stride1", MaxPooling(3, 3, 1), (2, 2, 5, 5), {}, lambda x: F.max_pool2d(x, 3, 1)),
        ("avg-pool-2x2", AveragePooling(2, 2), (2, 3, 4, 6), {}, lambda x: F.avg_pool2d(x, 2)),
        ("avg-pool-3x2-stride1", AveragePooling(3, 2, 1), (2, 2, 5, 5), {}, lambda x: F.avg_pool2d(x, (3, 2), 1)),
        ("batch-norm-train-features", _batch_norm(5, train=True), (6, 5), {"train": True},
         lambda x, gamma, beta: F.batch_norm(x, None, None, gamma, beta, training=True)),
        ("batch-norm-train-maps", _batch_norm(3, train=True), (2, 3, 4, 4), {"train": True},
         lambda x, gamma, beta: F.batch_norm(x, None, None, gamma, beta, training=True)),
    ]
    bn_features, bn_maps = _batch_norm(5, train=False), _batch_norm(3, train=False)
    cases += [
        ("batch-norm-inference-features", bn_features, (6, 5), {"train": False},
         lambda x, gamma, beta, bn=bn_features: F.batch_norm(
             x, torch.from_numpy(bn.running_mean), torch.from_numpy(bn.running_var), gamma, beta)),
        ("batch-norm-inference-maps", bn_maps, (2, 3, 4, 4), {"train": False},
         lambda x, gamma, beta, bn=bn_maps: F.batch_norm(
             x, torch.from_numpy(bn.running_mean), torch.from_numpy(bn.running_var), gamma, beta)),
        ("dropout", Dropout(DROPOUT_RATIO), mask_shape, {"mask": _torch_dropout_mask(mask_shape)}, _torch_dropout),
    ]
    return [pytest.param(layer, rng.standard_normal(shape), kwargs, torch_forward, id=name)
            for name, layer, shape, kwargs, torch_forward in cases]


@pytest.mark.parametrize("layer, x, forward_kwargs, torch_forward", _cases())
def test_backward_matches_central_differences(layer, x, forward_kwargs, torch_forward):
    assert gradient_check(layer, x, **forward_kwargs) < GRADCHECK_TOLERANCE


@pytest.mark.parametrize("layer, x, forward_kwargs, torch_forward", _cases())
def test_forward_and_backward_match_torch_autograd(layer, x, forward_kwargs, torch_forward):
    out = layer.forward(x, **forward_kwargs)
    dout = np.random.default_rng(1).standard_normal(np.shape(out))
    dx = layer.backward(dout)

    x_torch = torch.tensor(x, requires_grad=True)
    params_torch = {name: torch.tensor(value, requires_grad=True) for name, value in layer.params.items()}
    out_torch = torch_forward(x_torch, **params_torch)
    (out_torch * torch.from_numpy(np.asarray(dout))).sum().backward()

    np.testing.assert_allclose(out, out_torch.detach().numpy(), rtol=TORCH_RTOL, atol=TORCH_ATOL)
    np.testing.assert_allclose(dx, x_torch.grad.numpy(), rtol=TORCH_RTOL, atol=TORCH_ATOL)
    for name, param in params_torch.items():
        np.testing.assert_allclose(layer.grads[name], param.grad.numpy(), rtol=TORCH_RTOL, atol=TORCH_ATOL)


class _SigmoidMissingAFactor(Sigmoid):
    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * self.out  # forgets the (1 - out) factor


class _AffineAveragingTheBiasGradient(Affine):
    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = super().backward(dout)
        self.grads["b"] = dout.mean(axis=0)  # should be the sum over the batch
        return dx


def test_gradient_check_catches_a_wrong_backward():
    rng = _rng()
    assert gradient_check(_SigmoidMissingAFactor(), rng.standard_normal((4, 5))) > 1e-2
    wrong_bias = _AffineAveragingTheBiasGradient(rng.standard_normal((3, 2)), rng.standard_normal(2))
    assert gradient_check(wrong_bias, rng.standard_normal((4, 3))) > 1e-2


def test_numerical_gradient_of_a_known_function_leaves_its_input_unchanged():
    x = _rng().standard_normal((3, 4))
    original = x.copy()
    gradient = numerical_gradient(lambda v: float(np.sum(v**3)), x)
    # the truncation error of central differences on x**3 is exactly h**2 = 1e-10
    np.testing.assert_allclose(gradient, 3 * x**2, rtol=1e-8, atol=1e-9)
    np.testing.assert_array_equal(x, original)


@pytest.mark.parametrize("kernel_h, kernel_w, stride, pad", [(3, 3, 1, 0), (3, 2, 2, 1), (2, 2, 2, 0)])
def test_col2im_is_the_adjoint_of_im2col(kernel_h, kernel_w, stride, pad):
    # <im2col(x), c> == <x, col2im(c)> for every x and c is what makes col2im the backward pass of im2col
    rng = _rng()
    x = rng.standard_normal((2, 3, 6, 5))
    cols = rng.standard_normal(im2col(x, kernel_h, kernel_w, stride, pad).shape)
    lhs = np.sum(im2col(x, kernel_h, kernel_w, stride, pad) * cols)
    rhs = np.sum(x * col2im(cols, x.shape, kernel_h, kernel_w, stride, pad))
    assert lhs == pytest.approx(rhs, rel=1e-12)


@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 2, 2)])
def test_batch_norm_running_statistics_follow_torch(shape):
    rng = _rng()
    layer = _batch_norm(shape[1], train=True)
    running_mean, running_var = torch.zeros(shape[1], dtype=torch.float64), torch.ones(shape[1], dtype=torch.float64)
    gamma, beta = torch.from_numpy(layer.params["gamma"]), torch.from_numpy(layer.params["beta"])
    for _ in range(3):  # batches with a mean and spread far from the initial 0 and 1
        x = 3.0 + 2.0 * rng.standard_normal(shape)
        layer.forward(x, train=True)
        F.batch_norm(torch.from_numpy(x), running_mean, running_var, gamma, beta, training=True, momentum=0.1)
    np.testing.assert_allclose(layer.running_mean, running_mean.numpy(), rtol=TORCH_RTOL)
    np.testing.assert_allclose(layer.running_var, running_var.numpy(), rtol=TORCH_RTOL)

    x = rng.standard_normal(shape)
    expected = F.batch_norm(torch.from_numpy(x), running_mean, running_var, gamma, beta, training=False)
    np.testing.assert_allclose(layer.forward(x, train=False), expected.numpy(), rtol=TORCH_RTOL, atol=TORCH_ATOL)


def test_dropout_scales_survivors_in_training_and_is_the_identity_in_inference():
    layer = Dropout(ratio=0.25, seed=0)
    x = np.ones((200, 500))
    out = layer.forward(x, train=True)
    kept = out != 0
    assert abs(kept.mean() - 0.75) < 0.01  # 100,000 units: the kept fraction is 0.75 +- 0.0014 (1 sigma)
    np.testing.assert_allclose(out[kept], 1 / 0.75)
    assert abs(out.mean() - 1.0) < 0.02  # inverted dropout keeps the expected activation
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), out)  # the same mask scales the gradient
    assert not np.array_equal(layer.forward(x, train=True), out)  # a fresh mask every step

    np.testing.assert_array_equal(layer.forward(x, train=False), x)
    np.testing.assert_array_equal(layer.backward(np.full_like(x, 2.0)), np.full_like(x, 2.0))
