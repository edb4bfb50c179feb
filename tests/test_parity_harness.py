"""The parity machinery itself: comparison semantics, tolerances, selection, reports, CLI."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from dualnet.cli import main as cli_main
from dualnet.parity import runner
from dualnet.parity import tolerance as tol
from dualnet.parity.cases import FunctionCase, finite_difference, kink_mask
from dualnet.parity.compare import compare

F32 = tol.default("float32")


@pytest.mark.parametrize(
    ("actual", "expected", "passed"),
    [
        ([1.0, 2.0], [1.0, 2.0], True),
        ([1.0 + 1e-6], [1.0], True),  # 1e-6 <= 1e-5 + 1.3e-6
        ([1.0 + 2e-5], [1.0], False),
        ([np.nan], [np.nan], True),  # NaN on both sides: counted, passes (equal_nan)
        ([np.nan], [1.0], False),  # NaN on one side only: always a failure
        ([1.0], [np.nan], False),
        ([np.inf], [np.inf], True),
        ([np.inf], [-np.inf], False),  # different sign
        ([np.inf], [3.4e38], False),  # inf vs a huge finite value
        ([1e30], [1e30 * (1 + 1e-6)], True),  # relative part of the bound
    ],
)
def test_compare_semantics(actual, expected, passed):
    assert compare(actual, expected, F32).passed is passed


def test_compare_reports_worst_element_and_counts():
    d = compare([[0.0, 1.0], [2.0, np.nan]], [[0.0, 1.1], [2.0, 3.0]], F32)
    assert not d.passed
    assert d.mismatched == 2 and d.nonfinite_mismatched == 1 and d.total == 4
    assert d.worst_index == (1, 1)  # the non-finite mismatch is the worst
    assert d.max_abs == pytest.approx(0.1)
    message = d.message("torch~ref")
    assert "Mismatched elements: 2 / 4 (50.0%)" in message and "rtol=1.3e-06" in message


def test_compare_shape_mismatch_fails():
    d = compare(np.zeros(3), np.zeros((3, 1)), F32)
    assert not d.passed and "shape mismatch" in d.message()


@pytest.mark.parametrize(
    ("actual", "expected", "mask"),
    [(np.zeros(0), np.zeros(0), None), (np.ones(3), np.ones(3), np.zeros(3, bool))],
    ids=["empty", "all-masked"],
)
def test_compare_of_nothing_fails(actual, expected, mask):
    """A check with nothing compared proves nothing: it fails, and says why."""
    diff = compare(actual, expected, tol.default("float32"), mask=mask)
    assert not diff.passed and diff.total == 0 and diff.note == "nothing compared"


def test_three_way_keeps_cross_backend_when_every_point_is_a_kink():
    from dualnet.parity.cases import three_way

    comps = three_way(np.ones(2), np.ones(2), np.zeros(2), tol.default("float64"),
                      mask=np.zeros(2, bool))  # fmt: skip
    assert list(comps) == ["torch~tensorflow"] and comps["torch~tensorflow"].passed


def test_compare_mask_and_extra_atol():
    a, e = np.array([1.0, 5.0]), np.array([1.0, 1.0])
    assert not compare(a, e, F32).passed
    assert compare(a, e, F32, mask=np.array([True, False])).passed
    assert compare(a, e, F32, extra_atol=np.array([0.0, 4.0])).passed
    assert not compare(a, e, F32, extra_atol=np.array([0.0, 3.9])).passed


def test_exact_tolerance_with_infinities_does_not_warn():
    with np.errstate(all="raise"):
        assert compare([np.inf, 1.0], [np.inf, 1.0], tol.EXACT).passed


def test_tolerance_policy():
    assert (F32.rtol, F32.atol) == (1.3e-6, 1e-5)
    assert (tol.default("float64").rtol, tol.default("bfloat16").rtol) == (1e-7, 1.6e-2)
    scaled = tol.for_reduction("float32", 100)
    assert scaled.rtol == pytest.approx(1.3e-5) and "K=100" in scaled.reason
    assert tol.for_reduction("float32", 1) == F32
    with pytest.raises(ValueError, match="rtol=-1"):
        tol.Tolerance(rtol=-1, atol=0)
    with pytest.raises(ValueError, match="dtype='int8'"):
        tol.default("int8")


def test_finite_difference_accuracy_and_error_estimate():
    x = {"x": np.linspace(-2, 2, 9)}
    ct = np.ones(9)
    fd = finite_difference(lambda x: np.sin(x), x, "x", ct, elementwise=True)
    true = np.cos(x["x"])
    assert np.all(np.abs(fd.value - true) <= fd.error)
    assert fd.error.max() < 1e-8
    # Non-element-wise path agrees with the element-wise one.
    fd2 = finite_difference(lambda x: np.sin(x), x, "x", ct, elementwise=False)
    np.testing.assert_allclose(fd2.value, fd.value, rtol=1e-9)
    # A second-derivative kink (softsign at 0): the estimate still covers the true error.
    z = {"x": np.array([0.0])}
    fd3 = finite_difference(lambda x: x / (1 + np.abs(x)), z, "x", np.ones(1), elementwise=True)
    assert abs(fd3.value[0] - 1.0) <= fd3.error[0]


def test_kink_mask_excludes_points_near_kinks():
    m = kink_mask((0.0, 6.0))({"x": np.array([0.0, 1e-9, 0.5, 6.0, 6.1]), "i": np.array([0])})
    np.testing.assert_array_equal(m["x"], [False, False, True, False, True])
    assert "i" not in m  # integer inputs are not differentiated


def test_a_wrong_backend_result_fails_the_case():
    """A case whose function disagrees with its reference must produce failing rows."""
    from dualnet import activations as A
    from dualnet.reference import activations as R

    case = FunctionCase(
        name="deliberately-wrong", family="test", inputs=lambda rng: {"x": rng.normal(size=8)},
        fn=A.tanh, reference=lambda x: R.tanh(x) * (1 + 1e-3), elementwise=True,
    )  # fmt: skip
    checks = case.evaluate("float32", "cpu")
    assert [c.status for c in checks] == ["FAIL", "FAIL"]
    forward = checks[0].comparisons
    assert forward["torch~tensorflow"].passed  # the frameworks agree with each other...
    assert (
        not forward["torch~ref"].passed and not forward["tensorflow~ref"].passed
    )  # ...not the ref


@pytest.mark.parametrize(
    ("expression", "text", "matched"),
    [
        ("relu", "activation relu float32 cpu", True),
        ("relu and float64", "activation relu float32 cpu", False),
        ("relu and not leaky", "activation leaky_relu float32 cpu", False),
        ("(gelu or tanh) and float32", "activation tanh float32 cpu", True),
        ("RELU", "activation relu float32 cpu", True),
        (None, "anything", True),
    ],
)
def test_keyword_matcher(expression, text, matched):
    assert runner.keyword_matcher(expression)(text) is matched


def test_keyword_matcher_rejects_bad_syntax():
    with pytest.raises(ValueError, match="k='relu and'"):
        runner.keyword_matcher("relu and")


def test_select_filters_and_validates():
    picked = runner.select("relu6 and float64", devices=["cpu"])
    assert [(c.name, d, dev) for c, d, dev in picked] == [("relu6", "float64", "cpu")]
    with pytest.raises(ValueError, match="device='tpu'"):
        runner.select("relu", devices=["tpu"])


def test_cli_json_and_exit_status(tmp_path, capsys):
    path = tmp_path / "report.json"
    code = cli_main(["parity", "-k", "activation and relu6 and float32", "--json", str(path), "-q"])
    assert code == 0
    data = json.loads(path.read_text())
    assert data["counts"] == {"pass": 2}
    rows = {c["check"]: c for c in data["checks"]}
    assert set(rows) == {"forward", "grad[x]"}
    diff = rows["forward"]["comparisons"]["torch~tensorflow"]
    assert diff["passed"] and math.isfinite(diff["max_abs"]) and diff["rtol"] == 1.3e-6
    assert "torch" in data["env"] and "tensorflow" in data["env"]
    assert not list(tmp_path.glob("*.tmp"))  # written atomically
    assert cli_main(["parity", "-k", "no-such-case", "-q"]) == 4
    assert "no parity case matches" in capsys.readouterr().err


def test_summary_leaves_out_rows_that_compared_nothing():
    from dualnet.parity.cases import Check

    skipped = Check(family="layer", case="x", check="forward", dtype="float16", device="cuda",
                    status="skip", detail="no device")  # fmt: skip
    assert runner.Report(checks=[skipped]).summary_by_family() == []


def test_asking_for_a_missing_cuda_device_is_an_error(capsys):
    if "cuda" in runner.available_devices():
        pytest.skip("a CUDA device is visible here")
    assert cli_main(["parity", "--device", "cuda", "-k", "sigmoid"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--device cuda" in err[0] and "no CUDA device" in err[0]


def test_python_dash_m_dualnet_is_the_command():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "dualnet", "parity", "-k", "no-such-case-xyz"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 4 and "no parity case matches" in out.stderr


def _raising_case(dtype_raising: str, **kwargs):
    """A FunctionCase whose torch side raises in ``dtype_raising``."""
    from dualnet._backend import get_backend

    def fn(x):
        if get_backend() == "torch" and str(x.dtype).endswith(dtype_raising):
            raise RuntimeError("no kernel")
        return x * 2

    return FunctionCase(name="raises", family="activation", inputs=lambda rng: {"x": np.ones(3)},
                        fn=fn, reference=lambda x: 2 * x, **kwargs)  # fmt: skip


def test_an_undeclared_raise_is_an_error_in_half_precision_too():
    rows = _raising_case("float16").evaluate("float16", "cpu")
    assert [r.status for r in rows] == ["error"], [r.explain() for r in rows]


def test_a_declared_refusal_is_a_skip_and_a_stale_one_an_error():
    declared = {("torch", "forward", "float16"): "no float16 kernel here"}
    rows = _raising_case("float16", unsupported=declared).evaluate("float16", "cpu")
    assert [r.status for r in rows] == ["skip"] and "no float16 kernel here" in rows[0].detail
    stale = _raising_case("never", unsupported=declared).evaluate("float16", "cpu")
    assert [r.status for r in stale] == ["error"] and "update the case" in stale[0].detail


def test_a_row_that_compared_nothing_fails():
    from dualnet.parity.cases import status_of

    assert status_of({}) == "FAIL"
    assert status_of({"torch~tensorflow": compare([1.0], [1.0], F32)}) == "pass"


# ------------------------------------------------------------------- growth over steps


def test_growth_policy_over_steps():
    growth = tol.Growth.measured(0.2, 100, "case x")
    assert growth.factor == 1.0 and "0.2 after 100 updates (case x)" in growth.why
    growth = tol.Growth.measured(9.0, 100, "case y")
    assert growth.factor == 18.0
    bound = tol.for_steps("float32", 16, growth)
    one = tol.for_reduction("float32", 16)
    assert bound.rtol == pytest.approx(18 * one.rtol) and bound.atol == pytest.approx(18 * one.atol)
    assert "x18 after 100 updates" in bound.reason and "case y" in bound.reason
    # Earlier steps interpolate like a random walk: 1 at the first update, F at `steps`.
    assert growth.at(1).factor == pytest.approx(1 + 17 * 0.1)
    assert growth.at(100).factor == pytest.approx(18.0)
    assert tol.grown(one, growth, 25).rtol == pytest.approx(one.rtol * (1 + 17 * 0.5))
    with pytest.raises(ValueError, match=r"factor=0\.5"):
        tol.Growth(factor=0.5, steps=100, why="x")
    with pytest.raises(ValueError, match="why=''"):
        tol.Growth(factor=2.0, steps=100, why="")
    with pytest.raises(ValueError, match="step=0"):
        growth.at(0)


def test_every_multi_step_case_states_its_measured_growth():
    """Each optimizer and training case carries a Growth measured for it (its name in the
    reason), and compare_training's default covers every one of them."""
    from dualnet.parity import catalogue
    from dualnet.parity.catalogue.optimizers import OptimizerCase
    from dualnet.parity.catalogue.training import TrainingCase

    cases = [c for c in catalogue.load() if isinstance(c, OptimizerCase | TrainingCase)]
    assert len(cases) >= 20
    for case in cases:
        assert f"{case.family}/{case.name}" in case.growth.why, case.id
        assert case.growth.steps == case.steps
        assert case.growth.factor <= tol.TRAINING_DEFAULT.factor, case.id
    # The centered RMSprop is the one that needs more than the one-step bound.
    factors = {c.name: c.growth.factor for c in cases}
    assert factors["rmsprop-centered-momentum-cosine"] > 4 and factors["adam"] == 1.0


# ------------------------------------------------------------------ derived Dense bounds


def _float32_dense_stack(x, weights, activations, cotangent):
    """Forward and VJP of a Dense stack computed in float32 by numpy (one summation order)."""
    f = np.float32
    h, cache = x.astype(f), []
    with np.errstate(over="ignore"):  # exp(1e3) = inf: sigmoid 0, as it should
        for (kernel, bias), act in zip(weights, activations, strict=True):
            z = h @ kernel.astype(f) + bias.astype(f)
            if act == "relu":
                a = np.maximum(z, f(0))
            elif act == "tanh":
                a = np.tanh(z)
            elif act == "sigmoid":
                a = f(1) / (f(1) + np.exp(-z))
            else:  # softmax
                e = np.exp(z - z.max(axis=-1, keepdims=True))
                a = e / e.sum(axis=-1, keepdims=True)
            cache.append((h, kernel.astype(f), z, a, act))
            h = a
    out = h
    g, grads = cotangent.astype(f), []
    for h, kernel, z, a, act in reversed(cache):
        if act == "relu":
            gz = g * (z > 0)
        elif act == "tanh":
            gz = g * (f(1) - a * a)
        elif act == "sigmoid":
            gz = g * a * (f(1) - a)
        else:
            gz = a * (g - np.sum(g * a, axis=-1, keepdims=True))
        grads = [h.T @ gz, gz.sum(axis=0), *grads]
        g = gz @ kernel.T
    return out, [g, *grads]


def test_dense_error_bounds_hold_for_a_float32_computation():
    """The derived bound (Note [Dense error bounds]) holds for an independent float32
    computation of a 4-layer stack with a ±1e3 input row (sums that cancel), element by
    element, forward and every gradient; and it is not vacuous (far below the values)."""
    from dualnet.parity.catalogue.models import edge_inputs
    from dualnet.parity.error_bounds import dense_error_bounds
    from dualnet.reference import layers as RL

    rng = np.random.default_rng(3)
    units, acts = (16, 16, 16, 8, 4), ("relu", "tanh", "sigmoid", "softmax")
    x = edge_inputs(16, batch=8)(rng).astype(np.float32).astype(np.float64)
    pairs = [(rng.normal(0, np.sqrt(2 / i), (i, o)), rng.normal(0, 0.1, o))
             for i, o in itertools.pairwise(units)]  # fmt: skip
    pairs = [(k.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64))
             for k, b in pairs]  # fmt: skip
    flat = [w for pair in pairs for w in pair]
    ct = rng.standard_normal((8, 4)).astype(np.float32).astype(np.float64)
    bounds = dense_error_bounds(x, flat, acts, (True,) * 4, ct, tol.UNIT_ROUNDOFF["float32"])
    out, grads = _float32_dense_stack(x, pairs, acts, ct)

    def exact_grads():
        from dualnet.parity.cases import finite_difference

        arrays = {"x": x, **{f"w{i}": w for i, w in enumerate(flat)}}

        def ref(**kw):
            return RL.mlp(kw["x"], [kw[f"w{i}"] for i in range(len(flat))], acts)

        return [finite_difference(ref, arrays, k, ct, False) for k in arrays]

    exact = RL.mlp(x, flat, acts)
    assert np.all(np.abs(out - exact) <= bounds.forward)
    assert np.max(bounds.forward) < 1e-4
    for got, fd, bound in zip(grads, exact_grads(), bounds.grads, strict=True):
        # Kinks masked as the catalogue does would only shrink this set; here none is near.
        assert np.all(np.abs(got - fd.value) <= bound + fd.error), np.max(
            np.abs(got - fd.value) - bound - fd.error
        )
        assert np.max(bound) < 1e-2 * max(1.0, np.max(np.abs(fd.value)))


def test_deep_relu_mlp_keeps_the_large_input_row():
    """The ±1e3 row is back in the deep relu MLP (it had been shrunk to ±10 because an
    element-wise bound could not express the cancellation in its kernel-gradient sums) and
    every float32 row passes under the derived bound."""
    from dualnet.parity import catalogue

    (case,) = [c for c in catalogue.load() if c.id == "model/mlp-8x32-relu"]
    x = case.inputs(np.random.default_rng(0))
    assert np.all(np.abs(x[1]) == 1e3)
    rows = case.evaluate("float32", "cpu")
    assert all(r.status == "pass" for r in rows), [r.explain() for r in rows if r.failed]
    forward = rows[0].comparisons["torch~ref"].tolerance
    assert "K = fan-in+1 (32/32/32/32/32/32/32/32)" in forward.reason


# --------------------------------------------------------------- losses and initializers


def test_loss_half_precision_bound_is_derived_and_catches_three_ulps():
    """float16 losses are held to 2u + float32's γ (two roundings to float16 of a float32
    result), not to the default x √K: a reference 6u too high fails (it passed at √20 x 1e-3)."""
    import dataclasses

    from dualnet.parity import catalogue

    (case,) = [c for c in catalogue.load() if c.id == "loss/mse-sum"]
    u = tol.UNIT_ROUNDOFF["float16"]
    bound = case.forward_tolerance("float16")
    assert bound.rtol == pytest.approx(2 * u, rel=1e-2) and bound.rtol < 1e-3
    assert "derived" in bound.reason
    assert all(r.status == "pass" for r in case.evaluate("float16", "cpu"))
    off = dataclasses.replace(case, reference=lambda **kw: case.reference(**kw) * (1 + 6 * u))
    rows = {r.check: r for r in off.evaluate("float16", "cpu")}
    assert rows["forward"].status == "FAIL", rows["forward"].explain()
    assert rows["forward"].comparisons["torch~tensorflow"].passed


def test_initializer_round_trip_is_not_labelled_a_reference_comparison():
    from dualnet.parity import catalogue

    (case,) = [c for c in catalogue.load() if c.id == "initializer/he_normal-64x32"]
    rows = {r.check: r for r in case.evaluate("float32", "cpu")}
    assert "portable/values" not in rows
    roundtrip = rows["portable/roundtrip"]
    assert set(roundtrip.comparisons) == {"torch~tensorflow", "torch~draw", "tensorflow~draw"}
    assert roundtrip.status == "pass" and "round trip" in roundtrip.detail
    assert "torch~ref" in rows["portable/stats"].comparisons  # the distribution is the ref
