"""Native initializers on tf.keras: ``keras.initializers.X(seed=seed)(shape, dtype)``.

Used only by ``native=True`` initializers. Keras 3's layout and fan computation are dualnet's
canonical ones, so shapes pass through unchanged. An int seed makes a Keras initializer return
the same array on every call (stateless TF random ops), as dualnet's portable mode does.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from dualnet.backends.tensorflow import core

_K = keras.initializers
# Keras's VarianceScaling divides σ by this so the std after truncation at ±2σ is σ.
_TRUNCATION_STD = 0.87962566103423978


def _run(init, shape, dtype, *, compute_dtype: str | None = None) -> np.ndarray:
    values = init(tuple(shape), dtype=compute_dtype or dtype)
    if compute_dtype is not None:
        values = tf.cast(values, core.native_dtype(dtype))
    return core.to_numpy(values)


def random_normal(shape, dtype, seed, *, mean, stddev):
    return _run(_K.RandomNormal(mean=mean, stddev=stddev, seed=seed), shape, dtype)


def random_uniform(shape, dtype, seed, *, minval, maxval):
    return _run(_K.RandomUniform(minval=minval, maxval=maxval, seed=seed), shape, dtype)


def truncated_normal(shape, dtype, seed, *, mean, stddev):
    return _run(_K.TruncatedNormal(mean=mean, stddev=stddev, seed=seed), shape, dtype)


def constant(shape, dtype, *, value):
    if value == 0.0:
        return _run(_K.Zeros(), shape, dtype)
    if value == 1.0:
        return _run(_K.Ones(), shape, dtype)
    return _run(_K.Constant(value=value), shape, dtype)


def variance_scaling(shape, dtype, seed, *, scale, mode, distribution, fans):
    if fans is None:
        init = _K.VarianceScaling(scale=scale, mode=mode, distribution=distribution, seed=seed)
        return _run(init, shape, dtype)
    # Keras has no way to pass fans; apply its VarianceScaling formula to the given fans and
    # draw with the Keras initializer of that distribution (what VarianceScaling calls).
    fan_in, fan_out = fans
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
    variance = scale / max(1.0, n)
    if distribution == "truncated_normal":
        init = _K.TruncatedNormal(stddev=math.sqrt(variance) / _TRUNCATION_STD, seed=seed)
    elif distribution == "untruncated_normal":
        init = _K.RandomNormal(stddev=math.sqrt(variance), seed=seed)
    else:
        limit = math.sqrt(3.0 * variance)
        init = _K.RandomUniform(minval=-limit, maxval=limit, seed=seed)
    return _run(init, shape, dtype)


def orthogonal(shape, dtype, seed, *, gain):
    # TF's QR has no bfloat16 kernel: draw in float32 and round once.
    compute = "float32" if dtype == "bfloat16" else None
    return _run(_K.Orthogonal(gain=gain, seed=seed), shape, dtype, compute_dtype=compute)
