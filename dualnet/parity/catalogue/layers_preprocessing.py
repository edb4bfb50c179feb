"""Layer entries (Note [Layer entries]) for the preprocessing group: Rescaling.

``y = x·scale + offset`` is two roundings in the compute dtype (the product, then the sum), so
float32/float64 rows use the assert_close defaults (``reduction=1``). The entries meet the
frameworks' splits on purpose: an image-range input with Keras's ``1/127.5, -1`` (a scale that
is not a power of two, rounded to float32 as Keras casts it; an offset that cancels the
product near 127.5), per-channel lists with a negative and a zero entry over a masked
sequence, integer pixels (cast to the layer's dtype first, as Keras casts them), and half
precision, computed in float32 and rounded once (Keras computes in half).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dualnet import layers as L
from dualnet.parity.cases import register
from dualnet.parity.layer_cases import HALF_SUBNORMAL, U32, BadInput, LayerCase
from dualnet.reference.layers import preprocessing as R


def rescaling_half_bound(offset: float) -> Callable[..., np.ndarray]:
    """Half-precision bound for ``fl_h(fl₃₂(fl₃₂(x·fl₃₂(s)) + fl₃₂(o)))`` against ``fl_h(x·s + o)``.

    In float32: the scale's own rounding and the product's cost ``2u₃₂|x·s|``, the sum's
    ``u₃₂|y|`` and the offset's ``u₃₂|o|``; ``|x·s| <= |y| + |o|`` (the product may cancel
    against the offset), so ``|y₃₂ - y| <= 3u₃₂·(|y| + |o|)``. Rounding to half, as in
    :func:`~dualnet.parity.layer_cases.float32_math_bound`: ``2u·|y|`` (the backend's and the
    reference's rounding) plus one float16 subnormal spacing. ``offset`` is the largest
    ``|o|``."""

    def bound(ref_abs: np.ndarray | None, exact: np.ndarray, u: float) -> np.ndarray:
        return (2 * u + 3 * U32) * np.abs(exact) + 3 * U32 * offset + HALF_SUBNORMAL

    bound.needs_abs = False  # type: ignore[attr-defined]
    return bound


def _pixels(rng: np.random.Generator) -> np.ndarray:
    """Image-range values in [0, 255] with the ends and the midpoint 127.5 (where Keras's
    ``x/127.5 - 1`` cancels to 0) on purpose."""
    x = rng.uniform(0.0, 255.0, (2, 4, 4, 3))
    x.flat[:3] = (0.0, 127.5, 255.0)
    return x


def _integer_pixels(rng: np.random.Generator) -> np.ndarray:
    """uint8-like ids in an int32 array (exact in every float dtype, bfloat16 included)."""
    x = rng.integers(0, 256, (2, 3, 3, 3)).astype(np.int32)
    x.flat[:2] = (0, 255)
    return x


def _steps_mask(rng: np.random.Generator) -> np.ndarray:
    return np.array([[True, True, False, True, False], [False, True, True, True, True]])


PER_CHANNEL = {"scale": [0.5, -2.0, 1 / 3], "offset": [0.1, 0.0, -0.25]}

register(
    LayerCase(
        name="rescaling-image-range", layer=L.Rescaling,
        kwargs={"scale": 1 / 127.5, "offset": -1.0}, input_shape=(2, 4, 4, 3), inputs=_pixels,
        reference=R.rescaling, half_bound=rescaling_half_bound(1.0),
        exposes="Keras's [-1, 1] preprocessing: 1/127.5 rounded to the compute dtype as Keras "
                "casts it; the addition cancels the product at 127.5; half precision in float32, "
                "rounded once (Keras rounds scale, product and sum to half)",
        errors=(
            BadInput(kwargs={"scale": float("nan")}, error=ValueError, match=r"scale=nan"),
            BadInput(kwargs={"scale": 1.0, "offset": float("inf")}, error=ValueError,
                     match=r"offset=inf.*finite number"),
            BadInput(kwargs={"scale": "1/255"}, error=TypeError, match=r"scale='1/255'"),
            BadInput(kwargs={"scale": True}, error=TypeError, match=r"scale=True"),
            BadInput(kwargs={"scale": []}, error=ValueError, match=r"scale=\[\].*non-empty"),
            BadInput(kwargs={"scale": [[1.0, 2.0]]}, error=ValueError, match=r"scale=\[\[1.0"),
            BadInput(kwargs={"scale": [1.0, 2.0], "offset": [1.0, 2.0, 3.0]}, error=ValueError,
                     match=r"offset=\[1.0, 2.0, 3.0\].*2 entries like scale"),
        ),
    ),
    LayerCase(
        name="rescaling-per-channel-masked", layer=L.Rescaling, kwargs=PER_CHANNEL,
        input_shape=(2, 5, 3), mask=_steps_mask, reference=R.rescaling,
        half_bound=rescaling_half_bound(0.25),
        exposes="lists broadcast along the last axis (Keras's channels_last rule); a negative "
                "and an inexact (1/3) scale, a zero offset; the mask passes through (Keras's "
                "supports_masking)",
        errors=(
            BadInput(input_shape=(2, 5, 4), error=ValueError,
                     match=r"scale has 3 entries.*4 channels; expected inputs \(batch, \.\.\., "
                           r"3\)"),
            BadInput(kwargs={"scale": 2.0, "offset": [0.0, 1.0]}, input_shape=(2,),
                     error=ValueError, match=r"offset has 2 entries.*no channel axis"),
        ),
    ),
    LayerCase(
        name="rescaling-integer-input", layer=L.Rescaling, kwargs={"scale": 1 / 255},
        input_shape=(2, 3, 3, 3), inputs=_integer_pixels, reference=R.rescaling,
        half_bound=rescaling_half_bound(0.0), grad=False,
        exposes="integer pixels are cast to the layer's dtype before the product (Keras's "
                "cast); torch's x * (1/255) would promote an int tensor to its default dtype",
    ),
)  # fmt: skip
