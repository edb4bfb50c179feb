"""Backend selection and lazy loading.

dualnet has two backends, ``"torch"`` (the default) and ``"tensorflow"`` (tf.keras, i.e.
Keras 3 on TensorFlow). The neutral modules never import a framework at module level: a
framework is imported the first time its backend *module* is requested through
:func:`backend_module`, which imports ``dualnet.backends.<name>``.

The active backend is process-wide state (like Keras's ``KERAS_BACKEND``), read at import from
the environment variable ``DUALNET_BACKEND``; :func:`use_backend` switches it for a ``with``
block and restores it afterwards, also on exceptions.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import threading
from collections.abc import Iterator
from types import ModuleType

from dualnet.errors import BackendUnavailableError, bad_value

BACKENDS: tuple[str, ...] = ("torch", "tensorflow")
DEFAULT_BACKEND = "torch"
_ALIASES = {"torch": "torch", "pytorch": "torch", "tensorflow": "tensorflow", "tf": "tensorflow"}
# The pip package that provides each framework, for the "please install" message.
_PIP_NAME = {"torch": "torch", "tensorflow": "tensorflow-cpu (or tensorflow for GPU machines)"}

_lock = threading.RLock()


def canonical_name(name: object) -> str:
    """Resolve a backend name or alias (``"tf"``, ``"pytorch"``) to ``"torch"``/``"tensorflow"``."""
    if not isinstance(name, str) or name.lower() not in _ALIASES:
        raise bad_value("backend", name, "one of 'torch', 'tensorflow' (alias 'tf')")
    return _ALIASES[name.lower()]


def _initial_backend() -> str:
    env = os.environ.get("DUALNET_BACKEND")
    if env is None or env == "":
        return DEFAULT_BACKEND
    try:
        return canonical_name(env)
    except ValueError as exc:
        raise ValueError(f"environment variable DUALNET_BACKEND: {exc}") from None


_current: str = _initial_backend()


def get_backend() -> str:
    """Return the active backend's name: ``"torch"`` or ``"tensorflow"``."""
    return _current


def set_backend(name: str) -> None:
    """Make ``name`` (``"torch"``, ``"tensorflow"`` or the alias ``"tf"``) the active backend.

    The framework itself is imported lazily, on first use, not here.
    """
    global _current
    resolved = canonical_name(name)
    with _lock:
        _current = resolved


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[str]:
    """Switch the active backend inside a ``with`` block; the previous one is restored on exit."""
    global _current
    resolved = canonical_name(name)
    with _lock:
        previous = _current
        _current = resolved
    try:
        yield resolved
    finally:
        with _lock:
            _current = previous


def is_available(name: str) -> bool:
    """Whether the framework behind backend ``name`` is installed (does not import it)."""
    resolved = canonical_name(name)
    return importlib.util.find_spec(resolved) is not None


def backend_module(name: str | None = None) -> ModuleType:
    """Return the implementation package ``dualnet.backends.<name>``, importing it on first use."""
    resolved = _current if name is None else canonical_name(name)
    module_name = f"dualnet.backends.{resolved}"
    module = sys.modules.get(module_name)
    if module is not None:
        return module
    if not is_available(resolved):
        raise BackendUnavailableError(
            f"The dualnet backend {resolved!r} needs the package {resolved!r}, which is not "
            f"installed. Install it with: pip install {_PIP_NAME[resolved]}"
        )
    with _lock:
        if resolved == "tensorflow" and is_available("torch"):
            # torch and TensorFlow bundle different copies of some native libraries (OpenMP,
            # protobuf); importing torch first is the order known to work in one process.
            backend_module("torch")
        return importlib.import_module(module_name)


def loaded_backends() -> list[str]:
    """The backends whose implementation has been imported in this process."""
    return [b for b in BACKENDS if f"dualnet.backends.{b}" in sys.modules]
