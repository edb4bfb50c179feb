"""The measurements behind :func:`dualnet.parity.check_model`: one model run layer by layer,
the float64 reference layer by layer, the gradients of the check's loss, and the tolerance of
each comparison.

The check's loss (Note [Check loss])
------------------------------------
Gradients need a scalar. The check uses a fixed random *linear* functional of the outputs,

    L = Σ_k Σ_i y_k[i] · P_k[i],        P_k ~ N(0, 1) elementwise, seeded (``seed + 1``),

with ``P_k`` zero where the output's mask marks padding. Being linear, ``∂L/∂y = P`` exactly on
both frameworks: the backward pass starts from the very same values, whatever the outputs'
rounding, so every gradient difference comes from the model's own backward pass. A random
projection weights every output element (a plain sum would cancel through a softmax, and a
squared error's seed ``2(y - t)`` would carry the forward difference into the backward pass).

Tolerances (Note [Check tolerances])
------------------------------------
Every comparison uses :func:`dualnet.parity.tolerance.for_reduction`, ``assert_close``'s
default for the dtype scaled by ``√K``, with ``K`` the longest chain of sums behind the value:

* a layer call's own sum length ``k``: the largest fan-in of its kernels (``prod(shape[:-1])``
  of every weight of rank >= 2; an Embedding's table is a lookup, 1), times the steps for a
  recurrent layer (kernel and recurrent fan-ins added: each step's state feeds the next),
  plus the keys for attention, the reduced elements of a normalisation (the channel's
  ``B·H·W`` for BatchNormalization in training, the features for LayerNormalization), at least
  the ratio of input to output elements (pooling), and the number of inputs of a merge;
* an output: ``K = k + max K(parents)``, the sums along the longest path from the inputs
  adding up (the error bound of a product of matrices: see tests/test_networks.py's
  ``FORWARD_K``);
* a weight's gradient: the whole forward chain ``K_total`` (the backward pass walks the same
  sums back) plus the positions its gradient sums over, ``batch × prod(input.shape[1:-1])``
  (a Dense on ``(B, F)``: B; a Conv2D on ``(B, H, W, C)``: B·H·W; an LSTM: B·T);
* the loss: ``K_total`` plus the output elements it sums.

A normalisation ``(x - mean)/σ`` amplifies its input's rounding errors, which are relative to
``|x|``, by ``rms(x)/σ``: about 1 for well-spread values, but large where a batch statistic
rests on few, close values (BatchNormalization in training on a batch of 2 at 1×1 spatial size,
the end of a ResNet on small images: measured torch-vs-TF 7e-3 there, both sides off the
float64 reference by as much). Each bound is therefore multiplied by the product of these
factors' largest value on the paths from the inputs (:func:`_conditioning`, measured on the
data), and a gradient's bound by the largest in the model (the backward pass divides by the same
σ). Not their product: each is 1-2 for well-spread data and dozens of them would compound to
thousands; several ill-conditioned normalisations in a row are therefore not modelled (first
order: the worst one dominates). For well-conditioned data the factor changes nothing.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dualnet._backend import backend_module, use_backend
from dualnet._ops import to_numpy
from dualnet.parity import tolerance as tol
from dualnet.parity.locate import LayerCall, call_labeller, layer_calls

__all__ = ["chain_lengths", "forward", "gradients", "projections", "reference_calls"]


def host(x: Any) -> np.ndarray:
    """A native tensor as a numpy array (dtype kept)."""
    return np.asarray(to_numpy(x))


def outputs_of(call: LayerCall) -> list[Any]:
    return list(call.output) if isinstance(call.output, list) else [call.output]


def mask_of(t: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    """The mask attached to a native tensor, broadcast to ``shape`` (True = compared)."""
    m = getattr(t, "_keras_mask", None)
    if m is None:
        return None
    m = np.asarray(to_numpy(m), dtype=bool)
    if m.shape == tuple(shape[: m.ndim]) and m.ndim <= len(shape):
        return np.broadcast_to(m.reshape(m.shape + (1,) * (len(shape) - m.ndim)), shape)
    return None


# -------------------------------------------------------------------------------- forward


def forward(model: Any, x: Any, training: bool) -> tuple[list[LayerCall], list[np.ndarray]]:
    """Every layer call (outputs on the host) and, in training mode, the weights after the
    call (moving statistics updated); the model's weights and runtime state (the next dropout
    masks) are put back afterwards, so both modes and the gradients start from the same."""
    weights = model.get_weights()
    runtime = [layer.get_runtime_state() for layer in model.layers]
    try:
        calls = layer_calls(model, x, training=training)
        after = model.get_weights() if training else weights
    finally:
        model.set_weights(weights)
        for layer, state in zip(model.layers, runtime, strict=True):
            layer.set_runtime_state(state)
    return calls, after


# ------------------------------------------------------------------------------ reference


def reference_calls(model: Any, x: Any, training: bool) -> dict[str, list[np.ndarray]]:
    """The float64 reference of every layer call of a Sequential or functional model, by the
    same labels as :func:`~dualnet.parity.locate.layer_calls`: the reference's own model
    forward (:func:`dualnet.reference.layers.model_forward`: each layer's reference fed the
    reference's outputs, masks derived the same way, each layer drawing its dropout mask for its
    current training call), recorded call by call. Raises NotImplementedError for a subclassed
    model or a layer without a reference."""
    from dualnet.models import Functional, Sequential
    from dualnet.reference.layers import model_forward

    if not isinstance(model, Sequential | Functional):
        raise NotImplementedError("no per-layer reference for a subclassed model")
    results: dict[str, list[np.ndarray]] = {}
    label = call_labeller()

    def record(layer: Any, outs: list[Any]) -> None:
        results[label(layer)] = [np.asarray(o) for o in outs]

    model_forward(model, x, model.get_weights(), training=training, call=None, on_call=record)
    return results


# ------------------------------------------------------------------------------ gradients


def projections(outputs: list[np.ndarray], masks: list[np.ndarray | None],
                seed: int) -> list[np.ndarray]:  # fmt: skip
    """The check loss's fixed ``P_k`` (Note [Check loss]), zero at padded positions."""
    rng = np.random.default_rng(seed + 1)
    out = []
    for y, m in zip(outputs, masks, strict=True):
        p = rng.standard_normal(y.shape)
        if m is not None:
            p = np.where(m, p, 0.0)
        out.append(p.astype(y.dtype))
    return out


def gradients(model: Any, x: Any, proj: list[np.ndarray],
              training: bool) -> tuple[float, list[np.ndarray]]:  # fmt: skip
    """The check loss ``Σ y·P`` and its gradient for every trainable weight (canonical layout,
    ``model.trainable_weights`` order), one forward pass in the given mode; weights and
    runtime state are put back afterwards."""
    backend = model.backend
    B = backend_module(backend)
    weights = model.get_weights()
    runtime = [layer.get_runtime_state() for layer in model.layers]
    try:
        with use_backend(backend):
            ps = [B.core.convert_to_tensor(p) for p in proj]

            def compute() -> tuple[Any, Any]:
                out = model(x, training=training)
                outs = out if isinstance(out, list) else [out]
                total = None
                for o, p in zip(outs, ps, strict=True):
                    term = B.losses.reduce(o * p, None, "sum", int(np.prod(p.shape)))
                    total = term if total is None else total + term
                return total, out

            value, _, grads = B.models.value_and_grads(compute, B.models.trainable_params(model))
            grads = B.models.canonical_grads(model, grads)
            return float(to_numpy(value)), [host(g) for g in grads]
    finally:
        model.set_weights(weights)
        for layer, state in zip(model.layers, runtime, strict=True):
            layer.set_runtime_state(state)


# ----------------------------------------------------------------------------- tolerances


def _own_length(layer: Any, in_shapes: list[tuple[int, ...]], out_shapes: list[tuple],
                training: bool) -> int:  # fmt: skip
    """A layer call's own longest sum (Note [Check tolerances])."""
    kind = type(layer).__name__
    fan_ins = [] if layer.integer_input else [
        (w.path.rsplit("/", 1)[-1], math.prod(w.shape[:-1])) for w in layer.weights
        if len(w.shape) >= 2
    ]  # fmt: skip
    k = max([f for _, f in fan_ins] + [1])
    recurrent = [f for n, f in fan_ins if n == "recurrent_kernel"]
    if recurrent and in_shapes and len(in_shapes[0]) >= 3:
        # Each step sums the input's and the state's products; the state chains the steps.
        k = (max(f for n, f in fan_ins if n == "kernel") + max(recurrent)) * in_shapes[0][1]
    if "Attention" in kind and in_shapes and len(in_shapes[-1]) >= 3:
        k += in_shapes[-1][1]  # the softmax-weighted sum over the keys
    if "Normalization" in kind and in_shapes:
        shape = in_shapes[0]
        if kind == "BatchNormalization":
            k += math.prod(shape) // max(shape[-1], 1) if training else 0
        else:
            k += shape[-1]
    if len(in_shapes) > 1 and layer.multi_input:
        k = max(k, len(in_shapes))
    if in_shapes and out_shapes:
        per_in = sum(math.prod(s[1:]) for s in in_shapes[:1])
        per_out = max(math.prod(s[1:]) for s in out_shapes)
        k = max(k, -(-per_in // max(per_out, 1)))
    return max(k, 1)


def _conditioning(layer: Any, x: np.ndarray | None, training: bool) -> float:
    """How much a normalisation amplifies its input's relative rounding error (Note [Check
    tolerances]): ``max(1, rms(x)/√(var + ε))`` over the normalised groups, with the batch's
    variance (BatchNormalization in training, LayerNormalization) or the moving variance
    (BatchNormalization in inference). 1 for every other layer."""
    kind = type(layer).__name__
    if x is None or kind not in ("BatchNormalization", "LayerNormalization") or x.ndim < 2:
        return 1.0
    x = x.astype(np.float64)
    axes = layer.resolve_axes(x.ndim)
    eps = float(layer.get_config().get("epsilon", 1e-3))
    if kind == "LayerNormalization":
        var, sq = x.var(axis=axes, keepdims=True), (x * x).mean(axis=axes, keepdims=True)
    else:  # statistics per channel: over every other axis
        over = tuple(i for i in range(x.ndim) if i not in axes)
        sq = (x * x).mean(axis=over, keepdims=True)
        if training:
            var = x.var(axis=over, keepdims=True)
        else:
            names = [w.path.rsplit("/", 1)[-1] for w in layer.weights]
            moving = layer.get_weights()[names.index("moving_variance")]
            var = np.reshape(moving.astype(np.float64), sq.shape)
    return max(1.0, float(np.sqrt(sq / (var + eps)).max()))


def chain_lengths(calls: list[LayerCall], inputs: list[np.ndarray], training: bool
                  ) -> tuple[dict[str, int], dict[str, list[tuple]], dict[str, float]]:  # fmt: skip
    """Per layer call label: ``K`` (Note [Check tolerances]), its input shapes, and the
    amplification of rounding errors by the normalisations on the way (the largest
    :func:`_conditioning` on any path from the inputs)."""
    values = {c.label: [host(o) for o in outputs_of(c)] for c in calls}
    lengths: dict[str, int] = {}
    shapes: dict[str, list[tuple]] = {}
    gains: dict[str, float] = {}
    for c in calls:
        ins = [v for p in c.parents for v in values[p]] or [np.asarray(v) for v in inputs]
        shapes[c.label] = [tuple(v.shape) for v in ins]
        outs = [tuple(v.shape) for v in values[c.label]]
        own = _own_length(c.layer, shapes[c.label], outs, training)
        lengths[c.label] = own + max([lengths[p] for p in c.parents] + [0])
        first = ins[0] if ins and ins[0].dtype.kind == "f" else None
        # The worst normalisation on the way (not the product: the factors of well-spread
        # data, 1-2 each, would compound to thousands over a deep net's dozens of them).
        gains[c.label] = max([_conditioning(c.layer, first, training)]
                             + [gains[p] for p in c.parents])  # fmt: skip
    return lengths, shapes, gains


def bound(dtype: str, length: int, gain: float = 1.0) -> tol.Tolerance:
    """The tolerance of a value behind a chain of sums of total length ``length``, times the
    normalisations' amplification ``gain`` (Note [Check tolerances])."""
    base = tol.for_reduction(dtype if dtype in tol.DEFAULTS else "float32", length)
    if gain <= 1.0:
        return base
    why = "normalisation by a standard deviation small against the values (rms/sigma)"
    return base.scaled(gain, f"{base.reason}; x{gain:.3g}: {why}")
