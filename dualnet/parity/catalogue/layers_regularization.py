"""Layer entries (Note [Layer entries]) for the regularization layers, in training mode (the
mask or noise applied, step-identical on both backends and in the reference) and in inference
mode (the identity). Each exposes one torch/Keras difference (``exposes=``).

Every entry gives an explicit ``seed``: a case builds a fresh layer per backend and for the
reference, and an unseeded layer would draw a different seed each time. A fresh layer's call
is its first training call (index 0), which is also what the reference reproduces (Note
[Portable noise] in :mod:`dualnet.layers.regularization`).

Half precision: the layers apply the noise in float32 (the scale or noise rounded once to
float32, one float32 operation) and round once to half (see
:func:`~dualnet.parity.layer_cases.float32_math_bound`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dualnet import layers as L
from dualnet.layers.regularization import keep_mask, standard_normal
from dualnet.parity.cases import register
from dualnet.parity.layer_cases import U32, BadInput, LayerCase, float32_math_bound, rounding_bound
from dualnet.reference.layers import regularization as R

SHAPE = (4, 6)


def _with_dropped_infinities(seed: int, rate: float) -> Callable[[np.random.Generator], np.ndarray]:
    """Normal inputs with +inf and -inf at two elements the first training call drops: a
    dropped element must be 0 (Keras's ``where``), not ``inf·0 = NaN`` (torch's mask product).
    """

    def make(rng: np.random.Generator) -> np.ndarray:
        x = rng.standard_normal(SHAPE)
        dropped = np.flatnonzero(~keep_mask(seed, 0, SHAPE, rate))
        x.flat[dropped[:2]] = [np.inf, -np.inf]
        return x

    return make


def _finite(xs: list[np.ndarray], weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``fd_mask``: no finite difference at an infinite input (its step ``inf - inf`` is NaN);
    the backends' gradients there (0: the element is dropped) are still compared."""
    return {"x": np.isfinite(xs[0])}


def _gaussian_noise_bound(seed: int, stddev: float) -> Callable[..., np.ndarray]:
    """Half-precision bound for ``x + stddev·n``: the noise rounded to float32
    (``u₃₂·|stddev·n|``, not relative to ``|y|``: x and the noise may cancel), the float32 sum
    (``u₃₂·|y|``), the rounding to half and the reference's (``2u·|y|``), a subnormal spacing;
    the noise is the one the layer draws (its spec, :func:`standard_normal`)."""
    base = float32_math_bound(2, 1)

    def bound(ref_abs: np.ndarray | None, exact: np.ndarray, u: float) -> np.ndarray:
        noise = stddev * standard_normal(seed, 0, exact.shape)
        return base(ref_abs, exact, u) + U32 * np.abs(noise)

    bound.needs_abs = False  # type: ignore[attr-defined]
    return bound


_RATE_ERRORS = (
    BadInput(kwargs={"rate": 1.5}, match=r"rate=1\.5.*<= 1"),
    BadInput(kwargs={"rate": -0.1}, match=r"rate=-0\.1.*>= 0"),
    BadInput(kwargs={"rate": "0.5"}, error=TypeError, match=r"rate='0\.5'"),
    BadInput(kwargs={"seed": -1}, match=r"seed=-1.*non-negative int"),
    BadInput(kwargs={"seed": 1.5}, error=TypeError, match=r"seed=1\.5"),
)

register(
    LayerCase(
        name="dropout-training", layer=L.Dropout, kwargs={"rate": 0.4, "seed": 7},
        input_shape=SHAPE, inputs=_with_dropped_infinities(7, 0.4), reference=R.dropout,
        training=True, fd_mask=_finite,
        half_bound=float32_math_bound(2, 2),  # the scale and the product in float32
        exposes="the mask is dualnet's (PCG64, the same on both backends: torch's and TF's own "
                "masks never match); kept values x·1/(1-rate); dropped inf is 0 (Keras), not "
                "inf·0 = NaN (torch)",
        errors=(
            *_RATE_ERRORS,
            BadInput(kwargs={"noise_shape": (None, 2)}, input_shape=SHAPE,
                     match=r"noise_shape=\(None, 2\) does not fit"),
            BadInput(kwargs={"noise_shape": (None, 0)}, match=r"noise_shape=\(None, 0\)"),
            BadInput(input_shape=(), match=r"rank >= 1"),
        ),
    ),
    LayerCase(
        name="dropout-inference", layer=L.Dropout, kwargs={"rate": 0.5, "seed": 3},
        input_shape=SHAPE, reference=R.dropout, half_bound=rounding_bound(0),  # the identity
        exposes="a bare call is inference, the identity (Keras); a fresh torch nn.Dropout is "
                "in training mode",
    ),
    LayerCase(
        name="dropout-noise-shape", layer=L.Dropout,
        kwargs={"rate": 0.5, "noise_shape": (None, 1, 4), "seed": 11}, input_shape=(3, 5, 4),
        reference=R.dropout, training=True, half_bound=float32_math_bound(2, 2),
        exposes="noise_shape with the batch first and None for the input's size: the same "
                "features dropped at every step",
    ),
    LayerCase(
        name="dropout-rate-one", layer=L.Dropout, kwargs={"rate": 1.0, "seed": 5},
        input_shape=SHAPE, reference=R.dropout, training=True, half_bound=rounding_bound(0),
        exposes="rate=1 drops everything: zeros and a zero gradient (Keras's zeros_like), "
                "never NaN",
    ),
    LayerCase(
        name="spatial-dropout1d", layer=L.SpatialDropout1D, kwargs={"rate": 0.5, "seed": 2},
        input_shape=(3, 4, 5), reference=R.spatial_dropout1d, training=True,
        half_bound=float32_math_bound(2, 2),
        exposes="whole channels of (batch, steps, channels) dropped (torch's nn.Dropout1d "
                "drops dim 1 of channels-first inputs)",
        errors=(
            BadInput(input_shape=(3, 4), match=r"rank 3"),
            BadInput(kwargs={"rate": 2}, match=r"rate=2"),
        ),
    ),
    LayerCase(
        name="spatial-dropout2d-channels-last", layer=L.SpatialDropout2D,
        kwargs={"rate": 0.5, "seed": 4}, input_shape=(2, 3, 3, 4),
        reference=R.spatial_dropout2d, training=True, half_bound=float32_math_bound(2, 2),
        exposes="whole feature maps dropped, channels last by default (torch's nn.Dropout2d: "
                "channels first)",
        errors=(
            BadInput(input_shape=(2, 3, 4), match=r"rank 4"),
            BadInput(kwargs={"data_format": "NHWC"}, match=r"data_format='NHWC'"),
        ),
    ),
    LayerCase(
        name="spatial-dropout2d-channels-first", layer=L.SpatialDropout2D,
        kwargs={"rate": 0.3, "data_format": "channels_first", "seed": 6}, input_shape=(2, 4, 3, 3),
        reference=R.spatial_dropout2d, training=True, half_bound=float32_math_bound(2, 2),
        exposes="channels_first: torch's layout, the mask (batch, C, 1, 1)",
    ),
    LayerCase(
        name="gaussian-noise-training", layer=L.GaussianNoise, kwargs={"stddev": 0.3, "seed": 8},
        input_shape=SHAPE, reference=R.gaussian_noise, training=True,
        half_bound=_gaussian_noise_bound(8, 0.3),
        exposes="Keras-only layer; the noise is dualnet's, identical on both backends",
        errors=(
            BadInput(kwargs={"stddev": 1.5}, match=r"stddev=1\.5.*<= 1"),
            BadInput(kwargs={"stddev": -1}, match=r"stddev=-1"),
        ),
    ),
    LayerCase(
        name="gaussian-noise-inference", layer=L.GaussianNoise, kwargs={"stddev": 0.3, "seed": 8},
        input_shape=SHAPE, reference=R.gaussian_noise, half_bound=rounding_bound(0),
        exposes="the identity in inference mode",
    ),
    LayerCase(
        name="gaussian-dropout-training", layer=L.GaussianDropout,
        kwargs={"rate": 0.3, "seed": 9}, input_shape=SHAPE, reference=R.gaussian_dropout,
        training=True, half_bound=float32_math_bound(2, 2),  # factor and product in float32
        exposes="Keras-only layer: x·(1 + σ·n), σ = √(rate/(1-rate)), the noise dualnet's",
        errors=(
            BadInput(kwargs={"rate": 1.0}, match=r"rate=1\.0.*< 1"),
            BadInput(kwargs={"seed": True}, error=TypeError, match=r"seed=True"),
        ),
    ),
)  # fmt: skip
