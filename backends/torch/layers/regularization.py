"""Regularization layers on torch: the masks and noise come from the neutral layer (Note
[Portable noise] in :mod:`dualnet.layers.regularization`), never from torch's generator, so
they are the ones TensorFlow applies too. ``F.dropout`` is not used: it draws its own mask.

The module asks the neutral layer (``self.layer``) for the noise of each training call, so the
count of calls advances whether the layer is called alone or inside a model's native module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from dualnet.backends.torch.layers.base import Module, float32_math, host_draw


def _host(array: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """A host-drawn array on ``like``'s device (one copy; no copy on the CPU)."""
    return torch.from_numpy(array).to(device=like.device)


class Dropout(Module):
    """``where(keep, x·scale, 0)``: Dropout, SpatialDropout1D and SpatialDropout2D (they differ
    only in the mask shape, which the neutral layer gives)."""

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        if not training:
            return x
        keep = host_draw(self.layer.next_mask, tuple(x.shape))
        if keep is None:  # rate 0
            return x
        keep = _host(keep, x)
        scale = self.layer.scale

        def drop(v: torch.Tensor) -> torch.Tensor:
            # A Python float multiplies in v's dtype (the scale rounded once to it); where()
            # keeps a dropped inf or NaN at 0, as Keras does (x·mask would give NaN).
            return torch.where(keep, v * scale, 0.0)

        # Half inputs: torch would compute x·scale in float32 anyway (opmath); written out so
        # both backends follow one rule: float32 math with the scale rounded to float32, one
        # rounding to half at the end.
        return float32_math(drop, x)


class _Noise(Module):
    """``op(x, noise)`` with the neutral layer's noise for each training call (drawn in the
    compute dtype: float32 for half layers, rounded once after ``op``)."""

    op: ClassVar[Callable[..., torch.Tensor]]

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        if not training:
            return x
        noise = host_draw(self.layer.next_noise, tuple(x.shape))
        if noise is None:  # stddev or rate 0
            return x
        return float32_math(self.op, x, _host(noise, x))


class GaussianNoise(_Noise):
    """``x + noise`` with the neutral layer's noise."""

    op = staticmethod(torch.add)


class GaussianDropout(_Noise):
    """``x · factor`` with the neutral layer's factor ``1 + σ·n``."""

    op = staticmethod(torch.mul)


def dropout(layer: Any, weights: Sequence[np.ndarray]) -> Dropout:
    return Dropout(layer, weights)


def spatial_dropout1d(layer: Any, weights: Sequence[np.ndarray]) -> Dropout:
    return Dropout(layer, weights)


def spatial_dropout2d(layer: Any, weights: Sequence[np.ndarray]) -> Dropout:
    return Dropout(layer, weights)


def gaussian_noise(layer: Any, weights: Sequence[np.ndarray]) -> GaussianNoise:
    return GaussianNoise(layer, weights)


def gaussian_dropout(layer: Any, weights: Sequence[np.ndarray]) -> GaussianDropout:
    return GaussianDropout(layer, weights)
