"""Core layers on PyTorch: Dense (``F.linear``), Activation, Embedding (``F.embedding`` with
dualnet's id check) and Masking."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from dualnet.backends.torch.layers.base import HALF, Layout, Module, activate

from dualnet import activations as _activations

# The standard activations as the torch functions they run (``backends/torch/nn.py``), called
# directly by Dense: the same kernel, without the neutral function's conversion and backend
# dispatch (~5 µs per call); half precision as nn.py computes it, in float32 rounded once.
_DIRECT: dict[Any, Any] = {_activations.sigmoid: torch.sigmoid, _activations.tanh: torch.tanh,
                           _activations.relu: F.relu}  # fmt: skip
_DIRECT_DTYPES = (torch.float32, torch.float64)


class Dense(Module):
    """``activation(F.linear(x, kernel, bias))``; ``kernel`` is stored as ``nn.Linear``'s
    ``(out, in)``, the transpose of the canonical ``(in, out)``."""

    layouts: ClassVar[dict[str, Layout]] = {"kernel": Layout((1, 0))}

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        self.activation = layer.activation
        self.__dict__["direct"] = _DIRECT.get(layer.activation)
        if not layer.use_bias:
            self.bias = None

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        y = F.linear(x, self.kernel, self.bias)
        if self.activation is _activations.linear:
            return y
        if self.direct is not None:
            if y.dtype in _DIRECT_DTYPES:
                return self.direct(y)
            if y.dtype in HALF:
                return self.direct(y.float()).to(y.dtype)  # nn.py's _float32_math
        return activate(self.activation, y)


class Activation(Module):
    """Applies a dualnet activation function."""

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        return activate(self.layer.activation, x)


def dense(layer: Any, weights: Sequence[np.ndarray]) -> Dense:
    return Dense(layer, weights)


def activation(layer: Any, weights: Sequence[np.ndarray]) -> Activation:
    return Activation(layer, weights)


def checked_ids(layer: Any, x: torch.Tensor) -> torch.Tensor:
    """``x`` as ids ``F.embedding`` takes (int32/int64), after the neutral layer's check: whole
    numbers (floating ids) in ``[0, input_dim)``. One min/max reduction (read on the host: the
    only way to raise a Python error before the lookup; torch would raise an IndexError on CPU
    and a device-side assert on CUDA), plus one comparison for floating ids."""
    if x.dtype == torch.bool or x.is_complex():
        raise layer.bad_id(x.reshape(-1)[0].item() if x.numel() else x)
    if torch.compiler.is_exporting():
        # torch.export cannot trace a value read on the host: the same check becomes an assert
        # inside the exported program (it fails when the program runs on a bad id).
        valid = (x >= 0) & (x < layer.input_dim)
        if x.is_floating_point():
            valid = valid & (x == torch.floor(x))  # whole numbers only; NaN fails this
        torch._assert_async(valid.all(), layer.graph_id_message())
        return x if x.dtype in (torch.int32, torch.int64) else x.long()
    if x.is_floating_point():
        fractional = x != torch.floor(x)  # NaN too (NaN != NaN); ±inf fails the range below
        if bool(fractional.any()):
            raise layer.bad_id(x[fractional][0])
    if x.numel() == 0:
        return x.long() if x.dtype not in (torch.int32, torch.int64) else x
    low, high = torch.aminmax(x)
    layer.check_ids(low.item(), high.item())
    return x if x.dtype in (torch.int32, torch.int64) else x.long()


class Embedding(Module):
    """``F.embedding(ids, embeddings)``: a row gather; its gradient is a scatter-add (dense)."""

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        return F.embedding(checked_ids(self.layer, x), self.embeddings)

    def compute_mask(self, x: torch.Tensor, mask: Any = None) -> torch.Tensor | None:
        # Keras: ids != 0 with mask_zero, whatever came in; otherwise no mask.
        return x != 0 if self.layer.mask_zero else None


class Masking(Module):
    """``where(any(x != mask_value, -1), x, 0)``, the mask being that ``any``."""

    def keep(self, x: torch.Tensor) -> torch.Tensor:
        # The scalar is rounded to x's dtype by the comparison (a wrapped Python number), as
        # TensorFlow converts it to x's dtype.
        return (x != self.layer.mask_value).any(dim=-1)

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        return torch.where(
            self.keep(x).unsqueeze(-1), x, torch.zeros((), dtype=x.dtype, device=x.device)
        )

    def compute_mask(self, x: torch.Tensor, mask: Any = None) -> torch.Tensor:
        return self.keep(x)


def embedding(layer: Any, weights: Sequence[np.ndarray]) -> Embedding:
    return Embedding(layer, weights)


def masking(layer: Any, weights: Sequence[np.ndarray]) -> Masking:
    return Masking(layer, weights)
