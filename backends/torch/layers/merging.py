"""Merging layers on torch: ``forward`` receives the list of input tensors (the neutral layer
checked that their shapes are equal, so no broadcasting happens).

Several inputs are combined left to right, one native op per pair, as Keras does, so each step
rounds exactly as TensorFlow's does.

Masks (Note [Masks] in :mod:`dualnet.layers.base`) follow Keras's merging layers: the output
mask is the OR of the inputs' masks (None unless every input has one); Concatenate's treats an
input without a mask as all valid. Maximum, Minimum and Multiply also read the masks: masked
entries never win a maximum or minimum and count as 1 in a product (Keras's
``Merge._apply_merge_op_and_or_mask`` and ``Multiply._merge_function``, op for op, so the
gradients follow the same ``where`` branches).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from dualnet.backends.torch.layers.base import Module


def _expand(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A (batch, steps) mask broadcast over the input's remaining (feature) axes."""
    m = m.to(device=x.device, dtype=torch.bool)
    return m.reshape(*m.shape, *(1,) * (x.ndim - m.ndim)).expand(x.shape)


class _Merge(Module):
    """The output mask of the element-wise merges: Keras's ``Merge.compute_mask``."""

    def compute_mask(self, x: Any, mask: Any) -> torch.Tensor | None:
        if mask is None or any(m is None for m in mask):
            return None
        return functools.reduce(torch.logical_or, [m.to(torch.bool) for m in mask])


class Add(_Merge):
    def forward(self, xs: list[torch.Tensor], training: bool = False) -> torch.Tensor:
        return functools.reduce(operator.add, xs)  # ((x0 + x1) + x2) + ...


class Subtract(_Merge):
    def forward(self, xs: list[torch.Tensor], training: bool = False) -> torch.Tensor:
        return xs[0] - xs[1]


class Multiply(_Merge):
    def forward(self, xs: list[torch.Tensor], training: bool = False,
                mask: list[Any] | None = None) -> torch.Tensor:  # fmt: skip
        if mask is None:
            return functools.reduce(operator.mul, xs)
        # Keras: a masked entry counts as 1; if every input has a mask, an entry masked in all
        # of them is 0.
        masks = [None if m is None else _expand(m, x) for m, x in zip(mask, xs, strict=True)]
        one = torch.ones((), dtype=xs[0].dtype, device=xs[0].device)
        factors = [x if m is None else torch.where(m, x, one)
                   for x, m in zip(xs, masks, strict=True)]  # fmt: skip
        out = functools.reduce(operator.mul, factors)
        if all(m is not None for m in masks):
            out = torch.where(functools.reduce(torch.logical_or, masks), out, torch.zeros_like(one))
        return out


class Average(_Merge):
    def forward(self, xs: list[torch.Tensor], training: bool = False) -> torch.Tensor:
        # One division by n after the left-to-right sum (Keras's order), not torch.mean.
        return functools.reduce(operator.add, xs) / len(xs)


class _FirstWins(torch.autograd.Function):
    """``torch.maximum``/``torch.minimum`` (NaN propagates) whose gradient at a tie goes to the
    *first* argument, as TensorFlow's does; torch's own backward gives half to each."""

    @staticmethod
    def forward(a: torch.Tensor, b: torch.Tensor, largest: bool) -> torch.Tensor:
        return torch.maximum(a, b) if largest else torch.minimum(a, b)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: torch.Tensor) -> None:
        a, b, largest = inputs
        ctx.save_for_backward(a, b)
        ctx.largest = largest

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple:
        a, b = ctx.saved_tensors
        # TensorFlow's rule: the first input takes the gradient where a >= b (a <= b for min).
        first = a >= b if ctx.largest else a <= b
        zero = torch.zeros((), dtype=grad.dtype, device=grad.device)
        return torch.where(first, grad, zero), torch.where(first, zero, grad), None


class _Extremum(_Merge):
    """The running maximum (``largest``) or minimum of the inputs, left to right."""

    largest: ClassVar[bool]

    def forward(self, xs: list[torch.Tensor], training: bool = False,
                mask: list[Any] | None = None) -> torch.Tensor:  # fmt: skip
        if mask is None:
            return functools.reduce(lambda a, b: _FirstWins.apply(a, b, self.largest), xs)
        # Keras's _apply_merge_op_and_or_mask, step for step: a masked entry of the next input
        # takes the running value, a masked running value takes the next input's.
        masks = [None if m is None else _expand(m, x) for m, x in zip(mask, xs, strict=True)]
        out, out_mask = xs[0], masks[0]
        for x, m in zip(xs[1:], masks[1:], strict=True):
            if m is not None:
                x = torch.where(m, x, out)
            if out_mask is not None:
                out = torch.where(out_mask, out, x)
            out_mask = None if m is None or out_mask is None else out_mask | m
            out = _FirstWins.apply(out, x, self.largest)
        return out


class Maximum(_Extremum):
    largest = True


class Minimum(_Extremum):
    largest = False


class Concatenate(Module):
    def forward(self, xs: list[torch.Tensor], training: bool = False) -> torch.Tensor:
        # The axis explicitly: torch.cat's default dim=0 is the batch axis.
        return torch.cat(xs, dim=self.layer.axis)

    def compute_mask(self, x: Any, mask: Any) -> torch.Tensor | None:
        """Keras's ``Concatenate.compute_mask``: each input's mask over its full shape (all
        valid for an input without one), concatenated along the axis, any over the last axis."""
        if mask is None or all(m is None for m in mask):
            return None
        full = [torch.ones(t.shape, dtype=torch.bool, device=t.device) if m is None
                else _expand(m, t) for t, m in zip(x, mask, strict=True)]  # fmt: skip
        return torch.cat(full, dim=self.layer.axis).any(dim=-1)


def add(layer: Any, weights: Sequence[np.ndarray]) -> Add:
    return Add(layer, weights)


def subtract(layer: Any, weights: Sequence[np.ndarray]) -> Subtract:
    return Subtract(layer, weights)


def multiply(layer: Any, weights: Sequence[np.ndarray]) -> Multiply:
    return Multiply(layer, weights)


def average(layer: Any, weights: Sequence[np.ndarray]) -> Average:
    return Average(layer, weights)


def maximum(layer: Any, weights: Sequence[np.ndarray]) -> Maximum:
    return Maximum(layer, weights)


def minimum(layer: Any, weights: Sequence[np.ndarray]) -> Minimum:
    return Minimum(layer, weights)


def concatenate(layer: Any, weights: Sequence[np.ndarray]) -> Concatenate:
    return Concatenate(layer, weights)
