"""Merging layers on tf.keras: Keras's own layers, which compute exactly the documented math
for the inputs the neutral layer accepts (equal shapes, so Keras's broadcasting never runs):
sums and products left to right, ``Average`` as that sum over ``n``, ``Maximum``/``Minimum`` by
``tf.maximum``/``tf.minimum`` (NaN propagates; at a tie the gradient goes to the first input),
``Concatenate`` by ``tf.concat`` along the given axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from dualnet.backends.tensorflow.layers.base import adopt_keras


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
    return adopt_keras(keras.layers.Concatenate, layer, weights, axis=layer.axis)
