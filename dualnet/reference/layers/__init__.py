"""float64 numpy reference of every layer, one module per group (the spec's groups), one plain
function per layer named like it (``conv2d`` for ``Conv2D``).

Each layer function takes the input (a list for merging layers), the weights as a dict of
canonical (Keras-layout) arrays, and the layer's config as keywords (``layer.get_config()``
without ``name``/``dtype``/``trainable``, plus ``training``); it returns the output, or
``(output, state)`` where ``state`` holds the updated non-trainable weights (BatchNormalization's
moving statistics). :func:`for_layer` finds a layer's function by the same naming rule as the
backend builders; :func:`model_forward` composes them into a whole Sequential or functional
model.
"""

import importlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dualnet.reference.layers import (
    activations,
    convolutional,
    core,
    merging,
    normalization,
    pooling,
    regularization,
    reshaping,
)
from dualnet.reference.layers.core import activation, dense, mlp, preactivations

__all__ = [
    "activation",
    "activations",
    "convolutional",
    "core",
    "dense",
    "for_layer",
    "layer_config",
    "merging",
    "mlp",
    "model_forward",
    "normalization",
    "pooling",
    "preactivations",
    "regularization",
    "reshaping",
]  # fmt: skip

# get_config() keys that are not arguments of a layer's math.
NOT_MATH = ("name", "dtype", "trainable")


def for_layer(layer: Any) -> Callable[..., Any]:
    """The reference function of a layer (instance or class): ``<name>`` in
    ``dualnet/reference/layers/<group>.py`` where ``<group>``/``<name>`` locate the backend
    builder (``Conv2D`` -> ``convolutional.conv2d``); ``<name>_layer`` first, where the plain
    name is taken by an op-style function (core's ``dense_layer``)."""
    from dualnet.layers.base import builder_location

    cls = layer if isinstance(layer, type) else type(layer)
    group, name = builder_location(cls)
    module = importlib.import_module(f"{__name__}.{group}")
    fn = getattr(module, f"{name}_layer", None) or getattr(module, name, None)
    if fn is None:
        raise NotImplementedError(f"no float64 reference for {cls.__name__} ({group}.{name})")
    return fn


def layer_config(layer: Any) -> dict[str, Any]:
    """The reference's keywords for ``layer``: its config without name/dtype/trainable."""
    return {k: v for k, v in layer.get_config().items() if k not in NOT_MATH}


def model_forward(
    model: Any, x: Any, weights: Sequence[np.ndarray], *, training: bool = False, call: int = 0
) -> tuple[Any, list[np.ndarray]]:
    """float64 forward of a dualnet Sequential or functional model, layer by layer from the
    references, with ``weights`` in the order of ``model.get_weights()``. ``call`` is the index
    of this training call for layers that draw portable noise (dropout: call ``k`` of a layer
    uses the ``k``-th mask), passed to the references that take it.

    Returns the output and the weights after the call (non-trainable ones updated where a layer
    in training mode updates them; a frozen layer whose class says so runs inference)."""
    layers = model._weight_layers()
    named: dict[int, dict[str, np.ndarray]] = {}
    start = 0
    for layer in layers:
        specs = layer.weight_specs
        named[id(layer)] = {
            s.name: np.asarray(w, np.float64)
            for s, w in zip(specs, weights[start : start + len(specs)], strict=True)
        }
        start += len(specs)
    if start != len(weights):
        raise ValueError(f"model_forward: {len(weights)} weights for a model with {start}")

    def apply(layer: Any, inputs: Any) -> Any:
        mode = training and (layer.trainable or not layer.frozen_means_inference)
        fn = for_layer(layer)
        extra = {"call": call} if "call" in inspect.signature(fn).parameters else {}
        out = fn(inputs, named.get(id(layer), {}), **layer_config(layer), training=mode, **extra)
        if isinstance(out, tuple):
            out, state = out
            named[id(layer)].update({k: np.asarray(v, np.float64) for k, v in state.items()})
        return out

    def f64(v: Any) -> Any:
        return np.asarray(v, np.float64) if np.asarray(v).dtype.kind == "f" else np.asarray(v)

    if hasattr(model, "_nodes"):  # functional
        inputs = x if isinstance(x, list | tuple) else [x]
        values = {id(t): f64(v) for t, v in zip(model._inputs, inputs, strict=True)}
        for node in model._nodes:
            args = [values[id(t)] for t in node.inputs]
            values[id(node.outputs[0])] = apply(node.layer, args if node.layer.multi_input
                                                else args[0])  # fmt: skip
        outs = [values[id(t)] for t in model._outputs]
        out = outs[0] if model._single[1] else outs
    else:  # sequential
        out = f64(x)
        for layer in model.layers:
            out = apply(layer, out)
    new = [named[id(layer)][s.name] for layer in layers for s in layer.weight_specs]
    return out, new
