"""Pooling layers on torch (builders named like the neutral classes): ``F.max_pool{n}d``,
``F.avg_pool{n}d`` and reductions.

torch's pooling kernels take channels first. A channels_last input is moved to
``(N, C, *spatial)`` with ``movedim`` — a view whose strides are torch's channels-last memory
format, which the CPU kernels read natively for 2-D and 3-D — and the result is moved back (a
view too); nothing is copied for the layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from dualnet.backends.torch.layers.base import Module

from dualnet.layers.pooling import same_padding, spatial_axes

_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
_HALF = (torch.float16, torch.bfloat16)


def _channels_first(x: torch.Tensor, data_format: str) -> torch.Tensor:
    return x if data_format == "channels_first" else x.movedim(-1, 1)


def _restore(y: torch.Tensor, data_format: str) -> torch.Tensor:
    return y if data_format == "channels_first" else y.movedim(1, -1)


def _pad_arg(pads: Sequence[tuple[int, int]]) -> list[int]:
    """``F.pad``'s argument: (before, after) pairs from the last axis to the first."""
    return [p for pair in reversed(pads) for p in pair]


class _WindowPooling(Module):
    """Shared by the window pooling modules: the layer's arguments as plain attributes."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        self.dims = layer.spatial_dims
        self.kernel_size = layer.pool_size
        self.stride = layer.strides
        self.same = layer.padding == "same"
        self.data_format = layer.data_format

    def same_pads(self, x: torch.Tensor) -> list[tuple[int, int]]:
        """TensorFlow's ``"same"`` (before, after) per spatial axis of a channels-first ``x``."""
        sizes = zip(x.shape[2:], self.kernel_size, self.stride, strict=True)
        return [same_padding(n, k, s) for n, k, s in sizes]


class MaxPooling(_WindowPooling):
    """``F.max_pool{n}d``; ``"same"`` pads with −inf, so padding never wins a window."""

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        x = _channels_first(x, self.data_format)
        pool = _MAX_POOL[self.dims]
        if not self.same:
            y = pool(x, self.kernel_size, self.stride)
        else:
            pads = self.same_pads(x)
            if all(before == after for before, after in pads):
                # Symmetric: torch's own padding is −inf (and before <= (k − 1) // 2 <= k / 2,
                # the most torch accepts).
                y = pool(x, self.kernel_size, self.stride, padding=tuple(b for b, _ in pads))
            else:
                # TF puts the odd position at the end, which torch's padding cannot express:
                # pad explicitly, with −inf — a zero would win over all-negative border windows.
                y = pool(F.pad(x, _pad_arg(pads), value=-float("inf")), self.kernel_size,
                         self.stride)  # fmt: skip
        return _restore(y, self.data_format)


class AveragePooling(_WindowPooling):
    """``F.avg_pool{n}d`` dividing by the real positions of each window (Keras's rule)."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        self._counts: dict[tuple, torch.Tensor] = {}

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        dtype = x.dtype
        if dtype in _HALF:
            x = x.float()  # averaged in float32 and rounded once at the end, as on TensorFlow
        x = _channels_first(x, self.data_format)
        pool = _AVG_POOL[self.dims]
        if not self.same:
            y = pool(x, self.kernel_size, self.stride)
        else:
            pads = self.same_pads(x)
            if all(before == after for before, after in pads):
                # count_include_pad=False: torch's default (True) would divide border windows by
                # the full window size, counting the padded zeros.
                y = pool(x, self.kernel_size, self.stride, padding=tuple(b for b, _ in pads),
                         count_include_pad=False)  # fmt: skip
            else:
                y = self._asymmetric(x, pads)
        return _restore(y, self.data_format).to(dtype)

    def _asymmetric(self, x: torch.Tensor, pads: list[tuple[int, int]]) -> torch.Tensor:
        """TF's odd padding position at the end has no torch ``padding=`` equivalent: sum the
        explicitly zero-padded windows (``divisor_override=1``) and divide by the number of
        real positions of each window, an exact small integer."""
        padded = F.pad(x, _pad_arg(pads))
        if self.dims == 1:  # avg_pool1d has no divisor_override: pool (1, L) maps in 2-D
            total = F.avg_pool2d(padded.unsqueeze(2), (1, *self.kernel_size), (1, *self.stride),
                                 divisor_override=1).squeeze(2)  # fmt: skip
        else:
            total = _AVG_POOL[self.dims](padded, self.kernel_size, self.stride,
                                         divisor_override=1)  # fmt: skip
        return total / self._real_counts(tuple(x.shape[2:]), pads, x.dtype, x.device)

    def _real_counts(self, spatial: tuple[int, ...], pads: list[tuple[int, int]],
                     dtype: torch.dtype, device: torch.device) -> torch.Tensor:  # fmt: skip
        key = (spatial, dtype, device)
        if key not in self._counts:
            count = np.ones(())
            for n, k, s, (before, _) in zip(spatial, self.kernel_size, self.stride, pads,
                                            strict=True):  # fmt: skip
                starts = np.arange(-(-n // s)) * s - before
                # Real positions of the window [start, start + k) ∩ [0, n), per output position.
                per_axis = np.minimum(starts + k, n) - np.maximum(starts, 0)
                count = np.multiply.outer(count, per_axis)
            self._counts[key] = torch.as_tensor(count, dtype=dtype, device=device)
        return self._counts[key]


class GlobalPooling(Module):
    """A mean (in float32 for half inputs) or ``amax`` over the spatial axes."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        self.average = layer.mode == "average"
        self.keepdims = layer.keepdims
        self.data_format = layer.data_format

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        axes = spatial_axes(x.ndim, self.data_format)
        if not self.average:
            return torch.amax(x, dim=axes, keepdim=self.keepdims)
        if x.dtype in _HALF:  # summed in float32 and rounded once, as Keras's mean does
            return x.mean(dim=axes, keepdim=self.keepdims, dtype=torch.float32).to(x.dtype)
        return x.mean(dim=axes, keepdim=self.keepdims)


def max_pooling1d(layer: Any, weights: Sequence[np.ndarray]) -> MaxPooling:
    return MaxPooling(layer, weights)


def max_pooling2d(layer: Any, weights: Sequence[np.ndarray]) -> MaxPooling:
    return MaxPooling(layer, weights)


def max_pooling3d(layer: Any, weights: Sequence[np.ndarray]) -> MaxPooling:
    return MaxPooling(layer, weights)


def average_pooling1d(layer: Any, weights: Sequence[np.ndarray]) -> AveragePooling:
    return AveragePooling(layer, weights)


def average_pooling2d(layer: Any, weights: Sequence[np.ndarray]) -> AveragePooling:
    return AveragePooling(layer, weights)


def average_pooling3d(layer: Any, weights: Sequence[np.ndarray]) -> AveragePooling:
    return AveragePooling(layer, weights)


def global_average_pooling1d(layer: Any, weights: Sequence[np.ndarray]) -> GlobalPooling:
    return GlobalPooling(layer, weights)


def global_average_pooling2d(layer: Any, weights: Sequence[np.ndarray]) -> GlobalPooling:
    return GlobalPooling(layer, weights)


def global_max_pooling1d(layer: Any, weights: Sequence[np.ndarray]) -> GlobalPooling:
    return GlobalPooling(layer, weights)


def global_max_pooling2d(layer: Any, weights: Sequence[np.ndarray]) -> GlobalPooling:
    return GlobalPooling(layer, weights)
