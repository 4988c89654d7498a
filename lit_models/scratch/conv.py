"""Convolution and pooling as matrix products, by unrolling every receptive field into a row (im2col).

``im2col`` copies each filter-sized patch of the padded input into one row, so a convolution becomes a single
matrix product with the flattened filters, and pooling becomes a max or mean along each row. ``col2im`` is its
adjoint: it adds every row back onto the patch it came from (overlapping patches add up), which is exactly the
backward pass of the unrolling. Like ``torch.nn.functional.conv2d`` the convolution is a cross-correlation
(the filter is not flipped).
"""

from __future__ import annotations

import numpy as np

from lit_models.scratch.layers import Layer


def output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def im2col(x: np.ndarray, kernel_h: int, kernel_w: int, stride: int = 1, pad: int = 0) -> np.ndarray:
    """(N, C, H, W) -> (N*OH*OW, C*kernel_h*kernel_w): one row per output position, one column per tap."""
    n, c, h, w = x.shape
    out_h, out_w = output_size(h, kernel_h, stride, pad), output_size(w, kernel_w, stride, pad)
    padded = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])  # (N, C, H+2p, W+2p)
    cols = np.zeros((n, c, kernel_h, kernel_w, out_h, out_w), dtype=x.dtype)
    # loop over the kernel's taps, not over output positions: tap (i, j) sees a strided slice of the input
    for i in range(kernel_h):
        for j in range(kernel_w):
            cols[:, :, i, j] = padded[:, :, i : i + stride * out_h : stride, j : j + stride * out_w : stride]
    return cols.transpose(0, 4, 5, 1, 2, 3).reshape(n * out_h * out_w, -1)


def col2im(
    cols: np.ndarray, input_shape: tuple[int, ...], kernel_h: int, kernel_w: int, stride: int = 1, pad: int = 0
) -> np.ndarray:
    """(N*OH*OW, C*kernel_h*kernel_w) -> (N, C, H, W), adding up the entries of overlapping patches."""
    n, c, h, w = input_shape
    out_h, out_w = output_size(h, kernel_h, stride, pad), output_size(w, kernel_w, stride, pad)
    cols = cols.reshape(n, out_h, out_w, c, kernel_h, kernel_w).transpose(0, 3, 4, 5, 1, 2)
    padded = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=cols.dtype)
    for i in range(kernel_h):
        for j in range(kernel_w):
            padded[:, :, i : i + stride * out_h : stride, j : j + stride * out_w : stride] += cols[:, :, i, j]
    return padded[:, :, pad : pad + h, pad : pad + w]


class Convolution(Layer):
    """2-D convolution with filters ``W`` (FN, C, FH, FW) and bias ``b`` (FN,), stride and zero padding."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray, stride: int = 1, pad: int = 0) -> None:
        super().__init__()
        self.params = {"W": weight, "b": bias}
        self.stride = stride
        self.pad = pad

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        num_filters, _, kernel_h, kernel_w = self.params["W"].shape
        n, _, h, w = x.shape
        out_h = output_size(h, kernel_h, self.stride, self.pad)
        out_w = output_size(w, kernel_w, self.stride, self.pad)
        self.input_shape = x.shape
        self.cols = im2col(x, kernel_h, kernel_w, self.stride, self.pad)  # (N*OH*OW, C*FH*FW)
        self.flat_weight = self.params["W"].reshape(num_filters, -1)  # (FN, C*FH*FW)
        out = self.cols @ self.flat_weight.T + self.params["b"]  # (N*OH*OW, FN)
        return out.reshape(n, out_h, out_w, num_filters).transpose(0, 3, 1, 2)  # (N, FN, OH, OW)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        num_filters, _, kernel_h, kernel_w = self.params["W"].shape
        dout_rows = dout.transpose(0, 2, 3, 1).reshape(-1, num_filters)  # (N*OH*OW, FN)
        self.grads = {
            "W": (dout_rows.T @ self.cols).reshape(self.params["W"].shape),  # (FN, C, FH, FW)
            "b": dout_rows.sum(axis=0),  # (FN,)
        }
        dcols = dout_rows @ self.flat_weight  # (N*OH*OW, C*FH*FW)
        return col2im(dcols, self.input_shape, kernel_h, kernel_w, self.stride, self.pad)


class _Pooling(Layer):
    """Shared plumbing of max and average pooling over (pool_h, pool_w) windows, no padding.

    Pooling pads nothing: zero padding would let a padded zero win a max over negative inputs, where
    PyTorch pads max pooling with -inf.
    """

    def __init__(self, pool_h: int = 2, pool_w: int = 2, stride: int | None = None) -> None:
        super().__init__()
        self.pool_h, self.pool_w = pool_h, pool_w
        self.stride = pool_h if stride is None else stride  # PyTorch's default: stride = kernel size

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        n, c, h, w = x.shape
        out_h = output_size(h, self.pool_h, self.stride, 0)
        out_w = output_size(w, self.pool_w, self.stride, 0)
        self.input_shape = x.shape
        # im2col's columns are ordered (C, pool_h, pool_w): one window per row after this reshape
        windows = im2col(x, self.pool_h, self.pool_w, self.stride).reshape(-1, self.pool_h * self.pool_w)
        out = self._reduce(windows)  # (N*OH*OW*C,)
        return out.reshape(n, out_h, out_w, c).transpose(0, 3, 1, 2)  # (N, C, OH, OW)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout_flat = dout.transpose(0, 2, 3, 1).ravel()  # (N*OH*OW*C,), the windows' order
        dwindows = self._spread(dout_flat)  # (N*OH*OW*C, pool_h*pool_w)
        dcols = dwindows.reshape(dout_flat.size // self.input_shape[1], -1)  # (N*OH*OW, C*pool_h*pool_w)
        return col2im(dcols, self.input_shape, self.pool_h, self.pool_w, self.stride)

    def _reduce(self, windows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _spread(self, dout_flat: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class MaxPooling(_Pooling):
    """The maximum of each window; its gradient flows back only to the input that was the maximum."""

    def _reduce(self, windows: np.ndarray) -> np.ndarray:
        self.argmax = windows.argmax(axis=1)  # (N*OH*OW*C,)
        return windows.max(axis=1)

    def _spread(self, dout_flat: np.ndarray) -> np.ndarray:
        dwindows = np.zeros((dout_flat.size, self.pool_h * self.pool_w))
        dwindows[np.arange(dout_flat.size), self.argmax] = dout_flat
        return dwindows


class AveragePooling(_Pooling):
    """The mean of each window; its gradient is shared equally among the window's inputs."""

    def _reduce(self, windows: np.ndarray) -> np.ndarray:
        return windows.mean(axis=1)

    def _spread(self, dout_flat: np.ndarray) -> np.ndarray:
        size = self.pool_h * self.pool_w
        return np.repeat(dout_flat[:, None] / size, size, axis=1)
