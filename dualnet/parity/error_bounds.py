"""Derived per-element rounding-error bounds for stacks of Dense layers and their gradients.

Note [Dense error bounds]
-------------------------
An assert_close bound relative to each output cannot hold for a dot product whose terms cancel
(a ±1e3 input row whose products sum to ~1), and one √K-scaled bound for every comparison is
either too loose or wrong. So a Dense stack computed in a dtype of unit roundoff ``u`` is held
to a bound derived from its own computation, a first-order running error analysis:

* Every rounding is an *injection* with an element-wise bound (the inputs of the operation
  taken exact):

  - a layer's sum ``z = h·W + b``: ``γ_{K+1}·(|h|·|W| + |b|)``, Higham's dot-product bound
    (*Accuracy and Stability of Numerical Algorithms*, §3.1) with ``K = in_features`` products
    and the bias (``γ_n = n·u/(1 - n·u)``, any summation order);
  - an activation: sigmoid and tanh ``ACT_ULPS·u`` (absolute: TensorFlow flushes subnormal
    outputs to zero, so no relative bound holds there), leaky_relu's product ``u·|a|``,
    softmax's exp, sum and division ``γ_{n+8}·a + u``;
  - a backward step ``∂z = g·act'``: ``ACT_GRAD_ULPS·u·|g|`` (softmax: its row sum
    ``γ_n·Σ|g|·a`` and two products), plus the forward error's effect on ``act'`` (sigmoid:
    ``|g|·|1-2a|·e_a``, tanh ``|g|·2|a|·e_a``, softmax ``e_a·|g - Σga| + a·Σ|g|e_a``);
  - ``∂h = ∂z·Wᵀ``: ``γ_U·|∂z|·|W|ᵀ`` (``U`` = units); ``∂W = hᵀ·∂z`` and ``∂b = Σ∂z``:
    ``γ_B`` times the same products of magnitudes (``B`` = the batch).

* Each injection reaches a later value through the exact Jacobian of the computation between
  them, ``J`` (per sample: ``Wᵀ``, ``diag(act')``, softmax's ``diag(s) - ssᵀ``), so its
  contribution is at most ``|J|·ε``. The bound of a value is the sum over every injection
  before it. ``|J|`` is the absolute value of the *product* of the Jacobians, not the product
  of their absolute values: a saturated tanh damps what passes through it, and signs cancel
  as they do in the computation; composing ``|W|`` layer by layer instead would grow like
  ``‖|W|‖^L`` (x10⁷ for 8 layers of 32 units here) and check nothing in a deep net.

* relu and leaky_relu: where a pre-activation lies within its own error bound of the kink,
  the computed one may be on either side: the whole error ``e_z`` (forward) and ``|g|``
  (backward) is injected there.

The analysis is first order in ``u`` (products of two rounding errors are dropped, as in any
running error analysis; they are ~1e-7 of the terms kept in float32). The activations' own
rounding is measured, not derived: on both backends over z in [-120, 120], float32 and
float64, the worst forward error was 8u (TensorFlow's float64 tanh; 4.8u its float32 tanh,
2.1u sigmoid) and the worst backward error 16u·|g| (TensorFlow's float64 tanh gradient); the
constants double those.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dualnet.parity.tolerance import gamma
from dualnet.reference.layers import core as RL

ACT_ULPS = 16.0
ACT_GRAD_ULPS = 32.0
LEAKY_SLOPE = 0.2  # dualnet.activations.leaky_relu's default (Keras's)
SUPPORTED = ("linear", "relu", "leaky_relu", "sigmoid", "tanh", "softmax")


@dataclass(frozen=True)
class ErrorBounds:
    """Per-element rounding-error bounds of a Dense stack's output and gradients.

    Attributes:
        forward: bound on ``|ŷ - y|`` per output element, ``(batch, units_L)``.
        grads: bounds on each gradient of ``cᵀ·y``, input first, then the weights in
            ``model.get_weights()`` order (kernel, bias per layer).
    """

    forward: np.ndarray
    grads: list[np.ndarray]


class _Injections:
    """Injected errors ``ε_s`` (each ``(batch, n_s)``) and the Jacobians ``J_s`` (``(batch,
    n, n_s)``) that carry each to the current value; its bound is ``Σ_s |J_s|·ε_s``."""

    def __init__(self) -> None:
        self.maps: list[np.ndarray] = []
        self.errors: list[np.ndarray] = []

    def add(self, error: np.ndarray) -> None:
        """A new injection at the current value (its Jacobian is the identity)."""
        batch, n = error.shape
        self.maps.append(np.broadcast_to(np.eye(n), (batch, n, n)))
        self.errors.append(error)

    def through(self, jacobian: np.ndarray) -> None:
        """Carry every injection through a linear map ``(batch, n_out, n_in)`` (or a weight
        matrix ``(n_out, n_in)`` shared by the batch)."""
        spec = "on,bns->bos" if jacobian.ndim == 2 else "bon,bns->bos"
        self.maps = [np.einsum(spec, jacobian, m) for m in self.maps]

    def bound(self, n: int, batch: int) -> np.ndarray:
        total = np.zeros((batch, n))
        for m, e in zip(self.maps, self.errors, strict=True):
            total += np.einsum("bos,bs->bo", np.abs(m), e)  # |J|·ε, J the exact product
        return total


def _jacobian(name: str, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``∂a/∂z`` per sample, ``(batch, n, n)``, at the exact pre-activation."""
    if name == "softmax":  # diag(s) - s·sᵀ
        return np.einsum("bi,ij->bij", a, np.eye(a.shape[-1])) - np.einsum("bi,bj->bij", a, a)
    if name == "linear":
        d = np.ones_like(z)
    elif name in ("relu", "leaky_relu"):
        d = np.where(z > 0, 1.0, 0.0 if name == "relu" else LEAKY_SLOPE)
    elif name == "sigmoid":
        d = a * (1.0 - a)
    else:  # tanh
        d = 1.0 - a * a
    return np.einsum("bi,ij->bij", d, np.eye(z.shape[-1]))


def _unsure(name: str, z: np.ndarray, ez: np.ndarray) -> np.ndarray:
    """Units whose computed pre-activation may sit on the other side of a kink."""
    if name not in ("relu", "leaky_relu"):
        return np.zeros(z.shape, dtype=bool)
    return (np.abs(z) <= ez) & (ez > 0)


def _activation_rounding(name: str, a: np.ndarray, u: float) -> np.ndarray:
    if name in ("linear", "relu"):
        return np.zeros_like(a)  # exact operations
    if name == "leaky_relu":
        return u * np.abs(a)
    if name == "softmax":  # exp (with its argument's rounding), the row sum, the division
        return gamma(a.shape[-1] + 8, u) * a + u
    return np.full_like(a, ACT_ULPS * u)


def _backward_injection(name: str, a, ea, g, unsure, u: float) -> np.ndarray:
    """The error a backward step ``∂z = vjp(g)`` adds: its own rounding and the effect of the
    forward error ``ea`` on the derivative it uses."""
    absg = np.abs(g)
    if name == "softmax":
        n = a.shape[-1]
        s = np.sum(g * a, axis=-1, keepdims=True)
        diff = np.abs(g - s)
        from_forward = ea * diff + a * np.sum(absg * ea, axis=-1, keepdims=True)
        rounding = a * (gamma(n, u) * np.sum(absg * a, axis=-1, keepdims=True) + u * diff)
        return from_forward + rounding + u * a * diff
    if name == "sigmoid":
        return absg * np.abs(1.0 - 2.0 * a) * ea + ACT_GRAD_ULPS * u * absg
    if name == "tanh":
        return absg * 2.0 * np.abs(a) * ea + ACT_GRAD_ULPS * u * absg
    if name in ("relu", "leaky_relu"):
        low = 0.0 if name == "relu" else LEAKY_SLOPE
        d = np.where(unsure, 1.0 - low, 0.0)  # either slope may have been taken
        product = u * absg * (1.0 if name == "leaky_relu" else 0.0)
        return absg * d + product
    return np.zeros_like(g)  # linear


def dense_error_bounds(
    x: np.ndarray, weights: list[np.ndarray], activations: tuple[str, ...],
    biases: tuple[bool, ...], cotangent: np.ndarray, u: float,
) -> ErrorBounds:  # fmt: skip
    """Bounds on the rounding error of a Dense stack's output and of its vector-Jacobian
    product with ``cotangent``, computed in a dtype of unit roundoff ``u`` from the exact
    (already rounded) ``x``, ``weights`` and ``cotangent`` (Note [Dense error bounds]).

    Args:
        x: ``(batch, in_features)`` input.
        weights: canonical weights (kernel ``(in, out)``, then bias where ``biases[i]``).
        activations: one name per layer, among :data:`SUPPORTED`.
        biases: whether each layer has a bias.
        cotangent: ``(batch, units_L)``.
        u: the unit roundoff (:data:`dualnet.parity.tolerance.UNIT_ROUNDOFF`).

    Returns:
        :class:`ErrorBounds` in the layout of the forward output and of the gradients.
    """
    unknown = sorted(set(activations) - set(SUPPORTED))
    if unknown:
        raise ValueError(
            f"dense_error_bounds: no derived bound for activation(s) {unknown}; expected "
            f"one of {', '.join(SUPPORTED)}"
        )
    h = np.asarray(x, dtype=np.float64)
    batch = h.shape[0]
    forward = _Injections()
    layers: list[dict[str, Any]] = []
    ea = np.zeros(h.shape)
    i = 0
    for act, has_bias in zip(activations, biases, strict=True):
        kernel = np.asarray(weights[i], dtype=np.float64)
        bias = np.asarray(weights[i + 1], np.float64) if has_bias else np.zeros(kernel.shape[1])
        i += 2 if has_bias else 1
        k = kernel.shape[0] + (1 if has_bias else 0)  # K products and the bias
        z = h @ kernel + bias
        forward.through(kernel.T)  # ∂z/∂h = Wᵀ
        forward.add(gamma(k, u) * (np.abs(h) @ np.abs(kernel) + np.abs(bias)))
        ez = forward.bound(z.shape[1], batch)
        a = RL.activation(z, act)
        unsure = _unsure(act, z, ez)
        forward.through(_jacobian(act, z, a))
        # The activation's rounding, and the whole error where the kink may have been crossed.
        forward.add(_activation_rounding(act, a, u) + np.where(unsure, ez, 0.0))
        layers.append({"h": h, "e_h": ea, "kernel": kernel, "z": z, "a": a, "unsure": unsure})
        ea = forward.bound(a.shape[1], batch)
        layers[-1]["e_a"] = ea
        h = a

    g = np.asarray(cotangent, dtype=np.float64)
    backward = _Injections()
    grads: list[np.ndarray] = []
    for layer, act, has_bias in reversed(list(zip(layers, activations, biases, strict=True))):
        a, kernel = layer["a"], layer["kernel"]
        jac = _jacobian(act, layer["z"], a)
        backward.through(np.swapaxes(jac, 1, 2))  # ∂z = Jᵀ·g
        backward.add(_backward_injection(act, a, layer["e_a"], g, layer["unsure"], u))
        gz = np.einsum("bji,bj->bi", jac, g)
        egz = backward.bound(gz.shape[1], batch)
        h, e_h, absgz = layer["h"], layer["e_h"], np.abs(gz)
        # ∂W = hᵀ·∂z: its own sum over the batch, and both factors' errors.
        layer_grads = [gamma(batch, u) * np.abs(h).T @ absgz + e_h.T @ absgz + np.abs(h).T @ egz]
        if has_bias:
            layer_grads.append(gamma(batch, u) * absgz.sum(axis=0) + egz.sum(axis=0))
        grads = layer_grads + grads
        backward.through(kernel)  # ∂h = ∂z·Wᵀ, i.e. W·∂z per sample
        backward.add(gamma(kernel.shape[1], u) * absgz @ np.abs(kernel).T)
        g = gz @ kernel.T
    input_bound = backward.bound(g.shape[1], batch)
    return ErrorBounds(forward=ea, grads=[input_bound, *grads])
