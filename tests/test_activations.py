"""Activation API: names, defaults, bad input (parity itself is in test_parity.py)."""

from __future__ import annotations

import numpy as np
import pytest

import dualnet as dn
from dualnet import activations as A
from dualnet.reference import activations as R


@pytest.mark.parametrize("name", A.NAMES)
def test_get_by_name_matches_reference(name, backend):
    x = np.linspace(-4, 4, 17)
    y = dn.to_numpy(A.get(name)(x))
    np.testing.assert_allclose(y, getattr(R, name)(x), rtol=1e-12, atol=1e-12)


def test_get_none_and_callable():
    assert A.get(None) is A.linear
    fn = lambda x: x  # noqa: E731
    assert A.get(fn) is fn


def test_unknown_name_is_clear(backend):
    with pytest.raises(ValueError, match=r"Unknown activation 'reluu'.*relu"):
        A.get("reluu")


@pytest.mark.parametrize("bad", [float("nan"), "0.1", None, True])
def test_bad_slope_is_clear(bad, backend):
    with pytest.raises((TypeError, ValueError), match="negative_slope="):
        A.leaky_relu([1.0], negative_slope=bad)


def test_defaults_follow_keras_functions(backend):
    x = np.array([-1.0])
    assert dn.to_numpy(A.leaky_relu(x))[0] == pytest.approx(-0.2)
    y = dn.to_numpy(A.gelu(np.array([1.0])))[0]
    assert y == pytest.approx(R.gelu(np.array([1.0]))[0], rel=1e-12)  # exact, not tanh


def test_softmax_rows_sum_to_one_at_saturation(backend):
    x = np.array([[1000.0, 0.0, -1000.0], [-1e4, -1e4, -1e4]])
    y = dn.to_numpy(A.softmax(x))
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-15)
    assert np.isfinite(y).all()


@pytest.mark.parametrize("name", A.NAMES)
def test_integer_input_becomes_float32(name, backend):
    y = dn.to_numpy(A.get(name)(np.array([[1, -2, 3]])))
    assert y.dtype == np.float32
    # gelu_tanh at -2 sums 1 + tanh(-1.88) = 1 - 0.955: the cancellation multiplies the
    # float32 rounding of tanh by 1/(1 + tanh) ≈ 22 (measured on TensorFlow: 1.7e-6).
    rtol = 4e-6 if name == "gelu_tanh" else 1e-6
    np.testing.assert_allclose(y, getattr(R, name)(np.array([[1.0, -2.0, 3.0]])), rtol=rtol)


@pytest.mark.parametrize("axis", [2, -3, 5])
@pytest.mark.parametrize("fn", [A.softmax, A.log_softmax])
def test_axis_out_of_range_is_clear(fn, axis, backend):
    with pytest.raises(ValueError, match=rf"axis={axis}; expected an axis of an input of rank 2"):
        fn(np.zeros((2, 3)), axis=axis)
