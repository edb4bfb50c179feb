"""Normalization layers on PyTorch (builders named like the neutral classes), on torch's fused
kernels: ``F.batch_norm``, ``F.layer_norm``, ``F.group_norm``, ``F.rms_norm``.

Conventions fixed here (see :mod:`dualnet.layers.normalization` for the rules):

* the channel axis of channels-last data is moved to dim 1 as a *view* for ``F.batch_norm`` and
  ``F.group_norm`` (a 4-D NHWC tensor viewed as NCHW is torch's channels_last memory format,
  which both kernels run without a copy) and moved back;
* ``F.layer_norm`` and ``F.rms_norm`` only normalise trailing dimensions: LayerNormalization
  permutes other axes to the end, RMSNormalization computes them from a mean of squares;
* float16/bfloat16 inputs are normalised in float32 and rounded once at the end (Keras does the
  same), whatever torch's kernel would do with half tensors;
* BatchNormalization's moving statistics: ``F.batch_norm`` updates copies with torch's rule
  (momentum given as Keras's ``1 - momentum``; the unbiased variance), then dualnet converts the
  variance to Keras's biased update exactly and stores both, under ``torch.no_grad``: the
  update is never part of the autograd graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from dualnet.backends.torch.layers.base import Module, broadcast_over, upcast


def _cast(w: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """A weight in the compute dtype (float32 for half-precision layers); None stays None."""
    return None if w is None else w.to(dtype)


def _trailing(axes: Sequence[int], ndim: int) -> bool:
    """Whether ``axes`` are the last ``len(axes)`` dimensions (what F.layer_norm/rms_norm take)."""
    return tuple(axes) == tuple(range(ndim - len(axes), ndim))


class _Affine(Module):
    """Shared by the layers with optional ``gamma``/``beta``: absent ones are None."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        names = set(layer.weight_names())
        if "gamma" not in names:
            self.gamma = None
        if "beta" not in names:
            self.beta = None
        self.axes = layer.axes
        self.ndim = len(layer.input_shape)
        self.epsilon = layer.epsilon


class BatchNormalization(_Affine):
    """``F.batch_norm`` on a channels-first view, in training with the moving statistics
    updated by the kernel itself (one pass over the data for the statistics; a separate
    ``torch.var_mean`` costs ~8x the kernel's own on CPU) and converted to Keras's rule by
    :meth:`_update`."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        self.axis = layer.channel_axis
        self.reduce = layer.reduction_axes()
        self.momentum = layer.momentum
        self.unbiased = layer.moving_variance_estimator == "unbiased"

    def forward(self, x: torch.Tensor, training: bool = False,
                mask: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        training = self.effective_training(training)
        xc = upcast(x)
        gamma, beta = _cast(self.gamma, xc.dtype), _cast(self.beta, xc.dtype)
        if training and mask is not None:
            return self._masked(x, xc, gamma, beta, mask)
        count = xc.numel() // max(xc.shape[self.axis], 1)  # values per channel
        if training:
            self.layer.check_batch_statistics(count)  # before anything is computed or updated
            if count == 1:
                return self._single_value(x, xc, gamma, beta)
        view = xc if self.axis == 1 else xc.movedim(self.axis, 1)
        # Copies in the compute dtype: the kernel updates them in place in training.
        mean = self.moving_mean.to(xc.dtype, copy=True)
        var = self.moving_variance.to(xc.dtype, copy=True)
        # torch's momentum is the weight of the batch statistic: Keras's 1 - momentum. The
        # kernel normalises with the biased batch variance (as Keras) and moves `var` with the
        # unbiased one; _update converts that to Keras's biased update where asked.
        y = F.batch_norm(view, mean, var, gamma, beta, training, 1.0 - self.momentum,
                         self.epsilon)  # fmt: skip
        if training:
            self._update(mean, var, count)
        y = y if self.axis == 1 else y.movedim(1, self.axis)
        return y.to(x.dtype)

    @torch.no_grad()
    def _update(self, mean: torch.Tensor, var: torch.Tensor, count: int) -> None:
        """Store the kernel's update ``new = (1-m)·batch + m·old`` (m = Keras's momentum), its
        variance made biased unless the unbiased estimator is asked for: the kernel gave
        ``v_t = m·old + (1-m)·s²·n/(n-1)``, and Keras's ``m·old + (1-m)·s²`` is
        ``((n-1)·v_t + m·old)/n`` exactly (no cancellation: every term is positive). Rounded
        once into the buffers (half-precision layers)."""
        if not self.unbiased:
            old = self.moving_variance.to(var.dtype)
            var = ((count - 1) * var + self.momentum * old) / count
        self.moving_mean.copy_(mean)
        self.moving_variance.copy_(var)

    def _masked(self, x: torch.Tensor, xc: torch.Tensor, gamma: torch.Tensor | None,
                beta: torch.Tensor | None, mask: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """Training with a mask (Keras's masked moments): μ and the biased σ² over the valid
        entries only, ``n`` their count per channel (at least 1 as a divisor: an all-masked
        batch gives μ = σ² = 0, as Keras's ``n + 1e-7``); the moving statistics move by them."""
        m = mask.to(device=xc.device, dtype=torch.bool)
        valid = m.reshape(*m.shape, *(1,) * (xc.ndim - m.ndim)).expand(xc.shape)
        zero = torch.zeros((), dtype=xc.dtype, device=xc.device)
        count = valid.sum(dim=self.reduce, keepdim=True)
        if self.unbiased:
            self.layer.check_batch_statistics(int(count.min()))
        divisor = count.clamp(min=1).to(xc.dtype)
        # where(), not a product with the mask: a NaN or inf at a masked entry stays out.
        mean = torch.where(valid, xc, zero).sum(dim=self.reduce, keepdim=True) / divisor
        var = (
            torch.where(valid, torch.square(xc - mean), zero).sum(dim=self.reduce, keepdim=True)
            / divisor
        )
        y = (xc - mean) * torch.rsqrt(var + self.epsilon)
        if gamma is not None:
            y = y * broadcast_over(gamma, self.ndim, self.axes)
        if beta is not None:
            y = y + broadcast_over(beta, self.ndim, self.axes)
        with torch.no_grad():
            mo = self.momentum
            n = count.reshape(-1).to(xc.dtype)
            batch_mean, batch_var = mean.detach().reshape(-1), var.detach().reshape(-1)
            if self.unbiased:
                batch_var = batch_var * n / (n - 1.0)  # Bessel's correction
            self.moving_mean.copy_(self.moving_mean.to(xc.dtype) * mo + batch_mean * (1.0 - mo))
            self.moving_variance.copy_(
                self.moving_variance.to(xc.dtype) * mo + batch_var * (1.0 - mo)
            )
        return y.to(x.dtype)

    def _single_value(self, x: torch.Tensor, xc: torch.Tensor, gamma: torch.Tensor | None,
                      beta: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
        """One value per channel in training: F.batch_norm refuses it; Keras's rule gives μ = x,
        variance 0 (so the output is β and the gradient through the statistics 0) and the
        biased update ``m·old + (1-m)·(x, 0)``."""
        var, mean = torch.var_mean(xc, dim=self.reduce, correction=0, keepdim=True)
        y = (xc - mean) * torch.rsqrt(var + self.epsilon)
        if gamma is not None:
            y = y * broadcast_over(gamma, self.ndim, self.axes)
        if beta is not None:
            y = y + broadcast_over(beta, self.ndim, self.axes)
        with torch.no_grad():
            m = self.momentum
            batch_mean, batch_var = mean.detach().reshape(-1), var.detach().reshape(-1)
            self.moving_mean.copy_(self.moving_mean.to(xc.dtype) * m + batch_mean * (1.0 - m))
            self.moving_variance.copy_(
                self.moving_variance.to(xc.dtype) * m + batch_var * (1.0 - m)
            )
        return y.to(x.dtype)


class LayerNormalization(_Affine):
    """``F.layer_norm``, which normalises trailing dimensions only: other axes are permuted to
    the end first (a view; the kernel copies it once), ~4x faster on CPU than ``var_mean`` and
    elementwise ops over the axes in place."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        self.normalized_shape = tuple(layer.input_shape[a] for a in self.axes)
        others = [a for a in range(self.ndim) if a not in self.axes]
        order = (*others, *self.axes)
        trailing = _trailing(self.axes, self.ndim)
        self.order = None if trailing else order
        self.inverse = None if trailing else tuple(int(i) for i in np.argsort(order))

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        xc = upcast(x)
        gamma, beta = _cast(self.gamma, xc.dtype), _cast(self.beta, xc.dtype)
        moved = xc if self.order is None else xc.permute(self.order)
        y = F.layer_norm(moved, self.normalized_shape, gamma, beta, self.epsilon)
        y = y if self.inverse is None else y.permute(self.inverse)
        return y.to(x.dtype)


class GroupNormalization(_Affine):
    """``F.group_norm`` on a channels-first view (both frameworks put channel c in group
    ``c // (C/G)``)."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        self.axis = layer.channel_axis
        self.groups = layer.resolved_groups(layer.input_shape[self.axis])

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        xc = upcast(x)
        gamma, beta = _cast(self.gamma, xc.dtype), _cast(self.beta, xc.dtype)
        view = xc if self.axis == 1 else xc.movedim(self.axis, 1)
        y = F.group_norm(view, self.groups, gamma, beta, self.epsilon)
        y = y if self.axis == 1 else y.movedim(1, self.axis)
        return y.to(x.dtype)


class RMSNormalization(Module):
    """``F.rms_norm`` with Keras's epsilon (torch's ``eps=None`` would be the dtype's machine
    epsilon) when the axes are trailing, else the mean of squares over them."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        self.axes = layer.axes
        self.ndim = len(layer.input_shape)
        self.epsilon = layer.epsilon
        self.normalized_shape = tuple(layer.input_shape[a] for a in self.axes)
        self.trailing = _trailing(self.axes, self.ndim)

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        xc = upcast(x)
        scale = self.scale.to(xc.dtype)
        if self.trailing:
            y = F.rms_norm(xc, self.normalized_shape, scale, self.epsilon)
        else:
            # F.rms_norm takes trailing dimensions only: (x·rsqrt(mean(x²) + ε))·scale, in
            # Keras's order, the scale broadcast over the axes.
            mean_square = xc.square().mean(dim=self.axes, keepdim=True)
            y = xc * torch.rsqrt(mean_square + self.epsilon)
            y = y * broadcast_over(scale, self.ndim, self.axes)
        return y.to(x.dtype)


class UnitNormalization(Module):
    """``x / max(‖x‖, 1e-12)`` (``F.normalize``'s formula over several axes), which is Keras's
    ``x·min(1/‖x‖, 1e12)``; ``vector_norm``'s backward is 0 at a zero vector, so the gradient
    there is the finite ``1e12·g`` rather than ``0·inf``."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        self.axes = layer.axes
        self.epsilon = layer.epsilon

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        xc = upcast(x)
        norm = torch.linalg.vector_norm(xc, 2, dim=self.axes, keepdim=True)
        return (xc / norm.clamp_min(self.epsilon)).to(x.dtype)


def batch_normalization(layer: Any, weights: Sequence[np.ndarray]) -> BatchNormalization:
    return BatchNormalization(layer, weights)


def layer_normalization(layer: Any, weights: Sequence[np.ndarray]) -> LayerNormalization:
    return LayerNormalization(layer, weights)


def group_normalization(layer: Any, weights: Sequence[np.ndarray]) -> GroupNormalization:
    return GroupNormalization(layer, weights)


def rms_normalization(layer: Any, weights: Sequence[np.ndarray]) -> RMSNormalization:
    return RMSNormalization(layer, weights)


def unit_normalization(layer: Any, weights: Sequence[np.ndarray]) -> UnitNormalization:
    return UnitNormalization(layer, weights)
