"""Layers on PyTorch: small ``nn.Module``s holding the weights in torch's own layout.

The neutral layer (:mod:`dualnet.layers`) has validated everything and drawn the initial
weights (numpy, canonical layout) before a factory here is called.

Layout: dualnet's canonical Dense kernel is Keras's ``(in, out)``; :class:`Dense` stores
``weight`` as ``(out, in)`` like ``nn.Linear``, so ``get_weights``/``set_weights`` transpose,
and so does :func:`canonical_grads` for gradients.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dualnet import activations as _activations
from dualnet._backend import get_backend, use_backend
from dualnet.backends.torch import core


def _parameter(array: np.ndarray) -> nn.Parameter:
    return nn.Parameter(core.convert_to_tensor(np.ascontiguousarray(array)))


def _activate(fn: Callable[..., Any], x: torch.Tensor) -> torch.Tensor:
    # dualnet's activation functions dispatch on the *active* backend; the module may be called
    # directly (model.native(x)) while TensorFlow is active, so pin torch for the call. When
    # torch is already active (every call through a dualnet model) the switch is skipped.
    if get_backend() == "torch":
        return fn(x)
    with use_backend("torch"):
        return fn(x)


class Dense(nn.Module):
    """``activation(F.linear(x, weight, bias))`` with ``weight`` of shape ``(out, in)``."""

    def __init__(self, kernel: np.ndarray, bias: np.ndarray | None, activation: Callable):
        super().__init__()
        self.in_features, self.out_features = kernel.shape
        # Canonical (in, out) -> torch (out, in). A contiguous copy, as nn.Linear's weight.
        self.weight = _parameter(np.asarray(kernel).T)
        self.bias = None if bias is None else _parameter(bias)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight, self.bias)
        if self.activation is _activations.linear:
            return y
        return _activate(self.activation, y)

    def extra_repr(self) -> str:
        act = _activations.serialize(self.activation)
        act = act if isinstance(act, str) else getattr(act, "__name__", "custom")
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, activation={act}")  # fmt: skip


class Activation(nn.Module):
    """Applies a dualnet activation function."""

    def __init__(self, activation: Callable):
        super().__init__()
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _activate(self.activation, x)


def dense(layer: Any, weights: Sequence[np.ndarray]) -> Dense:
    """Factory for :class:`dualnet.layers.Dense`; ``weights`` = [kernel (in, out), bias?]."""
    bias = weights[1] if layer.use_bias else None
    return Dense(weights[0], bias, layer.activation)


def activation(layer: Any, weights: Sequence[np.ndarray]) -> Activation:
    return Activation(layer.activation)


def params(module: nn.Module) -> list[nn.Parameter]:
    """The native parameters in canonical order (Dense: weight, then bias)."""
    if isinstance(module, Dense):
        return [module.weight] if module.bias is None else [module.weight, module.bias]
    return []


def _to_canonical(module: nn.Module, values: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    if isinstance(module, Dense):
        return [values[0].T, *values[1:]]  # weight (out, in) -> kernel (in, out)
    return list(values)


def canonical_grads(module: nn.Module, grads: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Gradients of :func:`params` in canonical layout (the kernel's is transposed)."""
    return _to_canonical(module, grads)


def get_weights(module: nn.Module) -> list[np.ndarray]:
    return [np.array(core.to_numpy(v)) for v in _to_canonical(module, params(module))]


def set_weights(module: nn.Module, arrays: Sequence[np.ndarray]) -> None:
    """Copy canonical arrays (validated and cast by the neutral layer) into the parameters."""
    targets = params(module)
    with torch.no_grad():
        for i, (param, array) in enumerate(zip(targets, arrays, strict=True)):
            value = np.asarray(array).T if (i == 0 and isinstance(module, Dense)) else array
            param.copy_(core.convert_to_tensor(np.ascontiguousarray(value)).to(param.device))
