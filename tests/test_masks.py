"""Masks across the layers (Note [Masks] in :mod:`dualnet.layers.base`): every layer's
``supports_masking`` is Keras's, masks propagate through Sequential and functional models as the
float64 reference says on both backends, merging layers combine and consume them as Keras's
do, and a layer that does not support masking drops one with Keras's warning.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from frameworks import keras as _keras

import dualnet as dn
from dualnet._backend import BACKENDS
from dualnet.parity import catalogue
from dualnet.parity.layer_cases import LayerCase
from dualnet.reference.layers import merging as RM
from dualnet.reference.layers import model_forward

L = dn.layers


def _mask(y):
    m = getattr(y, "_keras_mask", None)
    return None if m is None else dn.to_numpy(m)


# -- supports_masking is Keras's ---------------------------------------------------------------

# Keras's layer with minimal arguments, per dualnet class name (every public dualnet layer
# with a Keras counterpart must be here: the test below says which one is missing).
KERAS_ARGS = {
    "Activation": ("relu",), "Dense": (2,), "Embedding": (3, 2), "Masking": (),
    "Conv1D": (2, 3), "Conv1DTranspose": (2, 3), "Conv2D": (2, 3), "Conv2DTranspose": (2, 3),
    "Conv3D": (2, 3), "DepthwiseConv2D": (3,), "SeparableConv2D": (2, 3),
    "AveragePooling1D": (2,), "AveragePooling2D": (2,), "AveragePooling3D": (2,),
    "MaxPooling1D": (2,), "MaxPooling2D": (2,), "MaxPooling3D": (2,),
    "GlobalAveragePooling1D": (), "GlobalAveragePooling2D": (), "GlobalMaxPooling1D": (),
    "GlobalMaxPooling2D": (), "BatchNormalization": (), "GroupNormalization": (1,),
    "LayerNormalization": (), "RMSNormalization": (), "UnitNormalization": (),
    "Dropout": (0.5,), "GaussianDropout": (0.5,), "GaussianNoise": (0.5,),
    "SpatialDropout1D": (0.5,), "SpatialDropout2D": (0.5,), "Cropping1D": (), "Cropping2D": (),
    "Flatten": (), "Permute": ((2, 1),), "RepeatVector": (2,), "Reshape": ((2,),),
    "UpSampling1D": (), "UpSampling2D": (), "ZeroPadding1D": (), "ZeroPadding2D": (),
    "Add": (), "Average": (), "Concatenate": (), "Maximum": (), "Minimum": (), "Multiply": (),
    "Subtract": (), "ELU": (), "LeakyReLU": (), "PReLU": (), "ReLU": (), "Softmax": (),
    "SimpleRNN": (2,), "LSTM": (2,), "GRU": (2,), "MultiHeadAttention": (2, 2),
    "Attention": (), "AdditiveAttention": (), "Rescaling": (2.0,),
}  # fmt: skip
# Layers that wrap another: built around a recurrent layer on both sides.
WRAPPERS = {"Bidirectional"}

CASES = [c for c in catalogue.load() if isinstance(c, LayerCase)]
FIRST = {c.layer.__name__: c for c in reversed(CASES)}
CLASSES = {n: c for n, c in L.public_classes().items() if n != "InputLayer"}


def _keras_layer(name):
    keras = _keras()
    cls = getattr(keras.layers, name)
    if name in WRAPPERS:
        return cls(keras.layers.LSTM(2))
    return cls(*KERAS_ARGS[name])


def test_every_layer_with_a_keras_counterpart_is_listed():
    keras = _keras()
    counterparts = {n for n in CLASSES if hasattr(keras.layers, n)}
    missing = sorted(counterparts - set(KERAS_ARGS) - WRAPPERS)
    assert not missing, f"add minimal Keras arguments for {missing}"


@pytest.mark.parametrize("name", sorted(n for n in CLASSES if n in {*KERAS_ARGS, *WRAPPERS}))
def test_supports_masking_is_keras(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras's deprecation notes on some constructors
        expected = _keras_layer(name).supports_masking
    if name in FIRST:
        layer = FIRST[name].make()
    elif name in WRAPPERS:
        layer = CLASSES[name](L.LSTM(2))
    else:  # dualnet's arguments are Keras's
        layer = CLASSES[name](*KERAS_ARGS[name])
    assert layer.supports_masking == expected


def test_embedding_supports_masking_follows_mask_zero_as_in_keras():
    keras = _keras()
    for mask_zero in (False, True):
        want = keras.layers.Embedding(3, 2, mask_zero=mask_zero).supports_masking
        assert L.Embedding(3, 2, mask_zero=mask_zero).supports_masking is want is mask_zero


# -- propagation through models ----------------------------------------------------------------

IDS = np.array([[3, 1, 4, 0, 0], [2, 0, 0, 0, 0], [5, 9, 2, 6, 5], [0, 0, 0, 0, 0]])


def _sequential():
    return dn.Sequential([
        dn.Input((5,), dtype="int32"),
        L.Embedding(10, 4, mask_zero=True, dtype="float64"),
        L.Dense(3, activation="tanh", dtype="float64"),
        L.Dropout(0.5, dtype="float64"),
        L.LayerNormalization(dtype="float64"),
        L.GlobalAveragePooling1D(dtype="float64"),
    ])  # fmt: skip


def _functional():
    ids = dn.Input((5,), dtype="int32")
    a = L.Embedding(10, 4, mask_zero=True, dtype="float64")(ids)
    b = L.Dense(4, dtype="float64")(a)
    added = L.Maximum(dtype="float64")([a, b])
    joined = L.Concatenate(axis=1, dtype="float64")([added, b])  # masks joined along time
    pooled = L.GlobalAveragePooling1D(dtype="float64")(joined)
    return dn.Model(ids, pooled)


@pytest.mark.parametrize("build", [_sequential, _functional], ids=["sequential", "functional"])
def test_masks_propagate_through_models_as_the_reference(build):
    got = {}
    for name in BACKENDS:
        with dn.use_backend(name):
            dn.set_random_seed(5)
            model = build()
            weights = model.get_weights()
            got[name] = dn.to_numpy(model(IDS))
    want, _, mask = model_forward(model, IDS, weights, with_mask=True)
    assert mask is None  # consumed by the pooling
    for name in BACKENDS:
        np.testing.assert_allclose(got[name], want, rtol=1e-13, atol=1e-15, err_msg=name)
    # A row of padding only pools to 0 (Keras would give NaN).
    np.testing.assert_array_equal(got["torch"][3], 0.0)


def test_model_output_mask_is_the_reference_one(backend):
    ids = dn.Input((5,), dtype="int32")
    h = L.Dense(2, dtype="float64")(L.Embedding(10, 4, mask_zero=True, dtype="float64")(ids))
    model = dn.Model(ids, h)
    y = model(IDS)
    _, _, mask = model_forward(model, IDS, model.get_weights(), with_mask=True)
    np.testing.assert_array_equal(_mask(y), mask)
    np.testing.assert_array_equal(mask, IDS != 0)


# -- explicit masks, pass-through and dropped ----------------------------------------------------


X = np.random.default_rng(0).standard_normal((2, 4, 3))
M = np.array([[True, True, False, True], [False, False, False, False]])


@pytest.mark.parametrize("make", [
    lambda: L.Dense(2), lambda: L.Activation("relu"), lambda: L.Dropout(0.3, seed=1),
    lambda: L.LayerNormalization(), lambda: L.ReLU(), lambda: L.Softmax(),
    lambda: L.UnitNormalization(), lambda: L.GaussianNoise(0.1, seed=1),
], ids=["dense", "activation", "dropout", "layernorm", "relu", "softmax", "unitnorm",
        "noise"])  # fmt: skip
def test_explicit_mask_passes_through_layers_that_support_masking(backend, make):
    layer = make()
    y = layer(X, mask=M, training=True)
    np.testing.assert_array_equal(_mask(y), M)
    assert getattr(X, "_keras_mask", None) is None  # the input itself is left alone


@pytest.mark.parametrize("make", [
    lambda: L.Flatten(), lambda: L.Conv1D(2, 3), lambda: L.GlobalMaxPooling1D(),
    lambda: L.RMSNormalization(),
], ids=["flatten", "conv1d", "global-max", "rms"])  # fmt: skip
def test_layers_without_mask_support_drop_it_with_keras_warning(backend, make):
    layer = make()
    with pytest.warns(UserWarning, match=r"does not support masking and will therefore destroy "
                                         r"the mask information"):  # fmt: skip
        y = layer(X, mask=M)
    assert _mask(y) is None


def test_global_average_pooling1d_consumes_the_mask(backend):
    y = L.GlobalAveragePooling1D(dtype="float64")(X, mask=M)
    assert _mask(y) is None
    want = np.where(M[..., None], X, 0).sum(1) / np.maximum(M.sum(1), 1)[:, None]
    np.testing.assert_allclose(dn.to_numpy(y), want, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(dn.to_numpy(y)[1], 0.0)  # fully masked: 0, not NaN


# -- merging layers ---------------------------------------------------------------------------

RNG = np.random.default_rng(7)
XS = [RNG.standard_normal((2, 4, 3)) for _ in range(3)]
MS = [RNG.random((2, 4)) > 0.4 for _ in range(3)]
for _m in MS:
    _m[0, 1] = False  # a step masked in every input
MERGES = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"]
MASKINGS = {"all": MS, "one-missing": [MS[0], None, MS[2]], "none": None}


@pytest.mark.parametrize("which", list(MASKINGS))
@pytest.mark.parametrize("cls", MERGES)
def test_merging_layers_combine_and_consume_masks_as_keras(cls, which):
    n = 2 if cls == "Subtract" else 3
    masks = MASKINGS[which] and MASKINGS[which][:n]
    kwargs = {"axis": 1} if cls == "Concatenate" else {}
    fn = getattr(RM, cls.lower())
    want = fn(XS[:n], None, mask=masks, **kwargs)
    want_mask = (RM.concatenate_mask if cls == "Concatenate" else RM.add_mask)(
        XS[:n], masks, **kwargs)  # fmt: skip
    grads = {}
    for name in BACKENDS:
        with dn.use_backend(name):
            from dualnet._backend import backend_module

            core = backend_module(name).core
            layer = getattr(L, cls)(dtype="float64", **kwargs)
            tensors = [core.convert_to_tensor(x) for x in XS[:n]]
            ct = np.random.default_rng(1).standard_normal(want.shape)

            def call(*ts, layer=layer):
                return layer(list(ts), mask=masks)

            y, g = core.vjp(call, tensors, list(range(n)), ct)
            np.testing.assert_allclose(dn.to_numpy(y), want, rtol=1e-15, atol=0, err_msg=name)
            out = layer(tensors, mask=masks)
            if want_mask is None:
                assert _mask(out) is None, name
            else:
                np.testing.assert_array_equal(_mask(out), want_mask, err_msg=name)
            grads[name] = [dn.to_numpy(t) for t in g]
    # The masked merges pick their values through the same where() branches on both backends.
    for a, b in zip(grads["torch"], grads["tensorflow"], strict=True):
        np.testing.assert_array_equal(a, b)


def test_masked_maximum_never_picks_a_masked_value():
    x0 = np.array([[[5.0], [1.0], [0.0]]])
    x1 = np.array([[[2.0], [3.0], [-1.0]]])
    m0 = np.array([[False, True, False]])
    m1 = np.array([[True, False, False]])
    want = np.array([[[2.0], [1.0], [0.0]]])  # both masked at step 2: the first input's value
    np.testing.assert_array_equal(RM.maximum([x0, x1], mask=[m0, m1]), want)
    for name in BACKENDS:
        with dn.use_backend(name):
            y = L.Maximum(dtype="float64")([x0, x1], mask=[m0, m1])
            np.testing.assert_array_equal(dn.to_numpy(y), want)
            np.testing.assert_array_equal(_mask(y), [[True, True, False]])
