"""Optimizers and schedules: rules vs the float64 reference, vs real torch.optim and
keras.optimizers, clipping, weight decay, bad input, configs (training parity is in
test_parity.py via the ``optimizer`` catalogue family)."""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

import dualnet as dn
from dualnet import optimizers as O
from dualnet import schedules as S
from dualnet._backend import backend_module
from dualnet.reference import optimizers as R

# One configuration per rule variant the spec documents.
CONFIGS = {
    "sgd": O.SGD(0.1),
    "sgd-momentum": O.SGD(0.1, momentum=0.9),
    "sgd-nesterov": O.SGD(0.1, momentum=0.9, nesterov=True),
    "sgd-torch-form": O.SGD(0.1, momentum=0.9, momentum_form="torch", dampening=0.2),
    "adagrad": O.Adagrad(0.1),
    "adagrad-torch": O.Adagrad(
        0.1, initial_accumulator_value=0.0, epsilon=1e-10, epsilon_placement="outside_sqrt"
    ),
    "rmsprop": O.RMSprop(0.01),
    "rmsprop-centered-momentum": O.RMSprop(0.01, centered=True, momentum=0.9),
    "rmsprop-torch": O.RMSprop(
        0.01, centered=True, momentum=0.9, momentum_form="torch", epsilon_placement="outside_sqrt"
    ),
    "adam": O.Adam(0.01),
    "adam-amsgrad": O.Adam(0.01, amsgrad=True),
    "adam-torch-eps": O.Adam(0.01, epsilon=1e-3, epsilon_placement="sqrt_v_hat"),
    "adamw": O.AdamW(0.01, weight_decay=0.1),
    "adam-l2-clipnorm": O.Adam(0.01, weight_decay=0.1, weight_decay_mode="l2", clipnorm=0.5),
    "sgd-global-clipnorm-schedule": O.SGD(
        S.ExponentialDecay(0.1, 2, 0.5), momentum=0.5, global_clipnorm=1.0
    ),
    "rmsprop-clipvalue": O.RMSprop(0.01, clipvalue=0.3, weight_decay=0.05),
}
SHAPES = [(5, 3), (3,)]
STEPS = 5


def _fresh(opt: O.Optimizer) -> O.Optimizer:
    return type(opt).from_config(opt.get_config())


def _problem(seed=0, steps=STEPS):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) * 10.0 ** rng.integers(-3, 1) for s in SHAPES]
             for _ in range(steps)]  # fmt: skip
    return params, grads


def _variables(backend, arrays, dtype):
    if backend == "torch":
        import torch

        return [torch.nn.Parameter(torch.tensor(np.array(a, dtype=dtype))) for a in arrays]
    import tensorflow as tf

    return [tf.Variable(np.array(a, dtype=dtype)) for a in arrays]


def _native(backend, a, dtype):
    if backend == "torch":
        import torch

        return torch.tensor(np.array(a, dtype=dtype))
    import tensorflow as tf

    return tf.constant(np.array(a, dtype=dtype))


def _run(backend, opt, params, grads, dtype):
    vs = _variables(backend, params, dtype)
    for gs in grads:
        opt.apply([_native(backend, g, dtype) for g in gs], vs)
    return [dn.to_numpy(v).astype(np.float64) for v in vs]


def _reference(opt, params, grads, dtype):
    """The float64 reference, started from the inputs rounded to ``dtype``."""
    name, config = type(opt).__name__, opt.get_config()
    ps = [np.asarray(np.asarray(p, dtype=dtype), np.float64) for p in params]
    state = R.initial_state(name, config, ps)
    for k, gs in enumerate(grads):
        gs = [np.asarray(np.asarray(g, dtype=dtype), np.float64) for g in gs]
        ps, state = R.step(name, config, ps, gs, state, k)
    return ps, state


def _tol(dtype):
    # float32: a few ulp per update; float64 is limited by the same few ulp (≈1e-16 · STEPS).
    return {"rtol": 2e-5, "atol": 1e-6} if dtype == "float32" else {"rtol": 1e-12, "atol": 1e-13}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_steps_match_reference(config, backend, dtype):
    """A few updates (weights and every state slot) against the float64 reference."""
    opt = _fresh(CONFIGS[config])
    params, grads = _problem()
    got = _run(backend, opt, params, grads, dtype)
    want, want_state = _reference(opt, params, grads, dtype)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, **_tol(dtype))
    state = opt.state()
    assert set(state) == set(want_state) == set(opt.slot_names())
    for k in state:
        for g, w in zip(state[k], want_state[k], strict=True):
            np.testing.assert_allclose(g, w, **_tol(dtype), err_msg=k)
    assert opt.iterations == STEPS


@pytest.mark.parametrize("config", ["adam-amsgrad", "rmsprop-centered-momentum", "sgd-momentum",
                                    "sgd-global-clipnorm-schedule"])  # fmt: skip
def test_torch_and_tensorflow_agree_bitwise_without_reductions(config, dtype):
    """The rule is one sequence of correctly rounded ops: identical bits on both backends
    (global_clipnorm's sum is the only reduction, so that case is compared at 1 ulp)."""
    params, grads = _problem(1)
    out = {b: _run(b, _fresh(CONFIGS[config]), params, grads, dtype) for b in dn.BACKENDS}
    for a, b in zip(out["torch"], out["tensorflow"], strict=True):
        if "clipnorm" in config:
            np.testing.assert_allclose(a, b, rtol=4 * np.finfo(dtype).eps, atol=0)
        else:
            np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ real torch.optim
TORCH_CASES = {
    "sgd": ("SGD", {"lr": 0.1}),
    "sgd-momentum-dampening-l2": ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3,
                                          "weight_decay": 0.05}),
    "sgd-nesterov": ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    "adagrad": ("Adagrad", {}),
    "adagrad-lr_decay-l2": ("Adagrad", {"lr": 0.1, "lr_decay": 0.1, "weight_decay": 0.01,
                                        "initial_accumulator_value": 0.2}),
    "rmsprop": ("RMSprop", {}),
    "rmsprop-centered-momentum-l2": ("RMSprop", {"momentum": 0.9, "centered": True,
                                                 "weight_decay": 0.01}),
    "adam": ("Adam", {}),
    "adam-amsgrad-l2": ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}),
    "adam-decoupled": ("Adam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    "adamw": ("AdamW", {}),
    "adamw-amsgrad": ("AdamW", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "amsgrad": True}),
}  # fmt: skip
TORCH_SLOTS = {"exp_avg": "momentum", "exp_avg_sq": "velocity", "max_exp_avg_sq": "velocity_hat",
               "momentum_buffer": "momentum", "square_avg": "velocity",
               "grad_avg": "average_gradient", "sum": "accumulator"}  # fmt: skip


@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_from_torch_defaults_reproduces_torch_optim(case, backend, dtype):
    """20 updates of the real torch.optim optimizer vs dualnet's preset on either backend."""
    import torch

    cls_name, kwargs = TORCH_CASES[case]
    params, grads = _problem(2, steps=20)
    ts = [torch.nn.Parameter(torch.tensor(np.array(p, dtype=dtype))) for p in params]
    native = getattr(torch.optim, cls_name)(ts, **kwargs)
    for gs in grads:
        for t, g in zip(ts, gs, strict=True):
            t.grad = torch.tensor(np.array(g, dtype=dtype))
        native.step()
    opt = O.from_torch_defaults(cls_name.lower(), **kwargs)
    got = _run(backend, opt, params, grads, dtype)
    # torch fuses some steps (addcmul, lerp, add with alpha) into one rounding: a few ulp.
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == "float32" else {"rtol": 1e-11, "atol": 1e-13}
    for g, t in zip(got, ts, strict=True):
        np.testing.assert_allclose(g, t.detach().numpy(), **tol)
    state = opt.state()
    for i, t in enumerate(ts):
        for key, value in native.state[t].items():
            if key == "step":
                assert int(value) == opt.iterations
                continue
            np.testing.assert_allclose(state[TORCH_SLOTS[key]][i], value.numpy(), **tol,
                                       err_msg=key)  # fmt: skip


def test_sgd_torch_form_with_step_lr_matches_torch_scheduler(backend):
    """torch's SGD momentum under StepLR == momentum_form='torch' with StepDecay."""
    import torch

    params, grads = _problem(3, steps=12)
    ts = [torch.nn.Parameter(torch.tensor(p)) for p in params]
    native = torch.optim.SGD(ts, lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(native, step_size=4, gamma=0.5)
    for gs in grads:
        for t, g in zip(ts, gs, strict=True):
            t.grad = torch.tensor(g)
        native.step()
        sched.step()
    opt = O.SGD(S.StepDecay(0.1, 4, 0.5), momentum=0.9, momentum_form="torch")
    got = _run(backend, opt, params, grads, "float64")
    for g, t in zip(got, ts, strict=True):
        np.testing.assert_allclose(g, t.detach().numpy(), rtol=1e-12, atol=1e-14)
    # Keras's form remembers the old learning rates in its velocity: a different trajectory.
    keras_form = _run(backend, O.SGD(S.StepDecay(0.1, 4, 0.5), momentum=0.9), params, grads,
                      "float64")  # fmt: skip
    assert np.max(np.abs(keras_form[0] - got[0])) > 1e-3


def test_momentum_forms_agree_at_constant_lr(backend):
    params, grads = _problem(4, steps=10)
    a = _run(backend, O.SGD(0.05, momentum=0.9, nesterov=True), params, grads, "float64")
    b = _run(backend, O.SGD(0.05, momentum=0.9, nesterov=True, momentum_form="torch"), params,
             grads, "float64")  # fmt: skip
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-13, atol=1e-14)


# ------------------------------------------------------------------ real keras.optimizers
KERAS_CASES = {
    "sgd": ("SGD", {}),
    "sgd-nesterov-clipnorm": ("SGD", {"momentum": 0.9, "nesterov": True, "clipnorm": 0.5}),
    # Keras accepts Nesterov without momentum and applies plain SGD.
    "sgd-nesterov-no-momentum": ("SGD", {"nesterov": True}),
    "adagrad-wd": ("Adagrad", {"learning_rate": 0.05, "weight_decay": 0.1}),
    "rmsprop": ("RMSprop", {}),
    "rmsprop-centered-momentum-clipvalue": ("RMSprop", {"centered": True, "momentum": 0.9,
                                                         "clipvalue": 0.05}),
    "adam": ("Adam", {}),
    "adam-amsgrad-global-clipnorm": ("Adam", {"amsgrad": True, "global_clipnorm": 0.5}),
    "adamw": ("AdamW", {"learning_rate": 0.01}),
}  # fmt: skip


@pytest.mark.parametrize("case", list(KERAS_CASES))
def test_from_keras_defaults_reproduces_keras_optimizers(case, backend, dtype):
    """20 updates of the real keras.optimizers optimizer vs dualnet's preset.

    float32 agrees to ~1 ulp (Keras computes Adam's α in float32, dualnet in float64 rounded
    once). float64 only to ~1e-7 (Adam: ~1e-5): Keras keeps a float learning rate in a float32
    variable and ``ops.cast(0.9, "float64")`` goes through float32, so its float64 run uses
    float32-rounded hyper-parameters (see test_keras_float64_rounds_hyperparameters_to_float32).
    """
    with dn.use_backend("tensorflow"):
        import keras
        import tensorflow as tf

        cls_name, kwargs = KERAS_CASES[case]
        params, grads = _problem(5, steps=20)
        ks = [keras.Variable(np.array(p, dtype=dtype)) for p in params]
        native = getattr(keras.optimizers, cls_name)(**kwargs)
        for gs in grads:
            native.apply([tf.constant(np.array(g, dtype=dtype)) for g in gs], ks)
        want = [np.asarray(k.numpy(), np.float64) for k in ks]
    got = _run(backend, O.from_keras_defaults(cls_name.lower(), **kwargs), params, grads, dtype)
    tol = {"rtol": 1e-5, "atol": 1e-6}
    if dtype == "float64" and cls_name.startswith("Adam"):
        # Keras's β rounded to float32 (0.999 → 0.99900001) moves 1 - β₂ᵗ by 1.3e-5 relative
        # at t = 1, and with it the whole bias-corrected step.
        tol = {"rtol": 1e-4, "atol": 1e-6}
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, **tol)


def test_keras_float64_rounds_hyperparameters_to_float32():
    """Keras on float64 weights: feeding dualnet the float32-rounded lr and momentum reproduces
    Keras's float64 SGD to 1e-15, the unrounded ones do not (a Keras divergence)."""
    with dn.use_backend("tensorflow"):
        import keras
        import tensorflow as tf

        params, grads = _problem(6, steps=20)
        ks = [keras.Variable(np.array(p)) for p in params]
        native = keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)
        for gs in grads:
            native.apply([tf.constant(g) for g in gs], ks)
        want = [k.numpy() for k in ks]
        rounded = O.SGD(float(np.float32(0.01)), momentum=float(np.float32(0.9)))
        exact = _run("tensorflow", rounded, params, grads, "float64")
        plain = _run("tensorflow", O.SGD(0.01, momentum=0.9), params, grads, "float64")
    np.testing.assert_allclose(exact[0], want[0], rtol=1e-14, atol=1e-15)
    assert np.max(np.abs(plain[0] - want[0])) > 1e-9


# -------------------------------------------------------------------------- schedules
SCHEDULES = {
    "exponential": (S.ExponentialDecay(0.1, 10, 0.5), lambda s: 0.1 * 0.5 ** (s / 10)),
    "exponential-staircase": (S.ExponentialDecay(0.1, 10, 0.5, staircase=True),
                              lambda s: 0.1 * 0.5 ** (s // 10)),
    "inverse-time": (S.InverseTimeDecay(0.1, 5, 0.5), lambda s: 0.1 / (1 + 0.5 * s / 5)),
    "piecewise": (S.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]),
                  lambda s: 1.0 if s <= 10 else 0.5 if s <= 20 else 0.1),
    "cosine": (S.CosineDecay(0.1, 40, alpha=0.1),
               lambda s: 0.1 * (0.9 * 0.5 * (1 + math.cos(math.pi * min(s, 40) / 40)) + 0.1)),
    "cosine-warmup": (S.CosineDecay(0.0, 40, warmup_target=0.2, warmup_steps=10),
                      lambda s: 0.2 * s / 10 if s < 10
                      else 0.2 * 0.5 * (1 + math.cos(math.pi * min(s - 10, 40) / 40))),
    "step": (S.StepDecay(0.1, 7, 0.5), lambda s: 0.1 * 0.5 ** (s // 7)),
}  # fmt: skip
KERAS_SCHEDULES = {
    "exponential": ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 10,
                                         "decay_rate": 0.5}),
    "exponential-staircase": ("ExponentialDecay", {"initial_learning_rate": 0.1,
                                                   "decay_steps": 10, "decay_rate": 0.5,
                                                   "staircase": True}),
    "inverse-time": ("InverseTimeDecay", {"initial_learning_rate": 0.1, "decay_steps": 5,
                                          "decay_rate": 0.5}),
    "piecewise": ("PiecewiseConstantDecay", {"boundaries": [10, 20], "values": [1.0, 0.5, 0.1]}),
    "cosine": ("CosineDecay", {"initial_learning_rate": 0.1, "decay_steps": 40, "alpha": 0.1}),
    "cosine-warmup": ("CosineDecay", {"initial_learning_rate": 0.0, "decay_steps": 40,
                                      "warmup_target": 0.2, "warmup_steps": 10}),
}  # fmt: skip
_STEPS = [0, 1, 5, 9, 10, 11, 19, 20, 21, 35, 49, 50, 51, 100]


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_values(name):
    schedule, formula = SCHEDULES[name]
    cfg = S.serialize(schedule)
    for s in _STEPS:
        assert schedule(s) == pytest.approx(formula(s), rel=1e-15, abs=1e-18), s
        assert R.learning_rate(cfg, s) == pytest.approx(formula(s), rel=1e-15, abs=1e-18), s


@pytest.mark.parametrize("name", list(KERAS_SCHEDULES))
def test_schedule_matches_keras(name):
    with dn.use_backend("tensorflow"):
        import keras

        cls, kwargs = KERAS_SCHEDULES[name]
        native = getattr(keras.optimizers.schedules, cls)(**kwargs)
        schedule = SCHEDULES[name][0]
        for s in _STEPS:
            # Keras evaluates in float32 (the dtype of a Python-float initial rate).
            assert schedule(s) == pytest.approx(float(native(s)), rel=1e-6, abs=1e-8), s


def test_schedule_is_evaluated_before_the_counter_moves(backend):
    opt = O.SGD(S.PiecewiseConstantDecay([0], [1.0, 0.0]))
    vs = _variables(backend, [np.zeros(2)], "float64")
    assert opt.current_learning_rate == 1.0
    opt.apply([_native(backend, np.ones(2), "float64")], vs)  # step 0: lr = 1
    assert opt.current_learning_rate == 0.0
    opt.apply([_native(backend, np.ones(2), "float64")], vs)  # step 1: lr = 0
    np.testing.assert_array_equal(dn.to_numpy(vs[0]), [-1.0, -1.0])


# -------------------------------------------------------------------- clipping, decay
def _one_step(backend, opt, w, gs):
    vs = _variables(backend, w, "float64")
    opt.apply([_native(backend, g, "float64") for g in gs], vs)
    return [dn.to_numpy(v) for v in vs]


def test_clipping_semantics(backend):
    zeros = [np.zeros(2), np.zeros(1)]
    g = [np.array([3.0, 4.0]), np.array([12.0])]  # norms 5 and 12, global norm 13
    out = _one_step(backend, O.SGD(1.0, clipnorm=2.5), zeros, g)  # per variable
    np.testing.assert_allclose(out[0], [-1.5, -2.0], rtol=1e-15)
    np.testing.assert_allclose(out[1], [-2.5], rtol=1e-15)
    out = _one_step(backend, O.SGD(1.0, global_clipnorm=6.5), zeros, g)  # jointly, by 13/6.5
    np.testing.assert_allclose(out[0], [-1.5, -2.0], rtol=1e-15)
    np.testing.assert_allclose(out[1], [-6.0], rtol=1e-15)
    out = _one_step(backend, O.SGD(1.0, clipvalue=3.5), zeros, g)
    np.testing.assert_array_equal(out[0], [-3.0, -3.5])
    np.testing.assert_array_equal(out[1], [-3.5])
    out = _one_step(backend, O.SGD(1.0, clipnorm=100.0), zeros, g)  # below the bound: untouched
    np.testing.assert_array_equal(out[0], [-3.0, -4.0])


def test_global_clipnorm_propagates_nonfinite(backend):
    out = _one_step(backend, O.SGD(1.0, global_clipnorm=1.0), [np.zeros(2)],
                    [np.array([np.inf, 1.0])])  # fmt: skip
    assert np.isnan(out[0]).all()  # not silently zeroed


def test_weight_decay_modes(backend):
    w = [np.array([2.0, -4.0])]
    zero = [np.zeros(2)]
    # Decoupled: w ← w - lr·wd·w, independent of the rule (Adam's step is 0 for g = 0).
    out = _one_step(backend, O.Adam(0.1, weight_decay=0.5), w, zero)
    np.testing.assert_allclose(out[0], w[0] * (1 - 0.05), rtol=1e-15)
    # L2: g ← g + wd·w enters Adam's moments, so the first step is ≈ lr·sign(w).
    out = _one_step(backend, O.Adam(0.1, weight_decay=0.5, weight_decay_mode="l2"), w, zero)
    np.testing.assert_allclose(out[0], w[0] - 0.1 * np.sign(w[0]), rtol=1e-6)


def test_none_gradient_skips_the_variable(backend):
    opt = O.Adam(0.1, weight_decay=0.5)
    vs = _variables(backend, [np.ones(2), np.ones(3)], "float64")
    opt.apply([None, _native(backend, np.ones(3), "float64")], vs)
    np.testing.assert_array_equal(dn.to_numpy(vs[0]), np.ones(2))
    assert not np.allclose(dn.to_numpy(vs[1]), 1.0)


# ------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: O.get("adamm"), r"Unknown optimizer 'adamm'.*adam"),
        (lambda: O.SGD(-0.1), r"learning_rate=-0\.1"),
        (lambda: O.Adam(learning_rate="0.1"), r"learning_rate='0\.1'"),
        (lambda: O.SGD(momentum=1.5), r"momentum=1\.5.*\[0\.0, 1\.0\]"),
        (lambda: O.SGD(momentum=-0.1), r"momentum=-0\.1"),
        (lambda: O.SGD(nesterov=True), r"nesterov=True.*momentum > 0"),
        (lambda: O.SGD(momentum=0.9, dampening=0.1), r"dampening=0\.1.*momentum_form='torch'"),
        (lambda: O.Adam(beta_1=1.0), r"beta_1=1\.0.*\[0\.0, 1\.0\)"),
        (lambda: O.Adam(epsilon=-1e-7), r"epsilon=-1e-07"),
        (lambda: O.Adam(clipnorm=0.0), r"clipnorm=0\.0.*> 0"),
        (lambda: O.Adam(clipvalue=float("inf")), r"clipvalue=inf"),
        (lambda: O.Adam(clipnorm=1.0, clipvalue=1.0), r"at most one of clipnorm"),
        (lambda: O.Adam(weight_decay=-1.0), r"weight_decay=-1\.0"),
        (lambda: O.Adam(weight_decay_mode="coupled"), r"weight_decay_mode='coupled'"),
        (lambda: O.AdamW(weight_decay=None), r"weight_decay=None"),
        (lambda: O.RMSprop(rho=1.0), r"rho=1\.0"),
        (lambda: O.Adagrad(initial_accumulator_value=-0.1), r"initial_accumulator_value=-0\.1"),
        (lambda: O.Adam(epsilon_placement="inside_sqrt"), r"epsilon_placement='inside_sqrt'"),
        (lambda: O.from_torch_defaults("adam", maximize=True), r"maximize=True"),
        (lambda: O.from_keras_defaults("adam", use_ema=True), r"use_ema=True"),
        (lambda: S.ExponentialDecay(0.1, 0, 0.5), r"decay_steps=0"),
        (lambda: S.PiecewiseConstantDecay([10, 5], [1.0, 0.5, 0.1]), r"boundaries=\[10, 5\]"),
        (lambda: S.PiecewiseConstantDecay([10], [1.0]), r"values=\[1\.0\]"),
        (lambda: S.CosineDecay(0.1, 10, warmup_steps=5), r"warmup_target=None"),
        (lambda: S.StepDecay(0.1, 3)(-1), r"step=-1"),
    ],
)
def test_bad_input_is_clear(make, match):
    with pytest.raises((TypeError, ValueError), match=match):
        make()


def test_apply_errors_are_identical_on_both_backends_and_change_nothing():
    messages = {}
    for backend in dn.BACKENDS:
        with dn.use_backend(backend):
            opt = O.Adam(0.1)
            vs = _variables(backend, [np.ones(2), np.ones(3)], "float64")
            good, bad = _native(backend, np.ones(2), "float64"), _native(backend, np.ones(4),
                                                                         "float64")  # fmt: skip
            with pytest.raises(ValueError) as info:
                opt.apply([good, bad], vs)
            messages[backend] = str(info.value)
            np.testing.assert_array_equal(dn.to_numpy(vs[0]), np.ones(2))  # nothing half-done
            assert opt.iterations == 0
            with pytest.raises(ValueError, match="one per variable"):
                opt.apply([good], vs)
    assert messages["torch"] == messages["tensorflow"]
    assert "grads[1]" in messages["torch"] and "(4,)" in messages["torch"]


def test_build_with_other_variables_is_refused(backend):
    opt = O.SGD()
    a = _variables(backend, [np.ones(2)], "float32")
    opt.build(a)
    opt.build(a)  # same variables: no-op
    with pytest.raises(ValueError, match="params="):
        opt.build(_variables(backend, [np.ones(2)], "float32"))


# ------------------------------------------------------------------- config and state
@pytest.mark.parametrize("config", list(CONFIGS))
def test_config_round_trip(config):
    opt = CONFIGS[config]
    again = O.deserialize(O.serialize(opt))
    assert again == opt and type(again) is type(opt)
    assert type(opt).from_config(opt.get_config()) == opt


def test_get_and_presets():
    assert O.get("Adam") == O.Adam() and O.get("adam").epsilon == 1e-7
    adam = O.Adam()
    assert O.get(adam) is adam
    assert O.from_keras_defaults("rmsprop") == O.RMSprop()
    torch_adam = O.from_torch_defaults("adam")
    assert (torch_adam.epsilon, torch_adam.epsilon_placement) == (1e-8, "sqrt_v_hat")
    assert O.from_torch_defaults("adamw").weight_decay == 0.01
    assert O.from_torch_defaults("sgd").learning_rate == 1e-3
    assert O.from_torch_defaults("adagrad", lr_decay=0.5).learning_rate == S.InverseTimeDecay(
        0.01, 1, 0.5
    )
    assert O.schedules is S


def test_state_round_trip(backend):
    params, grads = _problem(7, steps=3)
    a = O.Adam(0.01, amsgrad=True)
    _run(backend, a, params, grads, "float64")
    b = O.Adam(0.01, amsgrad=True)
    b.build(_variables(backend, params, "float64"))
    b.set_state(a.state(), iterations=a.iterations)
    assert b.iterations == 3
    for k in a.state():
        for x, y in zip(a.state()[k], b.state()[k], strict=True):
            np.testing.assert_array_equal(x, y)


def test_import_does_not_load_frameworks():
    code = ("import sys, dualnet.optimizers as O, dualnet.schedules; O.Adam(); "
            "assert 'torch' not in sys.modules and 'tensorflow' not in sys.modules")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True)


_HALF_CASES = {
    "sgd-momentum": lambda: dn.optimizers.SGD(0.01, momentum=0.9),
    "sgd-nesterov-clipnorm": lambda: dn.optimizers.SGD(0.01, momentum=0.9, nesterov=True,
                                                        clipnorm=1.0),
    "adam-amsgrad": lambda: dn.optimizers.Adam(1e-3, amsgrad=True),
    "adamw": lambda: dn.optimizers.AdamW(1e-3),
    "rmsprop-centered": lambda: dn.optimizers.RMSprop(1e-3, centered=True, momentum=0.5),
    "adagrad-globalclip": lambda: dn.optimizers.Adagrad(0.05, global_clipnorm=1.0),
}  # fmt: skip


def _as_variable(backend, tensor):
    if backend == "torch":
        import torch

        return torch.nn.Parameter(tensor.clone())
    import tensorflow as tf

    return tf.Variable(tensor)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", list(_HALF_CASES))
def test_half_precision_updates_are_bit_identical_across_backends(name, dtype):
    """Half variables are updated in float32 and rounded once on both backends, so with the
    same gradients the weights and the state agree bit for bit (torch would otherwise multiply
    half·scalar in float32 while TF rounds the scalar to half first)."""
    from dualnet.dtypes import numpy_dtype

    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((16, 8)).astype(numpy_dtype(dtype))
    grads = [(rng.standard_normal((16, 8)) * 10.0 ** rng.integers(-3, 1)).astype(w0.dtype)
             for _ in range(20)]  # fmt: skip
    out = {}
    for backend in ("torch", "tensorflow"):
        core = backend_module(backend).core
        param = _as_variable(backend, core.convert_to_tensor(w0))  # bfloat16 via ml_dtypes
        opt = _HALF_CASES[name]()
        for g in grads:
            opt.apply([core.convert_to_tensor(g)], [param])
        out[backend] = (dn.to_numpy(param).astype(np.float64), opt.state())
    np.testing.assert_array_equal(out["torch"][0], out["tensorflow"][0])
    for slot, arrays in out["torch"][1].items():
        for a, b in zip(arrays, out["tensorflow"][1][slot], strict=True):
            np.testing.assert_array_equal(a.astype(np.float64), b.astype(np.float64))
    assert not np.array_equal(out["torch"][0], w0.astype(np.float64))  # it did train


# ------------------------------------------------------ deferred updates (torch, large groups)
def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(f"u{a.dtype.itemsize}")


def _torch_run(config: str, dtype: str, steps: int = 6) -> tuple[list[np.ndarray], dict]:
    """Six torch updates of three variables under ``config`` (gradients over four orders of
    magnitude, one skipped on step 4), with the torch backend's knobs as the caller set them;
    the weights and the state, and a check that the gradients given were never written."""
    import torch

    from dualnet.dtypes import numpy_dtype

    rng = np.random.default_rng(3)
    shapes = [(40, 30), (30,), (7,)]
    w0 = [rng.standard_normal(s).astype(numpy_dtype(dtype)) for s in shapes]
    grads = [[(rng.standard_normal(s) * 10.0 ** rng.integers(-3, 1)).astype(w0[0].dtype)
              for s in shapes] for _ in range(steps)]  # fmt: skip
    core = backend_module("torch").core
    # (copies: torch would share the numpy arrays' memory, and both runs write it)
    params = [torch.nn.Parameter(core.convert_to_tensor(w.copy())) for w in w0]
    opt = _fresh(CONFIGS[config])
    for step, gs in enumerate(grads):
        given = [core.convert_to_tensor(g) for g in gs]
        kept = [g.clone() for g in given]
        opt.apply([None if (step == 3 and i == 1) else g for i, g in enumerate(given)], params)
        for g, k in zip(given, kept, strict=True):
            assert torch.equal(g, k)  # leaves are read, never written
    return [dn.to_numpy(p).copy() for p in params], opt.state(), opt


@pytest.mark.parametrize("mode", ["traced", "deferred-untraced", "immediate-fused"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_torch_update_paths_are_bit_identical_to_the_rule_as_written(config, dtype, mode,
                                                                     monkeypatch):  # fmt: skip
    """Note [Deferred updates], [Fused operations] and [Traced updates]: however torch runs a
    rule (deferred into reused buffers, slots written in place, products and quotients fused,
    the plan traced once and replayed), the weights and every slot have the bits of the rule
    run as written, one separately rounded operation at a time, for every rule and dtype,
    with a gradient skipped on one step."""
    from dualnet.backends.torch import _update_groups as TG
    from dualnet.backends.torch import optimizers as TO

    monkeypatch.setattr(TO, "DEFERRED_MIN_ELEMENTS", 2**62)
    monkeypatch.setattr(TG, "FUSE", False)
    plain = _torch_run(config, dtype)
    monkeypatch.setattr(TG, "FUSE", True)
    monkeypatch.setattr(TO, "DEFERRED_MIN_ELEMENTS", 2**62 if mode == "immediate-fused" else 0)
    if mode == "deferred-untraced":
        monkeypatch.setattr(TO, "trace", None)
    weights, state, opt = _torch_run(config, dtype)
    units = [u for us in opt._rt.units.values() for u in us]
    assert units and all(u.deferred == (mode != "immediate-fused") for u in units)
    programs = list(opt._rt.programs.values())
    if mode == "traced":  # (two sets of active variables: every step, and step 4's)
        assert len(programs) >= 2 and all(programs)
    else:
        assert not any(programs)
    for a, b in zip(weights, plain[0], strict=True):
        np.testing.assert_array_equal(_bits(a), _bits(b))
    for slot, arrays in plain[1].items():
        for a, b in zip(state[slot], arrays, strict=True):
            np.testing.assert_array_equal(_bits(a), _bits(b), err_msg=slot)


def test_adams_update_is_fused_to_nine_passes():
    """The plan of a deferred Adam step (ε added to the corrected root, as torch) fuses its
    two moment updates and the weight's ``w - m·α/d`` (Note [Fused operations]): nine
    operations over the weights (one of them the square root), where the rule written out
    runs thirteen and the root; the two slots are written in place."""
    import torch

    opt = O.from_torch_defaults("adam")
    params = [torch.nn.Parameter(torch.ones(300, 200))]
    opt.apply([torch.full((300, 200), 0.5)], params)
    (program,) = opt._rt.programs.values()
    plan = program.plan
    operations = [node.op for node, _, _ in plan.steps]
    assert sorted(operations) == sorted(["mul", "sub", "add", "sqrt", "div", "add", "sub",
                                         "add", "mul"]), operations  # fmt: skip
    assert sorted(s[0] for s in plan.fused.values()) == ["addcmul", "addcmul"]
    assert [spec[0] for _, _, spec in plan.writes] == ["addcdiv"]
    assert len(plan.in_target) == 2  # momentum and velocity, computed in their own tensors


_CAPABILITY_SCRIPT = """
import numpy as np, torch
from dualnet import optimizers as O
from dualnet.backends.torch import _update_groups as TG
rng = np.random.default_rng(0)
bad = []
rules = {"adam": O.Adam(0.01), "adam-torch": O.from_torch_defaults("adam", lr=0.01),
         "sgd-momentum": O.SGD(0.1, momentum=0.9), "rmsprop": O.RMSprop(0.01, centered=True,
         momentum=0.9), "adagrad-torch": O.from_torch_defaults("adagrad")}
for dtype in (torch.float32, torch.float64):
    w0 = [torch.from_numpy(rng.standard_normal(s)).to(dtype) for s in [(300, 100), (100,)]]
    gs = [[torch.from_numpy(rng.standard_normal(w.shape) * 10.0 ** rng.integers(-4, 1)).to(dtype)
           for w in w0] for _ in range(3)]
    for name, rule in rules.items():
        out = []
        for fuse in (False, True):
            TG.FUSE = fuse
            ws = [torch.nn.Parameter(w.clone()) for w in w0]
            opt = type(rule).from_config(rule.get_config())
            for g in gs:
                opt.apply(g, ws)
            out.append(torch.cat([w.detach().reshape(-1) for w in ws]))
        if not torch.equal(out[0], out[1]):
            bad.append((name, str(dtype), int((out[0] != out[1]).sum())))
print(torch.backends.cpu.get_cpu_capability(), "MISMATCH" if bad else "OK", bad)
"""


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="torch's default/AVX2 CPU kernels are x86 builds")  # fmt: skip
@pytest.mark.parametrize("capability", ["default", "avx2", "native"])
def test_fused_updates_keep_the_rules_bits_on_every_cpu_kernel(capability):
    """torch compiles its CPU kernels several times (portable, AVX2, AVX512) and the compiler
    may contract a multiply-add into one FMA in some of them: the fused forms dualnet uses
    are exact whatever the kernel (Note [Fused operations]). Each variant in a fresh process
    (``ATEN_CPU_CAPABILITY``; "native": what this CPU gets), fused against unfused updates."""
    env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    if capability != "native":
        env["ATEN_CPU_CAPABILITY"] = capability
    done = subprocess.run([sys.executable, "-c", _CAPABILITY_SCRIPT], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    line = done.stdout.strip().splitlines()[-1]
    assert " OK " in f" {line} ", line
    if capability != "native":
        assert line.split()[0].lower() == capability, line


@pytest.mark.parametrize("how", ["python-arithmetic", "comparison", "own-group"])
def test_an_untraceable_rule_runs_untraced(how):
    """A rule may only use its coefficients as operands of tensor operations, and only the
    groups it is given, to be traced; one that computes with a coefficient in Python (here
    ``2 * lr``), tests one (``lr == 0``) or makes a group of tensors it read makes the trace
    fail, and the optimizer then runs it untraced every step, with the result of the rule as
    written (Note [Traced updates])."""
    import torch

    @dataclasses.dataclass(frozen=True)
    class DoubleSGD(O.SGD):
        def _update(self, B, g, w, s, k):
            if how == "python-arithmetic":
                return w - g * (2.0 * k["lr"]), {}
            if how == "comparison":
                return (w if k["lr"] == 0 else w - g * k["lr"] - g * k["lr"]), {}
            step = B.group((g * k["lr"]).items, g.deferred)  # a group of its own
            return w - step - step, {}

    grads = [torch.full((300, 200), 0.25), torch.full((200,), -0.5)]
    ws = [torch.nn.Parameter(torch.ones(300, 200)), torch.nn.Parameter(torch.zeros(200))]
    opt = DoubleSGD(0.1)
    for _ in range(3):
        opt.apply(grads, ws)
    assert list(opt._rt.programs.values()) == [False]  # tried once, kept as untraceable
    lr = np.float32(0.1)
    rate = np.float32(2.0 * 0.1)  # the Python product, rounded once where it meets a tensor
    w, b = np.float32(1.0), np.float32(0.0)
    for _ in range(3):  # the rule as written, one float32 operation at a time
        if how == "python-arithmetic":
            w, b = w - np.float32(0.25) * rate, b - np.float32(-0.5) * rate
        else:
            sw, sb = np.float32(0.25) * lr, np.float32(-0.5) * lr
            w, b = (w - sw) - sw, (b - sb) - sb
    np.testing.assert_array_equal(dn.to_numpy(ws[0]), np.full((300, 200), w))
    np.testing.assert_array_equal(dn.to_numpy(ws[1]), np.full(200, b))


def _odd_rule(kind):
    """Rules no built-in optimizer has, that read slots in ways an in-place update must
    respect: a slot taking another's old value, two slots trading values, a weight stepping by
    a slot that is overwritten, a slot's tensors wrapped in a group of the rule's own."""

    @dataclasses.dataclass(frozen=True)
    class Odd(O.SGD):
        def slot_names(self):
            return ("a", "b")

        def _slot_initial_value(self, slot):
            return 0.25 if slot == "a" else 1.0

        def _update(self, B, g, w, s, k):
            if kind == "lagged":
                cur = s["b"] * 0.5 + g
                return w - cur * k["lr"], {"a": s["b"], "b": cur}
            if kind == "trade":
                return w - g * k["lr"], {"a": s["b"], "b": s["a"]}
            if kind == "step-by-copied":
                return w - s["a"], {"a": s["b"], "b": s["b"] * 0.5 + g}
            own = B.group(s["a"].items, g.deferred)  # the slot's tensors, a group of its own
            return w - g * k["lr"], {"a": s["a"] * 0.5 + g, "b": own + g}

    return Odd(0.5)


@pytest.mark.parametrize("path", ["traced", "deferred-untraced"])
@pytest.mark.parametrize("kind", ["lagged", "trade", "step-by-copied", "own-group"])
def test_odd_rules_give_the_rule_as_written(kind, path, monkeypatch):
    """However a rule reads its slots, every torch path gives the rule as written (run at once,
    unfused): a slot written in place is never read afterwards as its old value, and a copy
    into a variable never changes what a later copy or write reads."""
    import torch
    from dualnet.backends.torch import _update_groups as TG
    from dualnet.backends.torch import optimizers as TO

    def run():
        ws = [torch.nn.Parameter(torch.zeros(300, 200)), torch.nn.Parameter(torch.zeros(7))]
        opt = _odd_rule(kind)
        for step in range(3):
            opt.apply([torch.full((300, 200), 1.0 + step), torch.full((7,), -2.0)], ws)
        return [dn.to_numpy(w).copy() for w in ws], opt.state()

    def written(g0):  # the rule, one float32 operation at a time, on one element
        f = np.float32
        w, sa, sb, lr = f(0), f(0.25), f(1.0), f(0.5)
        for step in range(3):
            g = f(g0(step))
            if kind == "lagged":
                cur = sb * f(0.5) + g
                w, sa, sb = w - cur * lr, sb, cur
            elif kind == "trade":
                w, sa, sb = w - g * lr, sb, sa
            elif kind == "step-by-copied":
                w, sa, sb = w - sa, sb, sb * f(0.5) + g
            else:
                w, sa, sb = w - g * lr, sa * f(0.5) + g, sa + g
        return w, sa, sb

    for mode in ("as written", path):
        monkeypatch.setattr(TO, "DEFERRED_MIN_ELEMENTS", 2**62 if mode == "as written" else 0)
        monkeypatch.setattr(TG, "FUSE", mode != "as written")
        if mode == "deferred-untraced":
            monkeypatch.setattr(TO, "trace", None)
        weights, state = run()
        for i, g0 in enumerate((lambda step: 1.0 + step, lambda step: -2.0)):
            w, sa, sb = written(g0)
            np.testing.assert_array_equal(weights[i], np.full_like(weights[i], w), err_msg=mode)
            np.testing.assert_array_equal(state["a"][i], np.full_like(weights[i], sa),
                                          err_msg=mode)  # fmt: skip
            np.testing.assert_array_equal(state["b"][i], np.full_like(weights[i], sb),
                                          err_msg=mode)  # fmt: skip


def test_an_interrupted_first_traced_update_is_traced_again(monkeypatch):
    """A traced update stopped part-way on its first run (here an interrupt in the square
    root) is dropped and traced again on the next step, so its half-kept buffers never serve
    two values at once: the following updates equal those of a fresh optimizer given the same
    weights and state."""
    import torch
    from dualnet.backends.torch import _update_plans as TP

    shapes = [(300, 200), (200,)]
    rng = np.random.default_rng(5)
    grads = [[torch.from_numpy(rng.standard_normal(s).astype(np.float32)) for s in shapes]
             for _ in range(4)]  # fmt: skip
    ws = [torch.nn.Parameter(torch.ones(s)) for s in shapes]
    opt = O.Adam(0.01)
    real = TP._sqrt_all

    def interrupted(xs, out):
        raise KeyboardInterrupt

    monkeypatch.setattr(TP, "_sqrt_all", interrupted)
    with pytest.raises(KeyboardInterrupt):
        opt.apply(grads[0], ws)
    monkeypatch.setattr(TP, "_sqrt_all", real)
    assert not opt._rt.programs  # dropped
    fresh = O.Adam(0.01)
    twins = [torch.nn.Parameter(w.detach().clone()) for w in ws]
    fresh.build(twins)
    fresh.set_state(opt.state(), iterations=opt.iterations)
    for g in grads[1:]:
        opt.apply(g, ws)
        fresh.apply([t.clone() for t in g], twins)
        for a, b in zip(ws, twins, strict=True):
            np.testing.assert_array_equal(dn.to_numpy(a), dn.to_numpy(b))


@pytest.mark.parametrize("traced", [True, False])
def test_a_slot_taking_another_slots_old_value_gets_the_old_value(traced, monkeypatch):
    """A slot written in place (Note [Deferred updates]) must not be read afterwards as its old
    value: here ``prev`` takes ``cur``'s value from before the step while ``cur`` is updated
    in place."""
    import torch
    from dualnet.backends.torch import optimizers as TO

    if not traced:
        monkeypatch.setattr(TO, "trace", None)

    @dataclasses.dataclass(frozen=True)
    class Lagged(O.SGD):
        def slot_names(self):
            return ("prev", "cur")

        def _slot_initial_value(self, slot):
            return 0.0

        def _update(self, B, g, w, s, k):
            cur = s["cur"] * 0.5 + g
            return w - cur * k["lr"], {"prev": s["cur"], "cur": cur}

    ws = [torch.nn.Parameter(torch.zeros(300, 200))]
    opt = Lagged(0.5)
    cur, history = 0.0, []
    for _ in range(3):
        opt.apply([torch.ones(300, 200)], ws)
        state = opt.state()
        history.append((float(state["prev"][0].flat[0]), float(state["cur"][0].flat[0])))
    for prev, now in history:  # prev is last step's cur
        assert (prev, now) == (cur, cur * 0.5 + 1.0)
        cur = now


def test_traced_updates_kept_are_bounded():
    """Every set of variables with a gradient gets its own traced program (and buffers);
    changing sets (here twenty different skipped gradients) never keep more than a few, and
    the updates stay those of the rule as written."""
    import torch

    from dualnet import optimizer_base

    n = 20
    ws = [torch.nn.Parameter(torch.zeros(10)) for _ in range(n)]
    opt = O.SGD(0.5)
    for skip in range(n):
        opt.apply([None if i == skip else torch.ones(10) for i in range(n)], ws)
        assert 1 <= len(opt._rt.programs) <= optimizer_base._MAX_PROGRAMS
    for w in ws:  # every variable skipped once: n - 1 updates of 0.5
        np.testing.assert_array_equal(dn.to_numpy(w), np.full(10, -0.5 * (n - 1), np.float32))


def test_a_traced_update_keeps_no_tensor_of_its_step():
    """After a traced update the kept program holds none of the step's tensors: the
    gradients given can be freed (their memory is not held through the next forward and
    backward pass)."""
    import gc
    import weakref

    import torch

    ws = [torch.nn.Parameter(torch.zeros(300, 200))]
    opt = O.Adam(0.01)
    for _ in range(2):
        g = torch.ones(300, 200)
        opt.apply([g], ws)
    assert all(opt._rt.programs.values())
    ref = weakref.ref(g)
    del g
    gc.collect()
    assert ref() is None


def test_deferred_updates_reuse_their_buffers():
    """From the second update on, a deferred update allocates nothing: the pool holds the same
    buffers after every step, as many as the rule keeps alive at once. Adam with AMSGrad: two
    per weight, the denominator ``√v̂ + ε`` and the step ``m·α``, which the weight then divides
    and subtracts in place (``addcdiv_``); the three slots take their new values straight into
    their own tensors (Note [Deferred updates])."""
    import torch
    from dualnet.backends.torch import optimizers as TO

    shapes = [(300, 200), (200,)]
    assert sum(math.prod(s) for s in shapes) >= TO.DEFERRED_MIN_ELEMENTS
    params = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
    opt = O.Adam(0.01, amsgrad=True)
    slots = {name: [id(t) for t in ts] for name, ts in opt._rt.slots.items()} if opt._rt else None
    pools = []
    for step in range(4):
        opt.apply([torch.full(s, 0.5 + step) for s in shapes], params)
        pools.append(sorted(id(t) for ts in opt._rt.scratch.free.values() for t in ts))
        if slots is None:
            slots = {name: [t.data_ptr() for t in ts] for name, ts in opt._rt.slots.items()}
        # the slots keep their storage: written in place, never swapped or copied
        assert slots == {name: [t.data_ptr() for t in ts] for name, ts in opt._rt.slots.items()}
    assert pools[1] == pools[2] == pools[3]
    assert len(pools[3]) == 2 * len(shapes)


def test_a_deferred_group_read_early_is_computed_at_once():
    """Reading a deferred group's tensors before ``assign_groups`` (what a backend-neutral
    caller may do) runs its operations there, with the same result."""
    import torch
    from dualnet.backends.torch import optimizers as TO

    x = [torch.arange(4.0), torch.ones(2)]
    deferred = (TO.group(x, deferred=True) - 0.5) * 3.0 + TO.group(x, deferred=True)
    immediate = (TO.group(x) - 0.5) * 3.0 + TO.group(x)
    for a, b in zip(deferred.items, immediate.items, strict=True):
        assert torch.equal(a, b)
    assert torch.equal(x[0], torch.arange(4.0))  # the leaves are untouched
