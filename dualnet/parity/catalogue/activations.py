"""Parity cases for every activation, with edge values at kinks, saturation and large |x|."""

from __future__ import annotations

import numpy as np

from dualnet import activations as A
from dualnet.parity import tolerance as tol
from dualnet.parity.cases import FunctionCase, kink_mask, register
from dualnet.reference import activations as R

# Values every activation sees: zeros, kinks (0, ±3, 6), saturation (±20, ±50), large
# magnitudes (±1e4) and a random bulk. Inputs are rounded to the dtype under test first.
_EDGES = np.array(
    [
        0.0,
        -0.0,
        1e-8,
        -1e-8,
        1.0,
        -1.0,
        3.0,
        -3.0,
        6.0,
        20.0,
        -20.0,
        50.0,
        -50.0,
        1e4,
        -1e4,
        0.5,
        -0.5,
        2.5,
        -2.5,
        5.9,
    ]
)


def _vector(rng: np.random.Generator) -> dict[str, np.ndarray]:
    bulk = rng.uniform(-6.0, 6.0, size=44)
    return {"x": np.concatenate([_EDGES, bulk]).reshape(8, 8)}


def _moderate(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """For exponential: |x| <= 80 keeps e^x finite in float32 (overflow is tested separately)."""
    edges = np.array([0.0, 1.0, -1.0, 10.0, -10.0, 80.0, -80.0, -1e4])
    return {"x": np.concatenate([edges, rng.uniform(-5, 5, size=56)]).reshape(8, 8)}


def _logits(rng: np.random.Generator) -> dict[str, np.ndarray]:
    x = rng.normal(0.0, 2.0, size=(6, 5))
    x[0] = [1000.0, 0.0, -1000.0, 1.0, 2.0]  # saturated: one class takes all the mass
    x[1] = [0.0, 0.0, 0.0, 0.0, 0.0]  # uniform
    x[2] = [50.0, 50.0, -50.0, 0.0, 10.0]  # two-way tie at the top
    x[3] = [1e4, 1e4 - 1.0, 1e4 - 2.0, 1e4 - 3.0, 1e4 - 4.0]  # large common offset
    return {"x": x}


def _elementwise(
    name: str, fn, ref, *, kinks=(), inputs=_vector, notes="", tolerance=None, grad_tolerance=None
):
    return FunctionCase(
        name=name,
        family="activation",
        inputs=inputs,
        fn=fn,
        reference=ref,
        elementwise=True,
        fd_mask=kink_mask(kinks) if kinks else None,
        notes=notes,
        tolerance=tolerance or {},
        grad_tolerance=grad_tolerance or {},
    )


_LOW = "float16/bfloat16 kernels of transcendental functions differ by a few units in the last place between frameworks (torch computes in float32 and rounds once, TF CPU may round intermediates)"  # noqa: E501
# bfloat16 has 8 bits of mantissa: one ulp is 2^-8 ≈ 3.9e-3 relative; the default 1.6e-2 is 4 ulp.
_LOW_TOL = {
    "float16": tol.default("float16").loosened(rtol=2e-3, atol=1e-3, reason=_LOW),
    "bfloat16": tol.default("bfloat16").loosened(atol=1e-2, reason=_LOW),
}

register(
    _elementwise("sigmoid", A.sigmoid, R.sigmoid, tolerance=_LOW_TOL, grad_tolerance=_LOW_TOL),
    _elementwise("tanh", A.tanh, R.tanh, tolerance=_LOW_TOL, grad_tolerance=_LOW_TOL),
    _elementwise("relu", A.relu, R.relu, kinks=(0.0,)),
    _elementwise("relu6", A.relu6, R.relu6, kinks=(0.0, 6.0)),
    _elementwise("leaky_relu", A.leaky_relu, R.leaky_relu, kinks=(0.0,)),
    _elementwise(
        "leaky_relu-slope0.01",
        lambda x: A.leaky_relu(x, negative_slope=0.01),
        lambda x: R.leaky_relu(x, 0.01),
        kinks=(0.0,),
        notes="torch's default slope",
    ),
    _elementwise("elu", A.elu, R.elu, kinks=(0.0,), tolerance=_LOW_TOL, grad_tolerance=_LOW_TOL),
    _elementwise("selu", A.selu, R.selu, kinks=(0.0,), tolerance=_LOW_TOL, grad_tolerance=_LOW_TOL),
    _elementwise("gelu", A.gelu, R.gelu, tolerance=_LOW_TOL, grad_tolerance=_LOW_TOL),
    _elementwise(
        "gelu-tanh",
        lambda x: A.gelu(x, approximate=True),
        lambda x: R.gelu(x, True),
        tolerance=_LOW_TOL,
        grad_tolerance=_LOW_TOL,
    ),
    _elementwise("silu", A.silu, R.silu, tolerance=_LOW_TOL, grad_tolerance=_LOW_TOL),
    _elementwise("softplus", A.softplus, R.softplus, tolerance=_LOW_TOL, grad_tolerance=_LOW_TOL),
    _elementwise("softsign", A.softsign, R.softsign, tolerance=_LOW_TOL, grad_tolerance=_LOW_TOL),
    _elementwise("hard_sigmoid", A.hard_sigmoid, R.hard_sigmoid, kinks=(-3.0, 3.0)),
    _elementwise(
        "hard_silu",
        A.hard_silu,
        R.hard_silu,
        kinks=(-3.0, 3.0),
        tolerance=_LOW_TOL,
        grad_tolerance=_LOW_TOL,
    ),
    _elementwise("mish", A.mish, R.mish, tolerance=_LOW_TOL, grad_tolerance=_LOW_TOL),
    _elementwise(
        "exponential",
        A.exponential,
        R.exponential,
        inputs=_moderate,
        tolerance=_LOW_TOL,
        grad_tolerance=_LOW_TOL,
    ),
    _elementwise("linear", A.linear, R.linear),
    FunctionCase(
        name="softmax",
        family="activation",
        inputs=_logits,
        fn=A.softmax,
        reference=R.softmax,
        tolerance=_LOW_TOL,
        grad_tolerance=_LOW_TOL,
    ),
    FunctionCase(
        name="softmax-axis0",
        family="activation",
        inputs=_logits,
        fn=lambda x: A.softmax(x, axis=0),
        reference=lambda x: R.softmax(x, axis=0),
        tolerance=_LOW_TOL,
        grad_tolerance=_LOW_TOL,
    ),
    FunctionCase(
        name="log_softmax",
        family="activation",
        inputs=_logits,
        fn=A.log_softmax,
        reference=R.log_softmax,
        tolerance=_LOW_TOL,
        grad_tolerance=_LOW_TOL,
    ),
)
