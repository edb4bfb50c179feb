"""``dn.parity.check_model`` and ``dualnet check``: realistic dualnet models pass on both
backends; a deliberately broken twin fails naming the layer (a changed or transposed kernel, a
wrong forward value, a wrong backward pass); kink flips (an activation at the relu kink on one
side and just above it on the other) are reported as flips and pass, simulated by a 1-ulp bias
and found for real in the frameworks' summation orders; the CLI on a ``.keras`` file, a torch
factory, ``--inputs``, ``--json`` and its exit statuses. The CLI tests that import Keras or
torch models need ``dualnet.interop``'s importers and run as soon as those exist."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from frameworks import keras as _keras
from frameworks import torch as _torch

import dualnet as dn
from dualnet import layers as L
from dualnet.cli import main
from dualnet.parity.catalogue.training_networks import dropout_cnn, lenet, residual
from dualnet.parity.catalogue.training_sequences import text_classifier, transformer_block
from dualnet.parity.check import check_model
from dualnet.parity.check_arbiter import SPREAD, arbitrate, float64_copy
from dualnet.parity.kinks import find_flips, kink_values
from dualnet.parity.locate import layer_calls
from dualnet.parity.tolerance import default

MODELS = {"cnn_bn": lambda d: _cnn_bn(d), "residual": residual, "lenet": lenet,
          "dropout_cnn": dropout_cnn, "lstm_mask": text_classifier,
          "mha_block": transformer_block}  # fmt: skip


def _cnn_bn(dtype: str) -> dn.Model:
    """A Sequential CNN with BatchNormalization, fused relu, pooling and dropout."""
    return dn.Sequential([
        dn.Input((9, 9, 3), dtype=dtype),
        L.Conv2D(6, 3, activation="relu", dtype=dtype, name="conv1"),
        L.BatchNormalization(dtype=dtype, name="bn1"),
        L.MaxPooling2D(2, dtype=dtype, name="pool"),
        L.Conv2D(8, 3, padding="same", dtype=dtype, name="conv2"),
        L.BatchNormalization(dtype=dtype, name="bn2"),
        L.ReLU(max_value=6.0, dtype=dtype, name="relu6"),
        L.GlobalAveragePooling2D(dtype=dtype, name="gap"),
        L.Dropout(0.25, seed=3, dtype=dtype, name="drop"),
        L.Dense(4, dtype=dtype, name="logits"),
    ], name="cnn_bn")  # fmt: skip


def _build(name: str, backend: str, dtype: str = "float32") -> dn.Model:
    dn.set_random_seed(0)
    with dn.use_backend(backend):
        return MODELS[name](dtype)


# ----------------------------------------------------------------------- models that pass


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", MODELS)
def test_dualnet_models_pass(name, backend, dtype):
    model = _build(name, backend, dtype)
    report = check_model(model, batch_size=6)
    assert report.ok, report.table()
    assert report.verdict.startswith("pass")
    kinds = {(r.mode, r.kind) for r in report.rows}
    for mode in ("inference", "training"):  # both modes: outputs, loss, gradients
        assert {(mode, "output"), (mode, "loss"), (mode, "gradient")} <= kinds
    grads = {r.layer + "/" + r.name for r in report.rows
             if r.kind == "gradient" and r.mode == "training"}  # fmt: skip
    assert grads == {w.path.split("/", 1)[1] for w in model.trainable_weights}
    # The float64 reference judged every layer output, and both sides are close to it.
    outputs = [r for r in report.rows if r.kind == "output"]
    assert all(set(r.reference) == {"torch", "tensorflow"} for r in outputs)
    assert all(d.passed for r in outputs for d in r.reference.values()), report.table()
    assert report.backends == (backend, next(b for b in dn.BACKENDS if b != backend))


def test_batchnorm_training_rows_compare_the_moving_statistics():
    report = check_model(_build("cnn_bn", "torch"), batch_size=5)
    states = {r.layer + "/" + r.name for r in report.rows if r.kind == "state"}
    assert states == {"bn1/moving_mean", "bn1/moving_variance", "bn2/moving_mean",
                      "bn2/moving_variance"}  # fmt: skip


def test_check_leaves_the_model_unchanged():
    model = _build("dropout_cnn", "torch")
    before = [w.copy() for w in model.get_weights()]
    state = [layer.get_runtime_state() for layer in model.layers]
    check_model(model)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    assert state == [layer.get_runtime_state() for layer in model.layers]


def test_embedding_inputs_are_ids_in_the_vocabulary_with_padding():
    report = check_model(_build("lstm_mask", "tensorflow"), batch_size=6, seed=3)
    assert report.inputs == [{"shape": [6, 7], "dtype": "int32"}]
    assert report.ok, report.table()


def test_layer_calls_runs_every_functional_node_with_its_call_arguments(backend):
    model = _build("mha_block", backend)
    x = np.array([[3, 4, 5, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6, 7]], np.int32)
    calls = layer_calls(model, x)
    assert [c.label for c in calls][:3] == ["embedding", "attention", "add1"]
    assert dict((c.label, c.parents) for c in calls)["add1"] == ("embedding", "attention")
    np.testing.assert_array_equal(dn.to_numpy(calls[-1].output), dn.to_numpy(model(x)))


# ------------------------------------------------------------------ broken twins must fail


def test_changed_kernel_entry_fails_naming_the_layer():
    model = _build("residual", "torch")
    twin = model.to_backend("tensorflow")
    conv = next(layer for layer in twin.layers if layer.name == "conv2")
    (kernel,) = conv.get_weights()
    kernel[1, 1, 2, 3] *= 1.01
    conv.set_weights([kernel])
    report = check_model(model, other=twin)
    assert not report.ok
    assert report.first_departure.layer == "conv2"
    assert report.first_departure.kind == "weight"
    failing = {(r.mode, r.layer) for r in report.failures if r.kind == "output"}
    assert ("inference", "conv2") in failing  # the layer's own output departs too
    assert "FAIL: first departure at layer 'conv2'" in report.verdict


def test_transposed_kernel_fails_naming_the_layer():
    """ff2's kernel is (16, 8): its leading 8x8 block transposed keeps the shape, as a
    converter that forgets torch's (out, in) layout on a square Linear would."""
    model = _build("mha_block", "tensorflow")
    twin = model.to_backend("torch")
    ff2 = next(layer for layer in twin.layers if layer.name == "ff2")
    kernel, bias = ff2.get_weights()
    kernel[:8, :8] = kernel[:8, :8].T.copy()
    ff2.set_weights([kernel, bias])
    report = check_model(model, other=twin)
    assert report.first_departure.layer == "ff2", report.table()
    assert {("inference", "ff2"), ("training", "ff2")} <= {
        (r.mode, r.layer) for r in report.failures if r.kind == "output"}  # fmt: skip


def _forward_hook(layer, fn):
    return layer.native.register_forward_hook(lambda module, args, out: fn(out))


def test_wrong_forward_value_fails_at_that_layers_output():
    """Weights identical; the torch side adds 1e-3 to one element of conv2's output."""
    torch = _torch()
    model = _build("residual", "tensorflow")
    twin = model.to_backend("torch")
    conv = next(layer for layer in twin.layers if layer.name == "conv2")

    def shift(out):
        bump = torch.zeros_like(out)
        bump.view(-1)[5] = 1e-3
        return out + bump

    handle = _forward_hook(conv, shift)
    try:
        report = check_model(model, other=twin, training=False)
    finally:
        handle.remove()
    first = report.first_departure
    assert (first.layer, first.kind, first.mode) == ("conv2", "output", "inference")
    assert all(r.passed for r in report.rows if r.kind == "weight")


def test_wrong_backward_pass_fails_at_that_layer_gradient_only():
    """Forward values identical; the gradient reaching the torch side's ff1 output is scaled
    by 1 + 1e-3: ff1's weight gradients (and those upstream) fail, every forward row passes."""
    model = _build("mha_block", "tensorflow")
    twin = model.to_backend("torch")
    ff1 = next(layer for layer in twin.layers if layer.name == "ff1")

    def scale_grad(out):
        if out.requires_grad:
            out.register_hook(lambda g: g * (1 + 1e-3))

    handle = _forward_hook(ff1, scale_grad)
    try:
        report = check_model(model, other=twin)
    finally:
        handle.remove()
    assert all(r.passed for r in report.rows if r.kind in ("weight", "output", "state"))
    first = report.first_departure
    assert (first.layer, first.kind) == ("ff1", "gradient"), report.table()
    assert not report.flips
    assert {r.layer for r in report.failures} >= {"ff1", "attention", "embedding"}
    assert "ff2" not in {r.layer for r in report.failures}  # downstream: untouched


# ------------------------------------------------------------------------------ kink flips


def _kink_model(backend: str) -> dn.Model:
    with dn.use_backend(backend):
        return dn.Sequential([
            dn.Input((4,)), L.Dense(3, activation="relu", name="hidden"),
            L.Dense(2, activation="relu", name="kinked"), L.Dense(2, name="out"),
        ], name="kink")  # fmt: skip


def _simulated_flip():
    """Dyadic weights and inputs, so every sum is exact in any order: the pre-activation of
    kinked unit 0 on sample 0 is exactly 0 on torch; the TensorFlow twin's bias is 1 ulp
    higher, so there it is 1 ulp (2.4e-7) above the kink."""
    x = np.array([[1.0, 0.5, -0.5, 2.0], [0.5, 2.0, 1.0, -1.0]], np.float32)
    w1 = np.array([[0.5, 0.25, -0.25], [0.25, 0.5, 0.5], [-0.5, 0.25, 0.25],
                   [0.25, -0.25, 0.5]], np.float32)  # fmt: skip
    b1 = np.full(3, 2.0, np.float32)
    h = x @ w1 + b1
    assert (h > 0.5).all()  # the hidden layer is far from its own kink
    w2 = np.array([[0.5, 0.25], [-0.25, 0.5], [0.75, 0.25]], np.float32)
    b2 = np.array([-(h[0] @ w2[:, 0]), 1.0], np.float32)
    w3 = np.array([[1.0, -0.5], [0.5, 2.0]], np.float32)
    b3 = np.zeros(2, np.float32)
    model = _kink_model("torch")
    model.set_weights([w1, b1, w2, b2, w3, b3])
    twin = model.to_backend("tensorflow")
    up = b2.copy()
    up[0] = np.nextafter(b2[0], np.float32(np.inf))
    twin.set_weights([w1, b1, w2, up, w3, b3])
    return model, twin, x


def test_simulated_kink_flip_is_reported_and_passes():
    model, twin, x = _simulated_flip()
    report = check_model(model, x, other=twin)
    assert report.ok and report.verdict == "pass (1 kink flip)", report.table()
    assert report.flip_sites == [("kinked", "output", (0, 0))]
    flip = report.flips[0]
    assert flip.values["torch"] == 0.0 and 0 < flip.values["tensorflow"] < 3e-7
    assert flip.reference == 0.0  # the float64 reference (torch's weights) sits on the kink
    explained = {(r.mode, r.layer, r.name) for r in report.explained}
    # The flipped layer's and the upstream layer's gradients move; the downstream one's not.
    for mode in ("inference", "training"):
        assert {(mode, "kinked", "kernel"), (mode, "hidden", "kernel")} <= explained
    assert not any(r.layer == "out" for r in report.explained)
    assert max(r.diff.worst_ratio for r in report.explained) > 100  # a real gradient change
    assert all(r.passed for r in report.rows if r.kind != "gradient")


def test_kink_flip_does_not_excuse_a_wrong_gradient_downstream():
    """With the flip present, a wrong backward pass at the layer after it still fails."""
    model, twin, x = _simulated_flip()
    out = next(layer for layer in model.layers if layer.name == "out")

    def scale_grad(y):
        if y.requires_grad:
            y.register_hook(lambda g: g * (1 + 1e-3))

    handle = _forward_hook(out, scale_grad)
    try:
        report = check_model(model, x, other=twin, training=False)
    finally:
        handle.remove()
    assert report.flips and not report.ok
    assert report.first_departure.layer == "out" and report.first_departure.kind == "gradient"


def test_kink_flip_does_not_excuse_a_forward_failure():
    model, twin, x = _simulated_flip()
    w = twin.get_weights()
    w[4][0, 0] += 0.01  # the downstream kernel: a forward (weight and output) failure
    twin.set_weights(w)
    report = check_model(model, x, other=twin, training=False)
    assert report.flips and not report.ok and not report.explained
    assert report.first_departure.layer == "out"


def test_real_kink_flip_from_summation_order():
    """A bias chosen (by a scan over neighbouring float32 values) so that the torch and the
    TensorFlow sums of the same 256 products land on different sides of relu's kink: no
    weight differs, the flip comes from the frameworks' summation orders alone."""
    rng = np.random.default_rng(0)
    n = 256
    with dn.use_backend("torch"):
        model = dn.Sequential([dn.Input((n,)), L.Dense(n, name="hidden", use_bias=False),
                               L.Dense(2, activation="relu", name="kinked"),
                               L.Dense(2, name="out")], name="real_kink")  # fmt: skip
    weights = [rng.standard_normal(w.shape).astype(np.float32) / np.sqrt(w.shape[0])
               for w in model.weights]  # fmt: skip
    x = rng.standard_normal((3, n)).astype(np.float32)
    model.set_weights(weights)
    twin = model.to_backend("tensorflow")
    h = dn.to_numpy(layer_calls(model, x)[0].output).astype(np.float64)
    bias = np.float32(-(h[0] @ weights[1][:, 0].astype(np.float64)))
    found = None
    for step in range(200):  # alternate around -s: b, b+1ulp, b-1ulp, b+2ulp, ...
        candidate = bias
        for _ in range((step + 1) // 2):
            candidate = np.nextafter(candidate, np.float32(np.inf if step % 2 else -np.inf))
        weights[2][0] = candidate
        model.set_weights(weights)
        twin.set_weights(weights)
        a = dn.to_numpy(layer_calls(model, x)[1].output)[0, 0]
        b = dn.to_numpy(layer_calls(twin, x)[1].output)[0, 0]
        if (a == 0) != (b == 0):
            found = candidate
            break
    assert found is not None, "torch and TensorFlow summed 256 products alike at every bias"
    report = check_model(model, x, other=twin)
    assert report.ok, report.table()
    assert ("kinked", "output", (0, 0)) in report.flip_sites
    assert all(r.passed for r in report.rows if r.kind == "weight")


def test_find_flips_rules():
    bound = default("float32")
    a = np.array([0.0, 0.0, 1e-7, 0.5, 6.0, -1e-9])
    b = np.array([3e-7, 0.0, 2e-7, 0.5 + 1e-7, 6.0 - 1e-7, 1e-8])
    # (0) on the kink vs just above; (1) both on it: no; (2) both above: no; (3) far from it;
    # (4) relu6's upper kink; (5) leaky relu: opposite sides.
    assert find_flips(a, b, (0.0, 6.0), bound) == [((0,), 0.0), ((4,), 6.0), ((5,), 0.0)]
    assert find_flips(np.array([0.0]), np.array([1e-3]), (0.0,), bound) == []  # beyond bound
    assert find_flips(a, b, (0.0,), bound, mask=np.zeros(6, bool)) == []
    assert kink_values(L.ReLU(max_value=6.0)) == (0.0, 6.0)
    assert kink_values(L.ReLU(threshold=0.5)) == ()  # a jump, not a kink
    assert kink_values(L.Dense(3, activation="relu6")) == (0.0, 6.0)
    assert kink_values(L.Dense(3, activation="tanh")) == ()


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
    torch = _torch()
    model = _build("residual", "tensorflow")
    twin = model.to_backend("torch")
    conv = next(layer for layer in twin.layers if layer.name == "conv2")

    def shift(out):
        bump = torch.zeros_like(out)
        bump.view(-1)[5] = 1e-3
        return out + bump

    handle = _forward_hook(conv, shift)
    try:
        report = check_model(model, other=twin, training=False)
    finally:
        handle.remove()
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


# ------------------------------------------------------------------------------ arguments


def test_bad_arguments_are_named():
    model = _build("lenet", "torch")
    with pytest.raises(ValueError, match="batch_size=0"):
        check_model(model, batch_size=0)
    with pytest.raises(TypeError, match="training="):
        check_model(model, training="yes")
    with pytest.raises(ValueError, match="other="):
        check_model(model, other=_build("lenet", "torch"))
    with pytest.raises(ValueError, match="weights="):
        check_model(model, weights="w.pt")
    with pytest.raises(ValueError, match=r"\.pt2"):
        check_model("model.pt2")
    with pytest.raises(FileNotFoundError, match="no such file"):
        check_model("missing.keras")


# ------------------------------------------------------------------------------------ CLI


def _keras_file(tmp_path, *, broken: bool = False):
    keras = _keras()
    model = keras.Sequential([
        keras.Input((6, 6, 2)),
        keras.layers.Conv2D(3, 3, activation="relu", name="conv"),
        keras.layers.BatchNormalization(name="bn"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(2, name="head"),
    ], name="small")  # fmt: skip
    if broken:  # layers dualnet does not have: every one must be listed
        model = keras.Sequential([
            keras.Input((6, 6, 2)), keras.layers.RandomFlip(name="flip"),
            keras.layers.Flatten(), keras.layers.Rescaling(0.5, name="scale"),
        ])  # fmt: skip
    path = tmp_path / ("broken.keras" if broken else "small.keras")
    model.save(path)
    return path


def test_cli_keras_file_passes_and_writes_json(tmp_path, capsys):
    path = _keras_file(tmp_path)
    out = tmp_path / "check.json"
    assert main(["check", str(path), "--json", str(out), "--batch-size", "3"]) == 0
    text = capsys.readouterr().out
    assert "verdict: pass" in text and "times: import" in text
    data = json.loads(out.read_text())
    assert data["ok"] and data["verdict"].startswith("pass")
    assert data["kind"] == "keras" and data["backends"] == ["tensorflow", "torch"]
    assert any(r["kind"] == "original" and r["passed"] for r in data["rows"])
    assert {r["layer"] for r in data["rows"] if r["kind"] == "gradient"} == {"conv", "bn",
                                                                              "head"}  # fmt: skip
    assert set(data["times"]) >= {"import", "twin build"}


def test_cli_inputs_file(tmp_path, capsys):
    path = _keras_file(tmp_path)
    x = np.random.default_rng(5).standard_normal((2, 6, 6, 2)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x)
    assert main(["check", str(path), "--inputs", str(tmp_path / "x.npz"), "--json",
                 str(tmp_path / "c.json")]) == 0  # fmt: skip
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["inputs"] == [{"shape": [2, 6, 6, 2], "dtype": "float32"}]


def test_cli_unsupported_keras_model_lists_every_problem(tmp_path, capsys):
    path = _keras_file(tmp_path, broken=True)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "unsupported model" in err
    assert "2 problems" in err
    assert "'flip'" in err and "'scale'" in err  # both layers named, not only the first


TORCH_MODULE = """
import torch
from torch import nn


def build():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 5 * 5, 3))
"""


def test_cli_torch_factory_with_weights(tmp_path, monkeypatch, capsys):
    torch = _torch()
    (tmp_path / "mynets.py").write_text(textwrap.dedent(TORCH_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    import mynets

    module = mynets.build()
    for p in module.parameters():
        torch.nn.init.normal_(p, 0.0, 0.3)
    torch.save(module.state_dict(), tmp_path / "w.pt")
    out = tmp_path / "t.json"
    code = main(["check", "mynets:build", "--path", str(tmp_path), "--weights",
                 str(tmp_path / "w.pt"), "--input-shape", "2,5,5", "--json", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr()
    data = json.loads(out.read_text())
    assert data["kind"] == "torch" and data["backends"] == ["torch", "tensorflow"]
    assert any(r["kind"] == "original" and r["passed"] for r in data["rows"])


def test_cli_mismatch_exits_1(tmp_path, monkeypatch, capsys):
    """A saved check of a model whose twin disagrees: the CLI's exit status is 1 (a dualnet
    factory module standing in for an importer: check_model given a broken twin)."""
    import dualnet.parity.check as check

    model, twin, x = _simulated_flip()
    w = twin.get_weights()
    w[0][0, 0] += 0.5
    twin.set_weights(w)
    real = check.check_model
    monkeypatch.setattr(check, "check_model", lambda *a, **k: real(model, x, other=twin))
    assert main(["check", "anything.keras"]) == 1
    assert "FAIL: first departure at layer 'hidden'" in capsys.readouterr().out


def test_cli_errors_exit_3_with_one_line(tmp_path, capsys):
    assert main(["check", str(tmp_path / "missing.keras")]) == 3
    err = capsys.readouterr().err
    assert "no such file" in err and "Traceback" not in err
    (tmp_path / "junk.bin").write_bytes(b"not a model")
    assert main(["check", str(tmp_path / "junk.bin")]) == 3
    assert "neither" in capsys.readouterr().err


def test_cli_unsupported_error_from_a_factory_exits_2(tmp_path, capsys):
    """The CLI's handling of UnsupportedModelError (whoever raises it): exit 2, every problem
    printed."""
    (tmp_path / "refuses.py").write_text(textwrap.dedent('''
        from dualnet.errors import UnsupportedModelError

        def build():
            raise UnsupportedModelError("module", ["node a: op x (supported: y)",
                                                   "node b: op z (supported: y)"])
    '''))  # fmt: skip
    assert main(["check", "refuses:build", "--path", str(tmp_path), "--input-shape", "3"]) == 2
    err = capsys.readouterr().err
    assert "2 problems" in err and "node a: op x" in err and "node b: op z" in err


def test_cli_dualnet_file(tmp_path, capsys):
    model = _build("lenet", "torch")
    path = tmp_path / "lenet.safetensors"
    model.save(path)
    assert main(["check", str(path), "--batch-size", "2", "--no-training"]) == 0
    assert "(dualnet-file:" in capsys.readouterr().out


def test_cli_all_rows_and_no_arbiter(tmp_path, capsys):
    path = _keras_file(tmp_path)
    assert main(["check", str(path), "--batch-size", "3", "--no-training"]) == 0
    folded = capsys.readouterr().out
    assert "tensors, identical on both backends (--all lists each)" in folded
    assert main(["check", str(path), "--batch-size", "3", "--no-training", "--all",
                 "--no-arbiter"]) == 0  # fmt: skip
    listed = capsys.readouterr().out
    assert "(--all lists each)" not in listed
    assert sum(" weight " in line for line in listed.splitlines()) >= 3


def test_kink_flip_does_not_excuse_a_wrong_backward_pass_upstream():
    """A flip explains the float32 gradients upstream of it, but not a backward-pass mistake
    there: a torch implementation that scales the gradient reaching every layer named
    "hidden" by 1.001 (in any dtype, as a real bug in backend code would) makes the float64
    copies disagree on those rows, which then fail."""
    torch = _torch()
    model, twin, x = _simulated_flip()

    def hook(module, args, out):
        layer = getattr(module, "layer", None)
        if layer is not None and layer.name == "hidden" and out.requires_grad:
            out.register_hook(lambda g: g * (1 + 1e-3))

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        report = check_model(model, x, other=twin, training=False)
    finally:
        handle.remove()
    assert report.flips and not report.ok, report.table()
    failing = {(r.layer, r.name) for r in report.failures}
    assert ("hidden", "kernel") in failing
    row = next(r for r in report.failures if (r.layer, r.name) == ("hidden", "kernel"))
    assert row.status == "DIVERGES (float64 too)" and not row.flips
    # Without the mistake the same flip explains the row, confirmed in float64.
    clean = check_model(model, x, other=twin, training=False)
    assert clean.ok and any("confirmed by the float64 twins" in n for n in clean.notes)
