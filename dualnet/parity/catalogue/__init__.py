"""The built-in parity catalogue: one module per family, each calling ``cases.register``.

Modules in this package are discovered by name, so adding a family is adding a file.
"""

from __future__ import annotations

import importlib
import pkgutil

from dualnet.parity.cases import Case, registered

_loaded = False


def load() -> list[Case]:
    """Import every family module once and return all registered cases, in file order."""
    global _loaded
    if not _loaded:
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            importlib.import_module(f"{__name__}.{info.name}")
        _loaded = True
    return registered()
