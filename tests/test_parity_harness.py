"""The parity machinery itself: comparison semantics, tolerances, selection, reports, CLI."""

from __future__ import annotations

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
