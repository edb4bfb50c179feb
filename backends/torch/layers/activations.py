"""Activation layers on torch: dualnet's activation functions where one fits (their
conventions hold here too), ``F.hardtanh`` and ``torch.where`` for the rest.

float16/bfloat16 inputs are computed in float32 and rounded once, as every dualnet activation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from dualnet.backends.torch.layers.base import Module, activate, float32_math

from dualnet import activations as _activations


def _relu_general(x: torch.Tensor, max_value: float | None, slope: float,
                  threshold: float) -> torch.Tensor:  # fmt: skip
    # Above the threshold: x capped at max_value; where(x >= m, m, x) rather than clamp_max so
    # the derivative at x == m is 0 (clamp's is 1), and NaN falls through to x.
    upper = x if max_value is None else torch.where(x >= max_value, max_value, x)
    # Below: exactly 0 for slope 0 (0·(x - θ) would be NaN at x = -inf).
    below = 0.0 if slope == 0.0 else (x - threshold) * slope
    # x <= θ takes the lower branch (so the derivative at θ is the slope); NaN is not <= θ and
    # propagates through the upper branch.
    return torch.where(x <= threshold, below, upper)


class ReLU(Module):
    """Keras's ReLU: plain relu, leaky relu, hardtanh(0, m) or the general form."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        m, s, t = layer.max_value, layer.negative_slope, layer.threshold
        self.config = (m, s, t)
        if t == 0.0 and m is None:
            self.kind = "relu" if s == 0.0 else "leaky"
            self.leaky = functools.partial(_activations.leaky_relu, negative_slope=s)
        elif t == 0.0 and s == 0.0:
            # One fused kernel: 0 below 0, m above m, derivative 0 at both ends (hardtanh's
            # backward is 0 where x <= 0 or x >= m), NaN propagates.
            self.kind = "hardtanh"
        else:
            self.kind = "general"

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        m, s, t = self.config
        if self.kind == "relu":
            return activate(_activations.relu, x)
        if self.kind == "leaky":
            return activate(self.leaky, x)
        if self.kind == "hardtanh":
            return float32_math(F.hardtanh, x, 0.0, m)
        return float32_math(_relu_general, x, m, s, t)


class _Bound(Module):
    """A dualnet activation function with the layer's arguments bound to it (``fn``)."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray], fn: Callable[..., Any]):
        super().__init__(layer, weights)
        self.fn = fn

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        return activate(self.fn, x)


class LeakyReLU(_Bound):
    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        slope = layer.negative_slope
        super().__init__(layer, weights, functools.partial(_activations.leaky_relu,
                                                           negative_slope=slope))  # fmt: skip


def _prelu(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    # x > 0 is the identity branch, so the derivative at 0 is alpha (torch's F.prelu rule);
    # alpha (the input's shape without the batch, 1 on shared axes) broadcasts from the right.
    return torch.where(x > 0, x, alpha * x)


class PReLU(Module):
    """Keras's PReLU; ``alpha`` is stored in the canonical (Keras) shape."""

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        return float32_math(_prelu, x, self.alpha)


class ELU(_Bound):
    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights, functools.partial(_activations.elu, alpha=layer.alpha))


def _softmax_axes(x: torch.Tensor, axes: tuple[int, ...]) -> torch.Tensor:
    # Several axes at once (nn.Softmax takes one dim): exp(x - logsumexp), as Keras.
    return torch.exp(x - torch.logsumexp(x, dim=axes, keepdim=True))


class Softmax(Module):
    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        self.axes_by_rank: dict[int, tuple[int, ...]] = {}

    def forward(self, x: torch.Tensor, training: bool = False,
                mask: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        axes = self.axes_by_rank.get(x.dim())
        if axes is None:
            axes = self.axes_by_rank[x.dim()] = self.layer.resolve_axes(x.dim())
        if mask is not None:
            return self._masked(x, mask, axes)
        if len(axes) == 1:
            # The axis explicitly: nn.Softmax() without dim would pick dim 0 for 3-D inputs.
            return activate(functools.partial(_activations.softmax, axis=axes[0]), x)
        return float32_math(_softmax_axes, x, axes)

    def _masked(self, x: torch.Tensor, mask: torch.Tensor, axes: tuple[int, ...]) -> torch.Tensor:
        """The softmax over the valid entries only (the mask covers x's leading axes and is
        broadcast over the others); masked entries, and a slice without a valid entry, are 0."""
        m = mask.to(device=x.device, dtype=torch.bool)
        keep = m.reshape(*m.shape, *(1,) * (x.dim() - m.dim())).expand(x.shape)
        xc = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        # The lowest finite value, not -inf: a slice without a valid entry stays finite (its
        # uniform softmax is then zeroed); next to a valid entry it underflows to exactly 0.
        z = torch.where(keep, xc, torch.finfo(xc.dtype).min)
        if len(axes) == 1:
            y = activate(functools.partial(_activations.softmax, axis=axes[0]), z)
        else:
            y = _softmax_axes(z, axes)
        return torch.where(keep, y, torch.zeros((), dtype=y.dtype, device=y.device)).to(x.dtype)


def re_lu(layer: Any, weights: Sequence[np.ndarray]) -> ReLU:
    return ReLU(layer, weights)


def leaky_re_lu(layer: Any, weights: Sequence[np.ndarray]) -> LeakyReLU:
    return LeakyReLU(layer, weights)


def p_re_lu(layer: Any, weights: Sequence[np.ndarray]) -> PReLU:
    return PReLU(layer, weights)


def elu(layer: Any, weights: Sequence[np.ndarray]) -> ELU:
    return ELU(layer, weights)


def softmax(layer: Any, weights: Sequence[np.ndarray]) -> Softmax:
    return Softmax(layer, weights)
