"""Every layer entry of the catalogue (Note [Layer entries]) expanded into tests: parity with
the float64 reference per dtype, a deliberately wrong reference that must fail, bad inputs that
raise the same error on both backends, weights seen as trainable by each framework, and every
public layer having entries and builders on both backends.

Select with ``-k``: ``pytest tests/test_layer_catalogue.py -k "conv2d and float32"``.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

import dualnet as dn
from dualnet._backend import BACKENDS, backend_module
from dualnet.layers.base import builder_location, import_group
from dualnet.parity import catalogue
from dualnet.parity.layer_cases import LayerCase

CASES = [c for c in catalogue.load() if isinstance(c, LayerCase)]
CLASSES = {n: c for n, c in dn.layers.public_classes().items() if n != "InputLayer"}
# One entry per layer class, for the tests that need one configuration of each.
FIRST = list({c.layer.__name__: c for c in reversed(CASES)}.values())


def _has_weights(case) -> bool:
    return bool(case.build(case.make()).weight_specs)  # framework-free


WEIGHTED = [c for c in FIRST if _has_weights(c)]


def _params(cases):
    return [pytest.param(c, d, id=f"{c.name}-{d}") for c in cases for d in c.dtypes]


@pytest.mark.parametrize(("case", "dtype"), _params(CASES))
def test_layer_parity(case, dtype):
    rows = case.evaluate(dtype, "cpu")
    assert rows, "a case must produce rows"
    failed = [r for r in rows if r.failed]
    assert not failed, "\n".join(r.explain() for r in failed)
    if dtype in ("float32", "float64"):  # full precision always runs: never all skipped
        assert any(r.status == "pass" for r in rows), [r.explain() for r in rows]


@pytest.mark.parametrize("case", FIRST, ids=lambda c: c.layer.__name__)
def test_wrong_reference_fails(case):
    """Every kind of row can fail: a reference off by 1e-3 (relative, plus 1e-3 absolute) fails
    the forward row, its gradients (scaled by 1.001 through the finite difference) fail the
    gradient rows, and a wrong state update fails the state row."""

    updated = []

    def off(y):
        if isinstance(y, list):  # several outputs: every one is wrong
            return [np.asarray(v) * 1.001 + 1e-3 for v in y]
        return np.asarray(y) * 1.001 + 1e-3

    def wrong(*args, **kwargs):
        out = case.reference(*args, **kwargs)
        if isinstance(out, tuple):
            updated.append(True)
            state = {k: np.asarray(v) * 1.001 + 1e-3 for k, v in out[1].items()}
            return off(out[0]), state
        return off(out)

    rows = dataclasses.replace(case, reference=wrong).evaluate("float64", "cpu")
    status = {r.check: r.status for r in rows}
    assert status.pop("forward") == "FAIL", [r.explain() for r in rows]
    state = status.pop("state", None)
    if updated:  # the wrong reference moved the state: the state row must catch it
        assert state == "FAIL", [r.explain() for r in rows]
    if case.grad and any(s == "pass" for s in status.values()):
        # A gradient that is zero everywhere stays zero when scaled; at least one must fail.
        assert "FAIL" in status.values(), [r.explain() for r in rows]


def test_every_public_layer_has_an_entry():
    covered = {c.layer.__name__ for c in CASES}
    missing = sorted(set(CLASSES) - covered)
    assert not missing, f"layers without a catalogue entry: {missing}"


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("name", sorted(CLASSES))
def test_every_public_layer_has_a_builder(name, backend_name):
    group, builder = builder_location(CLASSES[name])
    module = import_group(backend_name, group)
    assert callable(getattr(module, builder, None)), (
        f"backends/{backend_name}/layers/{group}.py has no builder {builder!r} for {name}"
    )


def _realised(case, backend_name, **overrides):
    with dn.use_backend(backend_name):
        layer = case.build(case.make("float32", **overrides))
        layer._realise(backend_name)
    return layer


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("case", FIRST, ids=lambda c: c.layer.__name__)
def test_backend_sees_declared_weights(case, backend_name):
    """The framework's own view (torch parameters/buffers, Keras trainable/non-trainable
    weights) holds exactly the declared weights: nothing silently untrainable or undeclared."""
    layer = _realised(case, backend_name)
    native = layer.native
    trainable = [s.name for s in layer.weight_specs if s.trainable]
    frozen = [s.name for s in layer.weight_specs if not s.trainable]
    if backend_name == "torch":
        assert [n for n, _ in native.named_parameters()] == trainable
        assert sorted(n for n, _ in native.named_buffers()) == sorted(frozen)
    else:
        # A Keras variable name cannot hold "/": a wrapper's or MultiHeadAttention's weights
        # ("forward_lstm/kernel", "query/kernel") are named by their last part in Keras.
        def last(names):
            return [n.rsplit("/", 1)[-1] for n in names]

        assert [v.name for v in native.trainable_weights] == last(trainable)
        assert sorted(v.name for v in native.non_trainable_weights) == sorted(last(frozen))
    ids = {id(p) for p in backend_module(backend_name).layers.params(native)}
    assert len(ids) == len(trainable)


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("case", WEIGHTED, ids=lambda c: c.layer.__name__)
def test_weights_round_trip_and_freeze(case, backend_name):
    layer = _realised(case, backend_name)
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(w.shape).astype("float32") for w in layer.weights]
    layer.set_weights(arrays)
    for got, want in zip(layer.get_weights(), arrays, strict=True):
        np.testing.assert_array_equal(got, want)
    layer.trainable = False
    assert layer.trainable_weights == []
    assert backend_module(backend_name).layers.params(layer.native) == []
    assert len(layer.non_trainable_weights) == len(layer.weights)


@pytest.mark.parametrize("case", FIRST, ids=lambda c: c.layer.__name__)
def test_config_round_trip(case):
    layer = case.make()
    clone = dn.layers.get(dn.layers.serialize(layer))
    assert type(clone) is type(layer)
    assert clone.get_config() == layer.get_config()


_BAD = [pytest.param(c, i, id=f"{c.name}-bad{i}") for c in CASES for i in range(len(c.errors))]


@pytest.mark.parametrize(("case", "index"), _BAD)
def test_bad_input_same_error_on_both_backends(case, index):
    bad = case.errors[index]
    messages = {}
    for backend_name in BACKENDS:
        with dn.use_backend(backend_name), pytest.raises(bad.error, match=bad.match) as info:
            layer = case.make("float32", **bad.kwargs)
            if bad.input_shape is None and bad.inputs is None:
                pytest.fail(f"constructing {case.layer.__name__}({dict(bad.kwargs)}) did not raise")
            x, call_arguments = bad.arguments(case.multi)
            layer(x, **call_arguments)
        messages[backend_name] = str(info.value)
        if bad.input_shape is not None or bad.inputs is not None:
            # nothing half-built after the failure
            assert not layer.built and layer.native is None
    assert len(set(messages.values())) == 1, messages
    message = messages["torch"]
    # Names the layer (its class), and what was expected.
    assert case.layer.__name__ in message and re.search(r"expect", message), message


@pytest.mark.parametrize("case", FIRST, ids=lambda c: c.layer.__name__)
def test_failed_construction_leaves_the_seed_generator(case):
    """Arguments are checked before initializers draw seeds: a construction that fails leaves
    dualnet's global generator where it was (the next layer gets the same weights)."""
    from dualnet import random

    dn.set_random_seed(123)
    expected = random.draw_seed()
    dn.set_random_seed(123)
    with pytest.raises(TypeError, match=r"trainable='no'.*expected a bool"):
        case.make(trainable="no")
    assert random.draw_seed() == expected
