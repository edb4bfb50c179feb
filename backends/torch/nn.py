"""Activation functions on PyTorch: thin calls into ``torch.nn.functional``.

Parameters arrive already resolved to dualnet's defaults (the neutral layer owns the defaults),
so nothing here relies on a torch default that differs from Keras.

float16/bfloat16 inputs are computed in float32 and rounded once at the end. torch's single
kernels already do this (``opmath``), but the composites below (gelu, hard_sigmoid, hard_silu)
would round after every step; the wrapper makes every function follow the one rule the
TensorFlow backend follows too.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

_HALF = (torch.float16, torch.bfloat16)


def _float32_math(fn):
    """Compute half-precision inputs in float32 and round the result once."""

    @functools.wraps(fn)
    def wrapper(x, *args):
        if x.dtype in _HALF:
            return fn(x.float(), *args).to(x.dtype)
        return fn(x, *args)

    return wrapper


@_float32_math
def sigmoid(x):
    return torch.sigmoid(x)


@_float32_math
def tanh(x):
    return torch.tanh(x)


@_float32_math
def relu(x):
    return F.relu(x)


@_float32_math
def relu6(x):
    return F.relu6(x)


@_float32_math
def leaky_relu(x, negative_slope):
    return F.leaky_relu(x, negative_slope)


@_float32_math
def elu(x, alpha):
    return F.elu(x, alpha)


@_float32_math
def selu(x):
    return F.selu(x)


@_float32_math
def silu(x):
    return F.silu(x)


@_float32_math
def softsign(x):
    return F.softsign(x)


@_float32_math
def mish(x):
    return F.mish(x)


@_float32_math
def exponential(x):
    return torch.exp(x)


def linear(x):
    return x


@_float32_math
def softmax(x, axis):
    return F.softmax(x, dim=axis)


@_float32_math
def log_softmax(x, axis):
    return F.log_softmax(x, dim=axis)


@_float32_math
def softplus(x):
    # F.softplus returns x itself above `threshold` (default 20): an error up to 2e-9. Keras
    # computes log(1 + e^x) exactly; logaddexp(x, 0) does so stably, with derivative σ(x)
    # everywhere (max(x,0) + log1p(e^-|x|) would give 1, not 1/2, at x = 0).
    return torch.logaddexp(x, torch.zeros_like(x))


@_float32_math
def hard_sigmoid(x):
    # F.hardsigmoid's float64 backward multiplies by a float32 1/6 (relative error 3e-8);
    # relu6(x + 3) / 6 in x's own dtype is exact, with derivative 0 at both kinks, as TF's.
    return F.relu6(x + 3.0) / 6.0


@_float32_math
def hard_silu(x):
    return x * hard_sigmoid(x)


@_float32_math
def gelu(x, approximate):
    if approximate:
        # F.gelu's tanh backward forms x³ (inf from |x| = 7e102 in float64, 2e12 in float32 on
        # the way to c·x³) times tanh's zero derivative: NaN (catalogue: found.py). From |x| =
        # 7.3 on tanh is ±1 to the last bit, so the function is exactly x or 0 there: select it,
        # and hand F.gelu a clamped x whose (unselected) gradient stays finite.
        inner = F.gelu(x.clamp(-10.0, 10.0), approximate="tanh")
        return torch.where(x > 10.0, x, torch.where(x < -10.0, x * 0.0, inner))
    # F.gelu computes 0.5·x·(1 + erf(x/√2)): for x < -3 the sum cancels and the relative error
    # reaches 100% near x = -8 (absolute ≈ 2e-16). Φ(x) = erfc(-x/√2)/2 has no cancellation;
    # it is also what tf.nn.gelu computes.
    return 0.5 * x * torch.special.erfc(x * -math.sqrt(0.5))
