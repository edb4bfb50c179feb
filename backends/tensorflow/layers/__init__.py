"""Layers on tf.keras: one module per neutral group (same file names as ``dualnet/layers/``),
plus the generic weight handling every layer shares (Note [Declared weights] in
:mod:`dualnet.layers.base`): nothing here knows any particular layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from dualnet.layers.base import builder_location, import_group


def build(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Layer:
    """Realise ``layer`` with its canonical ``weights`` through its builder."""
    group, name = builder_location(type(layer))
    return getattr(import_group("tensorflow", group), name)(layer, weights)


def _pairs(native: keras.layers.Layer) -> list:
    specs = native.layer.weight_specs if hasattr(native, "layer") else ()
    return list(zip(specs, getattr(native, "dualnet_variables", ()), strict=True))


def variables(native: keras.layers.Layer) -> list[Any]:
    """Every declared weight's Keras variable, in declaration order."""
    return list(getattr(native, "dualnet_variables", ()))


def params(native: keras.layers.Layer) -> list[Any]:
    """The ``tf.Variable``s the optimizer updates: trainable weights of a trainable layer."""
    if not getattr(native, "layer", None) or not native.layer.trainable:
        return []
    # A Keras 3 variable wraps a tf.Variable (`.value`); GradientTape watches the latter.
    return [v.value for s, v in _pairs(native) if s.trainable]


def canonical_grads(native: keras.layers.Layer, grads: Sequence[Any]) -> list[Any]:
    """Keras's layout is the canonical one: nothing to transpose."""
    return list(grads)


def get_weights(native: keras.layers.Layer) -> list[np.ndarray]:
    return [np.array(v.numpy()) for v in variables(native)]


def set_weights(native: keras.layers.Layer, arrays: Sequence[np.ndarray]) -> None:
    """Assign canonical arrays (validated and cast by the neutral layer) to the variables."""
    for variable, array in zip(variables(native), arrays, strict=True):
        variable.assign(np.asarray(array))


def set_trainable(native: keras.layers.Layer, trainable: bool) -> None:
    """Keras's own flag (a frozen Keras BatchNormalization runs in inference mode)."""
    native.trainable = trainable
