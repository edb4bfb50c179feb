"""Helpers the neutral modules use to reach the active backend without importing a framework."""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import numpy as np

from dualnet._backend import backend_module


def backend() -> ModuleType:
    """The active backend's implementation package (imports the framework on first use)."""
    return backend_module()


def tensor(x: Any, dtype: str | None = None) -> Any:
    """Convert ``x`` to a native tensor of the active backend (see ``core.convert_to_tensor``)."""
    _check_foreign(x)
    return backend_module().core.convert_to_tensor(x, dtype)


def _check_foreign(x: Any) -> None:
    """Refuse a tensor that belongs to the *other* framework, with a clear message."""
    owner = tensor_backend(x)
    active = backend_module().core.NAME
    if owner is not None and owner != active:
        raise TypeError(
            f"got a {owner} tensor while the active dualnet backend is {active!r}; convert it "
            f"with dn.to_numpy(x) first or switch with dn.set_backend({owner!r})."
        )


def tensor_backend(x: Any) -> str | None:
    """``"torch"``/``"tensorflow"`` when ``x`` is a native tensor of that framework, else None.

    Like array-api-compat's ``is_torch_array``, this looks in ``sys.modules`` first and never
    imports a framework just to test a type.
    """
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return "torch"
    tf = sys.modules.get("tensorflow")
    if tf is not None and (tf.is_tensor(x) or isinstance(x, tf.Variable)):
        return "tensorflow"
    return None


def to_numpy(x: Any) -> np.ndarray:
    """Convert a torch/TF tensor (or anything array-like) to a numpy array."""
    owner = tensor_backend(x)
    if owner is None:
        return np.asarray(x)
    return backend_module(owner).core.to_numpy(x)
