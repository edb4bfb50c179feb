"""Pooling layers on torch (builders named like the neutral classes): ``F.max_pool{n}d``,
``F.avg_pool{n}d`` and reductions.

torch's pooling kernels take channels first: a channels_last input is moved to
``(N, C, *spatial)`` and back, as views (``base.to_channels_first``); nothing is copied for the
layout.

Explicit (torch-style) padding is torch's own: symmetric amounts go to the kernel with the
layer's ``ceil_mode`` and ``count_include_pad``; unequal ``(before, after)`` amounts are padded
by ``F.pad`` (−inf for a max, zeros for a mean divided by torch's divisor).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

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

from dualnet.layers._spatial import spatial_axes

_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


class _WindowPooling(Module):
    """Shared by the window pooling modules: the layer's arguments as plain attributes, and the
    forward pass: ``pool`` (``F.max_pool{n}d`` / ``F.avg_pool{n}d``) on the channels-first view,
    with the padding given to torch's kernel where it is symmetric (``native_kwargs``: the
    extra arguments that make the kernel pad as dualnet documents) and applied by
    :meth:`asymmetric` where it is not: TensorFlow's ``"same"`` odd position at the end, or
    explicit ``(before, after)`` pairs that differ."""

    pool: Callable[..., torch.Tensor]

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        self.dims = layer.spatial_dims
        self.kernel_size = layer.pool_size
        self.stride = layer.strides
        self.same = layer.padding == "same"
        self.explicit = layer.explicit_padding is not None
        self.data_format = layer.data_format

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        x = to_channels_first(x, self.data_format)
        if not (self.same or self.explicit):
            y = self.pool(x, self.kernel_size, self.stride)
        else:
            pads = self.layer.padding_amounts(tuple(x.shape[2:]))
            if all(before == after for before, after in pads):
                padding = tuple(before for before, _ in pads)
                y = self.pool(x, self.kernel_size, self.stride, padding=padding,
                              **self.native_kwargs())  # fmt: skip
            else:
                # TF's odd position at the end, or unequal explicit amounts: torch's padding
                # argument is symmetric.
                y = self.asymmetric(x)
        return from_channels_first(y, self.data_format)

    def native_kwargs(self) -> dict[str, Any]:
        """The kernel's options besides ``padding``: explicit amounts keep torch's own
        ``ceil_mode`` (and ``count_include_pad``, average pooling)."""
        return {"ceil_mode": self.layer.ceil_mode} if self.explicit else {}

    def padded(self, x: torch.Tensor, value: float) -> torch.Tensor:
        """Channels-first ``x`` padded with ``value`` so that a ``"valid"`` pool gives the
        layer's windows (:meth:`~dualnet.layers.pooling.MaxPooling2D.window_pads`: the
        ``ceil_mode`` overhang added, trailing positions in no window dropped)."""
        pads = self.layer.window_pads(tuple(x.shape[2:]))
        x = F.pad(x, pad_arg([(before, max(after, 0)) for before, after in pads]), value=value)
        for axis, (n, (_, after)) in enumerate(zip(x.shape[2:], pads, strict=True), start=2):
            if after < 0:  # positions in no window: kept out of the valid pool's count
                x = x.narrow(axis, 0, n + after)
        return x

    def asymmetric(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class MaxPooling(_WindowPooling):
    """``F.max_pool{n}d``; ``"same"`` and explicit amounts pad with −inf, so padding never wins
    a window.

    Symmetric amounts use torch's own padding, which is −inf (``before <= k // 2``, the most
    torch accepts: ``"same"`` pads at most ``(k − 1) // 2`` before, explicit amounts are
    checked by the layer), with the layer's ``ceil_mode`` for explicit amounts."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        self.pool = _MAX_POOL[self.dims]

    def asymmetric(self, x: torch.Tensor) -> torch.Tensor:
        # Padded explicitly with −inf: a zero would win over all-negative border windows.
        return self.pool(self.padded(x, -float("inf")), self.kernel_size, self.stride)


class AveragePooling(_WindowPooling):
    """``F.avg_pool{n}d``: for ``"same"`` dividing by the real positions of each window (Keras's
    rule), for explicit amounts by torch's divisor (``count_include_pad``, ``ceil_mode``)."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        self.pool = _AVG_POOL[self.dims]
        self._counts: dict[tuple, torch.Tensor] = {}

    def native_kwargs(self) -> dict[str, Any]:
        if self.explicit:  # torch's own rule, the layer's options
            return {"ceil_mode": self.layer.ceil_mode,
                    "count_include_pad": self.layer.count_include_pad}  # fmt: skip
        # "same": torch's default (True) would divide border windows by the full window size,
        # counting the padded zeros.
        return {"count_include_pad": False}

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        # Averaged in float32 and rounded once, as on TensorFlow (in half precision the
        # asymmetric path's sum and division would round twice, and torch has no half
        # avg_pool3d on the CPU).
        return float32_math(super().forward, x)

    def asymmetric(self, x: torch.Tensor) -> torch.Tensor:
        """Sum the explicitly zero-padded windows (``divisor_override=1``) and divide by the
        layer's divisor of each window (:meth:`~dualnet.layers.pooling.AveragePooling2D.
        window_counts`), an exact small integer."""
        padded = self.padded(x, 0.0)
        if self.dims == 1:  # avg_pool1d has no divisor_override: pool (1, L) maps in 2-D
            total = F.avg_pool2d(padded.unsqueeze(2), (1, *self.kernel_size), (1, *self.stride),
                                 divisor_override=1).squeeze(2)  # fmt: skip
        else:
            total = self.pool(padded, self.kernel_size, self.stride, divisor_override=1)
        return total / self._divisors(tuple(x.shape[2:]), x.dtype, x.device)

    def _divisors(self, spatial: tuple[int, ...], dtype: torch.dtype,
                  device: torch.device) -> torch.Tensor:  # fmt: skip
        key = (spatial, dtype, device)
        if key not in self._counts:
            count = np.ones(())
            for per_axis in self.layer.window_counts(spatial):  # a window's count: the product
                count = np.multiply.outer(count, np.asarray(per_axis, dtype=np.float64))
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
