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
    attention,
    convolutional,
    core,
    merging,
    normalization,
    pooling,
    preprocessing,
    recurrent,
    regularization,
    reshaping,
)
from dualnet.reference.layers.core import activation, dense, mlp, preactivations

__all__ = [
    "activation",
    "activations",
    "attention",
    "call_layer",
    "convolutional",
    "core",
    "dense",
    "for_layer",
    "for_mask",
    "layer_config",
    "merging",
    "mlp",
    "model_forward",
    "normalization",
    "pooling",
    "preactivations",
    "preprocessing",
    "recurrent",
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


def for_mask(layer: Any) -> Callable[..., Any]:
    """The output-mask rule of a layer (Note [Masks] in :mod:`dualnet.layers.base`):
    ``<name>_mask(x, mask, **config, **call_arguments)`` in the reference module of its group
    where the layer makes or consumes a mask; else Keras's default, the input's mask for a
    layer that supports masking and none for any other."""
    from dualnet.layers.base import builder_location

    group, name = builder_location(type(layer))
    module = importlib.import_module(f"{__name__}.{group}")
    rule = getattr(module, f"{name}_mask", None)
    if rule is not None:
        return rule
    keep = bool(layer.supports_masking)
    return lambda x, mask, **_: mask if keep else None


def call_layer(layer: Any, inputs: Any, weights: dict[str, np.ndarray], *, training: bool,
               mask: Any = None, call: int = 0, fn: Callable[..., Any] | None = None,
               **kwargs: Any) -> tuple[Any, Any, dict]:  # fmt: skip
    """One layer call in float64: ``(output, output mask, updated state)``. ``mask`` is the
    input's mask (a list for a merging layer), ``kwargs`` the other call arguments (their
    masks as ``<name>_mask``, for the references that take them); ``fn`` replaces the layer's
    reference function (a parity test's deliberately wrong one)."""
    fn = fn or for_layer(layer)
    params = inspect.signature(fn).parameters
    config = layer_config(layer)
    extra = {"call": call} if "call" in params else {}
    if mask is not None and "mask" in params:
        extra["mask"] = mask
    masks = {k: v for k, v in kwargs.items() if k.endswith("_mask")}
    kwargs = {k: v for k, v in kwargs.items() if not k.endswith("_mask")}
    extra.update({k: v for k, v in masks.items() if k in params and v is not None})
    out = fn(inputs, weights, **config, training=training, **kwargs, **extra)
    state: dict = {}
    if isinstance(out, tuple):
        out, state = out
    rule = for_mask(layer)
    rule_params = inspect.signature(rule).parameters
    if any(p.kind is p.VAR_KEYWORD for p in rule_params.values()):
        out_mask = rule(inputs, mask, **config, **kwargs)
    else:
        out_mask = rule(inputs, mask, **{k: v for k, v in {**config, **kwargs}.items()
                                         if k in rule_params})  # fmt: skip
    return out, out_mask, state


def model_forward(
    model: Any,
    x: Any,
    weights: Sequence[np.ndarray],
    *,
    training: bool = False,
    call: int | None = 0,
    with_mask: bool = False,
    on_call: Callable[[Any, list[Any]], None] | None = None,
) -> tuple[Any, ...]:
    """float64 forward of a dualnet Sequential or functional model, layer by layer from the
    references, with ``weights`` in the order of ``model.get_weights()``. ``call`` is the index
    of this training call for layers that draw portable noise (dropout: call ``k`` of a layer
    uses the ``k``-th mask), passed to the references that take it; ``None`` takes each layer's
    own count of training calls (its runtime state), as the layer's next call would.
    ``on_call(layer, outputs)`` is called after every layer call, in execution order, with the
    list of that call's float64 outputs (per-layer values for ``dualnet check``).

    Returns the output and the weights after the call (non-trainable ones updated where a layer
    in training mode updates them; a frozen layer whose class says so runs inference), and with
    ``with_mask`` the output's mask (Note [Masks]; None without one)."""
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

    def apply(layer: Any, inputs: Any, mask: Any, kwargs: dict[str, Any]) -> tuple[Any, Any]:
        mode = training and (layer.trainable or not layer.frozen_means_inference)
        weights = named.get(id(layer), {})
        index = int(layer.get_runtime_state().get("_training_calls", 0)) if call is None else call
        out, out_mask, state = call_layer(layer, inputs, weights, training=mode, mask=mask,
                                          call=index, **kwargs)  # fmt: skip
        if state:
            named[id(layer)].update({k: np.asarray(v, np.float64) for k, v in state.items()})
        return out, out_mask

    def f64(v: Any) -> Any:
        return np.asarray(v, np.float64) if np.asarray(v).dtype.kind == "f" else np.asarray(v)

    if hasattr(model, "_nodes"):  # functional
        from dualnet.layers._symbolic import SymbolicTensor

        inputs = x if isinstance(x, list | tuple) else [x]
        values = {id(t): (f64(v), None) for t, v in zip(model._inputs, inputs, strict=True)}

        def value(v: Any) -> Any:
            if isinstance(v, SymbolicTensor):
                return values[id(v)][0]
            if isinstance(v, list | tuple) and any(isinstance(t, SymbolicTensor) for t in v):
                return [value(t) for t in v]
            return v

        for node in model._nodes:
            args = [values[id(t)] for t in node.inputs]
            kwargs = {k: value(v) for k, v in node.kwargs.items()}
            kwargs.update({f"{k}_mask": values[id(v)][1] for k, v in node.kwargs.items()
                           if isinstance(v, SymbolicTensor)})  # fmt: skip
            multi = node.layer.multi_input
            masks = [m for _, m in args]
            mask = (None if all(m is None for m in masks) else masks) if multi else masks[0]
            arrays = [a for a, _ in args]
            out, out_mask = apply(node.layer, arrays if multi else arrays[0], mask, kwargs)
            outs = out if len(node.outputs) > 1 else [out]
            out_masks = out_mask if isinstance(out_mask, list) else [out_mask] * len(outs)
            for t, o, m in zip(node.outputs, outs, out_masks, strict=True):
                values[id(t)] = (o, m)
            if on_call is not None:
                on_call(node.layer, list(outs))
        results = [values[id(t)] for t in model._outputs]
        out = results[0][0] if model._single[1] else [r[0] for r in results]
        out_mask = results[0][1] if model._single[1] else [r[1] for r in results]
    else:  # sequential
        out, out_mask = f64(x), None
        for layer in model.layers:
            out, out_mask = apply(layer, out, out_mask, {})
            if on_call is not None:
                on_call(layer, [out])
    new = [named[id(layer)][s.name] for layer in layers for s in layer.weight_specs]
    if with_mask:
        return out, new, out_mask
    return out, new
