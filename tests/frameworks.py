"""The frameworks, imported through dualnet's backend loader for tests that call them directly
(torch first, then TensorFlow: the order that works in one process)."""

from __future__ import annotations

from types import ModuleType

from dualnet._backend import backend_module


def torch() -> ModuleType:
    backend_module("torch")
    import torch as module

    return module


def tf() -> ModuleType:
    backend_module("tensorflow")
    import tensorflow as module

    return module


def keras() -> ModuleType:
    backend_module("tensorflow")
    import keras as module

    return module
