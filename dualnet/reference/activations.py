"""float64 numpy reference activations (same names as :mod:`dualnet.activations`)."""

from __future__ import annotations

import math

import numpy as np

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def sigmoid(x):
    x = _f64(x)
    # Two branches so neither e^{-x} (x ≪ 0) nor e^{x} (x ≫ 0) overflows.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def tanh(x):
    return np.tanh(_f64(x))


def relu(x):
    return np.maximum(_f64(x), 0.0)


def relu6(x):
    return np.clip(_f64(x), 0.0, 6.0)


def linear(x):
    return _f64(x)


def exponential(x):
    return np.exp(_f64(x))


def softsign(x):
    return _f64(x) / (1.0 + np.abs(_f64(x)))


def leaky_relu(x, negative_slope=0.2):
    x = _f64(x)
    return np.where(x > 0, x, negative_slope * x)


def elu(x, alpha=1.0):
    x = _f64(x)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def selu(x):
    return SELU_SCALE * elu(x, SELU_ALPHA)


def gelu(x, approximate=False):
    x = _f64(x)
    if approximate:
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    # Φ(x) = erfc(-x/√2)/2: no cancellation in the left tail, unlike 1 + erf(x/√2).
    return 0.5 * x * _erfc(-x / math.sqrt(2.0))


def gelu_tanh(x):
    return gelu(x, approximate=True)


def softplus(x):
    x = _f64(x)
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def silu(x):
    return _f64(x) * sigmoid(x)


def hard_sigmoid(x):
    return relu6(_f64(x) + 3.0) / 6.0


def hard_silu(x):
    return _f64(x) * hard_sigmoid(x)


def mish(x):
    return _f64(x) * np.tanh(softplus(x))


def softmax(x, axis=-1):
    x = _f64(x)
    z = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return z / np.sum(z, axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    x = _f64(x)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


swish = silu
hard_swish = hard_silu
