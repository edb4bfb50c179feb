"""Reshaping layers on torch (builders named like the neutral classes): views where possible,
``F.pad``, slicing, ``repeat_interleave`` and ``F.interpolate``.

Shape arguments of the neutral layers exclude the batch and follow Keras's conventions
(1-based ``Permute`` dims, ``((top, bottom), (left, right))`` padding, the layer's
``data_format``); each module translates them to torch's at the line that uses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from dualnet.backends.torch.layers.base import (
    Module,
    float32_math,
    from_channels_first,
    pad_arg,
    to_channels_first,
)


class Flatten(Module):
    """``x.reshape(N, -1)``; channels_first inputs first move the channels last (Keras's rule,
    not torch's ``x.flatten(1)`` order)."""

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        if self.layer.data_format == "channels_first" and x.ndim > 2:
            x = x.movedim(1, -1)
        return x.reshape(x.shape[0], -1)  # a rank-1 (N,) input becomes (N, 1), as in Keras


class Reshape(Module):
    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.layer.target_shape)  # target_shape excludes the batch


class Permute(Module):
    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        self.order = (0, *layer.dims)  # Keras's dims are 1-based and exclude the batch

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        return x.permute(self.order)


class RepeatVector(Module):
    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        return x.unsqueeze(1).expand(-1, self.layer.n, -1)  # a view; autograd sums the copies


class ZeroPadding(Module):
    """``F.pad`` with zeros (1-D and 2-D)."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        pairs = layer.padding if isinstance(layer.padding[0], tuple) else (layer.padding,)
        # F.pad pads trailing axes: channels_last data has the (unpadded) channels last.
        unpadded = [] if layer.data_format == "channels_first" else [(0, 0)]
        self.pad = pad_arg([*pairs, *unpadded])

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        return F.pad(x, self.pad)


class Cropping(Module):
    """Basic slicing (a view), ``start:length − end`` per cropped axis."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray], axes: Sequence[int],
                 pairs: Sequence[tuple[int, int]]):  # fmt: skip
        super().__init__(layer, weights)
        self.crops = list(zip(axes, pairs, strict=True))

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        for axis, (start, end) in self.crops:
            x = x.narrow(axis, start, x.shape[axis] - start - end)
        return x


class UpSampling1D(Module):
    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        return x.repeat_interleave(self.layer.size, dim=1)


class UpSampling2D(Module):
    """``F.interpolate`` on the channels-first view of the input.

    ``nearest`` uses torch's ``"nearest-exact"`` (source ``floor((i + ½)/s)``): for integer
    factors both it and ``"nearest"`` (``floor(i·(1/s))``) are a pixel repeat, but only the
    former keeps a half-pixel margin against the rounding of ``1/s``. ``bilinear`` is
    ``align_corners=False``, the half-pixel rule Keras uses."""

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        layer = self.layer
        x = to_channels_first(x, layer.data_format)
        size = (x.shape[2] * layer.size[0], x.shape[3] * layer.size[1])
        if layer.interpolation == "nearest":
            y = F.interpolate(x, size=size, mode="nearest-exact")
        else:  # interpolated in float32 and rounded once for half inputs, as on TensorFlow
            y = float32_math(F.interpolate, x, size=size, mode="bilinear", align_corners=False)
        return from_channels_first(y, layer.data_format)


def _spatial(layer: Any, ndim: int) -> tuple[int, ...]:
    first = layer.data_format == "channels_first"
    return tuple(range(2, ndim)) if first else tuple(range(1, ndim - 1))


def flatten(layer: Any, weights: Sequence[np.ndarray]) -> Flatten:
    return Flatten(layer, weights)


def reshape(layer: Any, weights: Sequence[np.ndarray]) -> Reshape:
    return Reshape(layer, weights)


def permute(layer: Any, weights: Sequence[np.ndarray]) -> Permute:
    return Permute(layer, weights)


def repeat_vector(layer: Any, weights: Sequence[np.ndarray]) -> RepeatVector:
    return RepeatVector(layer, weights)


def zero_padding1d(layer: Any, weights: Sequence[np.ndarray]) -> ZeroPadding:
    return ZeroPadding(layer, weights)


def zero_padding2d(layer: Any, weights: Sequence[np.ndarray]) -> ZeroPadding:
    return ZeroPadding(layer, weights)


def cropping1d(layer: Any, weights: Sequence[np.ndarray]) -> Cropping:
    return Cropping(layer, weights, (1,), (layer.cropping,))


def cropping2d(layer: Any, weights: Sequence[np.ndarray]) -> Cropping:
    return Cropping(layer, weights, _spatial(layer, 4), layer.cropping)


def up_sampling1d(layer: Any, weights: Sequence[np.ndarray]) -> UpSampling1D:
    return UpSampling1D(layer, weights)


def up_sampling2d(layer: Any, weights: Sequence[np.ndarray]) -> UpSampling2D:
    return UpSampling2D(layer, weights)
