"""Embedding and Masking beyond the generic catalogue tests: the id errors on both backends
(eagerly and inside ``tf.function``), floating ids, the default initial values and torch's
one argument away, the layout shared with ``torch.nn.Embedding``, the scatter-add gradient
through a training step, ``mask_zero`` in a trained model, Masking's zeroing and mask.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from frameworks import tf as _tf
from frameworks import torch as _torch

import dualnet as dn
from dualnet._backend import BACKENDS
from dualnet.reference.layers import core as R
from dualnet.reference.layers import pooling as RP

L = dn.layers


def _mask(y):
    m = getattr(y, "_keras_mask", None)
    return None if m is None else dn.to_numpy(m)


# -- ids ------------------------------------------------------------------------------------


BAD_IDS = [
    (np.array([[1, 7]]), "7"),
    (np.array([[-1, 2]]), "-1"),
    (np.array([[2.0, 1.5]]), "1.5"),
    (np.array([[np.nan]]), "nan"),
    (np.array([[np.inf]]), "inf"),
    (np.array([[7.0]]), "7"),  # a whole float out of range is reported as the id 7
]


@pytest.mark.parametrize(("ids", "value"), BAD_IDS, ids=["7", "-1", "1.5", "nan", "inf", "7.0"])
def test_bad_ids_raise_the_same_error_on_both_backends(ids, value):
    messages = {}
    for name in BACKENDS:
        with dn.use_backend(name):
            layer = L.Embedding(7, 3, name="emb")
            layer(np.array([[0, 6]]))  # built and realised: the check is the call's
            with pytest.raises(ValueError, match=r"expected integer ids in \[0, 7\)") as info:
                layer(ids)
            messages[name] = str(info.value)
    assert messages["torch"] == messages["tensorflow"], messages
    message = messages["torch"]
    assert message == (f"Embedding 'emb': invalid id {value} in inputs; expected integer ids in "
                       "[0, 7) (input_dim=7).")  # fmt: skip


def test_bad_ids_inside_tf_function_raise_the_same_message():
    tf = _tf()
    with dn.use_backend("tensorflow"):
        layer = L.Embedding(7, 3, name="emb")
        layer(np.array([[0]]))
        fn = tf.function(lambda x: layer.native(x))
        np.testing.assert_array_equal(fn(tf.constant([[6, 0]])).numpy(),
                                      layer.get_weights()[0][[[6, 0]]])  # fmt: skip
        for bad in (tf.constant([[7]]), tf.constant([[-2]]), tf.constant([[0.5]])):
            with pytest.raises(tf.errors.InvalidArgumentError) as info:
                fn(bad)
            # TensorFlow prints the message with its quotes escaped.
            text = str(info.value).replace("\\'", "'")
            assert re.search(
                r"Embedding 'emb': invalid ids in inputs; expected integer ids in "
                r"\[0, 7\) \(input_dim=7\)",
                text,
            ), text


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8", "float32", "float64"])
def test_ids_of_every_integer_dtype_and_whole_floats_give_the_same_rows(backend, dtype):
    layer = L.Embedding(5, 2, dtype="float64")
    ids = np.array([[0, 4, 2], [2, 2, 1]])
    y = dn.to_numpy(layer(ids.astype(dtype)))
    np.testing.assert_array_equal(y, layer.get_weights()[0][ids])
    assert y.dtype == np.float64  # the vectors' dtype, whatever the ids'


def test_float16_layer_keeps_large_integer_ids_exact(backend):
    # Integer ids are never cast to the layer's float dtype (float16 cannot hold 2049).
    layer = L.Embedding(3000, 2, dtype="float16")
    ids = np.array([[2049, 2999]])
    np.testing.assert_array_equal(dn.to_numpy(layer(ids)), layer.get_weights()[0][ids])


def test_a_refused_call_leaves_the_layer_usable(backend):
    layer = L.Embedding(4, 2)
    with pytest.raises(ValueError, match="invalid id 4"):
        layer(np.array([[4]]))
    np.testing.assert_array_equal(
        dn.to_numpy(layer(np.array([[3]]))), layer.get_weights()[0][[[3]]]
    )


# -- initial values ---------------------------------------------------------------------------


def test_default_initializer_is_keras_uniform_and_torch_normal_is_one_argument_away():
    dn.set_random_seed(0)
    keras_like = L.Embedding(2000, 16)
    torch_like = L.Embedding(2000, 16, embeddings_initializer=dn.initializers.RandomNormal(
        stddev=1.0))  # fmt: skip
    keras_like.build((1, 1))
    torch_like.build((1, 1))
    u = keras_like.get_weights()[0]
    n = torch_like.get_weights()[0]
    assert u.shape == (2000, 16) and u.dtype == np.float32
    assert u.min() >= -0.05 and u.max() < 0.05
    # U(-0.05, 0.05): std 0.1/√12 ≈ 0.0289; 32000 draws pin it to ~1%.
    assert abs(u.std() - 0.1 / np.sqrt(12)) < 0.03 * 0.1 / np.sqrt(12)
    assert abs(n.std() - 1.0) < 0.03 and abs(n.mean()) < 0.03
    assert keras_like.get_config()["embeddings_initializer"]["class_name"] == "RandomUniform"


def test_same_seed_same_embeddings_on_both_backends():
    out = {}
    for name in BACKENDS:
        with dn.use_backend(name):
            layer = L.Embedding(10, 4, embeddings_initializer=dn.initializers.RandomUniform(
                seed=3))  # fmt: skip
            layer(np.array([[1]]))
            out[name] = layer.get_weights()[0]
    np.testing.assert_array_equal(out["torch"], out["tensorflow"])


def test_torch_module_has_nn_embedding_layout():
    torch = _torch()
    with dn.use_backend("torch"):
        layer = L.Embedding(6, 3, dtype="float64")
        ids = np.array([[5, 0, 2, 2]])
        y = layer(ids)
    (weight,) = list(layer.native.parameters())
    native = torch.nn.Embedding.from_pretrained(weight.detach().clone(), freeze=False)
    np.testing.assert_array_equal(weight.detach().numpy(), layer.get_weights()[0])
    np.testing.assert_array_equal(native(torch.as_tensor(ids)).detach().numpy(), dn.to_numpy(y))


# -- gradients and training -------------------------------------------------------------------


def test_training_step_scatter_adds_repeated_ids(backend):
    """SGD on ``mean((emb[ids] - 0)²)``-like loss: the update of a row sums over every position
    that looked it up; rows never looked up stay."""
    ids = np.array([[1, 1, 3], [1, 0, 3]])
    y = np.zeros((2, 3, 2))
    dn.set_random_seed(1)
    model = dn.Sequential([dn.Input((3,), dtype="int32"), L.Embedding(5, 2, dtype="float64")])
    before = model.get_weights()[0]
    model.compile(dn.optimizers.SGD(0.1), "mse")
    model.train_step(ids, y)
    after = model.get_weights()[0]
    # d/dE[i] of mean over 12 values of (E[ids])² = Σ_{positions with id i} 2·E[i] / 12.
    counts = np.bincount(ids.ravel(), minlength=5)[:, None]
    want = before - 0.1 * counts * 2.0 * before / 12.0
    np.testing.assert_allclose(after, want, rtol=1e-14, atol=1e-16)
    np.testing.assert_array_equal(after[[2, 4]], before[[2, 4]])


def test_mask_zero_model_trains_the_same_on_both_backends_and_leaves_padding_alone():
    ids = np.array([[1, 2, 2, 0, 0], [3, 0, 0, 0, 0], [4, 5, 6, 7, 8]])
    target = np.random.default_rng(0).standard_normal((3, 2))
    got = {}
    for name in BACKENDS:
        with dn.use_backend(name):
            dn.set_random_seed(0)
            model = dn.Sequential([
                dn.Input((5,), dtype="int32"),
                L.Embedding(10, 4, mask_zero=True, dtype="float64"),
                L.Dense(2, dtype="float64"),
                L.GlobalAveragePooling1D(dtype="float64"),
            ])  # fmt: skip
            weights = model.get_weights()
            y = dn.to_numpy(model(ids))
            emb, kernel, bias = weights
            h = R.dense(R.embedding(ids, {"embeddings": emb}, input_dim=10), kernel, bias)
            want = RP.global_average_pooling1d(h, mask=ids != 0)
            np.testing.assert_allclose(y, want, rtol=1e-13, atol=1e-15)
            model.compile(dn.optimizers.SGD(0.5), "mse")
            model.train_step(ids, target)
            got[name] = model.get_weights()
    for a, b in zip(got["torch"], got["tensorflow"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    # Row 0 is trainable (Keras's mask_zero, unlike torch's padding_idx) but only ever read at
    # masked steps, which the pooling ignores: its gradient is 0. Row 9 is never read.
    np.testing.assert_array_equal(got["torch"][0][[0, 9]], weights[0][[0, 9]])
    assert not np.array_equal(got["torch"][0][1], weights[0][1])


def test_mask_zero_output_mask_replaces_an_incoming_one(backend):
    layer = L.Embedding(4, 2, mask_zero=True)
    ids = np.array([[0, 1, 3]])
    y = layer(ids, mask=np.array([[True, False, False]]))
    np.testing.assert_array_equal(_mask(y), ids != 0)
    assert _mask(L.Embedding(4, 2)(ids)) is None
    # Without mask_zero Keras's Embedding does not support masking: a mask is dropped, warned.
    with pytest.warns(UserWarning, match="does not support masking"):
        y = L.Embedding(4, 2)(ids, mask=np.array([[True, False, False]]))
    assert _mask(y) is None


# -- Masking ----------------------------------------------------------------------------------


def test_masking_zeroes_fully_masked_steps_and_sets_the_mask(backend):
    x = np.array([[[2.0, 2.0], [2.0, 1.0], [0.0, 0.0]],
                  [[5.0, -1.0], [2.0, 2.0], [-0.0, 2.0]]])  # fmt: skip
    layer = L.Masking(mask_value=2.0, dtype="float64")
    y = layer(x)
    np.testing.assert_array_equal(dn.to_numpy(y), R.masking(x, mask_value=2.0))
    np.testing.assert_array_equal(_mask(y), [[False, True, True], [True, False, True]])
    np.testing.assert_array_equal(dn.to_numpy(y)[0, 0], [0.0, 0.0])


def test_masking_compares_in_the_layer_dtype(backend):
    # 0.1 rounded to float16 equals the input's float16 0.1: the step is masked.
    x = np.full((1, 2, 3), 0.1)
    x[0, 1, 0] = 0.3
    y = L.Masking(mask_value=0.1, dtype="float16")(x)
    np.testing.assert_array_equal(_mask(y), [[False, True]])


def test_masking_mask_reaches_a_downstream_consumer(backend):
    x = np.random.default_rng(2).standard_normal((2, 4, 3))
    x[0, 2] = 0.0
    x[1, :] = 0.0  # a fully masked row: the pooled mean is 0, not NaN
    model = dn.Sequential([dn.Input((4, 3), dtype="float64"), L.Masking(dtype="float64"),
                           L.GlobalAveragePooling1D(dtype="float64")])  # fmt: skip
    y = dn.to_numpy(model(x))
    np.testing.assert_allclose(y, RP.global_average_pooling1d(x, mask=np.any(x != 0, axis=-1)),
                               rtol=1e-15, atol=0)  # fmt: skip
    np.testing.assert_array_equal(y[1], [0.0, 0.0, 0.0])
