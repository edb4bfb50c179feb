"""Core layers on PyTorch: Dense (``F.linear``) and Activation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from dualnet.backends.torch.layers.base import Layout, Module, activate

from dualnet import activations as _activations


class Dense(Module):
    """``activation(F.linear(x, kernel, bias))``; ``kernel`` is stored as ``nn.Linear``'s
    ``(out, in)``, the transpose of the canonical ``(in, out)``."""

    layouts: ClassVar[dict[str, Layout]] = {"kernel": Layout((1, 0))}

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        self.activation = layer.activation
        if not layer.use_bias:
            self.bias = None

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        y = F.linear(x, self.kernel, self.bias)
        if self.activation is _activations.linear:
            return y
        return activate(self.activation, y)


class Activation(Module):
    """Applies a dualnet activation function."""

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        return activate(self.layer.activation, x)


def dense(layer: Any, weights: Sequence[np.ndarray]) -> Dense:
    return Dense(layer, weights)


def activation(layer: Any, weights: Sequence[np.ndarray]) -> Activation:
    return Activation(layer, weights)
