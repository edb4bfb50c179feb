"""A deliberately wrong reference must fail the catalogue's float32 rows, for every case type.

Each test mutates the float64 reference the way a real mistake would — a transposed kernel, ε
added in the wrong place, the wrong momentum form, the wrong initializer scale — and asserts
that the rows which depend on it FAIL, while torch and TensorFlow still agree with each other
(the frameworks are right; the reference is not). FunctionCase and LayerCase have theirs in
tests/test_parity_harness.py and tests/test_layer_catalogue.py, NetworkTrainingCase in
tests/test_networks.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from dualnet.parity import catalogue
from dualnet.reference import initializers as RI
from dualnet.reference import layers as RL
from dualnet.reference import optimizers as RO
from dualnet.reference import training as RT

catalogue.load()


def _by_id(case_id: str):
    (case,) = [c for c in catalogue.load() if c.id == case_id]
    return case


def _status(rows) -> dict[str, str]:
    return {r.check: r.status for r in rows}


def _cross_backend_agrees(rows) -> None:
    for r in rows:
        cross = r.comparisons.get("torch~tensorflow")
        assert cross is None or cross.passed, r.explain()


# ------------------------------------------------------------------------- models and layers


def _transposed_mlp(x, weights, activations, use_bias=None):
    """The Dense stack with every kernel read in torch's ``(out, in)`` storage order as if it
    were ``(in, out)``: transposed where square, the transposed memory reshaped otherwise."""
    wrong = [np.ascontiguousarray(w.T).reshape(w.shape) if np.ndim(w) == 2 else w
             for w in weights]  # fmt: skip
    return _REAL_MLP(x, wrong, activations, use_bias)


_REAL_MLP = RL.mlp


@pytest.mark.parametrize(
    ("case_id", "failing"),
    [
        ("layer/dense-64x128-linear", {"forward", "grad[x]", "grad[0/kernel]"}),
        ("model/tutorial-sequential", {"forward", "grad[x]", "grad[0/kernel]"}),
        ("model/mlp-8x32-tanh-sigmoid", {"forward", "grad[x]", "grad[0/kernel]"}),
    ],
)
def test_a_transposed_kernel_fails_the_dense_rows(monkeypatch, case_id, failing):
    """The right reference passes under the derived bound (Note [Dense error bounds]); with
    its kernels transposed, the forward, input-gradient and kernel-gradient rows FAIL."""
    case = _by_id(case_id)
    right = case.evaluate("float32", "cpu")
    assert all(r.status == "pass" for r in right), [r.explain() for r in right if r.failed]
    monkeypatch.setattr(RL, "mlp", _transposed_mlp)
    wrong = case.evaluate("float32", "cpu")
    status = _status(wrong)
    assert {c for c, s in status.items() if s == "FAIL"} >= failing, status
    _cross_backend_agrees(wrong)


# ------------------------------------------------------------------------------- optimizers

_FLIP = {"sqrt_v": "sqrt_v_hat", "sqrt_v_hat": "sqrt_v", "inside_sqrt": "outside_sqrt",
         "outside_sqrt": "inside_sqrt"}  # fmt: skip


def _mutated_step(monkeypatch, change) -> None:
    """Make the optimizer reference apply ``change(config)`` instead of the spec's config."""
    real = RO.step

    def step(class_name, config, *args, **kwargs):
        return real(class_name, change(dict(config)), *args, **kwargs)

    monkeypatch.setattr(RO, "step", step)


# Cases whose ε cannot show: Keras's Adagrad starts its accumulator at 0.1 (√(a+ε) ≈ √a), L2
# decay keeps torch-Adam's gradients >= 1e-2·|w|, torch-Adagrad's ε is 1e-10.
_EPSILON_VISIBLE = [
    "adam", "adam-amsgrad-clipvalue-stepdecay", "adamw", "adamw-torch-amsgrad-globalclip",
    "rmsprop", "rmsprop-centered-momentum-cosine", "rmsprop-torch-centered-momentum",
]  # fmt: skip


@pytest.mark.parametrize("name", _EPSILON_VISIBLE)
def test_epsilon_in_the_wrong_place_fails_the_trajectory(monkeypatch, name):
    """Adam's ε added to √v̂ instead of √v (or the reverse), RMSprop's inside instead of outside
    the square root: the 100-update trajectory FAILs in float32 (it passed under the old x100
    bound: err/bound 0.003 for torch-style Adam)."""
    case = _by_id(f"optimizer/{name}")

    def flip(config):
        config["epsilon_placement"] = _FLIP[config["epsilon_placement"]]
        return config

    _mutated_step(monkeypatch, flip)
    rows = case.evaluate("float32", "cpu")
    status = _status(rows)
    assert status["trajectory"] == "FAIL", [r.explain() for r in rows]
    _cross_backend_agrees(rows)


@pytest.mark.parametrize(
    ("name", "form"),
    [("sgd-momentum-expdecay-globalclip", "torch"), ("sgd-torch-piecewise-l2", "keras")],
)
def test_the_wrong_momentum_form_fails_the_trajectory(monkeypatch, name, form):
    """Keras's velocity (lr inside the buffer) vs torch's buffer (lr applied last): the same
    weights under a constant lr, different ones under a schedule — and different state."""
    case = _by_id(f"optimizer/{name}")
    _mutated_step(monkeypatch, lambda config: {**config, "momentum_form": form})
    rows = case.evaluate("float32", "cpu")
    status = _status(rows)
    assert status["trajectory"] == "FAIL" and status["state"] == "FAIL", [r.explain() for r in rows]
    _cross_backend_agrees(rows)


# --------------------------------------------------------------------------------- training


def _mutated_train(monkeypatch, change) -> None:
    real = RT.train

    def train(x, y, weights, activations, loss, optimizer, batches, clip_dtype="float64"):
        optimizer = {**optimizer, "config": change(dict(optimizer["config"]))}
        return real(x, y, weights, activations, loss, optimizer, batches, clip_dtype)

    monkeypatch.setattr(RT, "train", train)


def test_classical_momentum_for_nesterov_fails_the_training_rows(monkeypatch):
    """The reference applying classical momentum where the spec says Nesterov: the first update
    already differs (Nesterov adds μ·v - lr·g), so every anchored row FAILs."""
    case = _by_id("training/tutorial-functional-sgd-nesterov-minibatch")
    _mutated_train(monkeypatch, lambda config: {**config, "nesterov": False})
    rows = case.evaluate("float32", "cpu")
    status = _status(rows)
    assert status == {"step1": "FAIL", "loss": "FAIL", "weights": "FAIL", "state": "FAIL"}, [
        r.explain() for r in rows
    ]
    _cross_backend_agrees(rows)


def test_keras_momentum_form_for_torch_fails_the_training_state(monkeypatch):
    """torch's momentum buffer (gradients) read as Keras's velocity (-lr x gradients): under a
    constant lr the weights are the same — only the state row can see it, and it does."""
    case = _by_id("training/mlp5-mse-sgd-torch-momentum-minibatch")
    _mutated_train(monkeypatch, lambda config: {**config, "momentum_form": "keras"})
    rows = case.evaluate("float32", "cpu")
    status = _status(rows)
    assert status == {"step1": "pass", "loss": "pass", "weights": "pass", "state": "FAIL"}, [
        r.explain() for r in rows
    ]
    _cross_backend_agrees(rows)


# ----------------------------------------------------------------------------- initializers


@pytest.mark.parametrize("name", ["he_normal-64x32", "he_uniform-64x32", "lecun_normal-64x32"])
def test_the_wrong_initializer_scale_fails_the_stats(monkeypatch, name):
    """The reference scaling by fan_out where the spec says fan_in: 64 vs 32, a √2 error in the
    std, and the portable/stats row FAILs; the round trip of the draw, which does not involve
    the reference, still passes."""
    case = _by_id(f"initializer/{name}")
    initializer = case.initializer
    real = getattr(RI, initializer)

    def wrong(shape, fans=None, **params):
        fan_in, fan_out = RI.compute_fans(shape) if fans is None else fans
        return real(shape, (fan_out, fan_in), **params)  # fans swapped

    monkeypatch.setattr(RI, initializer, wrong)
    rows = {r.check: r for r in case.evaluate("float32", "cpu")}
    assert rows["portable/stats"].status == "FAIL", rows["portable/stats"].explain()
    assert rows["portable/roundtrip"].status == "pass", rows["portable/roundtrip"].explain()
