"""float64 numpy reference of training a stack of Dense layers: forward, analytic backprop,
losses, and the optimizer loop.

Plain numpy, written from the math: ``mlp_loss_and_grads`` differentiates by hand (no
framework, no finite differences), and :func:`train` runs the same batches as ``model.fit``
(the batch order is given to it) with the update rules of
:mod:`dualnet.reference.optimizers`. Weights are in canonical layout (kernel ``(in, out)``),
in the order of ``model.get_weights()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dualnet.reference import activations as A
from dualnet.reference import losses as L
from dualnet.reference import optimizers as O


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


# ----------------------------------------------------------------- activation backward passes
def activation_backward(name: str, z: np.ndarray, a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``∂L/∂z`` from ``g = ∂L/∂a`` where ``a = act(z)``.

    relu's derivative at exactly 0 is 0 (torch and TensorFlow agree); softmax is the
    Jacobian-vector product ``a ⊙ (g - Σ g·a)`` over the last axis.
    """
    if name in ("linear", None):
        return g
    if name == "relu":
        return g * (z > 0)
    if name == "sigmoid":
        return g * a * (1.0 - a)
    if name == "tanh":
        return g * (1.0 - a * a)
    if name == "softmax":
        return a * (g - np.sum(g * a, axis=-1, keepdims=True))
    raise NotImplementedError(f"reference backward for activation {name!r}")


# ----------------------------------------------------------------------- losses and their grads
def loss_and_grad(loss: dict[str, Any], y: np.ndarray, p: np.ndarray,
                  clip_dtype: str = "float64") -> tuple[float, np.ndarray]:  # fmt: skip
    """The batch loss (``sum_over_batch_size``) and ``∂loss/∂p``.

    ``loss`` is ``{"class_name": ..., "config": {...}}`` (:func:`dualnet.losses.serialize`).
    Supported: MeanSquaredError, CategoricalCrossentropy (probabilities with Keras's
    normalise-then-clip, or logits), BinaryCrossentropy (probabilities with Keras's clip, or
    logits). Probability clipping: zero gradient strictly outside ``[ε, 1-ε]``.
    """
    name, config = loss["class_name"], loss["config"]
    y, p = _f64(y), _f64(p)
    batch = p.shape[0]
    if name == "MeanSquaredError":
        values = L.mean_squared_error(y, p)
        return float(np.mean(values)), 2.0 * (p - y) / p.size
    if name == "CategoricalCrossentropy":
        assert not config.get("label_smoothing"), "reference: no label smoothing"
        values = L.categorical_crossentropy(y, p, from_logits=config["from_logits"],
                                            clip_dtype=clip_dtype)  # fmt: skip
        if config["from_logits"]:
            s = np.exp(p - p.max(axis=-1, keepdims=True))
            s /= s.sum(axis=-1, keepdims=True)
            # ∂/∂x of -Σ t·log_softmax(x) is Σt·softmax(x) - t.
            grad = s * y.sum(axis=-1, keepdims=True) - y
        else:
            lo, hi = L._bounds(clip_dtype)
            total = p.sum(axis=-1, keepdims=True)
            q = p / total  # normalise, then clip (Keras)
            inside = (q >= lo) & (q <= hi)  # the clip passes the gradient at its bounds
            gq = np.where(inside, -y / np.clip(q, lo, hi), 0.0)
            # q_c = p_c / Σp: ∂L/∂p_j = g_j/Σp - Σ_c g_c·p_c/(Σp)².
            grad = gq / total - np.sum(gq * p, axis=-1, keepdims=True) / total**2
        return float(np.mean(values)), grad / batch
    if name == "BinaryCrossentropy":
        assert not config.get("label_smoothing"), "reference: no label smoothing"
        values = L.binary_crossentropy(y, p, from_logits=config["from_logits"],
                                       clip_dtype=clip_dtype)  # fmt: skip
        k = p.shape[-1]
        if config["from_logits"]:
            grad = 1.0 / (1.0 + np.exp(-p)) - y
        else:
            lo, hi = L._bounds(clip_dtype)
            q = np.clip(p, lo, hi)
            inside = (p >= lo) & (p <= hi)
            grad = np.where(inside, -(y / q) + (1.0 - y) / (1.0 - q), 0.0)
        return float(np.mean(values)), grad / (k * batch)
    raise NotImplementedError(f"reference gradient for loss {name!r}")


# ----------------------------------------------------------------------------- the network
def mlp_loss_and_grads(
    x: np.ndarray, y: np.ndarray, weights: Sequence[np.ndarray], activations: Sequence[str],
    loss: dict[str, Any], clip_dtype: str = "float64",
) -> tuple[float, list[np.ndarray], list[np.ndarray]]:  # fmt: skip
    """Loss, gradients (canonical layout, ``model.get_weights()`` order) and every layer's
    output, for a stack of Dense layers with biases."""
    h = _f64(x)
    inputs, pre, outs = [], [], []
    for i, act in enumerate(activations):
        kernel, bias = _f64(weights[2 * i]), _f64(weights[2 * i + 1])
        z = h @ kernel + bias
        a = getattr(A, act or "linear")(z)
        inputs.append(h)
        pre.append(z)
        outs.append(a)
        h = a
    value, g = loss_and_grad(loss, y, h, clip_dtype)
    grads: list[np.ndarray] = [np.empty(0)] * (2 * len(activations))
    for i in reversed(range(len(activations))):
        gz = activation_backward(activations[i], pre[i], outs[i], g)
        grads[2 * i] = inputs[i].T @ gz  # ∂L/∂kernel = hᵀ·∂L/∂z
        grads[2 * i + 1] = gz.sum(axis=0)  # ∂L/∂bias = Σ over the batch
        g = gz @ _f64(weights[2 * i]).T  # ∂L/∂h for the layer below
    return value, grads, outs


def train(
    x: np.ndarray, y: np.ndarray, weights: Sequence[np.ndarray], activations: Sequence[str],
    loss: dict[str, Any], optimizer: dict[str, Any], batches: Sequence[np.ndarray],
    clip_dtype: str = "float64",
) -> tuple[list[float], list[list[np.ndarray]], dict[str, list[np.ndarray]]]:  # fmt: skip
    """Train in float64 on the given batches (index arrays, in order).

    ``optimizer`` is :func:`dualnet.optimizers.serialize`'s output. Returns the loss of every
    step (before its update), the weights after every step, and the final optimizer state.
    """
    name, config = optimizer["class_name"], optimizer["config"]
    params = [_f64(w) for w in weights]
    state = O.initial_state(name, config, params)
    losses, history = [], []
    for k, idx in enumerate(batches):
        value, grads, _ = mlp_loss_and_grads(x[idx], y[idx], params, activations, loss,
                                             clip_dtype)  # fmt: skip
        losses.append(value)
        params, state = O.step(name, config, params, grads, state, k)
        history.append(params)
    return losses, history, state
