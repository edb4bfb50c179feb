"""Initializer API: names, configs, seeds, portability, native mode, bad input, statistics.

Distribution-level parity (every initializer x shape x dtype, both modes) is in the catalogue
(``dualnet parity --family initializer``); these tests pin the API and the formulas.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dualnet as dn
from dualnet import initializers as I
from dualnet.dtypes import FLOAT_DTYPES
from dualnet.reference import initializers as R

RANDOM = [n for n in I.NAMES if I.get(n).random]
ELEMENTWISE = [n for n in RANDOM if n != "orthogonal"]
CLASS_NAMES = [type(I.get(n)).__name__ for n in I.NAMES]
BIG = (256, 256)


def _make(name, **kw):
    return type(I.get(name))(**kw)


def _z_ok(x, dist, bound=6.0):
    zm, zs = R.sample_z_scores(x, dist)
    return abs(zm) <= bound and abs(zs) <= bound


def _in_support(x, dist, rtol=1e-6):
    x = np.asarray(x, dtype=np.float64)
    slack = rtol * max(abs(dist.low), abs(dist.high), 1.0)
    return bool(np.all(x >= dist.low - slack) and np.all(x <= dist.high + slack))


# ------------------------------------------------------------------------------------------
# get / serialize / config


@pytest.mark.parametrize("name", I.NAMES)
def test_get_by_name_and_class_name(name):
    init = I.get(name)
    assert isinstance(init, I.Initializer)
    assert type(I.get(type(init).__name__)) is type(init)
    assert I.get(init) is init
    assert isinstance(I.get(type(init)), type(init))


def test_get_none_is_none():
    assert I.get(None) is None


def test_unknown_name_names_value_and_choices():
    with pytest.raises(
        ValueError, match=r"Unknown initializer 'glorot'.*glorot_uniform.*he_normal"
    ):
        I.get("glorot")


@pytest.mark.parametrize("bad", [3, 1.5, ["zeros"], lambda shape: shape])
def test_get_bad_type(bad):
    with pytest.raises(TypeError, match="initializer="):
        I.get(bad)


@pytest.mark.parametrize(
    "bad", [{"class_name": "Zeros"}, {"config": {}}, {"class_name": 1, "config": {}}]
)
def test_get_bad_dict(bad):
    with pytest.raises(ValueError, match="class_name"):
        I.get(bad)


@pytest.mark.parametrize("name", I.NAMES)
def test_config_round_trip(name):
    init = I.get(name)
    config = I.serialize(init)
    assert config["class_name"] == type(init).__name__
    again = I.get(config)
    assert again == init
    assert type(init).from_config(init.get_config()) == init
    shape = (4, 5)
    np.testing.assert_array_equal(init(shape), again(shape))


def test_presets_fix_their_fields():
    assert I.GlorotUniform(seed=1).get_config() == {"seed": 1, "native": False}
    with pytest.raises(TypeError):
        I.GlorotUniform(scale=2.0)
    g = I.GlorotUniform(seed=1)
    assert (g.scale, g.mode, g.distribution) == (1.0, "fan_avg", "uniform")
    vs = I.VarianceScaling(1.0, "fan_avg", "uniform", seed=1)  # Keras-style positional args
    np.testing.assert_array_equal(g((6, 7)), vs((6, 7)))


def test_normal_means_truncated_normal_as_in_keras():
    assert I.VarianceScaling(distribution="normal").distribution == "truncated_normal"


def test_uses_layer_fans_only_for_standard():
    assert [n for n in I.NAMES if type(I.get(n)).uses_layer_fans] == ["standard"]


def test_frozen():
    init = I.RandomNormal(seed=0)
    with pytest.raises(AttributeError):
        init.stddev = 1.0


# ------------------------------------------------------------------------------------------
# Seeds


@pytest.mark.parametrize("name", RANDOM)
def test_same_seed_same_array_every_call(name):
    a, b = _make(name, seed=7), _make(name, seed=7)
    np.testing.assert_array_equal(a((8, 6)), b((8, 6)))
    np.testing.assert_array_equal(a((8, 6)), a((8, 6)))  # Keras 3: seeded = same every call


@pytest.mark.parametrize("name", RANDOM)
def test_different_seeds_differ(name):
    assert not np.array_equal(_make(name, seed=1)((8, 6)), _make(name, seed=2)((8, 6)))


def test_set_random_seed_reproduces_unseeded_initializers():
    def build():
        return [I.GlorotUniform()((5, 4)), I.HeNormal()((3, 3, 2, 4)), I.get("orthogonal")((4, 4))]

    dn.set_random_seed(123)
    first = build()
    dn.set_random_seed(123)
    second = build()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    dn.set_random_seed(124)
    assert not np.array_equal(build()[0], first[0])
    a, b = I.HeNormal(), I.HeNormal()  # two layers, two seeds: different weights
    assert a.seed != b.seed and not np.array_equal(a((4, 4)), b((4, 4)))


def test_unseeded_draws_at_construction_and_stores_the_seed():
    dn.set_random_seed(5)
    init = I.RandomNormal()
    assert isinstance(init.seed, int)
    assert init.get_config()["seed"] == init.seed
    np.testing.assert_array_equal(init((3,)), init((3,)))


def test_constants_draw_no_seed():
    dn.set_random_seed(9)
    expected = dn.random.draw_seed()
    dn.set_random_seed(9)
    I.Zeros(), I.Ones(), I.Constant(value=2.0)
    assert dn.random.draw_seed() == expected


# ------------------------------------------------------------------------------------------
# Portable mode


@pytest.mark.parametrize("name", I.NAMES)
def test_portable_bit_identical_across_backends(name, backend):
    other = "tensorflow" if backend == "torch" else "torch"
    init = _make(name, seed=11)
    here = init((3, 3, 4, 8), "float32")
    with dn.use_backend(other):
        there = init((3, 3, 4, 8), "float32")
    assert here.tobytes() == there.tobytes()


def test_portable_imports_no_framework():
    code = (
        "import sys, dualnet as dn\n"
        "x = dn.initializers.get('he_normal')((4, 3), 'bfloat16')\n"
        "y = dn.initializers.Orthogonal(seed=1)((3, 3))\n"
        "loaded = {'torch', 'tensorflow'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", I.NAMES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_portable_dtypes_are_one_rounding_of_float64(name, dtype):
    init = _make(name, seed=3)
    out = init((6, 5), dtype)
    assert out.shape == (6, 5) and out.dtype.name == dtype
    np.testing.assert_array_equal(out, init((6, 5), "float64").astype(out.dtype))


def test_dtype_none_is_floatx():
    assert I.HeNormal(seed=0)((2, 2), None).dtype == np.float32


def test_empty_shapes():
    assert I.HeNormal(seed=0)((0, 4)).shape == (0, 4)
    assert I.Orthogonal(seed=0)((3, 0)).shape == (3, 0)


def test_scalar_and_int_shapes():
    assert I.RandomNormal(seed=0)(()).shape == ()
    assert I.Zeros()(5).shape == (5,)


# ------------------------------------------------------------------------------------------
# Formulas against Keras's documentation and the reference


def test_truncation_constant_derived_independently():
    assert R.truncation_std() == pytest.approx(I.TRUNCATION_STD, rel=1e-15)


def test_glorot_uniform_limit_from_keras_docs():
    fan_in, fan_out = 256, 128
    limit = math.sqrt(6.0 / (fan_in + fan_out))  # keras.initializers.GlorotUniform docstring
    x = I.GlorotUniform(seed=0)((fan_in, fan_out), "float64")
    assert np.abs(x).max() <= limit
    assert np.abs(x).max() > 0.999 * limit  # the bound is actually reached
    assert _z_ok(x, R.glorot_uniform((fan_in, fan_out)))


def test_he_normal_std_and_truncation_from_keras_docs():
    shape = (3, 3, 32, 64)
    fan_in = 3 * 3 * 32
    std = math.sqrt(2.0 / fan_in)  # keras.initializers.HeNormal docstring
    x = I.HeNormal(seed=0)(shape, "float64")
    assert x.std() == pytest.approx(std, rel=0.02)
    assert np.abs(x).max() <= 2.0 * std / 0.87962566103423978
    assert _z_ok(x, R.he_normal(shape))


def test_standard_is_torch_linear_bound_and_uses_given_fans():
    x = I.Standard(seed=0)(BIG, "float64")
    assert np.abs(x).max() <= 1.0 / 16.0
    b = I.Standard(seed=0)((32,), "float64", fans=(64, 32))  # bias: the weight's fan_in
    assert np.abs(b).max() <= 1.0 / 8.0
    # With the bias shape's own fan_in (32) the bound would be 0.177: 32 samples of U(±0.177)
    # all stay below 1/8 with probability 0.71^32 ≈ 2e-5.
    assert _z_ok(b, R.standard((32,), (64, 32)))


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_portable_matches_reference_distribution(name):
    init = _make(name, seed=21)
    for shape, fans in ((BIG, None), ((64,), None), ((3, 3, 8, 16), None), (BIG, (16, 4))):
        x = init(shape, "float64", fans=fans)
        dist = getattr(R, name)(shape, fans)
        assert _z_ok(x, dist), (shape, fans, R.sample_z_scores(x, dist))
        assert _in_support(x, dist)


@pytest.mark.parametrize("shape", [(256, 256), (64, 256), (3, 3, 8, 16), (16, 64)])
@pytest.mark.parametrize("gain", [1.0, 0.5])
def test_orthogonal_gram(shape, gain):
    w = I.Orthogonal(gain=gain, seed=0)(shape, "float64")
    g = R.gram(w)
    np.testing.assert_allclose(g, gain**2 * np.eye(len(g)), atol=1e-12)


# ------------------------------------------------------------------------------------------
# The statistics helper can fail


def test_stats_reject_wrong_std():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(BIG) * 1.03  # 3% too wide
    assert _z_ok(x / 1.03, R.random_normal(mean=0.0, stddev=1.0))
    assert not _z_ok(x, R.random_normal(mean=0.0, stddev=1.0))


def test_stats_reject_wrong_mean_and_missing_variance_correction():
    rng = np.random.default_rng(1)
    assert not _z_ok(rng.standard_normal(BIG) + 0.05, R.random_normal(mean=0.0, stddev=1.0))
    # Truncating at ±2σ without Keras's 1/0.8796 correction leaves the std 12% short.
    z = I.TruncatedNormal(stddev=1.0, seed=0)(BIG, "float64")
    assert not _z_ok(z, R.variance_scaling((1, 1), scale=1.0, mode="fan_in"))
    assert _z_ok(z / I.TRUNCATION_STD, R.variance_scaling((1, 1), scale=1.0, mode="fan_in"))


def test_support_rejects_untruncated_samples():
    x = np.random.default_rng(2).standard_normal(BIG) * R.he_normal(BIG).std()
    assert _z_ok(x, R.he_normal(BIG))  # the std alone cannot tell them apart...
    assert not _in_support(x, R.he_normal(BIG))  # ...the ±2σ' support can


# ------------------------------------------------------------------------------------------
# Native mode


@pytest.mark.parametrize("name", I.NAMES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_native_returns_numpy(name, dtype, backend):
    shape = (3, 3, 4, 8)
    out = _make(name, seed=5, native=True)(shape, dtype)
    assert isinstance(out, np.ndarray)
    assert out.shape == shape and out.dtype.name == dtype
    if dtype == "float64" and name not in ("zeros", "constant"):
        assert np.all(np.isfinite(out)) and np.any(out != 0)


@pytest.mark.parametrize("name", I.NAMES)
def test_native_tensorflow_is_keras_own(name):
    import keras

    cls = "VarianceScaling" if name == "standard" else type(I.get(name)).__name__
    init = _make(name, seed=5, native=True)
    extra = {"scale": 1.0 / 3.0, "mode": "fan_in", "distribution": "uniform"}
    if name in ("zeros", "ones"):
        expected = getattr(keras.initializers, cls)()
    elif name == "constant":
        expected = keras.initializers.Constant(0.0)
    else:
        expected = getattr(keras.initializers, cls)(seed=5, **(extra if name == "standard" else {}))
    with dn.use_backend("tensorflow"):
        got = init((6, 5), "float32")
    np.testing.assert_array_equal(got, np.asarray(expected((6, 5), dtype="float32")))


def test_native_torch_is_torch_own():
    import torch

    def torch_init(fn, torch_shape, **kw):
        t = torch.empty(torch_shape)
        fn(t, generator=torch.Generator().manual_seed(5), **kw)
        return t.numpy()

    with dn.use_backend("torch"):
        he = I.HeNormal(seed=5, native=True)((64, 32))
        xu = I.GlorotUniform(seed=5, native=True)((3, 3, 8, 16))
        orth = I.Orthogonal(seed=5, native=True)((64, 32))
    nn = torch.nn.init
    # A canonical (in, out) kernel is torch's (out, in) weight, transposed.
    np.testing.assert_array_equal(
        he, torch_init(nn.kaiming_normal_, (32, 64), nonlinearity="relu").T
    )
    np.testing.assert_array_equal(
        xu, torch_init(nn.xavier_uniform_, (16, 8, 3, 3)).transpose(2, 3, 1, 0)
    )
    np.testing.assert_array_equal(orth, torch_init(nn.orthogonal_, (32, 64)).T)


def test_native_standard_is_nn_linear_default():
    import torch

    torch.manual_seed(5)
    linear = torch.nn.Linear(64, 32)
    with dn.use_backend("torch"):
        w = I.Standard(seed=5, native=True)((64, 32))
    np.testing.assert_array_equal(w, linear.weight.detach().numpy().T)


def test_native_torch_he_normal_is_untruncated_keras_is_truncated():
    with dn.use_backend("torch"):
        t = I.HeNormal(seed=0, native=True)(BIG, "float64")
    with dn.use_backend("tensorflow"):
        k = I.HeNormal(seed=0, native=True)(BIG, "float64")
    assert _z_ok(t, R.native("torch", "he_normal", BIG))
    assert _z_ok(k, R.native("tensorflow", "he_normal", BIG))
    assert _in_support(k, R.he_normal(BIG))
    assert not _in_support(t, R.he_normal(BIG))  # torch's tails pass 2σ'


def test_native_torch_truncated_normal_uses_relative_bounds():
    with dn.use_backend("torch"):
        x = I.TruncatedNormal(mean=0.5, stddev=0.01, seed=0, native=True)(BIG, "float64")
    assert x.min() >= 0.48 and x.max() <= 0.52  # torch's default a=-2, b=2 would not cut


def test_native_torch_constant_overflow_is_clear():
    with dn.use_backend("torch"), pytest.raises(ValueError, match=r"value=-100000.0 for float16"):
        I.Constant(value=-1e5, native=True)((3,), "float16")
    assert np.isneginf(I.Constant(value=-1e5)((3,), "float16")).all()  # portable: -inf


# ------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda: I.RandomNormal(stddev=-1.0), ValueError, r"stddev=-1.0"),
        (lambda: I.TruncatedNormal(stddev=-0.1), ValueError, r"stddev=-0.1"),
        (lambda: I.RandomNormal(mean=float("nan")), ValueError, r"mean=nan"),
        (lambda: I.RandomNormal(stddev="1"), TypeError, r"stddev='1'"),
        (lambda: I.RandomUniform(minval=1.0, maxval=0.0), ValueError, r"minval=1.0.*maxval=0.0"),
        (lambda: I.VarianceScaling(mode="fan"), ValueError, r"mode='fan'.*fan_avg"),
        (lambda: I.VarianceScaling(distribution="gauss"), ValueError, r"distribution='gauss'"),
        (lambda: I.VarianceScaling(scale=0.0), ValueError, r"scale=0.0"),
        (lambda: I.VarianceScaling(scale=-2), ValueError, r"scale=-2"),
        (lambda: I.Constant(value=None), TypeError, r"value=None"),
        (lambda: I.Orthogonal(gain=float("inf")), ValueError, r"gain=inf"),
        (lambda: I.HeNormal(seed="1"), TypeError, r"seed='1'"),
        (lambda: I.HeNormal(seed=1.5), TypeError, r"seed=1.5"),
        (lambda: I.HeNormal(seed=-1), ValueError, r"seed=-1"),
        (lambda: I.HeNormal(native="yes"), TypeError, r"native='yes'"),
    ],
)
def test_bad_arguments_are_clear(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda i: i((3, -1)), ValueError, r"shape=\(3, -1\)"),
        (lambda i: i((3, 2.0)), TypeError, r"shape=\(3, 2.0\)"),
        (lambda i: i("3x3"), TypeError, r"shape='3x3'"),
        (lambda i: i((3, 3), "int32"), TypeError, r"dtype='int32'"),
        (lambda i: i((3, 3), fans=(1,)), TypeError, r"fans=\(1,\)"),
        (lambda i: i((3, 3), fans=(-1, 2)), ValueError, r"fans=\(-1, 2\)"),
    ],
)
def test_bad_call_arguments_are_clear(call, exc, match, backend):
    with pytest.raises(exc, match=match):
        call(I.HeNormal(seed=0))


def test_orthogonal_needs_two_dims(backend):
    for native in (False, True):
        with pytest.raises(ValueError, match=r"Orthogonal: invalid shape=\(4,\)"):
            I.Orthogonal(seed=0, native=native)((4,))


def test_failed_construction_does_not_advance_the_global_generator():
    dn.set_random_seed(3)
    expected = dn.random.draw_seed()
    dn.set_random_seed(3)
    with pytest.raises(ValueError):
        I.RandomNormal(stddev=-1.0)
    assert dn.random.draw_seed() == expected


# ------------------------------------------------------------------------------------------
# Fans


@pytest.mark.parametrize(
    "shape", [(), (7,), (0,), (5, 3), (3, 4, 5), (3, 3, 8, 16), (2, 3, 4, 5, 6)]
)
def test_compute_fans_matches_keras(shape):
    from keras.src.initializers.random_initializers import compute_fans

    assert I.compute_fans(shape) == compute_fans(shape) == R.compute_fans(shape)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=9), min_size=0, max_size=5))
def test_compute_fans_property(dims):
    import torch
    from keras.src.initializers.random_initializers import compute_fans

    shape = tuple(dims)
    fans = I.compute_fans(shape)
    assert fans == compute_fans(shape) == R.compute_fans(shape)
    if len(shape) >= 2:
        # torch's own fans on its (out, in, *spatial) layout are the same numbers.
        torch_shape = R.torch_layout(shape)
        assert R.torch_fans(torch_shape) == fans
        if math.prod(shape) > 0:
            assert torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(torch_shape)) == fans
        assert I.RandomUniform(seed=0)(shape).shape == shape  # any shape can be filled
