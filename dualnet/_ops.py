"""Helpers the neutral modules use to reach the active backend without importing a framework."""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import numpy as np

from dualnet._backend import backend_module, get_backend

# Backend name -> its implementation package, filled on first use. Every activation, loss and
# layer call asks for the active backend; the cache turns that into one dict lookup
# (backend_module would re-resolve the name and search sys.modules each time).
_packages: dict[str, ModuleType] = {}


def package(name: str) -> ModuleType:
    """``backend_module(name)`` for a canonical backend name, cached (the hot-path lookup)."""
    module = _packages.get(name)
    if module is None:
        module = _packages[name] = backend_module(name)
    return module


def backend() -> ModuleType:
    """The active backend's implementation package (imports the framework on first use)."""
    return package(get_backend())


def tensor(x: Any, dtype: str | None = None) -> Any:
    """Convert ``x`` to a native tensor of the active backend (see ``core.convert_to_tensor``)."""
    core = backend().core
    # Hot path (every activation call): a tensor of the active backend that conversion would
    # return unchanged. `is_plain_tensor` is exact (tf.Variables are converted, so they are not
    # plain) and a tensor of the active backend cannot be foreign.
    if dtype is None and core.is_plain_tensor(x):
        return x
    _check_foreign(x)
    return core.convert_to_tensor(x, dtype)


def _check_foreign(x: Any) -> None:
    """Refuse a tensor that belongs to the *other* framework, with a clear message."""
    owner = tensor_backend(x)
    active = backend().core.NAME
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
    owner = _OWNERS.get(type(x))
    if owner is not None:  # a tensor type seen before (a training step asks every step)
        return owner
    if isinstance(x, np.ndarray | np.generic | list | tuple | float | int | bool | str | None):
        return None  # the common non-tensors first: tf.is_tensor's protocol check costs ~10 µs
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        _OWNERS[type(x)] = "torch"
        return "torch"
    tf = sys.modules.get("tensorflow")
    if tf is not None and (isinstance(x, tf.Tensor | tf.Variable)):
        _OWNERS[type(x)] = "tensorflow"
        return "tensorflow"
    if tf is not None and tf.is_tensor(x):  # (a tensor-like by protocol: not kept by type)
        return "tensorflow"
    return None


# Types known to be a framework's tensors (only positive answers: every instance of a subclass
# of torch.Tensor, tf.Tensor or tf.Variable is one).
_OWNERS: dict[type, str] = {}


def to_numpy(x: Any) -> np.ndarray:
    """Convert a torch/TF tensor (or anything array-like) to a numpy array."""
    owner = tensor_backend(x)
    if owner is None:
        return np.asarray(x)
    return package(owner).core.to_numpy(x)
