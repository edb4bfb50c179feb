"""Recurrent layers (SimpleRNN, LSTM, GRU, Bidirectional) beyond the generic catalogue tests:
Keras's own constant-weight goldens on both backends, torch's and Keras's own layers given the
same weights, the fused and loop paths on torch, the weight layout, the portable dropout masks,
masks and call arguments.
"""

from __future__ import annotations

import numpy as np
import pytest
from frameworks import keras as _keras
from frameworks import torch as _torch

import dualnet as dn
from dualnet._backend import BACKENDS
from dualnet.layers.recurrent.base_rnn import dropout_masks
from dualnet.reference.layers import layer_config
from dualnet.reference.layers import recurrent as R

L = dn.layers
C = dn.initializers.Constant


def _constant(cls, units, **kwargs):
    """Keras's test layers: kernel 0.01, recurrent kernel 0.02, bias 0.03 (LSTM's forget slice
    1 by unit_forget_bias)."""
    return cls(units, kernel_initializer=C(value=0.01), recurrent_initializer=C(value=0.02),
               bias_initializer=C(value=0.03), **kwargs)  # fmt: skip


SEQ_3x6x4 = np.arange(72).reshape((3, 6, 4)).astype("float32")
SEQ_2x3x4 = np.arange(24).reshape((2, 3, 4)).astype("float32")
SEQ_2x4x3 = np.arange(24).reshape((2, 4, 3)).astype("float32")
MASK_LSTM = np.array([[True, True, True, False], [True, True, False, False]])
MASK_GRU = np.array([[True, True, False, True], [True, False, False, True]])


def _rows(*values):
    """Keras's goldens repeat each value across the units."""
    return lambda units: np.array([[v] * units for v in values])


# (id, layer factory, input, mask, expected): copied from keras/src/layers/rnn/*_test.py (3.15).
GOLDENS = [
    ("lstm", lambda: _constant(L.LSTM, 3), SEQ_3x6x4, None,
     _rows(0.6288687, 0.86899155, 0.9460773)(3)),
    ("lstm-backwards", lambda: _constant(L.LSTM, 3, go_backwards=True), SEQ_3x6x4, None,
     _rows(0.35622165, 0.74789524, 0.8872726)(3)),
    ("lstm-unroll", lambda: _constant(L.LSTM, 3, unroll=True), SEQ_3x6x4, None,
     _rows(0.6288687, 0.86899155, 0.9460773)(3)),
    ("lstm-no-forget-bias", lambda: _constant(L.LSTM, 3, unit_forget_bias=False), SEQ_3x6x4,
     None, _rows(0.57019705, 0.8661914, 0.9459622)(3)),
    ("lstm-no-bias", lambda: _constant(L.LSTM, 3, use_bias=False), SEQ_3x6x4, None,
     _rows(0.54986924, 0.86226785, 0.9443936)(3)),
    ("lstm-masked", lambda: _constant(L.LSTM, 2), SEQ_2x4x3, MASK_LSTM,
     _rows(0.11755939, 0.28556206)(2)),
    ("lstm-masked-sequences", lambda: _constant(L.LSTM, 2, return_sequences=True), SEQ_2x4x3,
     MASK_LSTM, _rows(0.01588910, 0.05552048, 0.11755939, 0.11755939)(2)),
    ("gru", lambda: _constant(L.GRU, 3), SEQ_3x6x4, None,
     _rows(0.5217289, 0.6371659, 0.39384964)(3)),
    ("gru-backwards", lambda: _constant(L.GRU, 3, go_backwards=True), SEQ_3x6x4, None,
     _rows(0.24406259, 0.611516, 0.3928808)(3)),
    ("gru-reset-before", lambda: _constant(L.GRU, 3, reset_after=False), SEQ_3x6x4, None,
     _rows(0.51447755, 0.6426879, 0.40208298)(3)),
    ("gru-no-bias", lambda: _constant(L.GRU, 3, use_bias=False), SEQ_3x6x4, None,
     _rows(0.49988455, 0.64701194, 0.4103359)(3)),
    ("gru-masked", lambda: _constant(L.GRU, 2), SEQ_2x4x3, MASK_GRU,
     _rows(0.19393763, 0.30818558)(2)),
    ("gru-masked-sequences", lambda: _constant(L.GRU, 2, return_sequences=True), SEQ_2x4x3,
     MASK_GRU, _rows(0.03606692, 0.09497581, 0.09497581, 0.19393763)(2)),
    ("gru-masked-zero-output",
     lambda: _constant(L.GRU, 2, return_sequences=True, zero_output_for_mask=True), SEQ_2x4x3,
     MASK_GRU, _rows(0.03606692, 0.09497581, 0.0, 0.19393763)(2)),
    ("simple-rnn", lambda: _constant(L.SimpleRNN, 4), SEQ_2x3x4, None,
     _rows(0.405432, 0.73605347)(4)),
    ("bidirectional-concat", lambda: L.Bidirectional(_constant(L.SimpleRNN, 2)), SEQ_2x3x4,
     None, np.array([[0.39687276, 0.39687276, 0.10004295, 0.10004295],
                     [0.7237238, 0.7237238, 0.53391594, 0.53391594]])),
    ("bidirectional-ave", lambda: L.Bidirectional(_constant(L.SimpleRNN, 2), merge_mode="ave"),
     SEQ_2x3x4, None, _rows(0.24845785, 0.6288199)(2)),
    ("bidirectional-masked", lambda: L.Bidirectional(_constant(L.GRU, 2)), SEQ_2x4x3, MASK_GRU,
     np.array([[0.19393763, 0.19393763, 0.11669192, 0.11669192],
               [0.30818558, 0.30818558, 0.28380975, 0.28380975]])),
]  # fmt: skip


@pytest.mark.parametrize(("factory", "x", "mask", "expected"),
                         [pytest.param(*g[1:], id=g[0]) for g in GOLDENS])  # fmt: skip
def test_keras_goldens(factory, x, mask, expected, backend):
    """Keras's own expected outputs, with dualnet's initializers making the weights (so the
    LSTM goldens also check unit_forget_bias with a constant bias initializer)."""
    layer = factory()
    out = dn.to_numpy(layer(x, mask=mask))
    if out.ndim == 3:  # Keras's sequence goldens are for the first sample
        out = out[0]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


# -- torch ---------------------------------------------------------------------------------------


def _swap_gates(w, units):
    """GRU gate blocks along the last axis: torch's (r, z, n) <-> Keras's (z, r, h)."""
    u = units
    return np.concatenate([w[..., u : 2 * u], w[..., :u], w[..., 2 * u :]], axis=-1)


def _from_torch(module, kind):
    """Canonical (Keras) weights of a one-layer torch ``nn.LSTM``/``nn.GRU``/``nn.RNN``: what a
    torch user's checkpoint maps to."""
    w_ih, w_hh, b_ih, b_hh = (getattr(module, n).detach().numpy().astype(np.float64)
                              for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0",
                                        "bias_hh_l0"))  # fmt: skip
    if kind == "gru":
        u = module.hidden_size
        return [_swap_gates(w_ih.T, u), _swap_gates(w_hh.T, u),
                np.stack([_swap_gates(b_ih, u), _swap_gates(b_hh, u)])]  # fmt: skip
    return [w_ih.T, w_hh.T, b_ih + b_hh]


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
def test_torch_modules_map_in(kind, monkeypatch):
    """torch's own nn.LSTM/GRU/RNN (random weights, batch_first) and dualnet's layer given the
    mapped weights agree, and dualnet ran torch's fused kernel."""
    torch = _torch()
    torch.manual_seed(0)
    f, u, steps = 4, 5, 6
    if kind == "lstm":
        module, layer = torch.nn.LSTM(f, u, batch_first=True), L.LSTM(u, return_state=True)
    elif kind == "gru":
        module, layer = torch.nn.GRU(f, u, batch_first=True), L.GRU(u, return_state=True)
    else:
        module = torch.nn.RNN(f, u, batch_first=True, nonlinearity=kind.removeprefix("rnn_"))
        layer = L.SimpleRNN(u, activation=kind.removeprefix("rnn_"), return_state=True)
    module = module.double()
    layer = type(layer).from_config({**layer.get_config(), "dtype": "float64",
                                     "return_sequences": True})  # fmt: skip
    x = np.random.default_rng(0).standard_normal((3, steps, f))
    expected, state = module(torch.as_tensor(x))
    calls = []
    fused = getattr(torch._VF, kind)
    monkeypatch.setattr(torch._VF, kind, lambda *a: calls.append(kind) or fused(*a),
                        raising=False)  # fmt: skip
    with dn.use_backend("torch"):
        layer.build(x.shape)
        layer.set_weights(_from_torch(module, kind))
        out = layer(x)
    assert calls == [kind]
    np.testing.assert_allclose(dn.to_numpy(out[0]), expected.detach().numpy(), rtol=1e-12,
                               atol=1e-13)  # fmt: skip
    h_n = state[0] if kind == "lstm" else state
    np.testing.assert_allclose(dn.to_numpy(out[1]), h_n[0].detach().numpy(), atol=1e-13)
    if kind == "lstm":
        np.testing.assert_allclose(dn.to_numpy(out[2]), state[1][0].detach().numpy(),
                                   atol=1e-13)  # fmt: skip


def _forced_loop(monkeypatch):
    from dualnet.backends.torch.layers import recurrent as TR

    monkeypatch.setattr(TR, "fused_kind", lambda layer: None)


@pytest.mark.parametrize("cls", [L.LSTM, L.GRU, L.SimpleRNN])
def test_torch_fused_and_loop_paths_agree(cls, monkeypatch):
    """The same layer, weights and initial state through torch's fused kernel and through
    dualnet's loop: outputs, states and every gradient agree to float64 rounding."""
    torch = _torch()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5, 4))
    h0 = [rng.standard_normal((3, 3)) for _ in range(2)]
    results = []
    for loop in (False, True):
        with monkeypatch.context() as m, dn.use_backend("torch"):
            if loop:
                _forced_loop(m)
            dn.set_random_seed(0)  # the same initial weights both times
            layer = cls(3, return_sequences=True, return_state=True, go_backwards=True,
                        dtype="float64")  # fmt: skip
            xi = torch.as_tensor(x).requires_grad_()
            states = [torch.as_tensor(h).requires_grad_() for h in h0[: len(layer.state_names)]]
            outs = layer(xi, initial_state=states)
            total = sum((o * (i + 1.0)).sum() for i, o in enumerate(outs))
            grads = torch.autograd.grad(total, [xi, *states, *layer.native.parameters()])
            results.append([t.detach().numpy() for t in (*outs, *grads)])
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


# -- TensorFlow ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [(L.LSTM, {}), (L.GRU, {}), (L.GRU, {"reset_after": False}), (L.SimpleRNN, {})],
    ids=["lstm", "gru", "gru-reset-before", "simple-rnn"],
)
def test_tensorflow_matches_keras_own_layer(cls, kwargs):
    """Keras's own layer with the same weights; dualnet's own Keras layer (taken with dropout,
    here in inference) too, masks included."""
    keras = _keras()
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 5, 4))
    mask = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 1], [1, 0, 1, 0, 1]], bool)
    own = getattr(keras.layers, cls.__name__)(3, return_sequences=True, dtype="float64",
                                              **kwargs)  # fmt: skip
    expected = own(x, mask=mask).numpy()
    weights = [v.numpy() for v in own.weights]
    for extra in ({}, {"dropout": 0.5, "seed": 1}):
        with dn.use_backend("tensorflow"):
            layer = cls(3, return_sequences=True, dtype="float64", **kwargs, **extra)
            layer.build(x.shape)
            layer.set_weights(weights)
            out = layer(x, mask=mask)
        kind = type(layer.native).__name__
        assert (kind == "Recurrent") == bool(extra), kind
        np.testing.assert_allclose(dn.to_numpy(out), expected, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("merge_mode", ["concat", None])
def test_bidirectional_matches_keras_own_wrapper(merge_mode, backend):
    """keras.layers.Bidirectional with the same weights and mask (it forces zeros at masked
    steps with return_sequences) and return_state: the same list on both backends."""
    keras = _keras()
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 5, 4))
    mask = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 1], [1, 0, 1, 0, 1]], bool)
    own = keras.layers.Bidirectional(
        keras.layers.LSTM(3, return_sequences=True, return_state=True, dtype="float64"),
        merge_mode=merge_mode, dtype="float64",
    )  # fmt: skip
    own.build(x.shape)
    weights = [rng.standard_normal(tuple(v.shape)) for v in own.weights]
    own.set_weights(weights)
    expected = [t.numpy() for t in own(x, mask=mask)]
    layer = L.Bidirectional(L.LSTM(3, return_sequences=True, return_state=True),
                            merge_mode=merge_mode, dtype="float64")  # fmt: skip
    layer.build(x.shape)
    layer.set_weights(weights)
    out = layer(x, mask=mask)
    assert len(out) == len(expected)
    for got, want in zip(out, expected, strict=True):
        np.testing.assert_allclose(dn.to_numpy(got), want, rtol=1e-12, atol=1e-13)


def test_keras_ignores_the_mask_with_initial_state_and_dualnet_does_not(backend):
    """Keras 3.15's Layer.__call__ fills ``mask`` only for a call with one tensor argument, so
    its LSTM called with ``initial_state`` runs over the padding; dualnet applies the mask."""
    keras = _keras()
    rng = np.random.default_rng(3)
    x, h0 = rng.standard_normal((2, 4, 3)), [rng.standard_normal((2, 2)) for _ in range(2)]
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool)
    layer = L.LSTM(2, dtype="float64")
    out = dn.to_numpy(layer(x, mask=mask, initial_state=h0))
    named = dict(zip(layer.weight_names(), layer.get_weights(), strict=True))
    expected = R.lstm(x, named, **layer_config(layer), mask=mask, initial_state=h0)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-13)
    # Keras's own layer, same weights, the mask attached to the input as a Masking layer does.
    own = keras.layers.LSTM(2, dtype="float64")
    own.build(x.shape)
    own.set_weights(layer.get_weights())
    tf_x = keras.ops.convert_to_tensor(x)
    tf_x._keras_mask = keras.ops.convert_to_tensor(mask)
    native = own(tf_x, initial_state=[keras.ops.convert_to_tensor(h) for h in h0]).numpy()
    assert np.max(np.abs(native[0] - expected[0])) > 1e-3  # row 0 is padded: Keras ran over it


# -- weights -------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_weight_layout_round_trip_and_names(backend_name):
    rng = np.random.default_rng(4)
    with dn.use_backend(backend_name):
        layer = L.Bidirectional(L.GRU(3, reset_after=True, name="gru"), name="bi")
        layer.build((2, 5, 4))
        assert [w.path for w in layer.weights] == [
            f"bi/{d}_gru/{n}" for d in ("forward", "backward")
            for n in ("kernel", "recurrent_kernel", "bias")
        ]  # fmt: skip
        assert layer.weight_shapes() == [(4, 9), (3, 9), (2, 9)] * 2
        arrays = [rng.standard_normal(s).astype("float32") for s in layer.weight_shapes()]
        layer.set_weights(arrays)
        layer(np.zeros((2, 5, 4), "float32"))  # realised
        for got, want in zip(layer.get_weights(), arrays, strict=True):
            np.testing.assert_array_equal(got, want)


def test_initial_weights_are_keras_defaults():
    layer = L.LSTM(4, bias_initializer="random_normal")
    layer.build((None, 3, 5))
    kernel, recurrent, bias = layer.get_weights()
    np.testing.assert_array_equal(bias[4:8], 1.0)  # unit_forget_bias, whatever the initializer
    assert np.all(bias[:4] != 0) and np.all(bias[8:] != 0)
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(4), atol=1e-6)  # orthogonal rows
    limit = np.sqrt(6 / (5 + 16))  # glorot_uniform of (5, 16)
    assert np.all(np.abs(kernel) <= limit)
    gru = L.GRU(2)
    gru.build((None, 3, 5))
    assert gru.weight_shapes()[2] == (2, 6)


def test_bidirectional_copies_start_from_other_weights_deterministically():
    inner = L.LSTM(3, dropout=0.2)
    first, second = L.Bidirectional(inner), L.Bidirectional(inner)
    for layer in (first, second):
        layer.build((None, 4, 2))
    a, b = first.get_weights(), second.get_weights()
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], a[3])  # forward and backward kernels differ
    assert first.forward_layer.seed != first.backward_layer.seed
    assert first.backward_layer.go_backwards and not first.forward_layer.go_backwards
    assert first.backward_layer.name == f"backward_{inner.name}"


# -- dropout -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "factory",
    [lambda: L.LSTM(3, dropout=0.3, recurrent_dropout=0.4, seed=7, return_sequences=True,
                    dtype="float64"),
     lambda: L.GRU(3, dropout=0.5, seed=7, return_sequences=True, dtype="float64"),
     lambda: L.SimpleRNN(3, recurrent_dropout=0.5, seed=7, return_sequences=True,
                         dtype="float64")],
    ids=["lstm-per-gate", "gru-input-only", "simple-rnn-recurrent-only"],
)  # fmt: skip
def test_dropout_masks_identical_on_both_backends_call_after_call(factory):
    x = np.random.default_rng(5).standard_normal((2, 4, 3))
    outs = {}
    for name in BACKENDS:
        with dn.use_backend(name):
            dn.set_random_seed(1)
            layer = factory()
            outs[name] = [dn.to_numpy(layer(x, training=True)) for _ in range(3)]
            layer(x)  # inference draws nothing
            assert layer.training_calls == 3
    named = dict(zip(layer.weight_names(), layer.get_weights(), strict=True))
    fn = getattr(R, dn.layers.snake_case(type(layer).__name__))
    for k in range(3):
        np.testing.assert_allclose(outs["torch"][k], outs["tensorflow"][k], rtol=1e-12,
                                   atol=1e-13)  # fmt: skip
        expected = fn(x, named, **layer_config(layer), training=True, call=k)
        np.testing.assert_allclose(outs["torch"][k], expected, rtol=1e-12, atol=1e-13)
    assert not np.allclose(outs["torch"][0], outs["torch"][1])  # new masks each call


def test_dropout_mask_definition():
    """Input uniforms first, then recurrent ones, from default_rng([seed, call]); kept where
    u >= rate, scaled by 1/(1 - rate); one mask per gate only with recurrent dropout."""
    din, drec = dropout_masks(3, 2, batch=2, features=4, units=5, count=4, rate=0.25,
                              recurrent_rate=0.5)  # fmt: skip
    rng = np.random.default_rng([3, 2])
    u_in, u_rec = rng.random((4, 2, 4)), rng.random((4, 2, 5))
    np.testing.assert_array_equal(din, np.where(u_in >= 0.25, 1 / 0.75, 0.0))
    np.testing.assert_array_equal(drec, np.where(u_rec >= 0.5, 2.0, 0.0))
    assert L.LSTM(2, dropout=0.5).mask_count == 1
    assert L.GRU(2, recurrent_dropout=0.1).mask_count == 3
    assert dropout_masks(3, 0, 2, 4, 5, 1, 0.0, 0.0) == (None, None)


# -- masks and call arguments --------------------------------------------------------------------


def test_output_masks(backend):
    x = np.random.default_rng(6).standard_normal((2, 4, 3)).astype("float32")
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 0]], bool)
    core = dn._backend.backend_module(backend).core
    seq = L.GRU(2, return_sequences=True, return_state=True)(x, mask=mask)
    np.testing.assert_array_equal(dn.to_numpy(core.get_mask(seq[0])), mask)
    assert core.get_mask(seq[1]) is None
    assert core.get_mask(L.LSTM(2)(x, mask=mask)) is None
    both = L.Bidirectional(L.LSTM(2, return_sequences=True), merge_mode=None)(x, mask=mask)
    assert all(np.array_equal(dn.to_numpy(core.get_mask(o)), mask) for o in both)


def test_functional_model_with_states(backend):
    """Input -> LSTM(return_state) whose final states initialise a second LSTM (call
    arguments recorded in the functional graph), against the reference."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 5, 3))
    inp = dn.Input((5, 3), dtype="float64")
    encoder = L.LSTM(4, return_state=True, dtype="float64")
    _, h, c = encoder(inp)
    decoder = L.LSTM(4, return_sequences=True, go_backwards=True, dtype="float64")
    model = dn.Model(inp, decoder(inp, initial_state=[h, c]))
    out = dn.to_numpy(model(x))
    w_enc = dict(zip(encoder.weight_names(), encoder.get_weights(), strict=True))
    w_dec = dict(zip(decoder.weight_names(), decoder.get_weights(), strict=True))
    _, h_ref, c_ref = R.lstm(x, w_enc, **layer_config(encoder))
    expected = R.lstm(x, w_dec, **layer_config(decoder), initial_state=[h_ref, c_ref])
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
    assert model.outputs[0].shape == (None, 5, 4)


def test_arguments_refused_before_any_framework_runs():
    with pytest.raises(ValueError, match=r"stateful=True.*pass the last states"):
        L.LSTM(2, stateful=True)
    with pytest.raises(ValueError, match=r"dropout=1.*< 1"):
        L.GRU(2, dropout=1)
    layer = L.LSTM(2)
    with pytest.raises(ValueError, match=r"initial_state expected a list of 2 tensors"):
        layer(np.zeros((3, 4, 5), "float32"), initial_state=[np.zeros((3, 2), "float32")])
    assert not layer.built
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['initial_states'\]"):
        layer(np.zeros((3, 4, 5), "float32"), initial_states=None)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("kwargs", [{}, {"activation": "softsign"}], ids=["fused", "loop"])
def test_half_precision_computes_in_float32_and_rounds_once(dtype, kwargs):
    """float16/bfloat16 layers compute in float32 on both backends (torch's fused kernel and
    loop, Keras's loop) and round the outputs once: each backend is within one rounding (plus
    the float32 error) of the exact value, so the two are within two."""
    from dualnet.parity.cases import round_to

    rng = np.random.default_rng(8)
    x = round_to(rng.standard_normal((3, 5, 4)), dtype)
    shapes = [(4, 12), (3, 12), (12,)]  # kernel, recurrent_kernel, bias of LSTM(3) on 4 features
    weights = [round_to(0.5 * rng.standard_normal(s), dtype) for s in shapes]
    outs = {}
    for name in BACKENDS:
        with dn.use_backend(name):
            layer = L.LSTM(3, return_sequences=True, dtype=dtype, **kwargs)
            layer.build(x.shape)
            layer.set_weights(weights)
            outs[name] = dn.to_numpy(layer(x)).astype(np.float64)
    named = dict(zip(layer.weight_names(), [w.astype(np.float64) for w in weights], strict=True))
    exact = R.lstm(x.astype(np.float64), named, **layer_config(layer))
    u = {"float16": 2.0**-11, "bfloat16": 2.0**-8}[dtype]
    bound = u * np.abs(exact) + 1e-5 * (1 + np.abs(exact))  # one rounding + float32 math
    for name in BACKENDS:
        assert np.all(np.abs(outs[name] - exact) <= bound), name
    assert np.all(np.abs(outs["torch"] - outs["tensorflow"]) <= 2 * bound)
