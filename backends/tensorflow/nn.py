"""Activation functions on tf.keras: thin calls into ``keras.activations`` / ``tf.nn``.

Parameters arrive already resolved to dualnet's defaults (the neutral layer owns the defaults),
so nothing here relies on a Keras default that differs from torch.

Two deliberate departures from plain Keras, both to follow one documented rule on both sides:

* float16/bfloat16 inputs are computed in float32 and rounded once at the end, which is what
  torch's CPU kernels do (``opmath``). TF's own half kernels round every intermediate; for
  ``gelu(approximate=True)`` the ``3x²`` term overflows float16 for |x| > 148 and the gradient
  becomes ``0·inf = NaN``.
* ``selu``'s derivative at exactly 0 is the left one, ``λ·α`` (as torch, and as relu and
  leaky_relu in both frameworks); ``tf.nn.selu`` uses the right one, ``λ``.
"""

from __future__ import annotations

import functools
import math

import keras
import tensorflow as tf

_A = keras.activations
_HALF = (tf.float16, tf.bfloat16)
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _float32_math(fn):
    """Compute half-precision inputs in float32 and round the result once (torch's opmath)."""

    @functools.wraps(fn)
    def wrapper(x, *args):
        if x.dtype in _HALF:
            return tf.cast(fn(tf.cast(x, tf.float32), *args), x.dtype)
        return fn(x, *args)

    return wrapper


@_float32_math
def sigmoid(x):
    return _A.sigmoid(x)


@_float32_math
def tanh(x):
    return _A.tanh(x)


@_float32_math
def relu(x):
    return _A.relu(x)


@_float32_math
def relu6(x):
    return _A.relu6(x)


@_float32_math
def elu(x, alpha):
    return _A.elu(x, alpha=alpha)


@_float32_math
def gelu(x, approximate):
    # tf.nn.gelu builds its constants with math_ops.cast(0.7071067811865476, dtype), which makes
    # a float32 tensor first: in float64 it uses 1/√2 and 0.044715 rounded to float32, an error of
    # ≈5e-9 (exact form) and ≈9e-10 (tanh form). Constants made directly in x's dtype are exact.
    if approximate:
        c = tf.constant(math.sqrt(2.0 / math.pi), x.dtype)
        k = tf.constant(0.044715, x.dtype)
        return _gelu_tanh(x, c, k)
    # Φ(x) = erfc(-x/√2)/2: no cancellation in the left tail (torch's 1 + erf(x/√2) has some).
    return _gelu_exact(x)


def _gelu_exact(x):
    """0.5·x·erfc(-x/√2) with its derivative Φ(x) + x·φ(x) in closed form: TF's erfc gradient
    multiplies the cotangent times 0.5·x by -2/√π before exp(-z²) = 0, which overflows near the
    dtype's maximum: inf·0 = NaN (catalogue: found.py)."""

    @tf.custom_gradient
    def f(x):
        phi = 0.5 * tf.math.erfc(x * tf.constant(-math.sqrt(0.5), x.dtype))

        def grad(upstream):
            density = tf.exp(-0.5 * x * x) * tf.constant(1.0 / math.sqrt(2.0 * math.pi), x.dtype)
            return upstream * (phi + x * density)

        return x * phi, grad

    return f(x)


def _gelu_tanh(x, c, k):
    """0.5·x·(1 + tanh(c·(x + k·x³))) with its derivative in closed form: autodiff multiplies
    the overflowing x·x (|x| > 1.8e19 in float32) or c·x (near the maximum) by tanh's zero
    derivative, inf·0 = NaN (catalogue: found.py); torch's kernel gives the limit, 0 or 1."""

    @tf.custom_gradient
    def f(x):
        t = tf.math.tanh(c * (x + k * x * x * x))

        def grad(upstream):
            # From |x| = 7.3 on t = ±1 to the last bit in float32 and float64, so 1 - t² = 0:
            # clipping x at ±10 there keeps x³ finite and changes nothing else.
            xc = tf.clip_by_value(x, tf.constant(-10.0, x.dtype), tf.constant(10.0, x.dtype))
            dt = (1.0 - t * t) * c * (1.0 + 3.0 * k * xc * xc)
            return upstream * (0.5 * (1.0 + t) + 0.5 * xc * dt)

        return 0.5 * x * (1.0 + t), grad

    return f(x)


@_float32_math
def silu(x):
    return _A.silu(x)


@_float32_math
def softsign(x):
    return _A.softsign(x)


@_float32_math
def softplus(x):
    return _A.softplus(x)


@_float32_math
def hard_sigmoid(x):
    return _A.hard_sigmoid(x)


@_float32_math
def hard_silu(x):
    @tf.custom_gradient
    def f(x):
        def grad(c):
            # d/dx x·relu6(x + 3)/6: 1 from 3 up, 0 from -3 down, (2x + 3)/6 between (the kinks
            # take the outer values, as relu6's derivative 0 at both ends gives on torch).
            # Autodiff of x·hard_sigmoid(x) forms c·x, which overflows near the dtype's maximum,
            # and Relu6Grad multiplies it by a 0/1 mask: inf·0 = NaN (catalogue: found.py).
            inner = tf.where(x <= -3.0, tf.zeros_like(x), (2.0 * x + 3.0) / 6.0)
            return c * tf.where(x >= 3.0, tf.ones_like(x), inner)

        return _A.hard_silu(x), grad

    return f(x)


@_float32_math
def mish(x):
    @tf.custom_gradient
    def f(x):
        t = tf.tanh(tf.math.softplus(x))

        def grad(c):
            # d/dx x·tanh(softplus(x)) = t + x·σ(x)·(1 - t²), formed before the product with c:
            # autodiff forms c·x, which overflows near the dtype's maximum, times tanh's zero
            # derivative there: inf·0 = NaN (torch's F.mish differentiates in closed form).
            return c * (t + x * tf.sigmoid(x) * (1.0 - t * t))

        return x * t, grad

    return f(x)


@_float32_math
def exponential(x):
    return _A.exponential(x)


def linear(x):
    return x


@_float32_math
def softmax(x, axis):
    return tf.nn.softmax(x, axis=axis)


@_float32_math
def log_softmax(x, axis):
    return tf.nn.log_softmax(x, axis=axis)


@_float32_math
def selu(x):
    # tf.nn.selu's gradient at x == 0 is λ (right derivative); torch's is λ·α (left), the same
    # side relu and leaky_relu take in both frameworks. `x > 0` picks the left branch at 0.
    # The unselected branch is finite everywhere (expm1 of min(x, 0)), so where() has no NaN trap.
    return SELU_SCALE * tf.where(x > 0, x, SELU_ALPHA * tf.math.expm1(tf.minimum(x, 0.0)))


@_float32_math
def leaky_relu(x, negative_slope):
    # tf.nn.leaky_relu (behind keras.activations.leaky_relu) stores `alpha` as a 32-bit float
    # attribute, so in float64 the slope 0.2 becomes 0.20000000298: -2000 instead of -2000.00003
    # at x = -1e4. A multiply by a constant of x's own dtype keeps float64 exact.
    return tf.where(x > 0, x, tf.constant(negative_slope, dtype=x.dtype) * x)
