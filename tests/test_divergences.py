"""Each known native divergence is still present (else its workaround may go) and dualnet's
version of the op is right where the native one is not."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dualnet as dn
from dualnet.parity.divergences import KNOWN
from dualnet.reference import activations as R


@pytest.mark.parametrize("divergence", KNOWN, ids=[d.id for d in KNOWN])
def test_native_divergence_still_present(divergence):
    error = divergence.probe()
    if divergence.machine_dependent and error <= divergence.threshold:
        pytest.skip(f"{divergence.id} does not show on this processor")
    assert error > divergence.threshold, (
        f"{divergence.api} no longer shows '{divergence.symptom}' (error {error:.3g} <= "
        f"{divergence.threshold:g}): the framework fixed it; review dualnet's workaround."
    )


@pytest.mark.parametrize(
    ("name", "x", "kwargs"),
    [
        ("leaky_relu", -1e4, {}),
        ("gelu", -1.5, {}),
        ("gelu", -8.0, {}),
        ("gelu", -1.5, {"approximate": True}),
        ("softplus", 20.5, {}),
        ("hard_sigmoid", 0.5, {}),
    ],
)
def test_dualnet_float64_is_exact_where_native_is_not(name, x, kwargs, backend):
    y = dn.to_numpy(getattr(dn.activations, name)(np.array([x]), **kwargs))[0]
    expected = getattr(R, name)(np.array([x]), **kwargs)[0]
    assert y == pytest.approx(expected, rel=1e-13, abs=1e-300)


def test_selu_gradient_at_zero_is_left_derivative(backend):
    from dualnet._backend import backend_module

    core = backend_module(backend).core
    x = core.convert_to_tensor(np.array([0.0, -0.0]))
    _, (g,) = core.vjp(dn.activations.selu, [x], [0], np.ones(2))
    np.testing.assert_allclose(core.to_numpy(g), R.SELU_SCALE * R.SELU_ALPHA, rtol=1e-15)


def test_gelu_tanh_float16_gradient_is_finite(backend):
    from dualnet._backend import backend_module

    core = backend_module(backend).core
    x = core.convert_to_tensor(np.array([1000.0, -1000.0], dtype=np.float16))
    _, (g,) = core.vjp(lambda t: dn.activations.gelu(t, approximate=True), [x], [0], np.ones(2))
    g = core.to_numpy(g).astype(np.float64)
    assert np.all(np.isfinite(g)), g
    assert g[0] == pytest.approx(1.0) and g[1] == pytest.approx(0.0, abs=1e-3)
    assert math.isfinite(float(g.sum()))
