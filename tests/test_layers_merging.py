"""Merging layers (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate) beyond the
generic catalogue tests: the residual pattern in a functional model on both backends, the
torch/Keras divergences made visible, shapes with None dims, validation.
"""

from __future__ import annotations

import numpy as np
import pytest
from frameworks import keras as _keras
from frameworks import torch as _torch
from tolerances import assert_close

import dualnet as dn
from dualnet._backend import BACKENDS, backend_module
from dualnet.reference.layers import core as RC
from dualnet.reference.layers import merging as R

L = dn.layers
RESIDUAL_K = 4 + 1 + 1  # the residual block's longest sum: Dense's 4 inputs, its bias, the Add


def _residual(backend):
    dn.models.clear_session()
    dn.set_random_seed(0)
    with dn.use_backend(backend):
        x = dn.Input((4,), name="input")
        y = L.Dense(4, name="dense")(x)
        z = L.Add(name="add")([x, y])
        return dn.Model(x, z, name="residual")


def _summary(model):
    out = []
    model.summary(print_fn=out.append)
    return out[0]


def test_residual_model_matches_reference_and_round_trips(backend):
    model = _residual(backend)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    kernel, bias = model.get_weights()
    expected = x + RC.dense(x, kernel, bias)
    assert_close(dn.to_numpy(model(x)), expected, "float32", reduction=RESIDUAL_K)
    assert_close(model.predict(x), expected, "float32", reduction=RESIDUAL_K)
    assert [n.layer.name for n in model._nodes] == ["dense", "add"]

    clone = dn.Model.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert [type(layer) for layer in clone.layers] == [type(layer) for layer in model.layers]
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(dn.to_numpy(clone(x)), dn.to_numpy(model(x)))


def test_residual_summary_has_connected_to_like_keras(backend):
    keras = _keras()
    model = _residual(backend)
    k_in = keras.Input((4,), name="input")
    k_out = keras.layers.Add(name="add")([k_in, keras.layers.Dense(4, name="dense")(k_in)])
    captured = []
    keras.Model(k_in, k_out, name="residual").summary(
        print_fn=lambda text, line_break=False: captured.append(text)
    )
    text = _summary(model)
    assert "Connected to" in captured[0]
    assert text == captured[0]


def test_residual_model_is_the_same_on_both_backends():
    x = np.random.default_rng(1).normal(size=(3, 4)).astype("float32")
    a, b = _residual("torch"), _residual("tensorflow")
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert_close(dn.to_numpy(a(x)), dn.to_numpy(b(x)), "float32", reduction=RESIDUAL_K)
    moved = a.to_backend("tensorflow")
    assert_close(dn.to_numpy(moved(x)), dn.to_numpy(a(x)), "float32", reduction=RESIDUAL_K)


def test_two_input_model_trains_identically_on_both_backends():
    rng = np.random.default_rng(2)
    xa, xb, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2)), rng.normal(size=(8, 1))
    dn.models.clear_session()
    dn.set_random_seed(3)
    with dn.use_backend("torch"):
        a = dn.Input((3,), dtype="float64")
        b = dn.Input((2,), dtype="float64")
        h = L.Concatenate(dtype="float64")([a, b])
        h = L.Dense(5, activation="tanh", dtype="float64")(h)
        m = L.Maximum(dtype="float64")([h, L.Dense(5, dtype="float64")(h)])
        model = dn.Model([a, b], L.Dense(1, dtype="float64")(m))
    twin = model.to_backend("tensorflow")
    losses = {}
    for net in (model, twin):
        net.compile(optimizer="sgd", loss="mse")
        losses[net.backend] = [net.train_step([xa, xb], y)["loss"] for _ in range(3)]
    # The longest sum: the kernel gradients' over the batch of 8 (fan-ins are 5 + bias); 3 SGD
    # steps carry rounding differences forward like a random walk (x sqrt(3), as the parity
    # suite's network training cases).
    assert_close(losses["torch"], losses["tensorflow"], "float64", reduction=8,
                 factor=3**0.5, why="3 SGD steps: x sqrt(3)")  # fmt: skip
    assert losses["torch"][2] < losses["torch"][0]


def test_frameworks_broadcast_differently_and_dualnet_refuses(backend):
    """Keras gives a lower-rank input new axes after the batch, torch (numpy) before it: the
    same two arrays add up to different results, silently."""
    torch = _torch()
    keras = _keras()
    a = np.arange(9.0).reshape(3, 3)
    b = np.arange(27.0).reshape(3, 3, 3)
    keras_sum = keras.layers.Add()([a, b]).numpy()  # a[i] added to every row of b[i]
    torch_sum = (torch.from_numpy(a) + torch.from_numpy(b)).numpy()  # a added to every b[i]
    np.testing.assert_array_equal(keras_sum, b + a[:, None, :])
    np.testing.assert_array_equal(torch_sum, b + a[None, :, :])
    assert np.abs(keras_sum - torch_sum).max() > 1.0
    layer = L.Add()
    with pytest.raises(ValueError, match=r"same shape, got shapes \(3, 3\), \(3, 3, 3\)"):
        layer([a, b])
    assert not layer.built and layer.native is None


def test_concatenate_default_axis_is_the_last_not_torch_cat_dim_0(backend):
    torch = _torch()
    xs = [np.ones((2, 3), "float32"), np.zeros((2, 3), "float32")]
    assert tuple(torch.cat([torch.from_numpy(x) for x in xs]).shape) == (4, 3)  # batches joined
    out = dn.to_numpy(L.Concatenate()(xs))
    assert out.shape == (2, 6)
    np.testing.assert_array_equal(out, R.concatenate(xs))
    with pytest.raises(ValueError, match=r"axis=0.*the batch axis 0 excluded"):
        L.Concatenate(axis=0)(xs)


def _grads(backend, layer, xs, cotangent):
    core = backend_module(backend).core
    tensors = [core.convert_to_tensor(x) for x in xs]
    _, grads = core.vjp(lambda *ts: layer(list(ts)), tensors, range(len(xs)), cotangent)
    return [dn.to_numpy(g) for g in grads]


@pytest.mark.parametrize(("cls", "native"), [(L.Maximum, "maximum"), (L.Minimum, "minimum")])
def test_gradient_at_a_tie_goes_to_the_first_input(cls, native, backend):
    """torch's own maximum/minimum split a tie's gradient in halves; TensorFlow (Keras) gives it
    all to the first input, and so does dualnet on both backends."""
    torch = _torch()
    a = np.array([[1.0, 2.0, 3.0]])
    b = np.array([[1.0, 0.0, 3.0]])  # ties at columns 0 and 2
    ta = torch.tensor(a, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    getattr(torch, native)(ta, tb).sum().backward()
    assert ta.grad.numpy()[0, 0] == 0.5 and tb.grad.numpy()[0, 0] == 0.5
    ga, gb = _grads(backend, cls(dtype="float64"), [a, b], np.ones((1, 3)))
    np.testing.assert_array_equal(ga[0, [0, 2]], [1.0, 1.0])
    np.testing.assert_array_equal(gb[0, [0, 2]], [0.0, 0.0])
    # Untied: the gradient follows the extreme value.
    assert (ga[0, 1], gb[0, 1]) == ((1.0, 0.0) if native == "maximum" else (0.0, 1.0))


def test_maximum_propagates_nan(backend):
    a = np.array([[np.nan, 1.0]], "float32")
    b = np.array([[0.0, np.nan]], "float32")
    for cls in (L.Maximum, L.Minimum):
        assert np.isnan(dn.to_numpy(cls()([a, b]))).all()


def test_half_precision_merges_are_bit_identical_across_backends():
    rng = np.random.default_rng(4)
    xs = [rng.normal(size=(6, 7)).astype("float16") for _ in range(3)]
    for cls in (L.Add, L.Multiply, L.Average, L.Maximum):
        outs = []
        for name in BACKENDS:
            with dn.use_backend(name):
                outs.append(dn.to_numpy(cls(dtype="float16")(xs)))
        np.testing.assert_array_equal(outs[0], outs[1], err_msg=cls.__name__)
        # left to right, each step rounded to float16 (what Keras computes)
        step = xs[0]
        op = {L.Add: np.add, L.Multiply: np.multiply, L.Average: np.add, L.Maximum: np.maximum}
        for x in xs[1:]:
            step = op[cls](step, x).astype("float16")
        if cls is L.Average:
            step = (step.astype("float32") / 3).astype("float16")
        np.testing.assert_array_equal(outs[0], step, err_msg=cls.__name__)


def test_shapes_with_unknown_dims_in_the_functional_api(backend):
    a = dn.Input((None, 3))
    b = dn.Input((5, 3))
    assert L.Add()([a, b]).shape == (None, 5, 3)
    c = dn.Input((None, 2))
    cat = L.Concatenate()([a, c])
    assert cat.shape == (None, None, 5)
    assert L.Concatenate(axis=1)([a, b]).shape == (None, None, 3)
    assert L.Concatenate(axis=1)([b, b]).shape == (None, 10, 3)
    model = dn.Model([a, c], cat)
    out = model([np.ones((2, 4, 3), "float32"), np.zeros((2, 4, 2), "float32")])
    assert tuple(out.shape) == (2, 4, 5)
    with pytest.raises(ValueError, match=r"same shape, got shapes \(None, None, 3\), "
                                         r"\(None, None, 2\)"):  # fmt: skip
        L.Add()([a, c])


def test_subtract_takes_exactly_two_inputs(backend):
    x = np.ones((2, 3), "float32")
    with pytest.raises(ValueError, match=r"Subtract 'subtract.*' expects exactly 2 inputs, got 3"):
        L.Subtract()([x, x, x])
    np.testing.assert_array_equal(dn.to_numpy(L.Subtract()([3 * x, x])), 2 * x)


def test_built_layer_refuses_other_shapes_and_input_counts(backend):
    layer = L.Multiply()
    x = np.ones((2, 3), "float32")
    layer([x, x])
    layer([np.ones((7, 3), "float32")] * 2)  # another batch size is fine
    with pytest.raises(ValueError, match=r"same shape, got shapes \(2, 4\), \(2, 4\) \(built "
                                         r"for \[\(None, 3\), \(None, 3\)\]\)"):  # fmt: skip
        layer([np.ones((2, 4), "float32")] * 2)
    with pytest.raises(ValueError, match=r"built for 2 inputs"):
        layer([x, x, x])
    cat = L.Concatenate()
    cat([x, np.ones((2, 5), "float32")])
    with pytest.raises(ValueError, match=r"agree except along axis -1"):
        cat([x, np.ones((2, 6), "float32")])


def test_merging_layer_needs_a_list(backend):
    with pytest.raises(TypeError, match=r"takes a list of tensors"):
        L.Add()(np.ones((2, 3), "float32"))


def test_concatenate_config_and_summary_counts(backend):
    layer = L.Concatenate(axis=2, name="cat")
    assert layer.get_config() == {"name": "cat", "dtype": "float32", "axis": 2}
    assert L.Concatenate.from_config(layer.get_config()).axis == 2
    a = dn.Input((2, 3))
    model = dn.Model(a, layer([a, a]))
    assert model.count_params() == 0
    assert model.layers[1].output_shape == (None, 2, 6)
