"""Parity cases for every activation, with edge values at kinks, saturation and large |x|."""

from __future__ import annotations

import numpy as np

from dualnet import activations as A
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


register(
    _elementwise("sigmoid", A.sigmoid, R.sigmoid),
    _elementwise("tanh", A.tanh, R.tanh),
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
    _elementwise("elu", A.elu, R.elu, kinks=(0.0,)),
    _elementwise("selu", A.selu, R.selu, kinks=(0.0,)),
    _elementwise("gelu", A.gelu, R.gelu),
    _elementwise(
        "gelu-tanh",
        lambda x: A.gelu(x, approximate=True),
        lambda x: R.gelu(x, True),
    ),
    _elementwise("silu", A.silu, R.silu),
    _elementwise("softplus", A.softplus, R.softplus),
    _elementwise("softsign", A.softsign, R.softsign),
    _elementwise("hard_sigmoid", A.hard_sigmoid, R.hard_sigmoid, kinks=(-3.0, 3.0)),
    _elementwise(
        "hard_silu",
        A.hard_silu,
        R.hard_silu,
        kinks=(-3.0, 3.0),
    ),
    _elementwise("mish", A.mish, R.mish),
    _elementwise(
        "exponential",
        A.exponential,
        R.exponential,
        inputs=_moderate,
    ),
    _elementwise("linear", A.linear, R.linear),
    FunctionCase(
        name="softmax",
        family="activation",
        inputs=_logits,
        fn=A.softmax,
        reference=R.softmax,
    ),
    FunctionCase(
        name="softmax-axis0",
        family="activation",
        inputs=_logits,
        fn=lambda x: A.softmax(x, axis=0),
        reference=lambda x: R.softmax(x, axis=0),
    ),
    FunctionCase(
        name="log_softmax",
        family="activation",
        inputs=_logits,
        fn=A.log_softmax,
        reference=R.log_softmax,
    ),
)
