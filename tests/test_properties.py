"""Property-based parity: hypothesis searches for disagreements instead of waiting for them.

The catalogue (``dualnet parity``) checks the inputs someone thought of. Here hypothesis draws
shapes, magnitudes (the bulk, exact kinks and their neighbours, denormals, the edge of each
dtype's range), dtypes and argument combinations for every activation, every loss, every
initializer, every optimizer and the simple layers, and runs each draw through the *same*
machinery as the catalogue: a :class:`~dualnet.parity.cases.FunctionCase`,
:class:`~dualnet.parity.layer_cases.LayerCase` or
:class:`~dualnet.parity.catalogue.initializers.InitializerCase` built on the drawn inputs,
evaluated on torch, TensorFlow and the float64 reference under the catalogue's tolerance policy
(:mod:`dualnet.parity.tolerance`, :mod:`dualnet.parity.compare`). Every row must pass: a failure
is a disagreement, and hypothesis shrinks it to a small example.

Where the float64 finite difference cannot be the reference (``|x| > FD_RANGE``: ``x ± h``
rounds to ``x``, or nearly so, and the difference quotient says nothing), those elements are
masked from the reference comparison exactly as kinks are; torch and TensorFlow are still
compared with each other there.

Budgets: the ``ci`` profile (the default, ``tests/conftest.py``) runs a fixed, derandomized
number of examples per test; ``DUALNET_HYPOTHESIS_PROFILE=thorough`` runs many more, with new
random draws each time. Every disagreement found so far is a catalogue case in
``dualnet/parity/catalogue/found.py``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dualnet import layers as DL
from dualnet import losses as L
from dualnet import optimizers as O
from dualnet._backend import BACKENDS, backend_module, use_backend
from dualnet.dtypes import numpy_dtype
from dualnet.parity import catalogue
from dualnet.parity import tolerance as tol
from dualnet.parity.cases import (
    Check,
    FunctionCase,
    flat,
    flat_state,
    kink_mask,
    round_to,
    three_way,
)
from dualnet.parity.catalogue.initializers import InitializerCase
from dualnet.parity.layer_cases import LayerCase, bilinear_bound, rounding_bound
from dualnet.reference import losses as RL
from dualnet.reference import optimizers as RO
from dualnet.reference.layers import activations as RLA
from dualnet.reference.layers import core as RLC
from dualnet.reference.layers import reshaping as RLR

# Beyond |x| = 1e6 the finite difference's step (h = ε^(1/3) ≈ 6e-6) is within 1e5 ulps of x,
# and at |x| ≳ 1e10 x ± h rounds to x: no reference gradient there (see the module docstring).
FD_RANGE = 1e6
FD_STEP = float(np.cbrt(np.finfo(np.float64).eps))  # cases.finite_difference's larger step
EXAMPLES = settings.default.max_examples  # the loaded profile's per-test budget


def _finfo(dtype: str):
    import ml_dtypes  # numpy's finfo does not know bfloat16; ml_dtypes' knows all four

    return ml_dtypes.finfo(numpy_dtype(dtype))


def _next(value: float, dtype: str, direction: float) -> float:
    """The neighbour of ``value`` in ``dtype`` towards ``direction`` (a kink's next value)."""
    dt = numpy_dtype(dtype)
    x = np.asarray(value, dtype=dt)
    step = _finfo(dtype).eps * max(abs(float(value)), float(_finfo(dtype).tiny))
    moved = np.asarray(float(x) + math.copysign(step, direction), dtype=dt)
    return float(moved)


def subnormals_ok(dtype: str) -> bool:
    """Whether to draw ``dtype``'s subnormals.

    TensorFlow's CPU kernels run with denormals-are-zero (divergence record
    ``tf-denormals-are-zero``): a float32/float64/bfloat16 subnormal is read as 0. Values differ
    by less than the smallest normal, inside every bound, but a function that jumps at 0 or
    divides by a subnormal does not: relu's gradient at x = 1e-45 is 0 on TF (1 on torch and
    in the math), categorical cross-entropy of the probabilities [2.7e-40, 2.7e-40] is NaN on TF
    (log 2 on torch). float16 computes in float32, where its subnormals are normal numbers;
    bfloat16 has float32's exponent range, and its subnormals are float32's.
    """
    return dtype == "float16"


def without_subnormals(strategy: st.SearchStrategy, dtype: str) -> st.SearchStrategy:
    """``strategy`` with values that round to a subnormal of ``dtype`` made zeros of the same
    sign, unless :func:`subnormals_ok`."""
    if subnormals_ok(dtype):
        return strategy
    smallest = small_normal(dtype)
    return strategy.map(lambda v: v if abs(v) >= smallest else math.copysign(0.0, v))


def small_normal(dtype: str) -> float:
    """The smallest magnitude drawn where subnormals are not (:func:`subnormals_ok`): 2²⁴
    times the smallest normal, so that a product with a weight or a halving (a layer's x·w)
    stays normal too (``1e-30`` in float32)."""
    return float(_finfo(dtype).tiny) * 2.0**24


def reals(
    dtype: str, kinks: tuple[float, ...] = (), *, bulk: float = 10.0, cap: float | None = None
) -> st.SearchStrategy:
    """Floats (as float64, rounded to ``dtype`` by the case) that stress ``dtype``: a bulk in
    ``[-bulk, bulk]``, exact kinks and their neighbours in ``dtype``, zeros of both signs,
    subnormals (see :func:`subnormals_ok`), the smallest normal, log-uniform magnitudes over the
    whole range and the largest finite values."""
    fi = _finfo(dtype)
    big, tiny, sub = float(fi.max), float(fi.tiny), float(fi.smallest_subnormal)
    if not subnormals_ok(dtype):
        sub = tiny = small_normal(dtype)  # instead of subnormals and the smallest normal
    special = [0.0, -0.0, sub, -sub, 3 * sub, tiny, -tiny, big, -big, big / 2, -1e4, 1e4]
    for k in kinks:
        special += [k, _next(k, dtype, 1.0), _next(k, dtype, -1.0)]
    magnitude = st.builds(
        lambda sign, e: sign * 10.0**e,
        st.sampled_from([-1.0, 1.0]),
        st.floats(math.log10(sub), math.log10(big) - 0.01),
    )
    drawn = st.one_of(
        st.floats(-bulk, bulk, allow_nan=False, allow_infinity=False),
        st.sampled_from(special),
        magnitude,
    )
    if cap is not None:  # magnitudes beyond the cap become the cap (its edge is searched too)
        drawn = drawn.map(lambda v: float(np.clip(v, -cap, cap)))
    return without_subnormals(drawn, dtype)


def shapes(min_dims: int = 1, max_dims: int = 3, max_side: int = 5) -> st.SearchStrategy:
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)


def reference_defined(reference, names: tuple[str, ...], *, elementwise: bool):
    """An ``fd_mask``: False where the float64 finite difference of ``reference`` with respect
    to ``names`` is undefined, so the reference says nothing there (as at a kink): beyond
    ``FD_RANGE``, or where the reference at ``x ± h`` is not finite (e^x past 709) or its output
    magnitudes overflow the difference quotient's sum."""

    def perturbed(arrays: dict[str, np.ndarray], name: str, x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):  # overflow is what is being detected
            return np.asarray(reference(**{**arrays, name: x}), dtype=np.float64)

    def mask(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for name in names:
            x = np.asarray(arrays[name], dtype=np.float64)
            ok = np.abs(x) <= FD_RANGE
            if elementwise:  # output i depends on x_i alone
                for step in (FD_STEP, -FD_STEP):
                    ok &= np.isfinite(perturbed(arrays, name, x + step))
            else:
                flat_ok = ok.reshape(-1)
                for j in range(x.size):
                    for step in (FD_STEP, -FD_STEP):
                        y = x.copy().reshape(-1)
                        y[j] += step
                        total = np.sum(np.abs(perturbed(arrays, name, y.reshape(x.shape))))
                        # 1e300: room for the cotangent's factor before the sum overflows.
                        flat_ok[j] &= bool(total < 1e300)
            out[name] = ok
        return out

    return mask


def _and_masks(*makers):
    """One ``fd_mask`` that is the AND of several (None entries ignored)."""

    def mask(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for make in makers:
            if make is None:
                continue
            for k, v in make(arrays).items():
                out[k] = v if k not in out else out[k] & v
        return out

    return mask


def assert_agree(checks: list[Check]) -> None:
    """Every row passes; a skip only where the case lists the combination as unsupported."""

    def listed_skip(c: Check) -> bool:
        return c.status == "skip" and "expected unsupported" in c.detail

    bad = [c for c in checks if c.status != "pass" and not listed_skip(c)]
    assert not bad, "\n\n".join(c.explain() for c in bad)


# --------------------------------------------------------------------------- activations

# Every activation case of the catalogue, except the pinned findings (found.py: the same
# functions, their fixed inputs).
_ACTIVATIONS = [c for c in catalogue.load() if c.family == "activation"
                and c.inputs.__module__ != "dualnet.parity.catalogue.found"]  # fmt: skip
_KINKS = {"relu": (0.0,), "relu6": (0.0, 6.0), "leaky_relu": (0.0,), "leaky_relu-slope0.01": (0.0,),
          "elu": (0.0,), "selu": (0.0,), "hard_sigmoid": (-3.0, 3.0),
          "hard_silu": (-3.0, 3.0)}  # fmt: skip


@pytest.mark.parametrize("case", _ACTIVATIONS, ids=lambda c: c.name)
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_activation(case: FunctionCase, data: st.DataObject) -> None:
    """Each catalogue activation (its fn, reference, kink mask and tolerances) on drawn
    inputs: any shape, any magnitude, every dtype it runs in."""
    dtype = data.draw(st.sampled_from(case.dtypes), label="dtype")
    shape = data.draw(shapes(min_dims=1 if case.elementwise else 2), label="shape")
    x = data.draw(hnp.arrays(np.float64, shape, elements=reals(dtype, _KINKS.get(case.name, ()))),
                  label="x")  # fmt: skip
    drawn = dataclasses.replace(
        case,
        name=f"{case.name}-property",
        inputs=lambda rng: {"x": x},
        fd_mask=_and_masks(
            case.fd_mask, reference_defined(case.reference, ("x",), elementwise=case.elementwise)
        ),
    )
    assert_agree(drawn.evaluate(dtype, "cpu"))


# --------------------------------------------------------------------------- losses

_REDUCTIONS = ("sum_over_batch_size", "sum", "none")


def loss_cap(dtype: str, n: int, *, squared: bool) -> float:
    """The largest input magnitude drawn for a loss over ``n`` elements.

    A loss sums up to ``n`` terms in its compute dtype (float32 for float16/bfloat16, as the
    catalogue's losses), and softmax subtracts logits: an intermediate that overflows there while
    the exact loss is finite is float arithmetic both backends share, not a disagreement between
    them, so the search stays below ``max / 4n`` (its square root for a squared error), and within
    the dtype's own range.
    """
    compute = _finfo("float64" if dtype == "float64" else "float32").max
    cap = compute / (4.0 * n)
    return min(math.sqrt(cap) if squared else cap, float(_finfo(dtype).max))


_LOSS_KINDS = ("mse", "mae", "huber", "smooth_l1", "bce", "bce-logits", "bce-torch-clip", "cce",
               "cce-logits", "scce", "scce-logits")  # fmt: skip


def _loss_tolerances(reduction: str, shape: tuple[int, ...], classes_summed: bool):
    """The catalogue's loss policy (``catalogue/losses.py``): the forward value sums K terms
    (the last axis for "none", every element otherwise), so ``for_reduction(dtype, K)``;
    gradients of softmax/normalising losses sum over the classes, the others are element-wise
    (float64 gradients keep the finite-difference bound)."""
    k = shape[-1] if reduction == "none" else math.prod(shape)
    forward = {d: tol.for_reduction(d, k) for d in tol.DEFAULTS}
    grad_k = shape[-1] if classes_summed else 1
    grad = {d: tol.for_reduction(d, grad_k) for d in ("float32", "float16", "bfloat16")}
    return forward, grad


@st.composite
def loss_draws(draw: st.DrawFn, kind: str) -> dict:
    """A loss object, its reference, inputs, and which inputs to differentiate."""
    dtype = draw(st.sampled_from(tuple(tol.DEFAULTS)), label="dtype")
    reduction = draw(st.sampled_from(_REDUCTIONS), label="reduction")
    sparse = kind.startswith("scce")
    shape = draw(shapes(min_dims=2, max_dims=3, max_side=5), label="shape")
    if kind.startswith(("cce", "scce")):
        assume(shape[-1] >= 2)
    batch = shape[0]
    cap = loss_cap(dtype, math.prod(shape), squared=kind == "mse")
    some_weights = hnp.arrays(np.float64, (batch,), elements=st.sampled_from([0.0, 0.5, 2.0]))
    weights = draw(st.one_of(st.none(), some_weights), label="sample_weight")
    clip_dtype = "float64" if dtype == "float64" else "float32"  # the compute dtype's ε, 1-ε
    smoothing = draw(st.sampled_from([0.0, 0.1, 0.3]), label="label_smoothing")
    logits = kind.endswith("logits")
    fd_mask = None  # kinks of this loss, if any (reference_defined is added by the test)
    if kind in ("mse", "mae", "huber", "smooth_l1"):
        scale = draw(st.sampled_from([1e-3, 1.0, 1e2, 1e4]), label="scale")
        t = draw(
            hnp.arrays(np.float64, shape, elements=reals(dtype, bulk=3.0, cap=cap / 2)),
            label="y_true",
        )
        # Errors exactly 0 (MAE's kink), ±δ for δ in {0.5, 1, 2.5} (Huber's), tiny and bulk.
        exact = st.sampled_from([0.0, 1.0, -1.0, 0.5, -0.5, 2.5, 1e-7])
        e = draw(hnp.arrays(np.float64, shape, elements=st.one_of(st.floats(-3, 3), exact)))
        e = e * scale
        e = np.clip(e, -cap / 2, cap / 2)
        delta = draw(st.sampled_from([0.5, 1.0, 2.5]), label="delta")
        make, ref = {
            "mse": (lambda: L.MeanSquaredError(reduction=reduction), RL.mean_squared_error),
            "mae": (lambda: L.MeanAbsoluteError(reduction=reduction), RL.mean_absolute_error),
            "huber": (lambda: L.Huber(delta=delta, reduction=reduction),
                      lambda a, b: RL.huber(a, b, delta)),
            "smooth_l1": (lambda: L.SmoothL1(beta=delta, reduction=reduction),
                          lambda a, b: RL.smooth_l1(a, b, delta)),
        }[kind]  # fmt: skip
        if kind == "mae":  # |e|'s kink at e = 0: no finite difference across it
            fd_mask = _and_masks(fd_mask, lambda a: _kink_of_error(a, 0.0))
            if not subnormals_ok(dtype):  # sign(e) at a subnormal e: see subnormals_ok
                t = np.where(np.abs(t) < small_normal(dtype), 0.0, t)
                e = np.where(np.abs(e) < small_normal(dtype), 0.0, e)
        p = np.where(e == 0.0, t, t + e)  # an exact zero error stays exact
        inputs, wrt = {"y_true": t, "y_pred": p}, ("y_true", "y_pred")
    elif kind.startswith("bce"):
        t = draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0, 0.3, 0.75])))
        if logits:
            logit = reals(dtype, (0.0,), bulk=8.0, cap=cap)
            p = draw(hnp.arrays(np.float64, shape, elements=logit))
        else:
            edges = st.sampled_from([0.0, 1.0, 1e-7, 1 - 1e-7, 1e-30])  # clip bounds ε, 1-ε
            probability = without_subnormals(st.one_of(st.floats(0, 1), edges), dtype)
            p = draw(hnp.arrays(np.float64, shape, elements=probability))
            fd_mask = _and_masks(fd_mask, kink_mask((0.0, 1.0)))
        clip = "torch" if kind == "bce-torch-clip" else "keras"
        ls = 0.0 if clip == "torch" else smoothing

        def make():
            return L.BinaryCrossentropy(from_logits=logits, label_smoothing=ls, clip=clip,
                                        reduction=reduction)  # fmt: skip

        def ref(a, b):
            return RL.binary_crossentropy(a, b, logits, ls, clip=clip, clip_dtype=clip_dtype)

        inputs, wrt = {"y_true": t, "y_pred": p}, ("y_pred",)
    else:
        k = shape[-1]
        labels = draw(hnp.arrays(np.int64, shape[:-1], elements=st.integers(0, k - 1)))
        if logits:
            p = draw(hnp.arrays(np.float64, shape, elements=reals(dtype, bulk=8.0, cap=cap)))
        else:
            probability = st.one_of(st.floats(0.0, 2.0), st.sampled_from([0.0, 1.0, 1e-30]))
            p = draw(hnp.arrays(np.float64, shape,
                                elements=without_subnormals(probability, dtype)))  # fmt: skip
            # Rows summing to >= 1e-6: differentiating p/Σp forms Σp², which underflows float32
            # below Σp ≈ 1e-19, and the backends then part ways (torch 1.5e20, TF 0, where the
            # exact gradient is ~1e29, for the row [1e-30, 1e-30, 0]): outside the search.
            assume(np.all(np.sum(p, axis=-1) >= 1e-6))
            sparse_edges = _and_masks(kink_mask((0.0, 1.0)), _normalised_edges)
            fd_mask = _and_masks(fd_mask, sparse_edges if sparse else _normalised_edges)
        ignore = draw(st.sampled_from([None, 0]), label="ignore_class") if sparse else None
        if sparse:
            make_loss = lambda: L.SparseCategoricalCrossentropy(  # noqa: E731
                from_logits=logits, ignore_class=ignore, reduction=reduction
            )

            def ref(a, b):
                return RL.sparse_categorical_crossentropy(a, b, logits, ignore_class=ignore,
                                                          clip_dtype=clip_dtype)  # fmt: skip

            inputs = {"y_true": labels, "y_pred": p}
        else:
            make_loss = lambda: L.CategoricalCrossentropy(  # noqa: E731
                from_logits=logits, label_smoothing=smoothing, reduction=reduction
            )

            def ref(a, b):
                return RL.categorical_crossentropy(a, b, logits, smoothing, clip_dtype=clip_dtype)

            inputs = {"y_true": np.eye(k)[labels], "y_pred": p}
        make, wrt = make_loss, ("y_pred",)
        if sparse and ignore is not None:
            assume(np.any(labels != ignore))  # every target ignored: nothing to average
    return {"dtype": dtype, "reduction": reduction, "make": make, "reference": ref,
            "inputs": inputs, "weights": weights, "wrt": wrt, "shape": shape,
            "fd_mask": fd_mask, "ignore": ignore if sparse else None,
            "classes_summed": kind.startswith(("cce", "scce"))}  # fmt: skip


def _kink_of_error(arrays: dict[str, np.ndarray], at: float) -> dict[str, np.ndarray]:
    """No finite difference where ``|y_pred - y_true|`` is within 1e-4 (relative) of ``at``."""
    e = np.abs(np.asarray(arrays["y_pred"], np.float64) - np.asarray(arrays["y_true"], np.float64))
    far = np.abs(e - at) > 1e-4 * np.maximum(1.0, at)
    return {"y_true": far, "y_pred": far}


def _normalised_edges(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Categorical CE on probabilities normalises each row and clips at ε, 1-ε: no finite
    difference where a normalised value is within 1e-4 of 0 or 1 (as the catalogue)."""
    p = np.asarray(arrays["y_pred"], dtype=np.float64)
    total = np.sum(p, axis=-1, keepdims=True)
    q = p / total
    near = (np.abs(q) <= 1e-4) | (np.max(q, axis=-1, keepdims=True) >= 1.0 - 1e-4)
    # The loss depends on p/Σp: the step h = 6e-6 must be small against the row's sum (a row of
    # 1e-30s varies on a scale of 1e-30, which no fixed step resolves).
    return {"y_pred": ~near & (total >= 1e-2)}


@pytest.mark.parametrize("kind", _LOSS_KINDS)
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_loss(kind: str, data: st.DataObject) -> None:
    """Every loss, reduction, sample weighting, smoothing and clip rule on drawn inputs."""
    d = data.draw(loss_draws(kind))
    loss = d["make"]()
    count = None if d["ignore"] is None else int(np.sum(d["inputs"]["y_true"] != d["ignore"]))
    weights = d["weights"]

    def fn(y_true, y_pred):
        return loss(y_true, y_pred, None if weights is None else weights)

    def ref(y_true, y_pred):
        return RL.reduce(d["reference"](y_true, y_pred), weights, d["reduction"], count=count)

    forward, grad = _loss_tolerances(d["reduction"], d["shape"], d["classes_summed"])
    fd_mask = _and_masks(d["fd_mask"], reference_defined(ref, d["wrt"], elementwise=False))
    case = FunctionCase(name=f"{kind}-property", family="loss", inputs=lambda rng: d["inputs"],
                        fn=fn, reference=ref, grad_wrt=d["wrt"], fd_mask=fd_mask,
                        tolerance=forward, grad_tolerance=grad)  # fmt: skip
    assert_agree(case.evaluate(d["dtype"], "cpu"))


# --------------------------------------------------------------------------- initializers

_INITIALIZERS = ("random_normal", "random_uniform", "truncated_normal", "variance_scaling",
                 "lecun_normal", "lecun_uniform", "glorot_normal", "glorot_uniform", "he_normal",
                 "he_uniform", "standard", "zeros", "ones", "constant", "orthogonal")  # fmt: skip


@st.composite
def initializer_params(draw: st.DrawFn, name: str) -> dict:
    """Constructor arguments for ``name`` (the others take none but the seed)."""
    scale = st.sampled_from([1e-3, 0.05, 1.0, 3.0, 100.0])
    if name in ("random_normal", "truncated_normal"):
        return {"mean": draw(st.sampled_from([0.0, -1.5, 0.5, 1e3])), "stddev": draw(scale)}
    if name == "random_uniform":
        low = draw(st.sampled_from([-3.0, -0.05, 0.0, 1e3]))
        return {"minval": low, "maxval": low + draw(scale)}
    if name == "variance_scaling":
        return {"scale": draw(st.sampled_from([0.1, 1.0, 2.0, 3.0])),
                "mode": draw(st.sampled_from(["fan_in", "fan_out", "fan_avg"])),
                "distribution": draw(st.sampled_from(
                    ["truncated_normal", "untruncated_normal", "uniform"]))}  # fmt: skip
    if name == "constant":
        return {"value": draw(st.sampled_from([0.3, -2.0, 1e-3, 1e4]))}
    if name == "orthogonal":
        return {"gain": draw(st.sampled_from([1.0, 0.5, 2.0]))}
    return {}


@pytest.mark.parametrize("name", _INITIALIZERS)
@settings(max_examples=max(EXAMPLES // 2, 5))
@given(data=st.data())
def test_initializer(name: str, data: st.DataObject) -> None:
    """Portable draws bit-identical on both backends, and every draw (portable and native)
    consistent with the float64 reference's distribution (the catalogue's z-test and support)."""
    min_dims = 2 if name == "orthogonal" else 1
    shape = data.draw(hnp.array_shapes(min_dims=min_dims, max_dims=4, min_side=1, max_side=24)
                      .filter(lambda s: 2 <= math.prod(s) <= 4096), label="shape")  # fmt: skip
    fans = None
    if name in ("standard", "he_normal", "variance_scaling") and data.draw(st.booleans()):
        fans = (data.draw(st.integers(1, 512)), data.draw(st.integers(1, 512)))
    seed = data.draw(st.integers(0, 2**16), label="seed")
    case = InitializerCase(name=f"{name}-property-{seed}", initializer=name, shape=shape,
                           params=data.draw(initializer_params(name), label="params"),
                           fans=fans)  # fmt: skip
    dtype = data.draw(st.sampled_from(case.dtypes), label="dtype")
    dist = case.reference()
    if dist.kind not in ("constant", "orthogonal"):
        # The z-test holds the *rounded* sample to the exact distribution: that needs a spread
        # well above the dtype's spacing near the mean (N(1000, 0.001²) is one value in float16).
        edge = abs(dist.loc) + 6.0 * dist.std()
        assume(dist.std() >= 64.0 * float(_finfo(dtype).eps) * max(edge, 1.0))
    if name == "constant" and dtype == "float16" and abs(case.params["value"]) > 65504:
        return  # torch's constant_ refuses values beyond float16 (catalogue: constant-big)
    assert_agree(case.evaluate(dtype, "cpu"))


# --------------------------------------------------------------------------- optimizers


@st.composite
def optimizers(draw: st.DrawFn) -> O.Optimizer:
    """Every optimizer class with drawn hyper-parameters, decay and clipping."""
    name = draw(st.sampled_from(["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"]), label="class")
    lr = draw(st.sampled_from([1e-4, 1e-3, 0.01, 0.1, 1.0]), label="learning_rate")
    common: dict = {}
    decay = draw(st.sampled_from([None, 0.0, 1e-3, 0.1]), label="weight_decay")
    if name != "AdamW" or decay is not None:
        common["weight_decay"] = decay
    if decay and name != "AdamW":  # AdamW's decay is decoupled by definition
        common["weight_decay_mode"] = draw(st.sampled_from(["decoupled", "l2"]))
    clip = draw(st.sampled_from([None, "clipnorm", "clipvalue", "global_clipnorm"]), label="clip")
    if clip is not None:
        common[clip] = draw(st.sampled_from([1e-3, 0.5, 10.0]))
    # ε > 0: with ε = 0 a gradient whose square underflows the dtype (1e-30 in float32) divides
    # by zero where float64 does not, a property of the configuration, not of an implementation.
    eps = st.sampled_from([1e-10, 1e-7, 1e-3])
    if name == "SGD":
        momentum = draw(st.sampled_from([0.0, 0.5, 0.9, 1.0]))
        form = draw(st.sampled_from(["keras", "torch"]))
        nesterov = momentum > 0 and draw(st.booleans())
        # Dampening is torch's, and Nesterov momentum refuses it (as torch does).
        damped = form == "torch" and not nesterov
        return O.SGD(lr, momentum=momentum, nesterov=nesterov, momentum_form=form,
                     dampening=draw(st.sampled_from([0.0, 0.1])) if damped else 0.0,
                     **common)  # fmt: skip
    placement = st.sampled_from(["inside_sqrt", "outside_sqrt"])
    if name == "Adagrad":
        initial = draw(st.sampled_from([0.0, 0.1, 1.0]))
        return O.Adagrad(lr, initial_accumulator_value=initial, epsilon=draw(eps),
                         epsilon_placement=draw(placement), **common)  # fmt: skip
    if name == "RMSprop":
        return O.RMSprop(lr, rho=draw(st.sampled_from([0.0, 0.5, 0.9, 0.99])),
                         momentum=draw(st.sampled_from([0.0, 0.5, 0.9])),
                         epsilon=draw(eps), centered=draw(st.booleans()),
                         epsilon_placement=draw(placement),
                         momentum_form=draw(st.sampled_from(["keras", "torch"])),
                         **common)  # fmt: skip
    # β₂ >= 0.9: the moments are updated as Keras writes them, m + (g - m)·(1 - β), which for
    # a small β₂ loses g² against an old v ≫ g² (β₂ = 0: v = 2⁻²⁴ for g² = 7e-8 after
    # v = 0.29, 15% off the reference). Reported; the catalogue's defaults are 0.9/0.999.
    cls = O.Adam if name == "Adam" else O.AdamW
    return cls(lr, beta_1=draw(st.sampled_from([0.0, 0.5, 0.9])),
               beta_2=draw(st.sampled_from([0.9, 0.999])), epsilon=draw(eps),
               amsgrad=draw(st.booleans()),
               epsilon_placement=draw(st.sampled_from(["sqrt_v", "sqrt_v_hat"])),
               **common)  # fmt: skip


def _one_update(backend: str, optimizer: O.Optimizer, params, state, iterations, grads):
    """One ``apply`` on ``backend`` from the given weights, state and iteration count: the
    weights and the state after it, as float64 vectors."""
    with use_backend(backend):
        core = backend_module(backend).core
        if backend == "torch":
            import torch

            # np.array copies: torch shares a numpy array's memory and updates in place.
            variables = [torch.nn.Parameter(core.convert_to_tensor(np.array(p))) for p in params]
        else:
            import tensorflow as tf

            variables = [tf.Variable(core.convert_to_tensor(p)) for p in params]
        opt = type(optimizer).from_config(optimizer.get_config())
        opt.build(variables)
        opt.set_state(state, iterations=iterations)
        opt.apply([core.convert_to_tensor(g) for g in grads], variables)
        return np.concatenate([flat(core.to_numpy(v) for v in variables), flat_state(opt.state())])


@settings(max_examples=EXAMPLES * 4)
@given(optimizer=optimizers(), data=st.data())
def test_optimizer_update(optimizer: O.Optimizer, data: st.DataObject) -> None:
    """Updates from drawn weights, state and step count with drawn gradients (zeros, tiny,
    large), each against one float64 reference step from the same rounded start: the
    catalogue's ``step1``/``step51`` rows and their default tolerance, for every configuration."""
    dtype = data.draw(st.sampled_from(["float32", "float64"]), label="dtype")
    shapes_ = data.draw(st.lists(shapes(max_dims=2, max_side=4), min_size=1, max_size=3))
    magnitude = st.sampled_from([0.0, 1e-30, 1e-6, 1e-3, 1.0, 30.0, 1e6])
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    name, config = type(optimizer).__name__, optimizer.get_config()
    params = [rng.standard_normal(s) * 2.0 for s in shapes_]
    state = RO.initial_state(name, config, params)
    iterations = data.draw(st.sampled_from([0, 1, 7, 1000]), label="iterations")
    for step in range(data.draw(st.integers(1, 3), label="updates")):
        grads = [rng.standard_normal(s) * data.draw(magnitude) for s in shapes_]
        for g in grads:  # an exact zero somewhere: 0/(0 + ε) must stay 0
            g.flat[0] = 0.0
        # Start from the reference rounded to the dtype, as the catalogue's step51 row.
        params = [round_to(p, dtype) for p in params]
        state = {k: [round_to(a, dtype) for a in v] for k, v in state.items()}
        grads = [round_to(g, dtype) for g in grads]
        got = {b: _one_update(b, optimizer, params, state, iterations + step, grads)
               for b in BACKENDS}  # fmt: skip
        f64 = [np.asarray(p, np.float64) for p in params]
        state64 = {k: [np.asarray(a, np.float64) for a in v] for k, v in state.items()}
        params, state = RO.step(name, config, f64, [np.asarray(g, np.float64) for g in grads],
                                state64, iterations + step)  # fmt: skip
        expected = np.concatenate([flat(params), flat_state(state)])
        comps = three_way(got["torch"], got["tensorflow"], expected, tol.default(dtype))
        failed = {k: d.message(k) for k, d in comps.items() if not d.passed}
        assert not failed, f"update {step + 1} ({dtype}):\n" + "\n".join(failed.values())


# --------------------------------------------------------------------------- layers


def _layer_fd_mask(*kinks: float):
    """A LayerCase ``fd_mask``: no finite difference within 1e-4 of a kink or beyond
    ``FD_RANGE``."""

    def mask(xs: list[np.ndarray], weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = np.asarray(xs[0], np.float64)
        ok = np.abs(x) <= FD_RANGE
        for k in kinks:
            ok &= np.abs(x - k) > 1e-4 * max(1.0, abs(k))
        return {"x": ok}

    return mask


@st.composite
def layer_cases(draw: st.DrawFn) -> LayerCase:
    """Dense and the element-wise and reshaping layers, with drawn configurations and shapes."""
    kinds = ["dense", "relu", "leaky_relu", "elu", "activation", "flatten", "permute",
             "repeat_vector", "reshape"]  # fmt: skip
    kind = draw(st.sampled_from(kinds), label="layer")
    exact = rounding_bound(0)
    if kind == "dense":
        shape = draw(shapes(min_dims=2, max_dims=3, max_side=6), label="shape")
        k = shape[-1]
        kwargs = {"units": draw(st.integers(1, 6)),
                  "activation": draw(st.sampled_from(["linear", "relu", "tanh", "softmax"])),
                  "use_bias": draw(st.booleans())}  # fmt: skip
        # The derived half-precision bound is for a layer linear in x and W (as the catalogue's
        # dense-linear-half); other activations run in float32/float64 only.
        linear = kwargs["activation"] == "linear"
        # |x| <= 10: beyond, cancellation in x·W outgrows the √K bound of the catalogue's
        # Dense entries (Higham's γ_K·|x|·|W| is the bound that holds there).
        return LayerCase(name="dense-property", layer=DL.Dense, kwargs=kwargs, input_shape=shape,
                         inputs=_drawn(draw, shape, "float32", bulk=10.0, cap=10.0),
                         reference=RLC.dense_layer, reduction=k,
                         half_bound=bilinear_bound(k) if linear else None,
                         fd_mask=_layer_fd_mask(0.0))  # fmt: skip
    shape = draw(shapes(min_dims=2, max_dims=4, max_side=4), label="shape")
    if kind in ("relu", "leaky_relu", "elu"):
        kwargs, ref, kinks = {
            "relu": ({"max_value": draw(st.sampled_from([None, 1.25, 6.0])),
                      "negative_slope": draw(st.sampled_from([0.0, 0.3])),
                      "threshold": draw(st.sampled_from([0.0, 0.5]))}, RLA.re_lu, (0.0,)),
            "leaky_relu": ({"negative_slope": draw(st.sampled_from([0.0, 0.01, 0.3]))},
                           RLA.leaky_re_lu, (0.0,)),
            "elu": ({"alpha": draw(st.sampled_from([0.7, 1.0]))}, RLA.elu, (0.0,)),
        }[kind]  # fmt: skip
        points = (*kinks, kwargs.get("max_value") or 0.0, kwargs.get("threshold", 0.0))
        layer = {"relu": DL.ReLU, "leaky_relu": DL.LeakyReLU, "elu": DL.ELU}[kind]
        return LayerCase(name=f"{kind}-property", layer=layer, kwargs=kwargs, input_shape=shape,
                         inputs=_drawn(draw, shape, "float32", kinks=points),
                         reference=ref, fd_mask=_layer_fd_mask(*points))  # fmt: skip
    if kind == "activation":
        name = draw(st.sampled_from(["sigmoid", "tanh", "softplus", "softsign", "silu", "gelu"]))
        return LayerCase(name="activation-property", layer=DL.Activation,
                         kwargs={"activation": name}, input_shape=shape,
                         inputs=_drawn(draw, shape, "float32", cap=1e4),
                         reference=RLC.activation_layer, fd_mask=_layer_fd_mask())  # fmt: skip
    inputs = _drawn(draw, shape, "float32")
    if kind == "flatten":
        return LayerCase(name="flatten-property", layer=DL.Flatten, input_shape=shape,
                         inputs=inputs, reference=RLR.flatten, half_bound=exact,
                         fd_mask=_layer_fd_mask())  # fmt: skip
    if kind == "permute":
        dims = tuple(int(d) + 1 for d in draw(st.permutations(range(len(shape) - 1))))
        return LayerCase(name="permute-property", layer=DL.Permute, kwargs={"dims": dims},
                         input_shape=shape, inputs=inputs, reference=RLR.permute,
                         half_bound=exact, fd_mask=_layer_fd_mask())  # fmt: skip
    if kind == "repeat_vector":
        n = draw(st.integers(1, 4))
        shape2 = shape[:2]
        return LayerCase(name="repeat-vector-property", layer=DL.RepeatVector, kwargs={"n": n},
                         input_shape=shape2, inputs=_drawn(draw, shape2, "float32"),
                         reference=RLR.repeat_vector, grad_reduction=n, half_bound=exact,
                         fd_mask=_layer_fd_mask())  # fmt: skip
    target = (-1, *shape[2:]) if len(shape) > 2 else (shape[1],)
    return LayerCase(name="reshape-property", layer=DL.Reshape, kwargs={"target_shape": target},
                     input_shape=shape, inputs=inputs, reference=RLR.reshape, half_bound=exact,
                     fd_mask=_layer_fd_mask())  # fmt: skip


def _drawn(draw: st.DrawFn, shape: tuple[int, ...], dtype: str, **kw):
    """A LayerCase ``inputs`` returning one drawn array (the case's rng is not used)."""
    x = draw(hnp.arrays(np.float64, shape, elements=reals(dtype, **kw)), label="x")
    return lambda rng: x


@settings(max_examples=EXAMPLES * 3)
@given(case=layer_cases(), data=st.data())
def test_layer(case: LayerCase, data: st.DataObject) -> None:
    """Dense and the simple layers on drawn configurations, shapes and inputs: forward, every
    gradient (inputs and weights) and, in half precision, the case's derived bound."""
    dtype = data.draw(st.sampled_from(case.dtypes), label="dtype")
    assert_agree(case.evaluate(dtype, "cpu"))
