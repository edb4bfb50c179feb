"""Merging layers on torch: ``forward`` receives the list of input tensors (the neutral layer
checked that their shapes are equal, so no broadcasting happens).

Several inputs are combined left to right, one native op per pair, as Keras does, so each step
rounds exactly as TensorFlow's does.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from dualnet.backends.torch.layers.base import Module


class Add(Module):
    def forward(self, xs: list[torch.Tensor], training: bool = False) -> torch.Tensor:
        return functools.reduce(operator.add, xs)  # ((x0 + x1) + x2) + ...


class Subtract(Module):
    def forward(self, xs: list[torch.Tensor], training: bool = False) -> torch.Tensor:
        return xs[0] - xs[1]


class Multiply(Module):
    def forward(self, xs: list[torch.Tensor], training: bool = False) -> torch.Tensor:
        return functools.reduce(operator.mul, xs)


class Average(Module):
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


class _Extremum(Module):
    """The running maximum (``largest``) or minimum of the inputs, left to right."""

    largest: ClassVar[bool]

    def forward(self, xs: list[torch.Tensor], training: bool = False) -> torch.Tensor:
        return functools.reduce(lambda a, b: _FirstWins.apply(a, b, self.largest), xs)


class Maximum(_Extremum):
    largest = True


class Minimum(_Extremum):
    largest = False


class Concatenate(Module):
    def forward(self, xs: list[torch.Tensor], training: bool = False) -> torch.Tensor:
        # The axis explicitly: torch.cat's default dim=0 is the batch axis.
        return torch.cat(xs, dim=self.layer.axis)


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
