"""dualnet: write a network once, run it on PyTorch and tf.keras with the same weights.

    import dualnet as dn
    dn.set_backend("tensorflow")        # default "torch"; env DUALNET_BACKEND is read at import

Importing dualnet imports neither framework: a framework is imported the first time its
backend is used (see :mod:`dualnet._backend`). Public names are resolved lazily (PEP 562), so
``import dualnet`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from dualnet._backend import (
    BACKENDS,
    get_backend,
    is_available,
    loaded_backends,
    set_backend,
    use_backend,
)
from dualnet._ops import to_numpy
from dualnet.errors import BackendUnavailableError, DualnetWarning

__version__ = "0.1.0"

# name -> (module, attribute or None for the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "activations": ("dualnet.activations", None),
    "initializers": ("dualnet.initializers", None),
    "layers": ("dualnet.layers", None),
    "losses": ("dualnet.losses", None),
    "models": ("dualnet.models", None),
    "reference": ("dualnet.reference", None),
    "parity": ("dualnet.parity", None),
    "random": ("dualnet.random", None),
    "dtypes": ("dualnet.dtypes", None),
    "figures": ("dualnet.figures", None),
    "metrics": ("dualnet.metrics", None),
    "training": ("dualnet.training", None),
    "optimizers": ("dualnet.optimizers", None),
    "schedules": ("dualnet.schedules", None),
    "Input": ("dualnet.models", "Input"),
    "Model": ("dualnet.models", "Model"),
    "Sequential": ("dualnet.models", "Sequential"),
    "set_random_seed": ("dualnet.random", "set_random_seed"),
    "interop": ("dualnet.interop", None),
    "from_keras": ("dualnet.interop", "from_keras"),
    "from_torch": ("dualnet.interop", "from_torch"),
    "load_model": ("dualnet.saving", "load_model"),
}

__all__ = [
    "BACKENDS",
    "BackendUnavailableError",
    "DualnetWarning",
    "get_backend",
    "is_available",
    "loaded_backends",
    "set_backend",
    "to_numpy",
    "use_backend",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'dualnet' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
