"""Pooling layers on torch (builders named like the neutral classes): ``F.max_pool{n}d``,
``F.avg_pool{n}d`` and reductions.

torch's pooling kernels take channels first: a channels_last input is moved to
``(N, C, *spatial)`` and back, as views (``base.to_channels_first``); nothing is copied for the
layout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from dualnet.backends.torch.layers.base import (
    HALF,
    Module,
    float32_math,
    from_channels_first,
    pad_arg,
    to_channels_first,
    upcast,
)

from dualnet.layers._spatial import same_padding, spatial_axes

_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


class _WindowPooling(Module):
    """Shared by the window pooling modules: the layer's arguments as plain attributes, and the
    forward pass: ``pool`` (``F.max_pool{n}d`` / ``F.avg_pool{n}d``) on the channels-first view,
    with TensorFlow's ``"same"`` padding given to torch's kernel where it is symmetric
    (``padding_kwargs``: the extra arguments that make the kernel pad as dualnet documents) and
    applied by :meth:`asymmetric` where it is not."""

    pool: Callable[..., torch.Tensor]
    padding_kwargs: ClassVar[dict[str, Any]] = {}

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        self.dims = layer.spatial_dims
        self.kernel_size = layer.pool_size
        self.stride = layer.strides
        self.same = layer.padding == "same"
        self.data_format = layer.data_format

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        x = to_channels_first(x, self.data_format)
        if not self.same:
            y = self.pool(x, self.kernel_size, self.stride)
        else:
            pads = self.same_pads(x)
            if all(before == after for before, after in pads):
                padding = tuple(before for before, _ in pads)
                y = self.pool(x, self.kernel_size, self.stride, padding=padding,
                              **self.padding_kwargs)  # fmt: skip
            else:
                # TF puts the odd position at the end, which torch's padding cannot express.
                y = self.asymmetric(x, pads)
        return from_channels_first(y, self.data_format)

    def same_pads(self, x: torch.Tensor) -> list[tuple[int, int]]:
        """TensorFlow's ``"same"`` (before, after) per spatial axis of a channels-first ``x``."""
        sizes = zip(x.shape[2:], self.kernel_size, self.stride, strict=True)
        return [same_padding(n, k, s) for n, k, s in sizes]

    def asymmetric(self, x: torch.Tensor, pads: list[tuple[int, int]]) -> torch.Tensor:
        raise NotImplementedError


class MaxPooling(_WindowPooling):
    """``F.max_pool{n}d``; ``"same"`` pads with −inf, so padding never wins a window.

    Symmetric amounts use torch's own padding, which is −inf (and ``before <= (k − 1) // 2 <=
    k / 2``, the most torch accepts)."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        self.pool = _MAX_POOL[self.dims]

    def asymmetric(self, x: torch.Tensor, pads: list[tuple[int, int]]) -> torch.Tensor:
        # Padded explicitly with −inf: a zero would win over all-negative border windows.
        return self.pool(F.pad(x, pad_arg(pads), value=-float("inf")), self.kernel_size,
                         self.stride)  # fmt: skip


class AveragePooling(_WindowPooling):
    """``F.avg_pool{n}d`` dividing by the real positions of each window (Keras's rule)."""

    # count_include_pad=False: torch's default (True) would divide border windows by the full
    # window size, counting the padded zeros.
    padding_kwargs: ClassVar[dict[str, Any]] = {"count_include_pad": False}

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        self.pool = _AVG_POOL[self.dims]
        self._counts: dict[tuple, torch.Tensor] = {}

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        # Averaged in float32 and rounded once, as on TensorFlow (in half precision the
        # asymmetric path's sum and division would round twice, and torch has no half
        # avg_pool3d on the CPU).
        return float32_math(super().forward, x)

    def asymmetric(self, x: torch.Tensor, pads: list[tuple[int, int]]) -> torch.Tensor:
        """Sum the explicitly zero-padded windows (``divisor_override=1``) and divide by the
        number of real positions of each window, an exact small integer."""
        padded = F.pad(x, pad_arg(pads))
        if self.dims == 1:  # avg_pool1d has no divisor_override: pool (1, L) maps in 2-D
            total = F.avg_pool2d(padded.unsqueeze(2), (1, *self.kernel_size), (1, *self.stride),
                                 divisor_override=1).squeeze(2)  # fmt: skip
        else:
            total = self.pool(padded, self.kernel_size, self.stride, divisor_override=1)
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
        if x.dtype in HALF:
            # Summed in float32 by the kernel itself (no float32 copy of x) and rounded once, as
            # Keras's mean does.
            return x.mean(dim=axes, keepdim=self.keepdims, dtype=torch.float32).to(x.dtype)
        return x.mean(dim=axes, keepdim=self.keepdims)


class GlobalAveragePooling1D(GlobalPooling):
    """The mean over the steps; with a mask (Note [Masks] in :mod:`dualnet.layers.base`) the
    mean over the valid steps, 0 for a row without any (Keras divides 0 by 0: NaN)."""

    def forward(self, x: torch.Tensor, training: bool = False,
                mask: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        if mask is None:
            return super().forward(x, training)
        steps = 2 if self.data_format == "channels_first" else 1
        keep = mask.to(torch.bool).unsqueeze(1 if self.data_format == "channels_first" else 2)
        v = upcast(x)  # half precision: summed in float32 and rounded once at the end
        total = torch.where(keep, v, torch.zeros((), dtype=v.dtype, device=v.device))
        total = total.sum(dim=steps, keepdim=self.keepdims)
        # The count of valid steps, at least 1: a fully masked row is 0/1 = 0.
        count = keep.sum(dim=steps, keepdim=self.keepdims).clamp(min=1).to(v.dtype)
        return (total / count).to(x.dtype)

    def compute_mask(self, x: torch.Tensor, mask: Any) -> None:
        return None  # consumed


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
    return GlobalAveragePooling1D(layer, weights)


def global_average_pooling2d(layer: Any, weights: Sequence[np.ndarray]) -> GlobalPooling:
    return GlobalPooling(layer, weights)


def global_max_pooling1d(layer: Any, weights: Sequence[np.ndarray]) -> GlobalPooling:
    return GlobalPooling(layer, weights)


def global_max_pooling2d(layer: Any, weights: Sequence[np.ndarray]) -> GlobalPooling:
    return GlobalPooling(layer, weights)
