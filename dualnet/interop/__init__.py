"""Bringing your own model: a Keras model or a PyTorch module in, a dualnet model out.

    model = dn.from_keras(keras_model)                  # Sequential or functional keras.Model
    model = dn.from_torch(module, example_inputs)       # torch.nn.Module, traced with torch.fx

Both return a built dualnet model on the active backend (``backend=`` picks another) with the
original's architecture, names and weights, in train-mode semantics too (BatchNormalization
statistics, dropout), so it can be checked (``dn.parity.check_model``), trained or saved on
either framework. Anything dualnet cannot represent exactly raises
:class:`~dualnet.errors.UnsupportedModelError` listing every problem. Importing this package
imports neither framework.
"""

from __future__ import annotations

from typing import Any

__all__ = ["from_keras", "from_torch"]


def from_keras(model: Any, **kwargs: Any) -> Any:
    """See :func:`dualnet.interop.keras_import.from_keras`."""
    from dualnet.interop.keras_import import from_keras as convert

    return convert(model, **kwargs)


def from_torch(module: Any, example_inputs: Any, **kwargs: Any) -> Any:
    """See :func:`dualnet.interop.torch_import.from_torch`."""
    from dualnet.interop.torch_import import from_torch as convert

    return convert(module, example_inputs, **kwargs)
