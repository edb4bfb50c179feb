"""``dn.parity.check_model`` and ``dualnet check``: realistic dualnet models pass on both
backends; a deliberately broken twin fails naming the layer (a changed or transposed kernel, a
wrong forward value, a wrong backward pass); kink flips (an activation at the relu kink on one
side and just above it on the other) are reported as flips and pass, simulated by a 1-ulp bias
and found for real in the frameworks' summation orders, confirmed in float64. The float64
arbiter: test_check_arbiter.py; the command line: test_check_cli.py; the zoo architectures:
test_check_architectures.py."""

from __future__ import annotations

import numpy as np
import pytest
from frameworks import torch as _torch

import dualnet as dn
from dualnet import layers as L
from dualnet.parity.catalogue.training_networks import dropout_cnn, lenet, residual
from dualnet.parity.catalogue.training_sequences import text_classifier, transformer_block
from dualnet.parity.check import check_model
from dualnet.parity.kinks import find_flips, kink_is_exact, kink_values
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


def _check_with_shifted_conv2():
    """Inference check of the residual model (TensorFlow) against a torch twin whose conv2 adds
    1e-3 to one element of its output (weights identical)."""
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
        return check_model(model, other=twin, training=False)
    finally:
        handle.remove()


def test_wrong_forward_value_fails_at_that_layers_output():
    """Weights identical; the torch side adds 1e-3 to one element of conv2's output."""
    report = _check_with_shifted_conv2()
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


def test_hard_silu_flip_needs_one_side_exactly_on_the_kink():
    """hard_silu is ~0 near x = 0 too, where it is smooth: two sides straddling 0 there are
    no flip; at x <= -3 the output is exactly 0, and one side on it is."""
    bound = default("float32")
    a, b = np.array([1e-8, 0.0]), np.array([-1e-8, 2e-8])
    assert find_flips(a, b, (0.0,), bound) == [((0,), 0.0), ((1,), 0.0)]
    assert find_flips(a, b, (0.0,), bound, exact=True) == [((1,), 0.0)]
    with dn.use_backend("torch"):
        assert kink_is_exact(L.Dense(2, activation="hard_silu"))
        assert not kink_is_exact(L.Dense(2, activation="relu"))
