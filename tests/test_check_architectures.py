"""``dn.parity.check_model`` on realistic architectures: every model of ``keras_models.ZOO``
(keras.applications ResNet50 and MobileNetV2 with ``weights=None``, a residual CNN, LSTM and
bidirectional-GRU text classifiers, a Transformer encoder, a shared nested block) and of
``torch_models.ARCHITECTURES`` (ResNet-18 and MobileNetV2-style modules, LSTM/GRU classifiers,
hand-written and ``nn.TransformerEncoderLayer`` encoders) passes on seeded inputs of batch 8
in inference and training mode; a twin with one kernel entry changed fails naming that layer.

Each check prints one line: the worst torch-vs-TensorFlow output and gradient difference (max
abs and err/bound), the kink flips, the rounding-limited rows (Note [Float64 arbiter]), the
import time (framework imports excluded: the first test pays them) and the check time. Run with
``-s`` to see them."""

from __future__ import annotations

import time

import keras_models
import numpy as np
import pytest
import torch_models
from frameworks import torch as _torch

from dualnet.interop import from_keras, from_torch
from dualnet.parity.check import CheckReport, check_model

BATCH = 8


def _line(name: str, report: CheckReport, seconds: float) -> str:
    """The architecture's numbers: worst output / gradient |torch - tf| (err/bound), flips,
    rounding-limited rows, import and check times."""
    out, out_ratio = report.worst("output")
    grad, grad_ratio = report.worst("gradient")
    imported = report.times["import"]
    return (f"{name:32s} out {out:.2e} ({out_ratio:.2g}) grad {grad:.2e} ({grad_ratio:.2g}) "
            f"flips {len(report.flip_sites)} rounding-limited {len(report.rounding_limited)} "
            f"import {imported:.2f}s check {seconds - imported:.1f}s: "
            f"{report.verdict}")  # fmt: skip


def _assert_pass(report: CheckReport) -> None:
    assert report.ok, report.table(failures_only=True)
    assert report.verdict.startswith("pass")
    kinds = {(r.mode, r.kind) for r in report.rows}
    for mode in ("inference", "training"):
        assert {(mode, "output"), (mode, "loss"), (mode, "gradient")} <= kinds
    original = [r for r in report.rows if r.kind == "original"]
    assert len(original) == 1 and original[0].passed  # the import reproduces the original
    for r in report.rounding_limited:  # the arbiter's rules held, with their numbers
        assert r.arbiter.twins.passed and max(r.arbiter.errors.values()) <= r.arbiter.limit


@pytest.mark.parametrize("name", list(keras_models.ZOO))
def test_keras_architecture_passes(name):
    model = keras_models.ZOO[name]()
    start = time.perf_counter()
    report = check_model(model, batch_size=BATCH)
    print("\nkeras/" + _line(name, report, time.perf_counter() - start))
    _assert_pass(report)
    assert report.kind == "keras" and report.backends == ("tensorflow", "torch")


def _torch_inputs(name: str) -> np.ndarray:
    torch = _torch()
    _, make = torch_models.ARCHITECTURES[name]
    return make(BATCH, torch.Generator().manual_seed(0)).numpy()


@pytest.mark.parametrize("name", list(torch_models.ARCHITECTURES))
def test_torch_architecture_passes(name):
    module = torch_models.ARCHITECTURES[name][0]()
    x = _torch_inputs(name)
    start = time.perf_counter()
    report = check_model(module, x)
    print("\ntorch/" + _line(name, report, time.perf_counter() - start))
    _assert_pass(report)
    assert report.kind == "torch" and report.backends == ("torch", "tensorflow")


# ------------------------------------------------------------------ broken twins must fail


def _break_kernel(twin, layer_name: str) -> None:
    """Negate the largest kernel entry of ``layer_name`` on the twin (one weight a converter
    got wrong; a 1% change of a small entry can hide below the output's rounding bound)."""
    layer = next(layer for layer in twin.layers if layer.name == layer_name)
    weights = layer.get_weights()
    kernel = weights[0]
    index = np.unravel_index(int(np.argmax(np.abs(kernel))), kernel.shape)
    kernel[index] = -kernel[index]
    layer.set_weights(weights)


def _assert_fails_at(report: CheckReport, layer: str) -> None:
    first = report.first_departure
    assert not report.ok and first is not None, report.table(failures_only=True)
    assert (first.layer, first.kind, first.name) == (layer, "weight", "kernel")
    assert f"FAIL: first departure at layer {layer!r}" in report.verdict
    # Its own output departs (in inference mode the changed weight may meet inputs near 0).
    assert layer in {r.layer for r in report.failures if r.kind == "output"}


def test_keras_mobilenet_v2_broken_twin_fails_naming_the_layer():
    model = from_keras(keras_models.mobilenet_v2(), backend="tensorflow")
    twin = model.to_backend("torch")
    _break_kernel(twin, "block_5_project")
    _assert_fails_at(check_model(model, other=twin, batch_size=BATCH), "block_5_project")


def test_torch_resnet18_broken_twin_fails_naming_the_layer():
    x = _torch_inputs("resnet18")
    torch = _torch()
    model = from_torch(torch_models.ARCHITECTURES["resnet18"][0](), torch.as_tensor(x),
                       backend="torch")  # fmt: skip
    twin = model.to_backend("tensorflow")
    _break_kernel(twin, "layer2_0_conv2")
    _assert_fails_at(check_model(model, x, other=twin), "layer2_0_conv2")


def test_torch_gru_broken_twin_fails_naming_the_layer():
    """A recurrent layer: the twin's first GRU layer, one input-kernel entry."""
    x = _torch_inputs("gru_classifier")
    torch = _torch()
    model = from_torch(torch_models.ARCHITECTURES["gru_classifier"][0](), torch.as_tensor(x),
                       backend="torch")  # fmt: skip
    twin = model.to_backend("tensorflow")
    _break_kernel(twin, "gru_l0")
    _assert_fails_at(check_model(model, x, other=twin), "gru_l0")
