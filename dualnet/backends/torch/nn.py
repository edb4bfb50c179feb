"""Activation functions on PyTorch: thin calls into ``torch.nn.functional``.

Parameters arrive already resolved to dualnet's defaults (the neutral layer owns the defaults),
so nothing here relies on a torch default that differs from Keras.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def sigmoid(x):
    return torch.sigmoid(x)


def tanh(x):
    return torch.tanh(x)


def relu(x):
    return F.relu(x)


def relu6(x):
    return F.relu6(x)


def leaky_relu(x, negative_slope):
    return F.leaky_relu(x, negative_slope)


def elu(x, alpha):
    return F.elu(x, alpha)


def selu(x):
    return F.selu(x)


def silu(x):
    return F.silu(x)


def softsign(x):
    return F.softsign(x)


def mish(x):
    return F.mish(x)


def exponential(x):
    return torch.exp(x)


def linear(x):
    return x


def softmax(x, axis):
    return F.softmax(x, dim=axis)


def log_softmax(x, axis):
    return F.log_softmax(x, dim=axis)


def softplus(x):
    # F.softplus returns x itself above `threshold` (default 20): an error up to 2e-9. Keras
    # computes log(1 + e^x) exactly; logaddexp(x, 0) does so stably, with derivative σ(x)
    # everywhere (max(x,0) + log1p(e^-|x|) would give 1, not 1/2, at x = 0).
    return torch.logaddexp(x, torch.zeros_like(x))


def hard_sigmoid(x):
    # F.hardsigmoid's float64 backward multiplies by a float32 1/6 (relative error 3e-8);
    # relu6(x + 3) / 6 in x's own dtype is exact, with derivative 0 at both kinks, as TF's.
    return F.relu6(x + 3.0) / 6.0


def hard_silu(x):
    return x * hard_sigmoid(x)


def gelu(x, approximate):
    if approximate:
        return F.gelu(x, approximate="tanh")
    # F.gelu computes 0.5·x·(1 + erf(x/√2)): for x < -3 the sum cancels and the relative error
    # reaches 100% near x = -8 (absolute ≈ 2e-16). Φ(x) = erfc(-x/√2)/2 has no cancellation;
    # it is also what tf.nn.gelu computes.
    return 0.5 * x * torch.special.erfc(x * -math.sqrt(0.5))
