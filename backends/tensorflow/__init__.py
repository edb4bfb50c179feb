"""The tensorflow implementation of dualnet. Importing this package imports tensorflow.

Submodules (``core``, ``nn``, ``initializers``, ``losses``, ``layers``, ``models``) carry the
same names in every backend and are loaded on first attribute access.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from . import core  # noqa: F401  (imports the framework and fixes its precision settings)


def __getattr__(name: str) -> ModuleType:
    if name.startswith("_"):
        raise AttributeError(name)
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        raise AttributeError(f"{__name__} has no submodule {name!r}") from exc
