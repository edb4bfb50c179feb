"""The float64 arbiter of ``dualnet check``: float32 rows beyond their bound judged against the
model's float64 copies (rounding-limited, or the wrong side named)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from frameworks import torch as _torch
from test_check import _build, _check_with_shifted_conv2, _forward_hook

import dualnet as dn
from dualnet.parity.check import check_model
from dualnet.parity.check_arbiter import SPREAD, arbitrate, float64_copy
from dualnet.parity.tolerance import default

# ------------------------------------------------------------------- the float64 arbiter


def _scale_grad(factor):
    def hook(out):
        if out.requires_grad:
            out.register_hook(lambda g: g * factor)

    return hook


def test_wrong_float32_gradient_on_one_side_is_named():
    """The gradient reaching the torch twin's ff1 output scaled by 1.001, in float32 only (the
    float64 copies have no hook): the arbiter finds torch far from float64 and TensorFlow at
    float64's distance, and names torch."""
    model = _build("mha_block", "tensorflow")
    twin = model.to_backend("torch")
    ff1 = next(layer for layer in twin.layers if layer.name == "ff1")
    handle = _forward_hook(ff1, _scale_grad(1.001))
    try:
        report = check_model(model, other=twin)
    finally:
        handle.remove()
    first = report.first_departure
    assert (first.layer, first.kind) == ("ff1", "gradient"), report.table()
    assert first.arbiter is not None and first.arbiter.wrong == ("torch",)
    assert first.arbiter.twins.passed  # the float64 copies agree: not a porting error
    assert first.status == "DIVERGES (torch off f64)"
    assert "'ff1'" in report.verdict and "torch" in report.verdict
    assert not report.rounding_limited
    assert all(r.arbiter.wrong == ("torch",) for r in report.failures)
    data = json.loads(report.to_json())
    assert data["first_departure"]["arbiter"]["wrong"] == ["torch"]


def test_wrong_gradient_in_every_dtype_fails_as_a_porting_error(monkeypatch):
    """A global torch hook scales ff1's upstream gradient in float32 and in float64 alike: the
    float64 twins disagree too, and the row fails as a porting error."""
    torch = _torch()
    model = _build("mha_block", "tensorflow")

    def hook(module, args, out):
        layer = module.__dict__.get("layer")
        if layer is not None and layer.name == "ff1":
            _scale_grad(1.001)(out)

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        report = check_model(model, training=False)
    finally:
        handle.remove()
    first = report.first_departure
    assert (first.layer, first.kind) == ("ff1", "gradient"), report.table()
    assert not first.arbiter.twins.passed and first.arbiter.wrong == ("tensorflow", "torch")
    assert first.status == "DIVERGES (float64 too)"
    assert "float64 twins disagree" in report.verdict


def test_output_without_a_reference_is_judged_by_the_float64_copies(monkeypatch):
    """No per-layer float64 reference (as for a layer without one): a wrong forward value on
    the torch twin's conv2 is judged by the float64 copies, which name torch."""
    import dualnet.parity.check_runs as runs

    def no_reference(*args, **kwargs):
        raise NotImplementedError("no reference for this test")

    monkeypatch.setattr(runs, "reference_calls", no_reference)
    report = _check_with_shifted_conv2()
    first = report.first_departure
    assert (first.layer, first.kind) == ("conv2", "output"), report.table()
    assert first.arbiter.wrong == ("torch",) and set(first.reference) == {"tensorflow", "torch"}
    assert first.reference["tensorflow"].passed and not first.reference["torch"].passed
    assert any("no float64 reference per layer" in n for n in report.notes)


def test_float64_models_have_no_arbiter():
    """A float64 model is its own arbiter: a wrong backward pass fails without one."""
    model = _build("mha_block", "tensorflow", "float64")
    twin = model.to_backend("torch")
    ff1 = next(layer for layer in twin.layers if layer.name == "ff1")
    handle = _forward_hook(ff1, _scale_grad(1.001))
    try:
        report = check_model(model, other=twin, training=False)
    finally:
        handle.remove()
    assert report.first_departure.layer == "ff1"
    assert all(r.arbiter is None for r in report.rows)
    assert not any("arbiter" in k for k in report.times)


def test_float64_copy_keeps_weights_ids_and_dropout_masks():
    model = _build("lstm_mask", "torch")
    copy = float64_copy(model)
    assert {w.dtype for w in copy.weights} == {"float64"}
    assert all(np.array_equal(a.astype(np.float64), b)
               for a, b in zip(model.get_weights(), copy.get_weights(), strict=True))  # fmt: skip
    assert copy.input_dtype() == "int32"  # token ids stay integers
    drop = _build("dropout_cnn", "tensorflow")
    copy = float64_copy(drop)
    assert [layer.get_runtime_state() for layer in drop.layers] == [
        layer.get_runtime_state() for layer in copy.layers]  # fmt: skip
    x = np.random.default_rng(0).standard_normal((3, 10, 10, 2)).astype(np.float32)
    y32 = dn.to_numpy(drop(x, training=True)).astype(np.float64)
    y64 = dn.to_numpy(copy(x.astype(np.float64), training=True))
    # The same dropout masks: the float32 and float64 outputs agree to float32 rounding (a
    # different mask would zero other units: differences of the outputs' size).
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-5)


def test_arbitrate_rules_on_constructed_values():
    """Rule by rule, on values whose distances are known exactly."""
    rng = np.random.default_rng(0)
    g = rng.standard_normal(1000)
    bound = default("float32").scaled(10.0, "test")
    noise = lambda: rng.standard_normal(1000) * 3e-6  # noqa: E731  # rounding-sized offsets
    a, b = g + noise(), g + noise()
    both = {"tensorflow": g, "torch": g}
    found = arbitrate({"tensorflow": a, "torch": b}, both, bound, "float32")
    assert found.rounding_limited and found.wrong == () and found.spread < 2
    found = arbitrate({"tensorflow": a, "torch": g * 1.001}, both, bound, "float32")
    assert not found.rounding_limited and found.wrong == ("torch",)  # rule 2 (and 3)
    # torch's offsets 12x TensorFlow's: within the normwise bound (rule 2), beyond SPREAD.
    found = arbitrate({"tensorflow": a, "torch": g + 12 * (a - g)}, both, bound, "float32")
    assert max(found.errors.values()) <= found.limit and found.spread == pytest.approx(12)
    assert found.wrong == ("torch",) and "12x further from float64" in found.reason
    found = arbitrate({"tensorflow": a, "torch": b}, {"tensorflow": g, "torch": g * (1 + 1e-4)},
                      bound, "float32")  # fmt: skip
    assert found.wrong == ("tensorflow", "torch") and "float64 twins disagree" in found.reason
    nan = b.copy()
    nan[3] = np.nan
    assert arbitrate({"tensorflow": a, "torch": nan}, both, bound, "float32").wrong == ("torch",)
    masked = np.ones(1000, bool)
    masked[5] = False
    far = b.copy()
    far[5] = 1e3  # a padded position: not compared
    found = arbitrate({"tensorflow": a, "torch": far}, both, bound, "float32", mask=masked)
    assert found.rounding_limited


@pytest.fixture(scope="module")
def mobilenet():
    import keras_models

    from dualnet.interop import from_keras

    return from_keras(keras_models.mobilenet_v2(), backend="tensorflow")


def test_mobilenet_v2_training_gradients_are_rounding_limited(mobilenet):
    """Keras MobileNetV2 in training mode, batch 8: float32 gradients beyond their elementwise
    bound on both frameworks alike (BatchNormalization's backward cancels); the float64
    arbiter passes them as rounding-limited, listed, and the bound itself is unchanged."""
    report = check_model(mobilenet, batch_size=8)
    assert report.ok, report.table(failures_only=True)
    limited = report.rounding_limited
    assert limited and all(r.kind == "gradient" and r.mode == "training" for r in limited)
    assert f"{len(limited)} rounding-limited gradients" in report.verdict
    assert max(r.diff.worst_ratio for r in limited) > 2  # the torch-vs-tf row still fails
    for r in limited:
        arb = r.arbiter
        assert arb.twins.passed and arb.spread <= SPREAD
        assert max(arb.errors.values()) <= arb.limit
        assert set(r.reference) == {"tensorflow", "torch"}  # the ~f64 columns are filled
    text = report.table()
    assert "rows limited by float32 rounding" in text and "rounding-limited" in text
    assert "identical on both backends" in text  # the weights folded into one line
    # Without the arbiter the same rows fail: nothing was widened.
    plain = check_model(mobilenet, batch_size=8, arbiter=False)
    assert not plain.ok and {(r.mode, r.layer, r.name) for r in plain.failures} == {
        (r.mode, r.layer, r.name) for r in limited}  # fmt: skip


def test_mobilenet_v2_one_sided_gradient_error_is_named(mobilenet):
    """The same model with the gradient reaching block_16_project's output scaled by 1.001 on
    the torch twin only (float32): every failing row upstream names torch."""
    twin = mobilenet.to_backend("torch")
    layer = next(layer for layer in twin.layers if layer.name == "block_16_project")
    handle = _forward_hook(layer, _scale_grad(1.001))
    try:
        report = check_model(mobilenet, other=twin, batch_size=8)
    finally:
        handle.remove()
    assert not report.ok and report.first_departure.kind == "gradient", report.verdict
    assert all(r.arbiter.wrong == ("torch",) for r in report.failures)
    order = [layer.name for layer in twin.layers]
    assert all(order.index(r.layer) <= order.index("block_16_project") for r in report.failures)
    assert "torch" in report.verdict and "further from float64" in report.verdict


def test_table_folds_identical_weights_and_json_keeps_them():
    report = check_model(_build("residual", "torch"), batch_size=3, training=False)
    weights = [r for r in report.rows if r.kind == "weight"]
    text = report.table()
    assert f"weights: {len(weights)} tensors, identical on both backends" in text
    assert not any(" weight " in line for line in text.splitlines()[2:])
    full = report.table(all_rows=True)
    assert sum(" weight " in line for line in full.splitlines()) == len(weights)
    data = json.loads(report.to_json())
    assert sum(r["kind"] == "weight" for r in data["rows"]) == len(weights)
