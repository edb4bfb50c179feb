"""Model API: Sequential, functional and subclassed models on both backends (parity itself is
in test_parity.py, family "model")."""

from __future__ import annotations

import numpy as np
import pytest
from frameworks import keras as _keras

import dualnet as dn
from dualnet._backend import backend_module
from dualnet.reference import layers as R

KINDS = ("sequential", "functional", "subclassed")
ACTS = ("relu", "sigmoid", "softmax")  # the seed tutorial: 3 -> 3 -> 2 -> 2
X = np.random.default_rng(0).normal(size=(5, 3))


class Tutorial(dn.Model):
    def __init__(self, hidden=3, dtype="float32"):
        super().__init__(name="tutorial")
        self.d1 = dn.layers.Dense(hidden, activation="relu", dtype=dtype)
        self.d2 = dn.layers.Dense(2, activation="sigmoid", dtype=dtype)
        self.d3 = dn.layers.Dense(2, activation="softmax", dtype=dtype)

    def call(self, inputs):
        return self.d3(self.d2(self.d1(inputs)))


def build(kind, dtype="float32"):
    """The tutorial network, built on the active backend (subclassed: by one call)."""
    layers = [
        dn.layers.Dense(u, activation=a, dtype=dtype) for u, a in zip((3, 2, 2), ACTS, strict=True)
    ]
    if kind == "sequential":
        return dn.Sequential([dn.Input(shape=(3,), dtype=dtype), *layers], name="tutorial")
    if kind == "functional":
        inputs = x = dn.Input(shape=(3,), name="input", dtype=dtype)
        for layer in layers:
            x = layer(x)
        return dn.Model(inputs=inputs, outputs=x, name="tutorial")
    model = Tutorial(dtype=dtype)
    model(X)
    return model


def fresh(kind, backend, seed=0, dtype="float32"):
    """Same names and weights on every call: restart naming and the seed first."""
    dn.models.clear_session()
    dn.set_random_seed(seed)
    with dn.use_backend(backend):
        return build(kind, dtype)


def summary(model):
    out = []
    model.summary(print_fn=out.append)
    return out[0]


@pytest.mark.parametrize("kind", KINDS)
def test_forward_matches_reference(kind, backend):
    model = build(kind, "float64")
    y = model(X)
    assert backend_module(backend).core.is_tensor(y)
    expected = R.mlp(X, model.get_weights(), ACTS)
    np.testing.assert_allclose(dn.to_numpy(y), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_predict_batches_and_returns_numpy(kind, backend):
    model = build(kind)
    x = np.random.default_rng(1).normal(size=(7, 3))
    y = model.predict(x, batch_size=3)
    assert isinstance(y, np.ndarray) and y.shape == (7, 2)
    np.testing.assert_allclose(y, dn.to_numpy(model(x)), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="batch_size=0"):
        model.predict(x, batch_size=0)


@pytest.mark.parametrize("kind", KINDS)
def test_native_is_a_real_framework_model(kind, backend):
    model = build(kind)
    native = model.native
    if backend == "torch":
        import torch

        assert isinstance(native, torch.nn.Module)
        if kind == "sequential":
            assert isinstance(native, torch.nn.Sequential)
        assert len(list(native.parameters())) == 6
        y = native(torch.as_tensor(X, dtype=torch.float32))
    else:
        import keras

        assert isinstance(native, keras.Model)
        if kind == "sequential":
            assert isinstance(native, keras.Sequential)
        assert len(native.trainable_weights) == 6
        y = native(X.astype(np.float32))
    np.testing.assert_allclose(dn.to_numpy(y), dn.to_numpy(model(X)), rtol=1e-6, atol=1e-7)
    assert model.backend == backend


@pytest.mark.parametrize("kind", KINDS)
def test_weights_roundtrip_in_canonical_layout(kind, backend):
    model = build(kind)
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(3, 3), (3,), (3, 2), (2,), (2, 2), (2,)]
    assert [w.shape for w in model.weights] == shapes
    assert model.weights[0].path.endswith("/kernel") and model.count_params() == 26
    new = [np.random.default_rng(i).normal(size=s) for i, s in enumerate(shapes)]
    model.set_weights(new)
    for got, want in zip(model.get_weights(), new, strict=True):
        np.testing.assert_array_equal(got, want.astype(np.float32))
    if backend == "torch":  # torch keeps nn.Linear's (out, in): the transpose
        first = model.layers[-3] if kind != "functional" else model.layers[1]
        np.testing.assert_array_equal(dn.to_numpy(first.native.kernel), new[0].astype("f4").T)


@pytest.mark.parametrize("kind", KINDS)
def test_set_weights_is_atomic(kind, backend):
    model = build(kind)
    before = model.get_weights()
    bad_last = [*before[:-1], np.zeros(3)]  # every array right except the last
    with pytest.raises(ValueError, match=r"'tutorial/dense_\d+/bias' has shape \(2,\), got an "
                                         r"array of shape \(3,\)"):  # fmt: skip
        model.set_weights(bad_last)
    with pytest.raises(ValueError, match="expected 6 arrays"):
        model.set_weights(before[:5])
    with pytest.raises(TypeError, match="complex"):
        model.set_weights([*before[:-1], before[-1].astype(complex)])
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_weights_names_and_summary_on_both_backends(kind):
    torch_model = fresh(kind, "torch")
    tf_model = fresh(kind, "tensorflow")
    for a, b in zip(torch_model.get_weights(), tf_model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert [layer.name for layer in torch_model.layers] == [layer.name for layer in tf_model.layers]
    assert summary(torch_model) == summary(tf_model)
    np.testing.assert_allclose(dn.to_numpy(torch_model(X)), dn.to_numpy(tf_model(X)), rtol=1e-6,
                               atol=1e-7)  # fmt: skip


def test_tutorial_summary_text():
    model = fresh("sequential", "torch")
    text = summary(model)
    assert text.startswith('Model: "tutorial"\n')
    for row in ("dense (Dense)", "dense_1 (Dense)", "dense_2 (Dense)"):
        assert row in text
    assert "│ (None, 3)" in text and " Total params: 26 (104.00 B)" in text
    assert (
        " Trainable params: 26 (104.00 B)" in text and " Non-trainable params: 0 (0.00 B)" in text
    )


@pytest.mark.parametrize("kind", ("sequential", "functional"))
def test_summary_and_param_counts_equal_keras(kind, backend):
    """The same network built with real Keras layers: same counts, same summary text."""
    keras = _keras()
    model = fresh(kind, backend)
    names = [layer.name for layer in model.layers]
    k_layers = [keras.layers.Dense(u, activation=a, name=n)
                for u, a, n in zip((3, 2, 2), ACTS, names[-3:], strict=True)]  # fmt: skip
    if kind == "sequential":
        k_model = keras.Sequential([keras.Input((3,)), *k_layers], name="tutorial")
    else:
        inputs = x = keras.Input((3,), name="input")
        for layer in k_layers:
            x = layer(x)
        k_model = keras.Model(inputs, x, name="tutorial")
    assert [layer.name for layer in k_model.layers] == names
    assert [layer.count_params() for layer in k_model.layers] == [
        layer.count_params() for layer in model.layers
    ]
    assert k_model.count_params() == model.count_params() == 26
    captured = []
    k_model.summary(print_fn=lambda text, line_break=False: captured.append(text))
    assert summary(model) == captured[0]


def test_branching_summary_has_connected_to_column_like_keras(backend):
    keras = _keras()
    inputs = dn.Input((3,), name="input")
    h = dn.layers.Dense(3, activation="relu", name="trunk")(inputs)
    model = dn.Model(inputs, [dn.layers.Dense(2, name="head_a")(h),
                              dn.layers.Dense(4, name="head_b")(h)], name="two_heads")  # fmt: skip
    k_in = keras.Input((3,), name="input")
    k_h = keras.layers.Dense(3, name="trunk")(k_in)
    k_heads = [keras.layers.Dense(2, name="head_a")(k_h), keras.layers.Dense(4, name="head_b")(k_h)]
    k_model = keras.Model(k_in, k_heads, name="two_heads")
    captured = []
    k_model.summary(print_fn=lambda text, line_break=False: captured.append(text))
    assert "Connected to" in captured[0]
    assert summary(model) == captured[0]
    outs = model.predict(X)
    assert [o.shape for o in outs] == [(5, 2), (5, 4)]


def test_unbuilt_sequential_summary_like_keras():
    keras = _keras()
    dn.models.clear_session()
    model = dn.Sequential([dn.layers.Dense(3)])
    k_model = keras.Sequential([keras.layers.Dense(3, name="dense")], name="sequential")
    captured = []
    k_model.summary(print_fn=lambda text, line_break=False: captured.append(text))
    assert summary(model) == captured[0]  # "?" and "0 (unbuilt)"
    assert not model.built and model.backend is None


def test_lazy_sequential_builds_on_first_call_on_the_active_backend():
    model = dn.Sequential([dn.layers.Dense(3, activation="relu"), dn.layers.Dense(2)])
    with dn.use_backend("tensorflow"):
        y = model(X)
    assert model.backend == "tensorflow" and dn._ops.tensor_backend(y) == "tensorflow"
    assert model.layers[0].input_shape == (None, 3)
    with dn.use_backend("torch"):  # still a TensorFlow model: numpy in, TensorFlow out
        assert dn._ops.tensor_backend(model(X)) == "tensorflow"


@pytest.mark.parametrize("kind", KINDS)
def test_config_roundtrip(kind, backend):
    model = build(kind)
    config = model.get_config()
    clone = type(model).from_config(config)
    if kind == "subclassed":
        assert config == {"hidden": 3, "dtype": "float32"}
        clone(X)  # its __init__ draws new weights (as in Keras); to_backend copies them over
        assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]
        return
    assert clone.get_config() == config
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    # The initializer seeds are part of the config, so the clone draws the same weights.
    for a, b in zip(model.get_weights(), clone.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_subclassed_config_records_the_passed_arguments():
    # keras.Model.__new__ drops the arguments, so Keras 3.15 records the defaults instead.
    assert Tutorial(hidden=4).get_config() == {"hidden": 4, "dtype": "float32"}


@pytest.mark.parametrize("kind", KINDS)
def test_to_backend_gives_the_same_model(kind):
    dn.set_random_seed(0)
    with dn.use_backend("torch"):
        model = build(kind)
        model.set_weights([w + 0.5 for w in model.get_weights()])
    other = model.to_backend("tensorflow")
    assert model.backend == "torch" and other.backend == "tensorflow"
    for a, b in zip(model.get_weights(), other.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert summary(model) == summary(other)
    np.testing.assert_allclose(dn.to_numpy(other(X)), dn.to_numpy(model(X)), rtol=1e-6, atol=1e-7)
    back = dn.models.clone_to(other, "torch")
    assert back.backend == "torch" and summary(back) == summary(model)


@pytest.mark.parametrize("kind", KINDS)
def test_model_refuses_the_other_frameworks_tensor(kind):
    with dn.use_backend("torch"):
        model = build(kind)
    tf_tensor = backend_module("tensorflow").core.convert_to_tensor(X)
    with dn.use_backend("tensorflow"), pytest.raises(TypeError, match="built on 'torch'"):
        model(tf_tensor)


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_input_dimension_is_clear(kind, backend):
    model = build(kind)
    with pytest.raises(ValueError, match=r"expects .*3\)?, got shape \(2, 4\)"):
        model(np.ones((2, 4)))


def test_duplicate_layer_names_are_refused():
    with pytest.raises(ValueError, match="Name 'x' is already the name of a layer"):
        dn.Sequential([dn.layers.Dense(2, name="x"), dn.layers.Dense(2, name="x")])
    inputs = dn.Input((3,))
    y = dn.layers.Dense(2, name="y")(dn.layers.Dense(2, name="y")(inputs))
    with pytest.raises(ValueError, match="name 'y' is used by more than one layer"):
        dn.Model(inputs, y)


def test_disconnected_outputs_are_refused():
    a, b = dn.Input((3,), name="a"), dn.Input((3,), name="b")
    with pytest.raises(ValueError, match=r"not connected to `inputs`.*Input 'b'"):
        dn.Model(inputs=a, outputs=dn.layers.Dense(2)(b))


@pytest.mark.parametrize(
    ("shape", "error"), [((0,), ValueError), ((-3,), ValueError), ("3", TypeError),
                         (None, ValueError), ((2.5,), ValueError)]
)  # fmt: skip
def test_bad_input_shapes_are_clear(shape, error):
    with pytest.raises(error, match="Input: invalid shape="):
        dn.Input(shape=shape)


def test_multiple_inputs_and_outputs(backend):
    a, b = dn.Input((3,), name="a", dtype="float64"), dn.Input((2,), name="b", dtype="float64")
    ya = dn.layers.Dense(4, dtype="float64")(a)
    yb = dn.layers.Dense(1, activation="sigmoid", dtype="float64")(b)
    model = dn.Model([a, b], [ya, yb])
    xa, xb = X, X[:, :2]
    out_a, out_b = (dn.to_numpy(t) for t in model([xa, xb]))
    w = model.get_weights()
    np.testing.assert_allclose(out_a, R.dense(xa, w[0], w[1]), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out_b, R.dense(xb, w[2], w[3], "sigmoid"), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="expects a list of 2 inputs"):
        model(xa)


def test_gradient_helpers_give_canonical_layout(backend):
    model = build("sequential")
    b = backend_module(backend)
    params = b.models.trainable_params(model)
    x = b.core.convert_to_tensor(X.astype(np.float32))
    ct = np.ones((5, 2), np.float32)
    _, grads = b.core.vjp(lambda t: model(t), [x], [0], ct, params=params)
    canonical = b.models.canonical_grads(model, grads[1:])
    assert [tuple(g.shape) for g in canonical] == [w.shape for w in model.weights]


@pytest.mark.parametrize("kind", KINDS)
def test_plot_writes_a_png(kind, backend, tmp_path):
    from matplotlib.image import imread

    model = build(kind)
    path = model.plot(tmp_path / "model.png", show_shapes=True)
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 150
    assert image.std() > 0.05  # not a blank canvas
    with pytest.raises(ValueError, match="to_file="):
        model.plot(tmp_path / "model.svg")


def test_to_backend_keeps_a_layer_frozen_after_init():
    class Two(dn.Model):
        def __init__(self):
            super().__init__()
            self.a, self.b = dn.layers.Dense(3), dn.layers.Dense(2)

        def call(self, x):
            return self.b(self.a(x))

    model = Two()
    model(np.zeros((1, 4), "float32"))
    model.a.trainable = False  # not in get_config(): the twin must copy it
    for backend in ("tensorflow", "torch"):
        twin = model.to_backend(backend)
        assert [layer.trainable for layer in twin.layers] == [False, True]
        assert len(twin.trainable_weights) == 2
