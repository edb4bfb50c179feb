"""MultiHeadAttention beyond the generic catalogue tests: torch's nn.MultiheadAttention mapped
onto the canonical weights (and its mask convention as the trap it is), the TensorFlow layer
against Keras's own with the same weights, a query row with no key (zeros, never NaN, with
finite gradients), the inputs' masks, the portable dropout call after call, the torch paths
(SDPA and explicit) agreeing, half precision as one rounding of the float32 result, the
weights' shapes and names against Keras's, and models."""

from __future__ import annotations

import numpy as np
import pytest
from frameworks import keras as _keras
from frameworks import tf as _tf
from frameworks import torch as _torch
from tolerances import assert_close

import dualnet as dn
from dualnet._backend import BACKENDS, backend_module
from dualnet.layers.attention import torch_mha_weights
from dualnet.layers.regularization import keep_mask
from dualnet.reference import layers as RL
from dualnet.reference.layers import attention as R

MHA = dn.layers.MultiHeadAttention
# The longest chain of sums behind one output at these sizes (E = 8, key_dim = 4, S <= 5, N·Hv
# = 8; see dualnet/parity/catalogue/layers_attention.py): the tolerance's K.
K = 8 + 4 + 2 * 5 + 8


def _rng(seed=0):
    return np.random.default_rng(seed)


def _np(x):
    return np.asarray(dn.to_numpy(x), dtype=np.float64)


def _layer(backend, weights, *args, dtype="float64", **kwargs):
    """A realised layer on ``backend`` built for (query, value[, key]) shapes with ``weights``."""
    shapes = [np.shape(a) for a in args]
    with dn.use_backend(backend):
        layer = MHA(*kwargs.pop("positional", ()), dtype=dtype, **kwargs)
        layer.build(shapes[0], value=shapes[1], key=shapes[2] if len(shapes) > 2 else None)
        layer.set_weights(weights)
        layer._realise(backend)
    return layer


def _weights(layer_kwargs, *shapes, seed=1):
    """Random canonical weights (N(0, 0.5²)) for a layer built for ``shapes``."""
    layer = MHA(**layer_kwargs)
    layer.build(shapes[0], value=shapes[1], key=shapes[2] if len(shapes) > 2 else None)
    rng = _rng(seed)
    return [0.5 * rng.standard_normal(s.shape) for s in layer.weight_specs], layer


def _reference(layer, weights, query, value, **call):
    named = dict(zip(layer.weight_names(), weights, strict=True))
    return R.multi_head_attention(query, named, **RL.layer_config(layer), value=value, **call)


# -- torch's nn.MultiheadAttention -----------------------------------------------------------


def _torch_mha(e=8, heads=2, seed=0):
    torch = _torch()
    torch.manual_seed(seed)
    module = torch.nn.MultiheadAttention(e, heads, batch_first=True).double()
    with torch.no_grad():  # torch initialises the biases at 0: random ones show a misplacement
        module.in_proj_bias.normal_()
        module.out_proj.bias.normal_()
    return module


def test_torch_mha_weights_map_onto_the_canonical_layout(backend):
    """``torch_mha_weights`` turns a torch module's state into Keras's per-head kernels; with
    key_dim = E/heads and Keras's call order (query, value, key) the outputs agree."""
    torch = _torch()
    module = _torch_mha()
    rng = _rng(1)
    q, k, v = rng.normal(size=(3, 4, 8)), rng.normal(size=(3, 5, 8)), rng.normal(size=(3, 5, 8))
    expected, _ = module(*(torch.from_numpy(a) for a in (q, k, v)), need_weights=False)
    weights = torch_mha_weights(module.state_dict(), num_heads=2)
    layer = _layer(backend, weights, q, v, k, num_heads=2, key_dim=4)
    assert [w.shape for w in layer.weights] == [(8, 2, 4), (2, 4)] * 3 + [(2, 4, 8), (8,)]
    assert_close(_np(layer(q, v, k)), expected.detach().numpy(), "float64", reduction=K)


def test_torch_boolean_mask_means_the_opposite(backend):
    """torch's attn_mask True = *masked*; dualnet's (Keras's, SDPA's) True = attend: the same
    array passed unchanged attends to the complement. And a query row with no key is NaN in
    torch's module, the output bias in dualnet."""
    torch = _torch()
    module = _torch_mha()
    rng = _rng(2)
    q, v = rng.normal(size=(2, 4, 8)), rng.normal(size=(2, 5, 8))
    masked = rng.random((4, 5)) < 0.4  # torch's convention: True = do not attend
    masked[:, 0] = False  # every row keeps a key: torch's module is finite here
    expected, _ = module(torch.from_numpy(q), torch.from_numpy(v), torch.from_numpy(v),
                         attn_mask=torch.from_numpy(masked), need_weights=False)  # fmt: skip
    weights = torch_mha_weights(module.state_dict(), num_heads=2)
    layer = _layer(backend, weights, q, v, num_heads=2, key_dim=4)
    allowed = np.broadcast_to(~masked, (2, 4, 5)).copy()
    assert_close(_np(layer(q, v, attention_mask=allowed)), expected.detach().numpy(), "float64",
                 reduction=K)  # fmt: skip
    trap = _np(layer(q, v, attention_mask=np.broadcast_to(masked, (2, 4, 5)).copy()))
    assert np.max(np.abs(trap - expected.detach().numpy())) > 0.1

    masked[1] = True  # query row 1 may attend to nothing
    args = (torch.from_numpy(q), torch.from_numpy(v), torch.from_numpy(v))
    # torch's default (need_weights=True) computes the weights itself: NaN; without them it
    # runs SDPA: zero weights, the output bias, dualnet's rule.
    native, _ = module(*args, attn_mask=torch.from_numpy(masked))
    assert torch.isnan(native[:, 1]).all()
    fused, _ = module(*args, attn_mask=torch.from_numpy(masked), need_weights=False)
    ours = _np(layer(q, v, attention_mask=np.broadcast_to(~masked, (2, 4, 5)).copy()))
    np.testing.assert_array_equal(ours[:, 1], np.broadcast_to(weights[-1], (2, 8)))
    assert_close(ours, fused.detach().numpy(), "float64", reduction=K)


def test_torch_key_padding_mask_is_the_value_mask(backend):
    """torch's key_padding_mask (True = padding) is Keras's mask on the value (True = real
    step, as Embedding(mask_zero=True) or Masking attach it)."""
    torch = _torch()
    module = _torch_mha()
    rng = _rng(3)
    q, v = rng.normal(size=(2, 4, 8)), rng.normal(size=(2, 5, 8))
    padding = np.array([[False] * 5, [False, False, False, True, True]])
    expected, _ = module(
        torch.from_numpy(q),
        torch.from_numpy(v),
        torch.from_numpy(v),
        key_padding_mask=torch.from_numpy(padding),
        need_weights=False,
    )
    layer = _layer(backend, torch_mha_weights(module.state_dict(), 2), q, v, num_heads=2,
                   key_dim=4)  # fmt: skip
    core = backend_module(backend).core
    value = core.attach_mask(core.convert_to_tensor(v), ~padding)
    assert_close(_np(layer(q, value)), expected.detach().numpy(), "float64", reduction=K)


def test_torch_mha_weights_refuses_what_keras_cannot_express():
    torch = _torch()
    with_bias_kv = torch.nn.MultiheadAttention(4, 2, add_bias_kv=True).state_dict()
    with pytest.raises(ValueError, match=r"bias_k.*add_bias_kv"):
        torch_mha_weights(with_bias_kv, 2)
    with pytest.raises(ValueError, match=r"num_heads=3.*divisor of embed_dim=4"):
        torch_mha_weights(torch.nn.MultiheadAttention(4, 2).state_dict(), 3)


# -- Keras's own MultiHeadAttention ----------------------------------------------------------


def _keras_twin(weights, query, value, key=None, **kwargs):
    keras = _keras()
    native = keras.layers.MultiHeadAttention(dtype="float64", **kwargs)
    native(query, value, key)  # builds
    native.set_weights(weights)
    return native


CONFIGS = {
    "self": dict(num_heads=2, key_dim=4),
    "key-value-dims": dict(num_heads=2, key_dim=3, value_dim=5, output_shape=(2, 3)),
    "no-bias": dict(num_heads=1, key_dim=6, use_bias=False),
}


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_tensorflow_layer_equals_keras_own_layer(config):
    """Same weights, same calls: dualnet's TensorFlow layer and keras.layers.MultiHeadAttention
    agree without dropout, masked and not, causal, with a key, with the scores, and on the
    variable paths and shapes."""
    kwargs = CONFIGS[config]
    rng = _rng(4)
    q, v, k = rng.normal(size=(2, 4, 8)), rng.normal(size=(2, 5, 7)), rng.normal(size=(2, 5, 6))
    weights, _ = _weights(kwargs, q.shape, v.shape, k.shape)
    native = _keras_twin(weights, q, v, k, **kwargs)
    layer = _layer("tensorflow", weights, q, v, k, name="mha", **kwargs)
    assert (
        [v_.path.removeprefix(native.name + "/") for v_ in native.weights]
        == [v_.path.removeprefix("mha/") for v_ in layer.native.weights]
        == list(layer.weight_names())
    )
    mask = rng.random((2, 4, 5)) < 0.7
    mask[..., 0] = True  # no empty row: Keras's own paths disagree there (next test)
    calls = [dict(), dict(attention_mask=mask), dict(use_causal_mask=True),
             dict(attention_mask=mask, use_causal_mask=True)]  # fmt: skip
    with dn.use_backend("tensorflow"):
        for call in calls:
            want = native(q, v, k, **call)
            assert_close(_np(layer(q, v, k, **call)), np.asarray(want), "float64", reduction=K)
            want, scores = native(q, v, k, return_attention_scores=True, **call)
            got = layer(q, v, k, return_attention_scores=True, **call)
            assert_close(_np(got[0]), np.asarray(want), "float64", reduction=K)
            assert_close(_np(got[1]), np.asarray(scores), "float64", reduction=K)


def test_query_row_without_keys_keras_default_path_averages_uniformly():
    """Keras 3's own layer is not consistent: its default path (ops.dot_product_attention)
    gives a row with no key the uniform average of the values; with return_attention_scores
    (Softmax, which zeroes masked positions) it gives zeros. dualnet gives zeros on every
    path, which is the explicit one."""
    kwargs = CONFIGS["self"]
    rng = _rng(5)
    q, v = rng.normal(size=(1, 3, 8)), rng.normal(size=(1, 4, 8))
    weights, neutral = _weights(kwargs, q.shape, v.shape)
    native = _keras_twin(weights, q, v, **kwargs)
    mask = np.ones((1, 3, 4), bool)
    mask[0, 1] = False
    layer = _layer("tensorflow", weights, q, v, **kwargs)
    with dn.use_backend("tensorflow"):
        ours = _np(layer(q, v, attention_mask=mask))
    explicit, _ = native(q, v, attention_mask=mask, return_attention_scores=True)
    default = np.asarray(native(q, v, attention_mask=mask))
    assert_close(ours, np.asarray(explicit), "float64", reduction=K)
    np.testing.assert_array_equal(ours[0, 1], weights[-1])
    # A zero query projection gives equal scores: the uniform average of every key.
    flat = [np.zeros_like(w) if n.startswith("query/") else w
            for n, w in zip(neutral.weight_names(), weights, strict=True)]  # fmt: skip
    uniform = _reference(neutral, flat, q, v)
    assert_close(default[0, 1], uniform[0, 1], "float64", reduction=K)  # every key, weight 1/4
    assert np.max(np.abs(default[0, 1] - ours[0, 1])) > 0.1


# -- a query row with no key: zeros, finite gradients -----------------------------------------


def _gradients(backend, layer, query, value, masks, **call):
    """The output and the gradients of sum(output·c) for the query, the value and the weights;
    ``masks``: the query's and the value's (re-attached: the gradient's leaves are new
    tensors)."""
    c = _rng(9).normal(size=layer.compute_output_shape(query.shape, value=value.shape))
    b = backend_module(backend)

    def attach(t, m):
        return t if m is None else b.core.attach_mask(t, m)

    def fn(x, y):
        out = layer(attach(x, masks[0]), attach(y, masks[1]), **call)
        return out[0] if isinstance(out, list) else out

    with dn.use_backend(backend):
        tensors = [b.core.convert_to_tensor(_np(a)) for a in (query, value)]
        out, grads = b.core.vjp(fn, tensors, [0, 1], c, params=b.layers.params(layer.native))
    return _np(out), [_np(g) for g in grads]


@pytest.mark.parametrize("how", ["attention_mask", "query_mask", "value_mask", "scores"])
def test_query_row_without_keys_is_the_output_bias_with_finite_gradients(backend, how):
    """Whichever mask empties a row, and on either torch path (SDPA, explicit): zero weights,
    the output bias as output, no NaN anywhere in the gradients, as the reference."""
    kwargs = CONFIGS["self"]
    rng = _rng(6)
    q, v = rng.normal(size=(2, 3, 8)), rng.normal(size=(2, 4, 8))
    weights, neutral = _weights(kwargs, q.shape, v.shape)
    layer = _layer(backend, weights, q, v, **kwargs)
    core = backend_module(backend).core
    allowed = np.ones((2, 3, 4), bool)
    call, ref_call, masks = {}, {}, [None, None]
    if how in ("attention_mask", "scores"):
        allowed[0, 1] = False
        call = ref_call = {"attention_mask": allowed}
    elif how == "query_mask":
        qmask = np.array([[True, False, True], [True, True, True]])
        allowed[0, 1] = False
        q = core.attach_mask(core.convert_to_tensor(q), qmask)
        ref_call, masks = {"mask": qmask}, [qmask, None]
    else:  # every step of batch 0's value is padding: all of batch 0's rows are empty
        vmask = np.array([[False] * 4, [True] * 4])
        allowed[0] = False
        v = core.attach_mask(core.convert_to_tensor(v), vmask)
        ref_call, masks = {"value_mask": vmask}, [None, vmask]
    with dn.use_backend(backend):
        out = layer(q, v, return_attention_scores=how == "scores", **call)
    y = _np(out[0] if how == "scores" else out)
    want = _reference(neutral, weights, _np(q), _np(v), **ref_call)
    assert_close(y, want, "float64", reduction=K)
    empty = ~allowed.any(-1)
    np.testing.assert_array_equal(y[empty], np.broadcast_to(weights[-1], y[empty].shape))
    if how == "scores":
        np.testing.assert_array_equal(_np(out[1])[0, :, 1], 0.0)
    call["return_attention_scores"] = how == "scores"
    y, grads = _gradients(backend, layer, q, v, masks, **call)
    assert all(np.isfinite(g).all() for g in grads)
    np.testing.assert_array_equal(grads[0][empty], 0.0)  # an empty row's query does nothing


def test_query_mask_travels_to_the_output_not_to_the_scores(backend):
    rng = _rng(7)
    q, v = rng.normal(size=(2, 3, 8)), rng.normal(size=(2, 4, 8))
    qmask = np.array([[True, True, False], [True, False, False]])
    with dn.use_backend(backend):
        layer = MHA(2, 4, dtype="float64")
        out = layer(q, v, mask=qmask)
        np.testing.assert_array_equal(_np(out._keras_mask), qmask)
        out, scores = layer(q, v, mask=qmask, return_attention_scores=True)
        np.testing.assert_array_equal(_np(out._keras_mask), qmask)
        assert getattr(scores, "_keras_mask", None) is None


def test_key_mask_counts_only_when_a_key_is_given(backend):
    """Keras ignores the key's mask when no key is passed (the value's applies): a key equal to
    the value but with its own mask masks the columns the value's mask leaves."""
    rng = _rng(8)
    q, v = rng.normal(size=(1, 3, 8)), rng.normal(size=(1, 4, 8))
    weights, neutral = _weights(CONFIGS["self"], q.shape, v.shape)
    layer = _layer(backend, weights, q, v, **CONFIGS["self"])
    core = backend_module(backend).core
    kmask = np.array([[True, True, False, True]])
    key = core.attach_mask(core.convert_to_tensor(v), kmask)
    with dn.use_backend(backend):
        got = _np(layer(q, v, key))
    assert_close(got, _reference(neutral, weights, q, v, key=v, key_mask=kmask), "float64",
                 reduction=K)  # fmt: skip
    assert np.max(np.abs(got - _reference(neutral, weights, q, v))) > 1e-3


def test_masks_refused_on_rank4_inputs(backend):
    x = np.zeros((2, 3, 4, 5))
    with dn.use_backend(backend):
        layer = MHA(2, 2)
        with pytest.raises(ValueError, match=r"expected rank-3 inputs.*\(2, 3, 4, 5\)"):
            layer(x, x, attention_mask=np.ones((2, 3, 3), bool))
        with pytest.raises(ValueError, match=r"masks on the inputs expected rank-3 inputs"):
            layer(x, x, mask=np.ones((2, 3), bool))


# -- dropout, paths, precision ---------------------------------------------------------------


def test_dropout_masks_call_after_call_identical_on_both_backends():
    rng = _rng(10)
    q, v = rng.normal(size=(2, 3, 8)), rng.normal(size=(2, 4, 8))
    kwargs = dict(num_heads=2, key_dim=4, dropout=0.5, seed=21)
    weights, neutral = _weights(kwargs, q.shape, v.shape)
    outs = {}
    for backend in BACKENDS:
        layer = _layer(backend, weights, q, v, **kwargs)
        with dn.use_backend(backend):
            outs[backend] = [_np(layer(q, v, training=True)) for _ in range(3)]
            inference = _np(layer(q, v))
        assert layer.training_calls == 3
        assert_close(inference, _reference(neutral, weights, q, v), "float64", reduction=K)
    for k in range(3):
        want = _reference(neutral, weights, q, v, training=True, call=k)
        assert_close(outs["torch"][k], want, "float64", reduction=K)
        assert_close(outs["tensorflow"][k], want, "float64", reduction=K)
    assert not np.allclose(outs["torch"][0], outs["torch"][1])  # a new mask each call
    assert keep_mask(21, 0, (2, 2, 3, 4), 0.5).mean() not in (0.0, 1.0)


def test_dropout_inside_tf_function_follows_the_eager_sequence():
    tf = _tf()
    rng = _rng(14)
    q, v = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 5, 4))
    kwargs = dict(num_heads=2, key_dim=2, dropout=0.5, seed=3)
    weights, _ = _weights(kwargs, q.shape, v.shape)
    eager, traced = (_layer("tensorflow", weights, q, v, **kwargs) for _ in range(2))
    step = tf.function(lambda x, y: traced.native(x, value=y, training=True))
    with dn.use_backend("tensorflow"):
        for _ in range(3):
            want = _np(eager(q, v, training=True))
            np.testing.assert_array_equal(_np(step(tf.constant(q), tf.constant(v))), want)
    assert traced.training_calls == eager.training_calls == 3


def test_fit_with_dropout_gives_the_same_losses_on_both_backends():
    rng = _rng(15)
    q, v = rng.normal(size=(4, 3, 4)), rng.normal(size=(4, 5, 4))
    y = rng.normal(size=(4, 4))
    losses = {}
    for backend in BACKENDS:
        with dn.use_backend(backend):
            dn.set_random_seed(0)
            qi, vi = dn.Input((3, 4)), dn.Input((5, 4))
            out = MHA(2, 2, dropout=0.3, seed=1, dtype="float64")(qi, vi, use_causal_mask=True)
            model = dn.Model([qi, vi], dn.layers.GlobalAveragePooling1D(dtype="float64")(out))
            model.compile(optimizer="sgd", loss="mse")
            history = model.fit([q, v], y, epochs=3, batch_size=2, verbose=0)
            losses[backend] = history.history["loss"]
    assert_close(losses["torch"], losses["tensorflow"], "float64", reduction=K)


def test_torch_sdpa_and_explicit_paths_agree():
    """Asking for the scores switches torch to the explicit path: the outputs agree."""
    rng = _rng(11)
    q, v = rng.normal(size=(2, 5, 8)), rng.normal(size=(2, 5, 8))
    weights, _ = _weights(CONFIGS["self"], q.shape, v.shape)
    layer = _layer("torch", weights, q, v, **CONFIGS["self"])
    mask = rng.random((2, 5, 5)) < 0.6
    mask[0, 2] = False
    with dn.use_backend("torch"):
        for call in (dict(), dict(attention_mask=mask), dict(use_causal_mask=True)):
            fused = _np(layer(q, v, **call))
            explicit = _np(layer(q, v, return_attention_scores=True, **call)[0])
            assert_close(fused, explicit, "float64", reduction=K)


@pytest.mark.parametrize("half", ["float16", "bfloat16"])
def test_half_precision_is_the_float32_result_rounded_once(backend, half):
    """A half layer computes in float32 from its half inputs and weights, then rounds once."""
    from dualnet.dtypes import numpy_dtype

    rng = _rng(12)
    q, v = rng.normal(size=(2, 3, 8)), rng.normal(size=(2, 4, 8))
    weights, _ = _weights(CONFIGS["self"], q.shape, v.shape)
    h = numpy_dtype(half)
    rounded = [np.asarray(a, h).astype(np.float32) for a in (q, v, *weights)]
    low = _layer(backend, [np.asarray(w, h) for w in weights], q, v, dtype=half,
                 **CONFIGS["self"])  # fmt: skip
    single = _layer(backend, rounded[2:], q, v, dtype="float32", **CONFIGS["self"])
    with dn.use_backend(backend):
        got = np.asarray(dn.to_numpy(low(np.asarray(q, h), np.asarray(v, h))), np.float64)
        want = np.asarray(dn.to_numpy(single(rounded[0], rounded[1]))).astype(h)
    np.testing.assert_array_equal(got, np.asarray(want, np.float64))


# -- weights, shapes, models -----------------------------------------------------------------


def test_weights_shapes_and_names_are_keras_own():
    keras = _keras()
    for kwargs in CONFIGS.values():
        native = keras.layers.MultiHeadAttention(**kwargs)
        q, v, k = np.zeros((1, 2, 8)), np.zeros((1, 3, 7)), np.zeros((1, 3, 6))
        native(q, v, k)
        layer = MHA(**kwargs, name=native.name)
        layer.build(q.shape, value=v.shape, key=k.shape)
        assert [w.path for w in layer.weights] == [w.path for w in native.weights]
        assert [w.shape for w in layer.weights] == [tuple(w.shape) for w in native.weights]


def test_projections_get_distinct_initial_values():
    """A seeded initializer repeats itself; the query, key and value kernels of a
    self-attention layer (equal shapes) still differ, and the draw is reproducible."""
    init = dn.initializers.GlorotUniform(seed=3)
    layers = [MHA(2, 4, kernel_initializer=init) for _ in range(2)]
    for layer in layers:
        layer.build((None, 3, 8), value=(None, 3, 8))
    a, b = layers[0].get_weights(), layers[1].get_weights()
    assert not np.array_equal(a[0], a[2]) and not np.array_equal(a[0], a[4])
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_functional_model_with_value_and_scores_on_both_backends():
    rng = _rng(13)
    q, v = rng.normal(size=(2, 4, 8)), rng.normal(size=(2, 6, 5))
    outs = {}
    for backend in BACKENDS:
        with dn.use_backend(backend):
            dn.set_random_seed(0)
            qi, vi = dn.Input((4, 8)), dn.Input((6, 5))
            out, scores = MHA(2, 3, dtype="float64")(qi, vi, return_attention_scores=True)
            assert out.shape == (None, 4, 8) and scores.shape == (None, 2, 4, 6)
            model = dn.Model([qi, vi], [out, scores])
            outs[backend] = [_np(t) for t in model([q, v])]
    for a, b in zip(outs["torch"], outs["tensorflow"], strict=True):
        assert_close(a, b, "float64", reduction=K)
    np.testing.assert_allclose(outs["torch"][1].sum(-1), 1.0, rtol=1e-12)


def test_call_errors_are_clear(backend):
    x = np.zeros((2, 4, 8), "float32")
    with dn.use_backend(backend):
        layer = MHA(2, 4)
        with pytest.raises(TypeError, match=r"missing the value tensor; expected"):
            layer(x)
        with pytest.raises(TypeError, match=r"attention_mask=.*expected a tensor"):
            layer(x, x, attention_mask=[[True]])
        layer(x, x)
        with pytest.raises(ValueError, match=r"built for a value of shape \(None, 4, 8\)"):
            layer(x, np.zeros((2, 4, 5), "float32"))
        assert layer.output_shape == (None, 4, 8)
