"""Layer entries (Note [Layer entries]) for the activation layers: ReLU with each of Keras's
options, LeakyReLU's layer default, PReLU's per-element and shared alphas, ELU, Softmax over
the last axis of a 3-D input and over several axes. Each exposes one torch/Keras difference
(``exposes=``).

Inputs include the exact kink points (0, the threshold, max_value), where the two backends must
agree on the documented one-sided derivative; the finite difference is masked there
(``fd_mask``) since it cannot see one side.

Half precision: the layers compute float16/bfloat16 inputs in float32 and round once (see
:func:`float32_math_bound` for the bound derived from the number of roundings).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dualnet import layers as L
from dualnet.parity.cases import register
from dualnet.parity.layer_cases import BadInput, LayerCase, float32_math_bound, rounding_bound
from dualnet.reference.layers import activations as R


def _with_points(shape: tuple[int, ...], points: tuple[float, ...],
                 scale: float = 1.0) -> Callable[[np.random.Generator], np.ndarray]:  # fmt: skip
    """Normal inputs (times ``scale``) whose first elements are exactly ``points`` (kinks)."""

    def make(rng: np.random.Generator) -> np.ndarray:
        x = scale * rng.standard_normal(shape)
        x.flat[: len(points)] = points
        return x

    return make


def _away_from(*points: float, margin: float = 1e-4):
    """``fd_mask``: the finite difference is valid farther than ``margin`` from every point."""

    def mask(xs: list[np.ndarray], weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = xs[0]
        near = np.zeros(x.shape, dtype=bool)
        for p in points:
            near |= np.abs(x - p) <= margin
        return {"x": ~near}

    return mask


def _re_lu(x, w, **config):
    return R.re_lu(x, w, **config)


register(
    LayerCase(
        name="relu-default", layer=L.ReLU, input_shape=(3, 5),
        inputs=_with_points((3, 5), (0.0, -0.0)), reference=_re_lu, fd_mask=_away_from(0.0),
        half_bound=rounding_bound(0),  # max(x, 0) is exact
        exposes="derivative 0 at x = 0 on both backends (the left side)",
        errors=(
            BadInput(kwargs={"max_value": -1.0}, match=r"max_value=-1\.0.*>= 0"),
            BadInput(kwargs={"negative_slope": -0.1}, match=r"negative_slope=-0\.1.*>= 0"),
            BadInput(kwargs={"threshold": "0"}, error=TypeError, match=r"threshold='0'"),
            BadInput(input_shape=(), match=r"rank >= 1"),
        ),
    ),
    LayerCase(
        name="relu-max-value", layer=L.ReLU, kwargs={"max_value": 1.25}, input_shape=(3, 5),
        inputs=_with_points((3, 5), (0.0, 1.25, 1.25), scale=1.5), reference=_re_lu,
        fd_mask=_away_from(0.0, 1.25),
        half_bound=rounding_bound(0),  # a clamp to a value exact in every dtype: exact
        exposes="derivative 0 at x = max_value (Keras clips with derivative 1 there; torch "
                "needs nn.Hardtanh or ReLU6)",
    ),
    LayerCase(
        name="relu-slope-threshold-max", layer=L.ReLU,
        kwargs={"max_value": 2.0, "negative_slope": 0.3, "threshold": 0.5}, input_shape=(3, 5),
        inputs=_with_points((3, 5), (0.5, 2.0, 0.0, 0.5), scale=1.5), reference=_re_lu,
        fd_mask=_away_from(0.5, 2.0),
        # float32: the slope's rounding and the product (x - 0.5 is exact); one half rounding.
        half_bound=float32_math_bound(2, 2),
        exposes="threshold: Keras's code gives 0.3·(x - θ) up to and at x = θ (its docstring "
                "says x at θ), then x; no torch module has these three options",
    ),
    LayerCase(
        name="leaky-relu-default", layer=L.LeakyReLU, input_shape=(3, 5),
        inputs=_with_points((3, 5), (0.0,)), reference=R.leaky_re_lu, fd_mask=_away_from(0.0),
        half_bound=float32_math_bound(2, 2),  # float32 slope and product, one half rounding
        exposes="default slope: Keras's layer 0.3, torch's nn.LeakyReLU 0.01, "
                "keras.activations.leaky_relu 0.2",
        errors=(
            BadInput(kwargs={"negative_slope": -0.5}, match=r"negative_slope=-0\.5.*>= 0"),
            BadInput(kwargs={"negative_slope": None}, error=TypeError, match=r"negative_slope"),
        ),
    ),
    LayerCase(
        name="prelu-per-element", layer=L.PReLU, input_shape=(2, 3, 4),
        inputs=_with_points((2, 3, 4), (0.0,)), reference=R.p_re_lu, fd_mask=_away_from(0.0),
        # A product of two halves is exact in float32: one rounding to half, one reference.
        half_bound=float32_math_bound(2, 0),
        exposes="alpha has the input's shape without the batch (Keras) where torch's "
                "nn.PReLU has one value or one per channel; init 0 vs torch's 0.25; "
                "derivative alpha at x = 0 (Keras's own layer: 0)",
        errors=(
            BadInput(kwargs={"shared_axes": 0}, match=r"shared_axes=0.*>= 1"),
            BadInput(kwargs={"shared_axes": [-1]}, match=r"shared_axes=\[-1\]"),
            BadInput(kwargs={"shared_axes": [3]}, input_shape=(2, 3, 4), match=r"axis 3"),
            BadInput(input_shape=(4,), match=r"rank >= 2"),
            BadInput(kwargs={"alpha_initializer": "nope"}, match=r"alpha_initializer.*nope"),
        ),
    ),
    LayerCase(
        name="prelu-shared-spatial", layer=L.PReLU, kwargs={"shared_axes": [1, 2]},
        input_shape=(2, 2, 3, 4), reference=R.p_re_lu, fd_mask=_away_from(0.0),
        half_bound=float32_math_bound(2, 0),
        exposes="one alpha per channel of a channels-last image via shared_axes=[1, 2] "
                "(torch's nn.PReLU(C) is per channel of dim 1, channels first)",
    ),
    LayerCase(
        name="elu-alpha", layer=L.ELU, kwargs={"alpha": 0.7}, input_shape=(3, 5),
        inputs=_with_points((3, 5), (0.0,), scale=2.0), reference=R.elu,
        fd_mask=_away_from(0.0),
        # float32: expm1 (<= 2 roundings), alpha's rounding and the product.
        half_bound=float32_math_bound(2, 4),
        exposes="derivative alpha at x = 0 on both backends (tf.nn.elu's own is 1)",
        errors=(BadInput(kwargs={"alpha": float("inf")}, match=r"alpha=inf"),),
    ),
    LayerCase(
        name="softmax-3d-last-axis", layer=L.Softmax, input_shape=(2, 3, 4), reference=R.softmax,
        reduction=4,
        # float32: e^(x - max) (2), a sum of 4 (3), the division (1); one half rounding.
        half_bound=float32_math_bound(2, 6),
        exposes="default axis -1; torch's nn.Softmax() without dim normalises a 3-D input "
                "over dim 0, the batch",
        errors=(
            BadInput(kwargs={"axis": 3}, input_shape=(2, 3, 4), match=r"axis=3"),
            BadInput(kwargs={"axis": "x"}, error=TypeError, match=r"axis='x'"),
            BadInput(kwargs={"axis": [1, 1]}, match=r"distinct"),
        ),
    ),
    LayerCase(
        name="softmax-two-axes", layer=L.Softmax, kwargs={"axis": [1, 2]}, input_shape=(2, 3, 4),
        reference=R.softmax, reduction=12,
        # float32: logsumexp (exp 2, sum of 12: 11, log 2), x - lse, exp (2).
        half_bound=float32_math_bound(2, 18),
        exposes="softmax over several axes at once (Keras's list axis; torch's softmax takes "
                "one dim)",
    ),
)  # fmt: skip
