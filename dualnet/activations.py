"""Activation functions: one definition, both backends.

Every function takes a numpy array, list or native tensor of the active backend and returns a
native tensor. Where torch and Keras defaults disagree, the docstring names both and says which
one dualnet uses; the float64 reference in :mod:`dualnet.reference.activations` gives the math
as code.

Defaults where the frameworks disagree:

===================  ==============================  =====================  ===============
parameter            Keras 3                         torch                  dualnet
===================  ==============================  =====================  ===============
leaky_relu slope     0.2 (function), 0.3 (layer)     0.01                   0.2 (Keras fn)
gelu approximate     False (activation),             "none"                 False (exact)
                     True (``keras.ops.gelu``)
softmax axis         -1                              no default (``dim``)   -1
softplus             exact log(1+eˣ)                 identity above x > 20  exact
===================  ==============================  =====================  ===============
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dualnet import _ops
from dualnet.dtypes import FLOAT_DTYPES, FLOATX
from dualnet.errors import bad_type, bad_value, check_real, unknown_name

__all__ = [
    "elu", "exponential", "gelu", "gelu_tanh", "get", "hard_sigmoid", "hard_silu", "leaky_relu",
    "linear", "log_softmax", "mish", "relu", "relu6", "selu", "serialize", "sigmoid", "silu",
    "softmax", "softplus", "softsign", "swish", "tanh",
]  # fmt: skip

DEFAULT_LEAKY_RELU_SLOPE = 0.2
DEFAULT_ELU_ALPHA = 1.0
DEFAULT_SOFTMAX_AXIS = -1


def _axis(value: Any, x: Any, where: str) -> int:
    """A valid axis of ``x`` (negative counts from the end), checked before any framework call."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_type("axis", value, "an int", where=where)
    rank = len(x.shape)
    if not -rank <= value < rank:
        raise bad_value("axis", value, f"an axis of an input of rank {rank}", where=where)
    return value


def _float(x: Any) -> Any:
    """A native floating tensor: integer and bool inputs become float32 (Keras's floatx), as
    Keras's activations do; torch would raise for most of them and TF for the others."""
    t = _ops.tensor(x)
    core = _ops.backend().core
    if core.dtype_name(t) not in FLOAT_DTYPES:
        t = core.convert_to_tensor(t, FLOATX)
    return t


def _nn():
    return _ops.backend().nn


def sigmoid(x):
    """Logistic sigmoid, ``σ(x) = 1 / (1 + e^{-x})``; saturates to 0 and 1 for large ``|x|``."""
    return _nn().sigmoid(_float(x))


def tanh(x):
    """Hyperbolic tangent, ``tanh(x) = (e^x - e^{-x}) / (e^x + e^{-x})``."""
    return _nn().tanh(_float(x))


def relu(x):
    """Rectified linear unit, ``max(x, 0)``. The derivative at 0 is taken as 0 (both frameworks)."""
    return _nn().relu(_float(x))


def relu6(x):
    """``min(max(x, 0), 6)``. Derivative 0 at both kinks (x = 0 and x = 6), in both frameworks."""
    return _nn().relu6(_float(x))


def leaky_relu(x, negative_slope: float = DEFAULT_LEAKY_RELU_SLOPE):
    """Leaky ReLU, ``x if x > 0 else negative_slope * x``.

    Default slope 0.2, as ``keras.activations.leaky_relu`` (and ``tf.nn.leaky_relu``). The
    Keras *layer* ``LeakyReLU`` defaults to 0.3 and torch's ``F.leaky_relu`` to 0.01: pass
    ``negative_slope`` explicitly to reproduce either. The derivative at 0 is ``negative_slope``.
    """
    slope = check_real("negative_slope", negative_slope, "leaky_relu")
    return _nn().leaky_relu(_float(x), slope)


def elu(x, alpha: float = DEFAULT_ELU_ALPHA):
    """Exponential linear unit, ``x if x > 0 else alpha * (e^x - 1)``; alpha = 1 in both."""
    return _nn().elu(_float(x), check_real("alpha", alpha, "elu"))


def selu(x):
    """Scaled ELU, ``λ·elu(x, α)`` with α ≈ 1.6732632423543772, λ ≈ 1.0507009873554805."""
    return _nn().selu(_float(x))


def gelu(x, approximate: bool = False):
    """Gaussian error linear unit.

    Exact: ``x·Φ(x) = 0.5·x·(1 + erf(x/√2))``. With ``approximate=True`` the tanh form
    ``0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))``. dualnet defaults to the exact form, as do
    ``keras.activations.gelu`` and torch; note ``keras.ops.gelu`` defaults to the tanh form.
    """
    if not isinstance(approximate, bool):
        raise bad_type("approximate", approximate, "a bool", where="gelu")
    return _nn().gelu(_float(x), approximate)


def gelu_tanh(x):
    """GELU's tanh form, ``gelu(x, approximate=True)`` (torch's ``GELU(approximate="tanh")``),
    under a name of its own so that a layer using it has a config (and can be saved)."""
    return gelu(x, approximate=True)


def silu(x):
    """Sigmoid-weighted linear unit (swish), ``x·σ(x)``."""
    return _nn().silu(_float(x))


swish = silu


def softplus(x):
    """``log(1 + e^x)``, computed stably as ``max(x, 0) + log1p(e^{-|x|})``.

    torch's ``F.softplus`` returns ``x`` itself above ``threshold=20`` (error ≈ 2e-9); dualnet
    follows Keras and computes the exact value on both backends.
    """
    return _nn().softplus(_float(x))


def softsign(x):
    """``x / (1 + |x|)``."""
    return _nn().softsign(_float(x))


def hard_sigmoid(x):
    """Piecewise-linear sigmoid, ``relu6(x + 3) / 6``.

    Keras 3 and torch agree. Keras 2 (and some older Keras docstrings) use ``0.2·x + 0.5``
    clipped to [0, 1]: a different function.
    """
    return _nn().hard_sigmoid(_float(x))


def hard_silu(x):
    """Hard swish, ``x · relu6(x + 3) / 6`` (torch ``hardswish``)."""
    return _nn().hard_silu(_float(x))


def mish(x):
    """``x · tanh(softplus(x))``."""
    return _nn().mish(_float(x))


def exponential(x):
    """``e^x``; overflows to inf above ≈ 88.7 in float32 and ≈ 11.1 in float16."""
    return _nn().exponential(_float(x))


def linear(x):
    """The identity (Keras's ``"linear"``, also what ``activation=None`` means)."""
    return _nn().linear(_float(x))


def softmax(x, axis: int = DEFAULT_SOFTMAX_AXIS):
    """``e^{x_i - max x} / Σ_j e^{x_j - max x}`` along ``axis`` (default -1, as Keras;
    torch's functional form has no default ``dim``)."""
    t = _float(x)
    return _nn().softmax(t, _axis(axis, t, "softmax"))


def log_softmax(x, axis: int = DEFAULT_SOFTMAX_AXIS):
    """``x_i - max x - log Σ_j e^{x_j - max x}`` along ``axis`` (default -1)."""
    t = _float(x)
    return _nn().log_softmax(t, _axis(axis, t, "log_softmax"))


_REGISTRY: dict[str, Callable[..., Any]] = {
    "sigmoid": sigmoid, "tanh": tanh, "relu": relu, "relu6": relu6, "leaky_relu": leaky_relu,
    "elu": elu, "selu": selu, "gelu": gelu, "gelu_tanh": gelu_tanh, "silu": silu, "swish": silu,
    "softplus": softplus,
    "softsign": softsign, "hard_sigmoid": hard_sigmoid, "hard_silu": hard_silu,
    "hard_swish": hard_silu, "mish": mish, "exponential": exponential, "linear": linear,
    "softmax": softmax, "log_softmax": log_softmax,
}  # fmt: skip
NAMES: tuple[str, ...] = tuple(_REGISTRY)


def get(identifier: str | Callable[..., Any] | None) -> Callable[..., Any]:
    """Resolve an activation: a name (``"relu"``), a callable (returned as is) or None (linear)."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        if identifier not in _REGISTRY:
            raise unknown_name("activation", identifier, list(_REGISTRY))
        return _REGISTRY[identifier]
    if callable(identifier):
        return identifier
    raise bad_type("activation", identifier, "a name such as 'relu', a callable, or None")


def serialize(fn: Callable[..., Any]) -> str | Callable[..., Any]:
    """The registry name of a built-in activation (for ``get_config``); custom callables as is."""
    for name, candidate in _REGISTRY.items():
        if candidate is fn:
            return name
    return fn
