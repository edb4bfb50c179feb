"""Parity cases for every loss: each reduction with sample weights (one of them zero), logits
and probabilities, label smoothing, clip edges (probabilities exactly 0 and 1), saturated
logits (±1e4), Huber/SmoothL1 at their thresholds, large magnitudes, and the tutorial numbers.

Tolerances: a loss sums K per-element terms (over the class/last axis and, for ``"sum"`` and
``"sum_over_batch_size"``, over the batch), so float32/float64 forward values use
``tolerance.for_reduction(dtype, K)`` with K the number of summed terms. float16/bfloat16 are
computed in float32 and rounded once (both backends), so their bound is derived
(:func:`_half_precision`): ``2u·|y|`` for the two roundings to the half dtype (the backend's
result and the reference's), plus the float32 computation's ``γ_{K+8}(u₃₂)·|y|``.

Probabilities at the clip edges: the clip bounds ``ε``, ``1-ε`` are rounded to the compute
dtype (float32 for float32/float16/bfloat16, float64 for float64), which changes the loss of a
clipped element (15.942 vs 16.118 for ``-log(1-p)`` at p = 1). Cases with such inputs are
registered twice, with the reference's ``clip_dtype`` matching. Finite differences are not
taken across a clip boundary (``fd_mask``); torch and TensorFlow are still compared there.
"""

from __future__ import annotations

import numpy as np

from dualnet import losses as L
from dualnet.parity import tolerance as tol
from dualnet.parity.cases import FunctionCase, kink_mask, register
from dualnet.reference import losses as R

FAMILY = "loss"
_B, _K = 4, 5
_WEIGHTS = np.array([0.5, 0.0, 2.0, 1.0])  # one zero weight: still counted by sum_over_batch_size
_REDUCTIONS = ("sum_over_batch_size", "sum", "none")
_HALF_AND_32 = ("float32", "float16", "bfloat16")


def _tol(k: int, dtypes=("float32", "float64", "float16", "bfloat16")) -> dict[str, tol.Tolerance]:
    """Bounds for a result that sums k terms: for_reduction in float32/float64, the derived
    :func:`_half_precision` bound in float16/bfloat16."""
    return {d: _half_precision(d, k) if d in ("float16", "bfloat16") else tol.for_reduction(d, k)
            for d in dtypes}  # fmt: skip


# Roundings per term besides the sum (a log or exp, a product, a division, a clip).
_TERM_ROUNDINGS = 8


def _half_precision(dtype: str, k: int) -> tol.Tolerance:
    """float16/bfloat16: both backends compute the loss in float32 and round the result once;
    the reference is the exact value rounded once. Then
    ``|fl_h(ŷ₃₂) - fl_h(y)| <= u·|ŷ₃₂| + |ŷ₃₂ - y| + u·|y| <= (2u + (1+u)·γ)·|y|`` with
    ``γ = γ_{K+8}(u₃₂)`` the float32 error of K terms of 8 roundings each, relative to ``|y|``
    because every loss here sums non-negative terms with non-negative weights (Σ|terms| = |y|).
    For a gradient, whose terms may cancel (``softmax - t``), the float32 error is absolute,
    ``γ·Σ|terms|`` <= 2γ·max weight ≈ 1e-6, inside the default atol (1e-5), which is kept."""
    u = tol.UNIT_ROUNDOFF[dtype]
    gamma32 = tol.gamma(k + _TERM_ROUNDINGS, tol.UNIT_ROUNDOFF["float32"])
    return tol.Tolerance(
        rtol=2.0 * u + (1.0 + u) * gamma32,
        atol=tol.default(dtype).atol,
        reason=f"derived: 2u (two roundings to {dtype}, u={u:g}) + γ_(K+8) of the float32 "
        f"computation, K={k}; atol: the {dtype} default",
    )


# Gradient overrides leave float64 out: a FunctionCase override applies to both gradient
# comparisons, and float64's reference comparison must keep the gradcheck bound.
_GRAD_DTYPES = ("float32", "float16", "bfloat16")


def _count(reduction: str, shape: tuple[int, ...]) -> int:
    """How many per-element terms one output value sums."""
    return shape[-1] if reduction == "none" else int(np.prod(shape))


# --------------------------------------------------------------------------- inputs


def _regression(rng):
    t = rng.normal(0.0, 1.0, size=(_B, _K))
    p = t + rng.normal(0.0, 1.5, size=(_B, _K))
    # Exact errors 0 (MAE's kink), ±1 (Huber's δ = 1), 2 and 0.25: exact in every dtype.
    t[0] = [0.0, 0.5, -1.0, 2.0, 0.0]
    p[0] = [1.0, 1.5, -2.0, 2.0, 0.25]
    return {"y_true": t, "y_pred": p, "sample_weight": _WEIGHTS}


def _regression_large(rng):
    t = rng.uniform(-1e4, 1e4, size=(_B, _K))
    p = rng.uniform(-1e4, 1e4, size=(_B, _K))
    p[0] = t[0]  # zero error at large magnitude
    return {"y_true": t, "y_pred": p, "sample_weight": _WEIGHTS}


def _regression_offset(rng):
    """Small errors on a large common offset (1e4): cancellation in y_pred - y_true."""
    t = 1e4 + rng.normal(0.0, 50.0, size=(_B, _K))
    p = t + rng.normal(0.0, 40.0, size=(_B, _K))
    return {"y_true": t, "y_pred": p, "sample_weight": _WEIGHTS}


def _rank3(rng):
    t = rng.normal(size=(3, 2, 4))
    return {"y_true": t, "y_pred": t + rng.normal(size=(3, 2, 4)),
            "sample_weight": np.array([1.0, 0.0, 3.0])}  # fmt: skip


def _huber_delta(delta):
    def inputs(rng):
        t = rng.normal(0.0, 1.0, size=(_B, _K))
        p = t + rng.normal(0.0, 2.0 * delta, size=(_B, _K))
        # |e| exactly δ (both signs), below, above, and 0; δ ∈ {0.5, 2.5} is exact everywhere.
        t[0] = [0.0, 1.0, -1.0, 0.0, 2.0]
        p[0] = [delta, 1.0 - delta, -1.0 + 0.5 * delta, 3.0 * delta, 2.0]
        return {"y_true": t, "y_pred": p, "sample_weight": _WEIGHTS}

    return inputs


def _binary_probs(rng):
    t = rng.integers(0, 2, size=(_B, _K)).astype(np.float64)
    t[3, :2] = [0.3, 0.75]  # soft targets
    p = rng.uniform(0.02, 0.98, size=(_B, _K))
    # Clip edges: right and wrong confident predictions, exactly 0 and 1.
    t[0] = [1.0, 0.0, 1.0, 0.0, 1.0]
    p[0] = [1.0, 1.0, 0.0, 0.0, 0.5]
    return {"y_true": t, "y_pred": p, "sample_weight": _WEIGHTS}


def _binary_probs_inner(rng):
    """Probabilities away from the clip edges: the clip dtype does not matter."""
    d = _binary_probs(rng)
    d["y_pred"][0] = [0.9, 0.2, 0.05, 0.6, 0.5]
    return d


def _binary_logits(rng):
    t = rng.integers(0, 2, size=(_B, _K)).astype(np.float64)
    p = rng.normal(0.0, 3.0, size=(_B, _K))
    t[0] = [1.0, 1.0, 0.0, 0.0, 0.5]
    p[0] = [1e4, -1e4, 1e4, -1e4, 0.0]  # saturated both ways, right and wrong
    return {"y_true": t, "y_pred": p, "sample_weight": _WEIGHTS}


def _one_hot(labels, k=_K):
    return np.eye(k)[labels]


def _categorical_probs(rng):
    labels = rng.integers(0, _K, size=_B)
    p = rng.dirichlet(np.ones(_K), size=_B)
    p[0] = [0.0, 1.0, 0.0, 0.0, 0.0]  # right and certain: clipped at 1-ε, zeros at ε
    labels[0] = 1
    p[1] = [1.0, 0.0, 0.0, 0.0, 0.0]  # wrong and certain: -log(ε) ≈ 16.1
    labels[1] = 2
    p[2] = [2.0, 1.0, 1.0, 0.5, 0.5]  # not normalised: divided by its sum first
    return {"y_true": _one_hot(labels), "y_pred": p, "sample_weight": _WEIGHTS}


def _categorical_probs_inner(rng):
    labels = rng.integers(0, _K, size=_B)
    p = rng.dirichlet(np.ones(_K) * 2.0, size=_B) + 0.01
    p[2] = [2.0, 1.0, 1.0, 0.5, 0.5]
    return {"y_true": _one_hot(labels), "y_pred": p, "sample_weight": _WEIGHTS}


def _categorical_logits(rng):
    labels = rng.integers(0, _K, size=_B)
    p = rng.normal(0.0, 3.0, size=(_B, _K))
    p[0] = [1e4, -1e4, 0.0, 1e4 - 1.0, 5.0]  # saturated, near-tie at the top
    labels[0] = 3
    p[1] = [-1e4, -1e4, -1e4, -1e4, -1e4]  # uniform at a large offset
    return {"y_true": _one_hot(labels), "y_pred": p, "sample_weight": _WEIGHTS}


def _categorical_soft_targets(rng):
    """Targets that do not sum to 1: TF's fused op's gradient (softmax - t) would be wrong."""
    d = _categorical_logits(rng)
    d["y_true"][0] = [0.0, 0.0, 0.5, 0.0, 0.0]
    d["y_true"][1] = [0.0, 0.0, 0.0, 0.0, 0.0]
    d["y_true"][2] = [1.0, 1.0, 0.0, 0.0, 0.0]
    d["y_true"][3] = [0.2, 0.3, 0.1, 0.1, 0.3]
    return d


def _sparse(kind):
    def inputs(rng):
        base = {"probs": _categorical_probs, "logits": _categorical_logits}[kind](rng)
        labels = np.argmax(base["y_true"], axis=-1).astype(np.int64)
        return {"y_true": labels, "y_pred": base["y_pred"], "sample_weight": _WEIGHTS}

    return inputs


def _sparse_ignore(rng):
    d = _sparse("logits")(rng)
    d["y_true"][2] = -1  # ignored: no loss, no gradient, not counted
    return d


def _sparse_rank3(rng):
    """Class axis 1 of a (B, K, T) prediction (channels-first), labels (B, T)."""
    p = rng.normal(0.0, 2.0, size=(3, _K, 2))
    return {"y_true": rng.integers(0, _K, size=(3, 2)), "y_pred": p,
            "sample_weight": np.array([1.0, 0.0, 2.0])}  # fmt: skip


# --------------------------------------------------------------------------- masks


def _probability_edges(arrays):
    """Element-wise clip (BCE, sparse CE): no finite differences within 1e-4 of 0 or 1."""
    return kink_mask((0.0, 1.0))(arrays)


def _normalised_edges(arrays):
    """Categorical CE normalises each row before clipping: a row with a normalised value near
    1 crosses the 1-ε bound when any element moves; an element near 0 crosses ε itself."""
    p = np.asarray(arrays["y_pred"], dtype=np.float64)
    q = p / np.sum(p, axis=-1, keepdims=True)
    near = (np.abs(q) <= 1e-4) | (np.max(q, axis=-1, keepdims=True) >= 1.0 - 1e-4)
    return {"y_pred": ~near}


# --------------------------------------------------------------------------- builders


def _case(name, make, reference, inputs, *, grad_wrt, shape=(_B, _K), k=None, dtypes=None,
          fd_mask=None, weighted=True, notes="", grad_tolerance=None):  # fmt: skip
    """One FunctionCase. ``make()`` builds the loss; the reference is ``reference(t, p)``
    (per-sample) followed by ``R.reduce`` with the loss's reduction."""
    loss = make()
    reduction = "sum_over_batch_size" if loss.reduction == "mean" else loss.reduction
    k = k if k is not None else _count(reduction, shape)
    # Softmax/normalisation gradients sum over the K classes; elementwise gradients do not.
    grad_k = (
        _K if isinstance(loss, L.CategoricalCrossentropy | L.SparseCategoricalCrossentropy) else 1
    )

    def fn(y_true, y_pred, sample_weight=None):
        return loss(y_true, y_pred, sample_weight if weighted else None)

    def ref(y_true, y_pred, sample_weight=None):
        return R.reduce(reference(y_true, y_pred), sample_weight if weighted else None,
                        reduction, count=_ref_count(loss, y_true))  # fmt: skip

    return FunctionCase(
        name=name, family=FAMILY, inputs=inputs, fn=fn, reference=ref, grad_wrt=grad_wrt,
        fd_mask=fd_mask, tolerance=_tol(k), notes=notes,
        grad_tolerance=grad_tolerance or _tol(grad_k, _GRAD_DTYPES),
        **({"dtypes": dtypes} if dtypes else {}),
    )  # fmt: skip


def _ref_count(loss, y_true):
    ignore = getattr(loss, "ignore_class", None)
    return None if ignore is None else int(np.sum(np.asarray(y_true) != ignore))


def _clip_pair(name, make, reference, inputs, **kw):
    """Register a probability case twice: clip bounds in float32 (float32/16/bf16, which compute
    in float32) and in float64."""
    return [
        _case(name, make, lambda t, p: reference(t, p, "float32"), inputs,
              dtypes=_HALF_AND_32, **kw),
        _case(f"{name}-f64", make, lambda t, p: reference(t, p, "float64"), inputs,
              dtypes=("float64",), **kw),
    ]  # fmt: skip


_BOTH = ("y_true", "y_pred")
_PRED = ("y_pred",)
cases: list[FunctionCase] = []

# Every loss x every reduction, with sample weights (one zero).
for red in _REDUCTIONS:
    cases += [
        _case(f"mse-{red}", lambda r=red: L.MeanSquaredError(reduction=r),
              R.mean_squared_error, _regression, grad_wrt=_BOTH),
        _case(f"mae-{red}", lambda r=red: L.MeanAbsoluteError(reduction=r),
              R.mean_absolute_error, _regression, grad_wrt=_BOTH),
        _case(f"huber-{red}", lambda r=red: L.Huber(reduction=r), R.huber, _regression,
              grad_wrt=_BOTH, notes="|e| = δ = 1 exactly: C¹, so finite differences hold"),
        _case(f"smooth_l1-{red}", lambda r=red: L.SmoothL1(reduction=r), R.smooth_l1,
              _regression, grad_wrt=_BOTH),
        _case(f"bce-{red}", lambda r=red: L.BinaryCrossentropy(reduction=r),
              R.binary_crossentropy, _binary_probs_inner, grad_wrt=_PRED),
        _case(f"bce-logits-{red}",
              lambda r=red: L.BinaryCrossentropy(from_logits=True, reduction=r),
              lambda t, p: R.binary_crossentropy(t, p, from_logits=True), _binary_logits,
              grad_wrt=_PRED),
        _case(f"cce-{red}", lambda r=red: L.CategoricalCrossentropy(reduction=r),
              R.categorical_crossentropy, _categorical_probs_inner, grad_wrt=_PRED),
        _case(f"cce-logits-{red}",
              lambda r=red: L.CategoricalCrossentropy(from_logits=True, reduction=r),
              lambda t, p: R.categorical_crossentropy(t, p, from_logits=True),
              _categorical_logits, grad_wrt=_PRED),
        _case(f"scce-logits-{red}",
              lambda r=red: L.SparseCategoricalCrossentropy(from_logits=True, reduction=r),
              lambda t, p: R.sparse_categorical_crossentropy(t, p, from_logits=True),
              _sparse("logits"), grad_wrt=_PRED),
        _case(f"scce-ignore-{red}",
              lambda r=red: L.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1,
                                                            reduction=r),
              lambda t, p: R.sparse_categorical_crossentropy(t, p, True, ignore_class=-1),
              _sparse_ignore, grad_wrt=_PRED,
              notes="sum_over_batch_size divides by the non-ignored count"),
    ]  # fmt: skip

cases += [
    _case("mse-mean-alias", lambda: L.MeanSquaredError(reduction="mean"), R.mean_squared_error,
          _regression, grad_wrt=_BOTH, notes="Keras 3's 'mean' = sum_over_batch_size"),
    _case("mse-unweighted", L.MeanSquaredError, R.mean_squared_error, _regression,
          grad_wrt=_BOTH, weighted=False),
    _case("mse-large", L.MeanSquaredError, R.mean_squared_error, _regression_large,
          grad_wrt=_BOTH, dtypes=("float32", "float64"),
          notes="errors up to 2e4: squares 4e8 overflow float16's range (65504)"),
    _case("mse-offset-1e4", L.MeanSquaredError, R.mean_squared_error, _regression_offset,
          grad_wrt=_BOTH),
    _case("mae-large", L.MeanAbsoluteError, R.mean_absolute_error, _regression_large,
          grad_wrt=_BOTH),
    _case("mae-offset-1e4", L.MeanAbsoluteError, R.mean_absolute_error, _regression_offset,
          grad_wrt=_BOTH),
    _case("mse-rank3-per-sample-weight", lambda: L.MeanSquaredError(reduction="none"),
          R.mean_squared_error, _rank3, grad_wrt=_BOTH, shape=(3, 2, 4),
          notes="(B,) weights on (B, T) per-sample values: expanded on the right"),
    _case("huber-large", L.Huber, R.huber, _regression_large, grad_wrt=_BOTH),
    _case("huber-delta0.5", lambda: L.Huber(delta=0.5), lambda t, p: R.huber(t, p, 0.5),
          _huber_delta(0.5), grad_wrt=_BOTH),
    _case("huber-delta2.5", lambda: L.Huber(delta=2.5, reduction="none"),
          lambda t, p: R.huber(t, p, 2.5), _huber_delta(2.5), grad_wrt=_BOTH),
    _case("smooth_l1-beta0.5", lambda: L.SmoothL1(beta=0.5), lambda t, p: R.smooth_l1(t, p, 0.5),
          _huber_delta(0.5), grad_wrt=_BOTH, notes="torch SmoothL1Loss(beta=0.5) = Huber(0.5)/0.5"),
    _case("smooth_l1-beta2.5", lambda: L.SmoothL1(beta=2.5, reduction="none"),
          lambda t, p: R.smooth_l1(t, p, 2.5), _huber_delta(2.5), grad_wrt=_BOTH),
    _case("bce-logits-smoothing",
          lambda: L.BinaryCrossentropy(from_logits=True, label_smoothing=0.2),
          lambda t, p: R.binary_crossentropy(t, p, True, 0.2), _binary_logits, grad_wrt=_PRED),
    _case("bce-smoothing", lambda: L.BinaryCrossentropy(label_smoothing=0.3),
          lambda t, p: R.binary_crossentropy(t, p, False, 0.3), _binary_probs_inner,
          grad_wrt=_PRED),
    _case("bce-axis0", lambda: L.BinaryCrossentropy(axis=0, reduction="none"),
          lambda t, p: R.binary_crossentropy(t, p, axis=0), _binary_probs_inner, grad_wrt=_PRED,
          weighted=False, k=_B),
    _case("cce-logits-smoothing",
          lambda: L.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
          lambda t, p: R.categorical_crossentropy(t, p, True, 0.1), _categorical_logits,
          grad_wrt=_PRED),
    _case("cce-smoothing", lambda: L.CategoricalCrossentropy(label_smoothing=0.25),
          lambda t, p: R.categorical_crossentropy(t, p, False, 0.25), _categorical_probs_inner,
          grad_wrt=_PRED),
    _case("cce-logits-soft-targets", lambda: L.CategoricalCrossentropy(from_logits=True,
                                                                       reduction="none"),
          lambda t, p: R.categorical_crossentropy(t, p, True), _categorical_soft_targets,
          grad_wrt=_BOTH,
          notes="Σt ≠ 1: gradient Σt·softmax - t (TF's fused op gives softmax - t)"),
    _case("cce-axis0",
          lambda: L.CategoricalCrossentropy(from_logits=True, axis=0, reduction="none"),
          lambda t, p: R.categorical_crossentropy(t, p, True, axis=0), _categorical_logits,
          grad_wrt=_PRED, weighted=False, k=_B),
    _case("scce-rank3-axis1", lambda: L.SparseCategoricalCrossentropy(from_logits=True, axis=1),
          lambda t, p: R.sparse_categorical_crossentropy(t, p, True, axis=1), _sparse_rank3,
          grad_wrt=_PRED, shape=(3, 2, _K)),
    _case("scce-probs-inner", L.SparseCategoricalCrossentropy,
          R.sparse_categorical_crossentropy,
          lambda rng: {**_sparse("probs")(rng), "y_pred": _categorical_probs_inner(rng)["y_pred"]},
          grad_wrt=_PRED, fd_mask=_probability_edges,
          notes="an unnormalised row: sparse CE clips p before normalising (p = 2 and 1 clip)"),
]  # fmt: skip

# Probabilities at the clip edges (exactly 0 and 1): reference clip bounds in the compute dtype.
cases += _clip_pair(
    "bce-clip-edges", lambda: L.BinaryCrossentropy(reduction="none"),
    lambda t, p, d: R.binary_crossentropy(t, p, clip_dtype=d), _binary_probs, grad_wrt=_PRED,
    fd_mask=_probability_edges,
)  # fmt: skip
cases += _clip_pair(
    "bce-clip-edges-smoothing", lambda: L.BinaryCrossentropy(label_smoothing=0.1),
    lambda t, p, d: R.binary_crossentropy(t, p, False, 0.1, clip_dtype=d), _binary_probs,
    grad_wrt=_PRED, fd_mask=_probability_edges,
)  # fmt: skip
cases += _clip_pair(
    "cce-clip-edges", lambda: L.CategoricalCrossentropy(reduction="none"),
    lambda t, p, d: R.categorical_crossentropy(t, p, clip_dtype=d), _categorical_probs,
    grad_wrt=_PRED, fd_mask=_normalised_edges,
)  # fmt: skip
cases += _clip_pair(
    "scce-clip-edges", lambda: L.SparseCategoricalCrossentropy(reduction="none"),
    lambda t, p, d: R.sparse_categorical_crossentropy(t, p, clip_dtype=d), _sparse("probs"),
    grad_wrt=_PRED, fd_mask=_probability_edges,
)  # fmt: skip


# The tutorial numbers (Keras docstring inputs; see tests/test_losses.py for the float32 values).
def _fixed(t, p):
    return lambda rng: {"y_true": np.asarray(t, np.float64), "y_pred": np.asarray(p, np.float64)}


_SATURATED = _fixed([1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 0.0])
cases += [
    _case("tutorial-cce-1.1769392", L.CategoricalCrossentropy, R.categorical_crossentropy,
          _fixed([[0, 1, 0], [0, 0, 1]], [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]), grad_wrt=_PRED,
          weighted=False, k=6, fd_mask=_normalised_edges),
    _case("tutorial-bce-0.5108256", L.BinaryCrossentropy, R.binary_crossentropy,
          _fixed([[1, 0], [0, 1]], [[0.6, 0.4], [0.4, 0.6]]), grad_wrt=_PRED, weighted=False,
          k=4),
    _case("tutorial-huber-0.18", L.Huber, R.huber,
          _fixed([[0, 1], [1, 0]], [[0.6, 0.4], [0.4, 0.6]]), grad_wrt=_BOTH, weighted=False,
          k=4),
    _case("bce-torch-clip-saturated-25.0", lambda: L.BinaryCrossentropy(clip="torch"),
          lambda t, p: R.binary_crossentropy(t, p, clip="torch"), _SATURATED, grad_wrt=_PRED,
          weighted=False, k=4, fd_mask=_probability_edges,
          notes="torch's BCELoss rule (log clamped at -100, gradient (p-t)/max(p(1-p), 1e-12))"),
    _case("bce-torch-clip", lambda: L.BinaryCrossentropy(clip="torch", reduction="none"),
          lambda t, p: R.binary_crossentropy(t, p, clip="torch"), _binary_probs, grad_wrt=_PRED,
          fd_mask=_probability_edges),
]  # fmt: skip
cases += _clip_pair(
    "bce-saturated-keras-3.98559", L.BinaryCrossentropy,
    lambda t, p, d: R.binary_crossentropy(t, p, clip_dtype=d), _SATURATED, grad_wrt=_PRED,
    weighted=False, k=4, fd_mask=_probability_edges,
    notes="Keras 3.98559 in float32 (4.02952 in float64); torch's BCELoss gives 25.0",
)  # fmt: skip

register(*cases)
