"""Convolutional layers on PyTorch: ``F.conv{1,2,3}d`` and ``F.conv_transpose{1,2}d`` on
channels-first tensors, with the padding of :mod:`dualnet.layers.convolutional` applied
explicitly (torch's ``padding="same"`` refuses strides > 1 and its integer padding is symmetric,
while TensorFlow's rule puts the odd pixel at the end). Explicit (torch-style) amounts go to
the convolution itself where they are symmetric and to ``F.pad`` where they are not; a
transposed convolution crops its full output by them, as torch's own ``padding`` does.

channels_last inputs are moved to ``(B, C, ...)`` and back: views, not copies (torch's CPU
and cuDNN kernels read the channels-last memory format directly).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from dualnet.backends.torch.layers.base import (
    Layout,
    Module,
    activate,
    from_channels_first,
    pad_arg,
    to_channels_first,
)

from dualnet import activations as _activations

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def _kernel_layout(rank: int) -> Layout:
    """Keras ``(*k, a, b)`` -> torch ``(b, a, *k)``: a convolution's ``(*k, in/g, out)`` ->
    ``(out, in/g, *k)`` and a transposed one's ``(*k, out, in)`` -> ``(in, out, *k)``."""
    return Layout((rank + 1, rank, *range(rank)))


def _depthwise_layout(shape: Sequence[int]) -> Layout:
    """``(kh, kw, C, m)`` -> ``(C·m, 1, kh, kw)``: filter ``c·m + q`` of ``Conv2d(groups=C)``."""
    kh, kw, c, m = shape
    return Layout((2, 3, 0, 1), (c * m, 1, kh, kw))


class _Conv(Module):
    """Shared: to channels-first, pad, ``conv(x, kernel, bias, strides, padding, dilation,
    groups)``, back, activation. Subclasses give the weights' torch layouts, the native
    convolution and its ``groups``."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray], layouts: dict[str, Layout],
                 conv: Callable[..., torch.Tensor], groups: int):  # fmt: skip
        super().__init__(layer, weights, layouts)
        self.data_format = layer.data_format
        self.activation = layer.activation
        self.conv = conv
        self.groups = groups
        if not layer.use_bias:
            self.bias = None

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        layer = self.layer
        x, padding = self.pad(to_channels_first(x, self.data_format))
        y = self.conv(x, self.kernel, self.bias, layer.strides, padding, layer.dilation_rate,
                      self.groups)  # fmt: skip
        return self.finish(y)

    def finish(self, y: torch.Tensor) -> torch.Tensor:
        y = from_channels_first(y, self.data_format)
        if self.activation is _activations.linear:
            return y
        return activate(self.activation, y)

    def pad(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...] | int]:
        """``(input, padding for F.conv)``: the layer's ``(before, after)`` amounts for this
        input size. Symmetric amounts go to the convolution itself (no copy); otherwise
        ``F.pad`` pads asymmetrically (TensorFlow's odd pixel after, causal all before) and the
        convolution pads nothing (torch's integer padding is symmetric). Explicit amounts take
        the same two routes."""
        amounts = self.layer.padding_amounts(tuple(x.shape[2:]))
        if all(before == after for before, after in amounts):
            return x, tuple(before for before, _ in amounts)
        return F.pad(x, pad_arg(amounts)), 0


class Conv(_Conv):
    """Conv1D/2D/3D: ``F.conv{N}d`` with the padding applied by :meth:`_Conv.pad`."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights, {"kernel": _kernel_layout(layer.rank)},
                         _CONV[layer.rank], layer.groups)  # fmt: skip


class DepthwiseConv2D(_Conv):
    """``F.conv2d(groups=C)`` with the ``(C·m, 1, kh, kw)`` weight."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        shape = layer.weight_specs[0].shape
        super().__init__(layer, weights, {"kernel": _depthwise_layout(shape)}, F.conv2d, shape[2])


class ConvTranspose(_Conv):
    """Conv1D/2DTranspose: the full transposed convolution (``padding=0``; ``output_padding``
    only to make room where the kept window reaches past it), then the window Keras keeps.

    No ``(padding, output_padding)`` pair of torch gives Keras's window in general: torch crops
    ``padding`` rows at *both* ends, TensorFlow's ``same`` rule crops ``total // 2`` before and
    the rest after (for ``k=3, s=2``: ``full[0:2n]``, torch's best match ``full[1:2n+1]``).
    """

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights, {"kernel": _kernel_layout(layer.rank)},
                         _CONV_TRANSPOSE[layer.rank], 1)  # fmt: skip
        self.crop = layer.crop_axes

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        layer = self.layer
        x = to_channels_first(x, self.data_format)
        # The bias goes in with the convolution: the rows past the full output (zeros) get it
        # too, as TensorFlow adds it after its longer output.
        y = self.conv(x, self.kernel, self.bias, layer.strides, 0,
                      tuple(c.extra for c in self.crop), self.groups,
                      layer.dilation_rate)  # fmt: skip
        for axis, (c, n) in enumerate(zip(self.crop, x.shape[2:], strict=True), start=2):
            y = y.narrow(axis, c.start, c.length(n))
        return self.finish(y)


class SeparableConv2D(_Conv):
    """Depthwise ``F.conv2d(groups=C)`` without bias, then the 1×1 pointwise ``F.conv2d``."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        shape = layer.weight_specs[0].shape
        layouts = {"depthwise_kernel": _depthwise_layout(shape),
                   "pointwise_kernel": _kernel_layout(2)}  # fmt: skip
        super().__init__(layer, weights, layouts, F.conv2d, shape[2])

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        layer = self.layer
        x, padding = self.pad(to_channels_first(x, self.data_format))
        h = self.conv(x, self.depthwise_kernel, None, layer.strides, padding,
                      layer.dilation_rate, self.groups)  # fmt: skip
        return self.finish(self.conv(h, self.pointwise_kernel, self.bias))


def conv1d(layer: Any, weights: Sequence[np.ndarray]) -> Conv:
    return Conv(layer, weights)


def conv2d(layer: Any, weights: Sequence[np.ndarray]) -> Conv:
    return Conv(layer, weights)


def conv3d(layer: Any, weights: Sequence[np.ndarray]) -> Conv:
    return Conv(layer, weights)


def conv1d_transpose(layer: Any, weights: Sequence[np.ndarray]) -> ConvTranspose:
    return ConvTranspose(layer, weights)


def conv2d_transpose(layer: Any, weights: Sequence[np.ndarray]) -> ConvTranspose:
    return ConvTranspose(layer, weights)


def depthwise_conv2d(layer: Any, weights: Sequence[np.ndarray]) -> DepthwiseConv2D:
    return DepthwiseConv2D(layer, weights)


def separable_conv2d(layer: Any, weights: Sequence[np.ndarray]) -> SeparableConv2D:
    return SeparableConv2D(layer, weights)
