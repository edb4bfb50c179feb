"""The frameworks for the probes of ``divergences*.py`` and ``conventions*.py``, imported through
dualnet's backend loader (torch first when installed, then TensorFlow with dualnet's settings),
and the probes' fixed generator."""

from __future__ import annotations

from typing import Any

import numpy as np

from dualnet._backend import backend_module


def tf() -> Any:
    backend_module("tensorflow")
    import tensorflow

    return tensorflow


def torch() -> Any:
    backend_module("torch")
    import torch as module

    return module


def rng() -> np.random.Generator:
    return np.random.default_rng(0)
