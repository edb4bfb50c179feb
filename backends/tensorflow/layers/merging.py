"""Merging layers on tf.keras: Keras's own layers, which compute exactly the documented math
for the inputs the neutral layer accepts (equal shapes, so Keras's broadcasting never runs):
sums and products left to right, ``Average`` as that sum over ``n``, ``Maximum``/``Minimum`` by
``tf.maximum``/``tf.minimum`` (NaN propagates; at a tie the gradient goes to the first input),
``Concatenate`` by ``tf.concat`` along the given axis. Masks (Note [Masks] in
:mod:`dualnet.layers.base`) are Keras's own handling, which the torch modules mirror.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from dualnet.backends.tensorflow.layers.base import adopt_keras


class Concatenate(keras.layers.Concatenate):
    """Keras's layer, with its ``compute_mask`` written without ``keras.ops.concatenate``: in a
    functional model the ops that compute a mask consumed downstream become operations of the
    Keras graph, named by Keras's counter (``concatenate``, ``concatenate_1``...), the names
    dualnet gives its Concatenate layers, and Keras refuses a graph with a name twice. The mask
    is the same: each input's over its full shape (all valid without one), joined along the
    axis (``keras.ops.append``), any over the last axis."""

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        ops = keras.ops
        if mask is None or all(m is None for m in mask):
            return None
        full = []
        for x, m in zip(inputs, mask, strict=True):
            if m is None:
                full.append(ops.ones_like(x, dtype="bool"))
                continue
            for _ in range(len(x.shape) - len(m.shape)):
                m = ops.expand_dims(m, -1)
            full.append(ops.logical_or(m, ops.zeros_like(x, dtype="bool")))  # broadcast
        joined = functools.reduce(lambda a, b: ops.append(a, b, axis=self.axis), full)
        return ops.any(joined, axis=-1)


def add(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Add:
    return adopt_keras(keras.layers.Add, layer, weights)


def subtract(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Subtract:
    return adopt_keras(keras.layers.Subtract, layer, weights)


def multiply(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Multiply:
    return adopt_keras(keras.layers.Multiply, layer, weights)


def average(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Average:
    return adopt_keras(keras.layers.Average, layer, weights)


def maximum(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Maximum:
    return adopt_keras(keras.layers.Maximum, layer, weights)


def minimum(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Minimum:
    return adopt_keras(keras.layers.Minimum, layer, weights)


def concatenate(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Concatenate:
    return adopt_keras(Concatenate, layer, weights, axis=layer.axis)
