"""Loss API: tutorial numbers, reference and Keras agreement, reductions, bad input, config.

Forward/gradient parity on edge inputs is in the catalogue (``dualnet parity --family loss``);
these tests pin the semantics: the numbers users will see, what the reductions divide by, how
sample weights broadcast, and that errors are the same on both backends.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from frameworks import keras as _keras

import dualnet as dn
from dualnet import losses as L
from dualnet._backend import backend_module
from dualnet.reference import losses as R

RTOL = {"float32": 2e-6, "float64": 1e-12}
REDUCTIONS = ("sum_over_batch_size", "sum", "none", "mean")


def _np(x):
    return np.asarray(dn.to_numpy(x), dtype=np.float64)


# --------------------------------------------------------------------------- tutorial numbers

# The Keras docstring inputs (CategoricalCrossentropy) and the inputs that give the tutorial's
# BinaryCrossentropy and Huber numbers, found by running keras.losses itself (see
# test_tutorial_numbers_are_keras_numbers).
TUTORIAL = {
    "cce": (L.CategoricalCrossentropy, [[0, 1, 0], [0, 0, 1]],
            [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]], 1.1769392),
    "bce": (L.BinaryCrossentropy, [[1, 0], [0, 1]], [[0.6, 0.4], [0.4, 0.6]], 0.5108256),
    "huber": (L.Huber, [[0, 1], [1, 0]], [[0.6, 0.4], [0.4, 0.6]], 0.18),
}  # fmt: skip
_TUTORIAL_REF = {"cce": R.categorical_crossentropy, "bce": R.binary_crossentropy, "huber": R.huber}


@pytest.mark.parametrize("name", list(TUTORIAL))
def test_tutorial_numbers(name, backend):
    cls, t, p, expected = TUTORIAL[name]
    out = cls()(t, p)
    assert dn.to_numpy(out).dtype == np.float32
    assert float(dn.to_numpy(out)) == pytest.approx(expected, rel=1e-7, abs=0)
    p32 = np.asarray(p, np.float32).astype(np.float64)  # the reference on the float32 inputs
    ref = R.reduce(_TUTORIAL_REF[name](np.asarray(t, np.float64), p32))
    assert float(dn.to_numpy(out)) == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize("name", list(TUTORIAL))
def test_tutorial_numbers_are_keras_numbers(name):
    keras = _keras()
    cls, t, p, expected = TUTORIAL[name]
    assert float(getattr(keras.losses, cls.__name__)()(t, p)) == pytest.approx(expected, rel=1e-7)


def test_saturated_bce_keras_vs_torch_rule(backend):
    t, p = [1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 0.0]
    # Keras clips p to [ε, 1-ε] with bounds in float32: -log(1 - 0.99999988) / 4.
    assert float(dn.to_numpy(L.BinaryCrossentropy()(t, p))) == pytest.approx(3.9855962, rel=1e-7)
    # torch's BCELoss clamps log(0) at -100: 100 / 4.
    assert float(dn.to_numpy(L.BinaryCrossentropy(clip="torch")(t, p))) == 25.0
    # In float64 the bound is 1 - 1e-7 in float64: 4.0295239879 (Keras with dtype="float64").
    t64, p64 = np.array(t), np.array(p)
    f64 = float(dn.to_numpy(L.BinaryCrossentropy()(t64, p64)))
    assert f64 == pytest.approx(R.reduce(R.binary_crossentropy(t64, p64)), rel=1e-12)
    hi = 1.0 - 1e-7  # two log(hi) terms, one log(1 - hi), one log(1 - ε)
    assert f64 == pytest.approx(-(2 * np.log(hi) + np.log(1 - hi) + np.log1p(-1e-7)) / 4, rel=1e-12)
    assert f64 == pytest.approx(4.029523987871173, rel=1e-12)


def test_torch_native_bce_is_what_clip_torch_gives():
    import torch

    t, p = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.3]), torch.tensor([1.0, 1.0, 0.9, 0.0, 0.2])
    native = torch.nn.functional.binary_cross_entropy(p, t)
    with dn.use_backend("tensorflow"):
        ours = float(dn.to_numpy(L.BinaryCrossentropy(clip="torch")(t.numpy(), p.numpy())))
    assert ours == pytest.approx(float(native), rel=1e-6)


# --------------------------------------------------------------------------- vs the reference

SPECS = {
    "mse": (L.MeanSquaredError, {}, R.mean_squared_error, "regression"),
    "mae": (L.MeanAbsoluteError, {}, R.mean_absolute_error, "regression"),
    "huber": (L.Huber, {}, R.huber, "regression"),
    "huber-delta2": (L.Huber, {"delta": 2.0}, lambda t, p: R.huber(t, p, 2.0), "regression"),
    "smooth_l1-beta0.5": (L.SmoothL1, {"beta": 0.5}, lambda t, p: R.smooth_l1(t, p, 0.5),
                          "regression"),
    "bce": (L.BinaryCrossentropy, {}, R.binary_crossentropy, "binary"),
    "bce-logits": (L.BinaryCrossentropy, {"from_logits": True},
                   lambda t, p: R.binary_crossentropy(t, p, True), "logits2"),
    "bce-smooth": (L.BinaryCrossentropy, {"label_smoothing": 0.2},
                   lambda t, p: R.binary_crossentropy(t, p, False, 0.2), "binary"),
    "cce": (L.CategoricalCrossentropy, {}, R.categorical_crossentropy, "categorical"),
    "cce-logits": (L.CategoricalCrossentropy, {"from_logits": True},
                   lambda t, p: R.categorical_crossentropy(t, p, True), "logits"),
    "cce-smooth": (L.CategoricalCrossentropy, {"label_smoothing": 0.1},
                   lambda t, p: R.categorical_crossentropy(t, p, False, 0.1), "categorical"),
    "scce": (L.SparseCategoricalCrossentropy, {}, R.sparse_categorical_crossentropy, "sparse"),
    "scce-logits": (L.SparseCategoricalCrossentropy, {"from_logits": True},
                    lambda t, p: R.sparse_categorical_crossentropy(t, p, True), "sparse-logits"),
}  # fmt: skip


def _inputs(kind, seed=0, edges=False):
    rng = np.random.default_rng(seed)
    b, k = 4, 3
    if kind == "regression":
        t = rng.normal(size=(b, k))
        return t, t + rng.normal(0, 1.5, size=(b, k))
    if kind in ("binary", "logits2"):
        t = rng.integers(0, 2, size=(b, k)).astype(float)
        p = rng.uniform(0.05, 0.95, size=(b, k)) if kind == "binary" else rng.normal(0, 3, (b, k))
        if edges and kind == "binary":
            p[0] = [1.0, 0.0, 1.0]
        return t, p
    labels = rng.integers(0, k, size=b)
    if kind in ("categorical", "sparse"):
        p = rng.dirichlet(np.ones(k), size=b)
        if edges:
            p[0] = np.eye(k)[(labels[0] + 1) % k]  # certain and wrong: clipped at ε
    else:
        p = rng.normal(0, 3, size=(b, k))
    return (labels if kind.startswith("sparse") else np.eye(k)[labels]), p


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(SPECS))
def test_matches_reference(name, reduction, backend, dtype):
    cls, kw, ref, kind = SPECS[name]
    t, p = _inputs(kind)
    t = t if kind.startswith("sparse") else t.astype(dtype)
    w = np.array([0.5, 0.0, 2.0, 1.0], dtype)
    out = cls(reduction=reduction, **kw)(t, p.astype(dtype), sample_weight=w)
    red = "sum_over_batch_size" if reduction == "mean" else reduction
    expected = R.reduce(ref(t, p.astype(dtype)), w, red)
    assert dn.to_numpy(out).dtype == np.dtype(dtype)
    np.testing.assert_allclose(_np(out), expected, rtol=RTOL[dtype], atol=RTOL[dtype])


# --------------------------------------------------------------------------- vs real Keras

KERAS = {  # dualnet spec name -> (keras class name, kwargs)
    "mse": ("MeanSquaredError", {}), "mae": ("MeanAbsoluteError", {}), "huber": ("Huber", {}),
    "huber-delta2": ("Huber", {"delta": 2.0}), "bce": ("BinaryCrossentropy", {}),
    "bce-logits": ("BinaryCrossentropy", {"from_logits": True}),
    "bce-smooth": ("BinaryCrossentropy", {"label_smoothing": 0.2}),
    "cce": ("CategoricalCrossentropy", {}),
    "cce-logits": ("CategoricalCrossentropy", {"from_logits": True}),
    "cce-smooth": ("CategoricalCrossentropy", {"label_smoothing": 0.1}),
    "scce": ("SparseCategoricalCrossentropy", {}),
    "scce-logits": ("SparseCategoricalCrossentropy", {"from_logits": True}),
}  # fmt: skip


@pytest.mark.parametrize("edges", [False, True], ids=["inner", "clip-edges"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(KERAS))
def test_matches_keras(name, reduction, edges, backend, dtype):
    """Reductions, zero sample weights and clip edges agree with keras.losses built in the same
    dtype (Keras computes in its loss dtype; dualnet in y_pred's)."""
    keras = _keras()
    cls, kw, _, kind = SPECS[name]
    kname, kkw = KERAS[name]
    t, p = _inputs(kind, seed=1, edges=edges)
    t = t if kind.startswith("sparse") else t.astype(dtype)
    p, w = p.astype(dtype), np.array([0.5, 0.0, 2.0, 1.0], dtype)
    theirs = getattr(keras.losses, kname)(reduction=reduction, dtype=dtype, **kkw)(t, p, w)
    ours = cls(reduction=reduction, **kw)(t, p, sample_weight=w)
    np.testing.assert_allclose(_np(ours), np.asarray(theirs), rtol=RTOL[dtype] * 5, atol=1e-6)


def test_ignore_class_matches_keras(backend):
    keras = _keras()
    t = np.array([1, -1, 0, 2, -1])
    p = np.random.default_rng(3).dirichlet(np.ones(3), size=5).astype(np.float32)
    w = np.array([1.0, 2.0, 0.0, 3.0, 1.0], np.float32)
    for reduction in ("sum_over_batch_size", "sum", "none"):
        theirs = keras.losses.SparseCategoricalCrossentropy(ignore_class=-1, reduction=reduction)
        ours = L.SparseCategoricalCrossentropy(ignore_class=-1, reduction=reduction)
        np.testing.assert_allclose(_np(ours(t, p, w)), np.asarray(theirs(t, p, w)), rtol=1e-6)
    # sum_over_batch_size divides by the 3 non-ignored labels (torch's ignore_index does too).
    per = R.sparse_categorical_crossentropy(t, p.astype(np.float64), ignore_class=-1)
    assert float(dn.to_numpy(L.SparseCategoricalCrossentropy(ignore_class=-1)(t, p))) == (
        pytest.approx(per.sum() / 3, rel=1e-6)
    )


# --------------------------------------------------------------------------- semantics


def test_sum_over_batch_size_counts_zero_weight_samples(backend):
    t, p = np.zeros((4, 2)), np.ones((4, 2))  # every per-sample MSE is 1
    w = np.array([1.0, 0.0, 0.0, 0.0])
    assert float(dn.to_numpy(L.MeanSquaredError()(t, p, w))) == 0.25  # 1 / 4, not 1 / 1
    assert float(dn.to_numpy(L.MeanSquaredError(reduction="sum")(t, p, w))) == 1.0
    np.testing.assert_array_equal(_np(L.MeanSquaredError(reduction="none")(t, p, w)), w)


def test_per_sample_weights_on_rank3_values(backend):
    """(B,) weights on (B, T) per-sample values weigh whole samples (Keras 3 would multiply
    along T: an error for B != T and silently wrong for B == T)."""
    t = np.zeros((3, 3, 4))
    p = np.ones((3, 3, 4)) * np.arange(3.0)[None, :, None]
    w = np.array([1.0, 0.0, 0.0])
    out = L.MeanSquaredError(reduction="none")(t, p, w)
    np.testing.assert_allclose(_np(out), [[0.0, 1.0, 4.0], [0, 0, 0], [0, 0, 0]])
    assert float(dn.to_numpy(L.MeanSquaredError()(t, p, w))) == pytest.approx(5.0 / 9.0)


def test_trailing_unit_axis_is_squeezed_as_keras(backend):
    t, p = np.array([1.0, 2.0]), np.zeros((2, 1))  # (B,) vs (B, 1): torch would broadcast
    np.testing.assert_allclose(_np(L.MeanSquaredError(reduction="none")(t, p)), [1.0, 4.0])
    labels = np.array([[1], [0]])  # sparse labels with a trailing 1
    probs = np.array([[0.2, 0.8], [0.9, 0.1]])
    out = _np(L.sparse_categorical_crossentropy(labels, probs))
    np.testing.assert_allclose(out, -np.log([0.8, 0.9]), rtol=1e-12)
    float_labels = np.array([1.0, 0.0])  # integral floats are accepted
    np.testing.assert_allclose(_np(L.sparse_categorical_crossentropy(float_labels, probs)), out)


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.5])
def test_smooth_l1_is_huber_over_beta(beta, backend, dtype):
    t, p = _inputs("regression", seed=4)
    t, p = t.astype(dtype), (p * 2).astype(dtype)
    s = _np(L.smooth_l1(t, p, beta=beta))
    h = _np(L.huber(t, p, delta=beta)) / beta
    np.testing.assert_allclose(s, h, rtol=RTOL[dtype] * 2)
    np.testing.assert_allclose(s, R.smooth_l1(t, p, beta), rtol=RTOL[dtype] * 2)


def test_half_precision_computes_in_float32_and_rounds_once(backend):
    t, p = _inputs("logits", seed=5)
    p16 = p.astype(np.float16)
    out = L.CategoricalCrossentropy(from_logits=True)(t, p16)
    assert dn.to_numpy(out).dtype == np.float16
    exact = R.reduce(R.categorical_crossentropy(t, p16.astype(np.float64), True))
    assert float(dn.to_numpy(out)) == pytest.approx(float(np.float16(exact)), rel=1e-3)


def test_large_logits_are_finite(backend):
    t = np.array([[1.0, 0.0], [0.0, 1.0]])
    x = np.array([[1e4, -1e4], [1e4, -1e4]], np.float32)
    cce = _np(L.categorical_crossentropy(t, x, from_logits=True))
    np.testing.assert_allclose(cce, [0.0, 2e4])
    bce = _np(L.binary_crossentropy(t, x, from_logits=True))
    np.testing.assert_allclose(bce, [0.0, 1e4])


def test_sigmoid_outputs_are_not_swapped_for_logits(backend):
    """On TF, Keras's own BCE would use the logits hidden behind keras.activations.sigmoid
    (20.0 here); dualnet computes the clipped-probability loss on both backends."""
    x = np.array([20.0, -20.0], np.float32)
    t = np.array([0.0, 1.0], np.float32)
    from_activation = L.binary_crossentropy(t, dn.activations.sigmoid(x))
    from_numpy = L.binary_crossentropy(t, dn.to_numpy(dn.activations.sigmoid(x)))
    assert float(dn.to_numpy(from_activation)) == float(dn.to_numpy(from_numpy))
    assert float(dn.to_numpy(from_activation)) < 17.0  # clipped: about 16.0, not 20.0


def test_native_tensors_and_foreign_tensors(backend):
    core = backend_module(backend).core
    t, p = core.convert_to_tensor(np.zeros((2, 3))), core.convert_to_tensor(np.ones((2, 3)))
    out = L.MeanAbsoluteError()(t, p)
    assert core.is_tensor(out) and float(dn.to_numpy(out)) == 1.0
    other = backend_module("tensorflow" if backend == "torch" else "torch").core
    with pytest.raises(TypeError, match="tensor while the active dualnet backend"):
        L.MeanAbsoluteError()(np.zeros(3), other.convert_to_tensor(np.ones(3)))


# --------------------------------------------------------------------------- bad input

BAD_CALLS = {
    "shape-mismatch": (L.MeanSquaredError(), np.zeros((2, 3)), np.zeros((2, 4)), None,
                       ["y_true.shape=(2, 3)", "y_pred.shape=(2, 4)"]),
    "labels-to-cce": (L.CategoricalCrossentropy(), np.array([0, 2]), np.ones((2, 3)) / 3, None,
                      ["y_true.shape=(2,)", "SparseCategoricalCrossentropy"]),
    "label-out-of-range": (L.SparseCategoricalCrossentropy(), np.array([0, 3]),
                           np.ones((2, 3)) / 3, None, ["y_true=3", "[0, 3)"]),
    "negative-label": (L.SparseCategoricalCrossentropy(), np.array([-1, 0]),
                       np.ones((2, 3)) / 3, None, ["y_true=-1", "[0, 3)"]),
    "fractional-label": (L.SparseCategoricalCrossentropy(), np.array([0.5, 1.0]),
                         np.ones((2, 3)) / 3, None, ["y_true=0.5", "integer class labels"]),
    "sparse-shape": (L.SparseCategoricalCrossentropy(), np.array([0, 1, 2]),
                     np.ones((2, 3)) / 3, None, ["y_true.shape=(3,)", "y_pred.shape=(2, 3)"]),
    "sample-weight-shape": (L.MeanSquaredError(), np.zeros((2, 3)), np.zeros((2, 3)),
                            np.ones(3), ["sample_weight of shape (3,)", "shape (2,)"]),
    "axis-out-of-range": (L.CategoricalCrossentropy(axis=2), np.zeros((2, 3)),
                          np.ones((2, 3)), None, ["axis=2", "rank 2"]),
    "torch-clip-outside-01": (L.BinaryCrossentropy(clip="torch"), np.zeros(2),
                              np.array([0.5, 1.5]), None, ["y_pred=1.5", "[0, 1]"]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_input_same_error_on_both_backends(case):
    loss, t, p, w, needles = BAD_CALLS[case]
    messages = []
    for b in ("torch", "tensorflow"):
        with dn.use_backend(b), pytest.raises(ValueError) as info:
            loss(t, p, sample_weight=w)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    for needle in needles:
        assert needle in messages[0]


BAD_CONFIGS = {
    "reduction": (L.MeanSquaredError, {"reduction": "avg"}, ValueError, "reduction='avg'"),
    "smoothing-high": (L.BinaryCrossentropy, {"label_smoothing": 1.5}, ValueError,
                       "label_smoothing=1.5"),
    "smoothing-type": (L.CategoricalCrossentropy, {"label_smoothing": "0.1"}, TypeError,
                       "label_smoothing='0.1'"),
    "delta-zero": (L.Huber, {"delta": 0.0}, ValueError, "delta=0.0"),
    "delta-nan": (L.Huber, {"delta": float("nan")}, ValueError, "delta=nan"),
    "beta-negative": (L.SmoothL1, {"beta": -1.0}, ValueError, "beta=-1.0"),
    "from-logits": (L.BinaryCrossentropy, {"from_logits": "yes"}, TypeError, "from_logits='yes'"),
    "axis": (L.CategoricalCrossentropy, {"axis": 1.5}, TypeError, "axis=1.5"),
    "ignore-class": (L.SparseCategoricalCrossentropy, {"ignore_class": "void"}, TypeError,
                     "ignore_class='void'"),
    "clip": (L.BinaryCrossentropy, {"clip": "tf"}, ValueError, "clip='tf'"),
    "name": (L.Huber, {"name": 3}, TypeError, "name=3"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_is_clear(case):
    cls, kw, exc, needle = BAD_CONFIGS[case]
    with pytest.raises(exc) as info:
        cls(**kw)
    assert needle in str(info.value) and cls.__name__ in str(info.value)


def test_specs_are_frozen():
    loss = L.Huber(delta=2.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        loss.delta = 3.0  # type: ignore[misc]
    assert loss.delta == 2.0


# --------------------------------------------------------------------------- registry


@pytest.mark.parametrize(
    "loss",
    [L.MeanSquaredError(reduction="sum"), L.MeanAbsoluteError(name="l1"), L.Huber(delta=0.5),
     L.SmoothL1(beta=2.0, reduction="none"), L.BinaryCrossentropy(from_logits=True, clip="torch"),
     L.CategoricalCrossentropy(label_smoothing=0.1, axis=1, reduction="mean"),
     L.SparseCategoricalCrossentropy(ignore_class=255, reduction=None)],
    ids=lambda x: type(x).__name__,
)  # fmt: skip
def test_serialize_get_round_trip(loss):
    config = L.serialize(loss)
    assert config["class_name"] == type(loss).__name__
    assert L.get(config) == loss
    assert type(loss).from_config(loss.get_config()) == loss


def test_get_names_and_aliases(backend):
    assert L.get("mse") is L.mean_squared_error and L.get("mae") is L.mean_absolute_error
    assert L.get("huber") is L.huber and L.get("smooth_l1") is L.smooth_l1
    assert L.get("Huber") == L.Huber() and L.get(None) is None
    assert L.serialize(L.mean_squared_error) == "mean_squared_error"
    loss = L.Huber()
    assert L.get(loss) is loss
    with pytest.raises(ValueError, match=r"Unknown loss 'msee'.*mse"):
        L.get("msee")
    with pytest.raises(ValueError, match="config"):
        L.Huber.from_config({"delta": 1.0, "epsilon": 1e-3})
    for name in ("categorical_crossentropy", "binary_crossentropy",
                 "sparse_categorical_crossentropy", "mean_squared_error"):  # fmt: skip
        assert callable(L.get(name))


def test_functional_forms_return_per_sample_values(backend):
    t = np.zeros((2, 3, 4))
    assert _np(L.mean_squared_error(t, t + 1.0)).shape == (2, 3)
    assert _np(L.categorical_crossentropy(np.ones((2, 3)) / 3, np.ones((2, 3)))).shape == (2,)
    assert L.MeanSquaredError().call(t, t).shape == (2, 3)


@pytest.mark.parametrize("ignore_class", [None, 2])
def test_sparse_categorical_traced_matches_eager(ignore_class):
    """Inside tf.function the host-side label checks are skipped; the value is unchanged."""
    from dualnet._backend import backend_module

    backend_module("tensorflow")
    import tensorflow as tf

    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 1.0, (6, 4))
    p /= p.sum(-1, keepdims=True)
    y = np.array([0, 3, 1, 2, 2, 1])
    loss = dn.losses.SparseCategoricalCrossentropy(ignore_class=ignore_class)
    with dn.use_backend("tensorflow"):
        eager = float(loss(y, p))
        traced = tf.function(lambda a, b: loss(a, b))
        assert float(traced(tf.constant(y), tf.constant(p))) == eager
        assert float(traced(tf.constant(y[:, None]), tf.constant(p))) == eager


# ------------------------------------------------------------------ checked once per signature
# Note [Checked once per signature]: a loss keeps the decisions of a call whose checks passed and
# reuses them for calls with the same signature. The kept path must give the bits of the full
# one, and a bad call must still raise the full path's error after good ones were kept.

# (y_true shape, y_pred shape), including the shapes Keras's trailing-axis rule reshapes.
SIGNATURES = {
    "same-shape": ((4, 3), (4, 3)),
    "true-trailing-1": ((4, 1), (4,)),
    "pred-trailing-1": ((4,), (4, 1)),
    "rank3": ((2, 4, 3), (2, 4, 3)),
}
# Every loss that checks only signatures, with every signature it takes (categorical targets
# have y_pred's shape).
KEPT_CASES = [(n, s) for n in SPECS if not n.startswith("scce") for s in SIGNATURES
              if not (SPECS[n][0] is L.CategoricalCrossentropy and "trailing" in s)]  # fmt: skip


def _native_pair(backend, kind, shapes, dtype, seed=0):
    t, p = _inputs(kind, seed)
    (ts, ps) = shapes
    t = np.resize(t, ts) if ts != t.shape else t
    p = np.resize(p, ps) if ps != p.shape else p
    core = backend_module(backend).core
    return core.convert_to_tensor(t, dtype), core.convert_to_tensor(p, dtype)


def _value_and_grad(loss, t, p, backend):
    """The loss (float64 numpy) and, on torch, its gradient with respect to y_pred."""
    if backend != "torch":
        return _np(loss(t, p)), None
    import torch

    p = p.detach().requires_grad_(True)
    out = loss(t, p)
    (grad,) = torch.autograd.grad(out.sum(), [p])
    return _np(out.detach()), _np(grad)


@pytest.mark.parametrize("dtype", ("float32", "float64", "bfloat16"))
@pytest.mark.parametrize("reduction", ("sum_over_batch_size", "none"))
@pytest.mark.parametrize(("name", "signature"), KEPT_CASES, ids=[f"{n}-{s}" for n, s in KEPT_CASES])
def test_kept_signature_gives_the_full_paths_bits(name, signature, reduction, backend, dtype):
    cls, kw, _, kind = SPECS[name]
    shapes = SIGNATURES[signature]
    kept = cls(reduction=reduction, **kw)
    for seed in (0, 1, 2):  # the first call checks and keeps; the others reuse
        t, p = _native_pair(backend, kind, shapes, dtype, seed)
        ours, grad = _value_and_grad(kept, t, p, backend)
        fresh, fresh_grad = _value_and_grad(cls(reduction=reduction, **kw), t, p, backend)
        np.testing.assert_array_equal(ours, fresh)  # bit for bit (NaN where NaN)
        if grad is not None:
            np.testing.assert_array_equal(grad, fresh_grad)
    assert len(kept.__dict__.get("_plans", {})) == 1  # the signature was kept and reused


def test_value_checks_are_never_skipped(backend):
    """Losses that check values (labels, torch-clipped probabilities) keep nothing."""
    core = backend_module(backend).core
    scce = L.SparseCategoricalCrossentropy()
    p = core.convert_to_tensor(np.ones((2, 3)) / 3)
    scce(core.convert_to_tensor(np.array([0, 2])), p)
    with pytest.raises(ValueError, match=r"y_true=3"):
        scce(core.convert_to_tensor(np.array([0, 3])), p)
    bce = L.BinaryCrossentropy(clip="torch")
    bce(core.convert_to_tensor(np.zeros(2)), core.convert_to_tensor(np.array([0.5, 0.5])))
    with pytest.raises(ValueError, match=r"y_pred=1.5"):
        bce(core.convert_to_tensor(np.zeros(2)), core.convert_to_tensor(np.array([0.5, 1.5])))
    assert "_plans" not in scce.__dict__ and "_plans" not in bce.__dict__


# A good call of the same loss before each bad call of BAD_CALLS (native tensors: the calls a
# training loop makes).
GOOD_BEFORE = {
    "shape-mismatch": (np.zeros((2, 4)), np.zeros((2, 4))),
    "labels-to-cce": (np.ones((2, 3)) / 3, np.ones((2, 3)) / 3),
    "axis-out-of-range": (np.ones((2, 3, 3)) / 3, np.ones((2, 3, 3)) / 3),
}


@pytest.mark.parametrize("case", list(GOOD_BEFORE))
def test_kept_signatures_do_not_hide_bad_calls(case, backend):
    loss, t, p, _, needles = BAD_CALLS[case]
    loss = dataclasses.replace(loss)  # a fresh instance: nothing kept yet
    core = backend_module(backend).core
    good_t, good_p = (core.convert_to_tensor(a) for a in GOOD_BEFORE[case])
    loss(good_t, good_p)
    loss(good_t, good_p)
    for _ in range(2):  # refused every time, with the full path's message
        with pytest.raises(ValueError) as info:
            loss(core.convert_to_tensor(t), core.convert_to_tensor(p))
        with pytest.raises(ValueError) as full:
            dataclasses.replace(loss)(t, p)
        assert str(info.value) == str(full.value)
        for needle in needles:
            assert needle in str(info.value)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unweighted_mse_mean_runs_each_frameworks_own_form(backend, dtype):
    """The unweighted ``sum_over_batch_size`` MSE is torch's fused ``MSELoss`` kernel on torch
    (one autograd node) and Keras's per-sample formula on TensorFlow, bit for bit; both are the
    reference's number to within the rounding of a sum (the docstring's table). Weights keep
    the per-sample formula on both backends."""
    rng = np.random.default_rng(7)
    t = rng.standard_normal((4, 3, 5)).astype(dtype)
    p = rng.standard_normal((4, 3, 5)).astype(dtype)
    core = backend_module(backend).core
    with dn.use_backend(backend):
        tt, pt = core.convert_to_tensor(t), core.convert_to_tensor(p)
        ours = _np(L.MeanSquaredError()(tt, pt))
        if backend == "torch":
            import torch.nn.functional as F

            native = _np(F.mse_loss(pt, tt))
        else:  # Keras's formula (its Loss class would compute a float64 loss in float32)
            import tensorflow as tf

            per_sample = _keras().losses.mean_squared_error(tt, pt)
            native = _np(tf.reduce_sum(per_sample) / tf.cast(tf.size(per_sample), per_sample.dtype))
        np.testing.assert_array_equal(ours, native)
        want = np.mean((t.astype(np.float64) - p) ** 2)
        np.testing.assert_allclose(ours, want, rtol=64 * np.finfo(dtype).eps)
        w = rng.random(4).astype(dtype)
        weighted = _np(L.MeanSquaredError()(tt, pt, sample_weight=core.convert_to_tensor(w)))
        per_sample = np.mean((t.astype(np.float64) - p) ** 2, axis=-1)
        np.testing.assert_allclose(weighted, np.sum(per_sample * w[:, None]) / per_sample.size,
                                   rtol=64 * np.finfo(dtype).eps)  # fmt: skip
