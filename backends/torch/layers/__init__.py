"""Layers on PyTorch: one module per neutral group (same file names as ``dualnet/layers/``),
plus the generic weight handling every layer shares (Note [Declared weights] in
:mod:`dualnet.layers.base`): nothing here knows any particular layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from dualnet.backends.torch import core as _core

from dualnet.layers.base import builder_location, import_group


def build(layer: Any, weights: Sequence[np.ndarray]) -> torch.nn.Module:
    """Realise ``layer`` with its canonical ``weights`` through its builder."""
    group, name = builder_location(type(layer))
    return getattr(import_group("torch", group), name)(layer, weights)


def _slots(module: torch.nn.Module) -> list:
    return module.__dict__.get("dualnet_slots", [])


def variables(module: torch.nn.Module) -> list[torch.Tensor]:
    """Every declared weight's native tensor (parameters and buffers), in declaration order."""
    return [getattr(module, spec.name) for spec, _ in _slots(module)]


def params(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The native parameters the optimizer updates: trainable weights of a trainable layer."""
    if not module.layer.trainable:
        return []
    return [getattr(module, spec.name) for spec, _ in _slots(module) if spec.trainable]


def canonical_grads(module: torch.nn.Module, grads: Sequence[Any]) -> list[Any]:
    """Gradients (or optimizer slots) of :func:`params` in canonical layout."""
    slots = [(s, lay) for s, lay in _slots(module) if s.trainable] if module.layer.trainable else []
    return [lay.to_canonical(g, s.shape) for (s, lay), g in zip(slots, grads, strict=True)]


def get_weights(module: torch.nn.Module) -> list[np.ndarray]:
    return [
        np.array(_core.to_numpy(layout.to_canonical(getattr(module, spec.name), spec.shape)))
        for spec, layout in _slots(module)
    ]


def set_weights(module: torch.nn.Module, arrays: Sequence[np.ndarray]) -> None:
    """Copy canonical arrays (validated and cast by the neutral layer) into the tensors."""
    with torch.no_grad():
        for (spec, layout), array in zip(_slots(module), arrays, strict=True):
            target = getattr(module, spec.name)
            target.copy_(_core.convert_to_tensor(layout.to_native(array)).to(target.device))


def set_trainable(module: torch.nn.Module, trainable: bool) -> None:
    """Freeze or unfreeze (``requires_grad``); the neutral layer holds the flag itself."""
    for p in module.parameters(recurse=False):
        p.requires_grad_(trainable)
