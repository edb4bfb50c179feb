"""Preprocessing layers on torch (builders named like the neutral classes): Rescaling as the
two element-wise operations Keras runs, ``x * scale`` then ``+ offset``.

A Python-number operand enters torch's kernel as a CPU scalar converted to the computation's
``opmath`` type (float for float32 and half inputs, double for float64): exactly Keras's
``cast(scale, compute dtype)``. A per-channel list becomes a tensor of the compute dtype.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from dualnet.backends.torch import core
from dualnet.backends.torch.layers.base import HALF, Module


class Rescaling(Module):
    """``x·scale + offset`` in the layer's dtype (float32 for half precision, rounded once at
    the end); the addition is made even for a zero offset, as Keras makes it (so ``-0.0·s``
    becomes ``+0.0``, and ``offset=-0.0`` keeps every bit of ``x·s``)."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        self.dtype = core.native_dtype(layer.dtype)
        self.scale = layer.scale
        self.offset = layer.offset

    @staticmethod
    def _operand(value: float | tuple[float, ...], x: torch.Tensor) -> Any:
        # A number stays a Python scalar (torch converts it to x's opmath type, as Keras casts
        # it); a list becomes a tensor of x's dtype, broadcast along the last axis.
        if isinstance(value, tuple):
            return torch.tensor(value, dtype=x.dtype, device=x.device)
        return value

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        # Keras casts any input (integers too) to the compute dtype first.
        x = x if x.dtype == self.dtype else x.to(self.dtype)
        xc = x.float() if x.dtype in HALF else x  # dualnet's half rule: float32, rounded once
        y = xc * self._operand(self.scale, xc) + self._operand(self.offset, xc)
        return y.to(x.dtype)


def rescaling(layer: Any, weights: Sequence[np.ndarray]) -> Rescaling:
    return Rescaling(layer, weights)
