"""Layer entries (Note [Layer entries]) for the normalization group: BatchNormalization in
training mode (the moving statistics after the call are compared too) and inference mode,
LayerNormalization, GroupNormalization, RMSNormalization and UnitNormalization, each chosen to
expose one torch/Keras difference (``exposes=``).

Tolerance: ``reduction`` is K, the number of values normalised together (the length of the
sums behind μ and σ², and of the sums in the backward pass).

Half precision: every layer normalises float16/bfloat16 inputs in float32 on both backends and
rounds once (see :func:`normalized_bound`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dualnet import layers as L
from dualnet.parity.cases import register
from dualnet.parity.layer_cases import BadInput, LayerCase, default_weights
from dualnet.reference.layers import normalization as R

_U32 = 2.0**-24  # float32 unit roundoff
_HALF_SUBNORMAL = 2.0**-24  # float16's smallest subnormal spacing


def normalized_bound(reduction: int) -> Callable[..., np.ndarray]:
    """Half-precision bound for a normalization computed in float32 and rounded once.

    The backend returns ``fl_half(y32)`` with ``y32`` the float32 result; it is compared with
    ``fl_half(y)``, the exact value rounded. So
    ``|fl_half(y32) - fl_half(y)| <= u|y32| + |y32 - y| + u|y| (+ one subnormal spacing below
    float16's normal range)``, i.e. ``2u|y| + δ`` to first order, where δ is the float32 error:
    sums of K terms for μ and σ², a square root and a few products, ``γ_{K+8}`` relative to the
    size of the terms, which for inputs whose mean is within a few standard deviations of zero
    (every entry here) is below ``max|y| + 1`` (the normalised value, β, and the moving mean
    over the moving standard deviation in inference). Doubled for safety:
    ``δ = 2·(K + 8)·u₃₂·(max|y| + 1)``.
    """

    def bound(ref_abs: np.ndarray | None, exact: np.ndarray, u: float) -> np.ndarray:
        float32 = 2.0 * (reduction + 8) * _U32 * (float(np.max(np.abs(exact), initial=0.0)) + 1)
        return 2.0 * u * np.abs(exact) + float32 + _HALF_SUBNORMAL

    bound.needs_abs = False  # type: ignore[attr-defined]
    return bound


# -- inputs and weights -------------------------------------------------------------------------


def _tiny_channel(rng: np.random.Generator) -> np.ndarray:
    """(8, 3): channel 1 has standard deviation 1e-3 (variance ~1e-6, far below ε = 1e-3, so
    Keras's and torch's epsilons give outputs ~10x apart) around a mean of 2 (|μ|/σ = 2000: a
    one-pass E[x²] - E[x]² variance would lose every digit in float32)."""
    x = rng.standard_normal((8, 3))
    x[:, 1] = 2.0 + 1e-3 * x[:, 1]
    return x


def _tiny_moving_variance(rng: np.random.Generator, specs) -> list[np.ndarray]:
    """Default weights, with the moving variance of channel 0 at 1e-4 (ε = 1e-3 dominates it:
    torch's 1e-5 would scale that channel ~3x more)."""
    weights = default_weights(rng, specs)
    for spec, w in zip(specs, weights, strict=True):
        if spec.name == "moving_variance":
            w[0] = 1e-4
    return weights


def _small_rows(
    scale: float, shape: tuple[int, ...]
) -> Callable[[np.random.Generator], np.ndarray]:
    """Standard normal rows, row 0 scaled by ``scale`` (its variance or mean square then sits
    near the layer's epsilon, where the frameworks' epsilons differ)."""

    def make(rng: np.random.Generator) -> np.ndarray:
        x = rng.standard_normal(shape)
        x[0] *= scale
        return x

    return make


def _zero_row(rng: np.random.Generator) -> np.ndarray:
    """(4, 5) with row 2 all zeros: UnitNormalization's capped inverse norm (1e12)."""
    x = rng.standard_normal((4, 5))
    x[2] = 0.0
    return x


def _nonzero_rows(inputs: list[np.ndarray], weights: dict) -> dict[str, np.ndarray]:
    """A zero vector is a kink of ‖x‖: finite differences there see ±1 (x/|x|) instead of the
    derivative 1e12 of the capped branch; those elements are compared across backends only."""
    x = inputs[0]
    norm = np.sqrt(np.sum(np.square(x), axis=-1, keepdims=True))
    return {"x": np.broadcast_to(norm > 0, x.shape)}


# -- BatchNormalization -------------------------------------------------------------------------

_BN_ERRORS = (
    BadInput(kwargs={"momentum": 1.5}, error=ValueError, match=r"momentum=1\.5.*\[|<= 1"),
    BadInput(kwargs={"epsilon": 0.0}, error=ValueError, match=r"epsilon=0\.0.*> 0"),
    BadInput(kwargs={"axis": [1, 2]}, error=TypeError, match=r"axis=\[1, 2\].*an int"),
    BadInput(kwargs={"moving_variance_estimator": "sample"}, error=ValueError,
             match=r"moving_variance_estimator='sample'.*'biased', 'unbiased'"),
    BadInput(input_shape=(4,), error=ValueError, match=r"rank >= 2"),
    BadInput(kwargs={"axis": 3}, input_shape=(4, 3), error=ValueError,
             match=r"axis=3.*rank 2"),
)  # fmt: skip

register(
    LayerCase(
        name="batchnorm-train-rank4", layer=L.BatchNormalization, input_shape=(4, 2, 2, 3),
        training=True, reference=R.batch_normalization, reduction=16,
        exposes="moving variance updated with the biased batch variance (torch: unbiased, "
                "x16/15 here) and momentum weighting the old value (torch: the batch)",
        errors=_BN_ERRORS,
    ),
    LayerCase(
        name="batchnorm-inference-tiny-moving-variance", layer=L.BatchNormalization,
        input_shape=(2, 2, 2, 3), weights=_tiny_moving_variance, reference=R.batch_normalization,
        reduction=8, half_bound=normalized_bound(8),
        exposes="inference uses the moving statistics (a torch module starts in training "
                "mode); epsilon 1e-3 vs torch's 1e-5 on a moving variance of 1e-4",
    ),
    LayerCase(
        name="batchnorm-train-rank3-no-affine", layer=L.BatchNormalization,
        kwargs={"center": False, "scale": False}, input_shape=(4, 3, 2), training=True,
        reference=R.batch_normalization, reduction=12,
        exposes="center=False, scale=False (torch affine=False): only the moving statistics, "
                "still updated with Keras's rule",
    ),
    LayerCase(
        name="batchnorm-train-channels-first", layer=L.BatchNormalization, kwargs={"axis": 1},
        input_shape=(3, 2, 2, 2), training=True, reference=R.batch_normalization, reduction=12,
        exposes="axis=1 (torch BatchNorm2d's channel dim) on rank 4; Keras's default is -1",
    ),
    LayerCase(
        name="batchnorm-train-rank2-batch8", layer=L.BatchNormalization, input_shape=(8, 3),
        training=True, reference=R.batch_normalization, reduction=8,
        half_bound=normalized_bound(8),
        exposes="unbiased (torch) vs biased (Keras) moving variance at batch 8: a factor 8/7",
    ),
    LayerCase(
        name="batchnorm-train-tiny-variance", layer=L.BatchNormalization, input_shape=(8, 3),
        inputs=_tiny_channel, training=True, reference=R.batch_normalization, reduction=8,
        exposes="epsilon 1e-3 (Keras) vs 1e-5 (torch) on a channel of variance 1e-6 with mean "
                "2 (also breaks a one-pass variance)",
    ),
    LayerCase(
        name="batchnorm-train-torch-defaults", layer=L.BatchNormalization,
        kwargs={"momentum": 0.9, "epsilon": 1e-5, "moving_variance_estimator": "unbiased"},
        input_shape=(6, 3), training=True, reference=R.batch_normalization, reduction=6,
        exposes="BatchNormalization.torch_defaults(): torch's momentum, epsilon and unbiased "
                "moving variance reproduced on both backends",
    ),
    LayerCase(
        name="batchnorm-frozen-called-training", layer=L.BatchNormalization,
        kwargs={"trainable": False}, input_shape=(6, 3), training=True,
        reference=R.batch_normalization, reduction=6,
        exposes="a frozen layer called with training=True normalises with the moving statistics "
                "and updates nothing (Keras's rule); torch's requires_grad=False still uses and "
                "updates batch statistics",
    ),
)  # fmt: skip

# -- LayerNormalization -------------------------------------------------------------------------

register(
    LayerCase(
        name="layernorm-last-axis-image", layer=L.LayerNormalization, input_shape=(2, 2, 2, 4),
        reference=R.layer_normalization, reduction=4, half_bound=normalized_bound(4),
        exposes="Keras axis=-1 normalises each pixel over its channels; torch "
                "LayerNorm([C, H, W]) normalises over all three",
        errors=(
            BadInput(kwargs={"axis": [1, 1]}, error=ValueError, match=r"axis=\[1, 1\].*distinct"),
            BadInput(kwargs={"axis": "channels"}, error=TypeError, match=r"axis='channels'"),
            BadInput(kwargs={"epsilon": -1e-3}, error=ValueError, match=r"epsilon=-0\.001"),
            BadInput(kwargs={"axis": 2}, input_shape=(3, 4), error=ValueError,
                     match=r"axis=2.*rank 2"),
            BadInput(input_shape=(4,), error=ValueError, match=r"rank >= 2"),
        ),
    ),
    LayerCase(
        name="layernorm-axes-1-2", layer=L.LayerNormalization, kwargs={"axis": [1, 2]},
        input_shape=(2, 3, 2, 2), reference=R.layer_normalization, reduction=6,
        exposes="non-trailing axes (torch's normalized_shape is trailing only): gamma/beta "
                "(H, W) broadcast over the channels",
    ),
    LayerCase(
        name="layernorm-axes-chw", layer=L.LayerNormalization, kwargs={"axis": [1, 2, 3]},
        input_shape=(2, 2, 2, 3), reference=R.layer_normalization, reduction=12,
        exposes="torch's LayerNorm([C, H, W]) convention on channels-last data",
    ),
    LayerCase(
        name="layernorm-small-variance-no-center", layer=L.LayerNormalization,
        kwargs={"center": False}, input_shape=(3, 5), inputs=_small_rows(0.01, (3, 5)),
        reference=R.layer_normalization, reduction=5,
        exposes="epsilon 1e-3 (Keras) vs 1e-5 (torch) on a row of variance ~1e-4",
    ),
)  # fmt: skip

# -- GroupNormalization -------------------------------------------------------------------------

register(
    LayerCase(
        name="groupnorm-2-groups", layer=L.GroupNormalization, kwargs={"groups": 2},
        input_shape=(2, 2, 2, 4), reference=R.group_normalization, reduction=8,
        half_bound=normalized_bound(8),
        exposes="epsilon 1e-3 vs torch's 1e-5; channels-last groups of consecutive channels "
                "(torch groups dim 1)",
        errors=(
            BadInput(kwargs={"groups": 3}, input_shape=(2, 4), error=ValueError,
                     match=r"divisible by groups=3, got 4 channels"),
            BadInput(kwargs={"groups": 8}, input_shape=(2, 4), error=ValueError,
                     match=r"divisible by groups=8"),
            BadInput(kwargs={"groups": 0}, error=ValueError, match=r"groups=0.*positive int"),
            BadInput(kwargs={"groups": 2.0}, error=TypeError, match=r"groups=2\.0"),
            BadInput(kwargs={"axis": [1]}, error=TypeError, match=r"axis=\[1\].*an int"),
            BadInput(kwargs={"groups": 1}, input_shape=(4,), error=ValueError,
                     match=r"rank >= 2"),
        ),
    ),
    LayerCase(
        name="groupnorm-instance-channels-first", layer=L.GroupNormalization,
        kwargs={"groups": -1, "axis": 1}, input_shape=(2, 3, 2, 2),
        reference=R.group_normalization, reduction=4,
        exposes="groups=-1 (one group per channel, Keras only) on torch's channels-first layout",
    ),
)  # fmt: skip

# -- RMSNormalization ---------------------------------------------------------------------------

register(
    LayerCase(
        name="rmsnorm-last-axis-small-row", layer=L.RMSNormalization, input_shape=(3, 6),
        inputs=_small_rows(1e-3, (3, 6)), reference=R.rms_normalization, reduction=6,
        half_bound=normalized_bound(6),
        exposes="epsilon 1e-6 (Keras) vs torch RMSNorm's machine epsilon on a row of mean "
                "square ~1e-6",
        errors=(
            BadInput(kwargs={"epsilon": 0}, error=ValueError, match=r"epsilon=0.*> 0"),
            BadInput(kwargs={"axis": -3}, input_shape=(3, 6), error=ValueError,
                     match=r"axis=-3.*rank 2"),
        ),
    ),
    LayerCase(
        name="rmsnorm-axes-1-2", layer=L.RMSNormalization, kwargs={"axis": [1, 2]},
        input_shape=(2, 3, 2, 2), reference=R.rms_normalization, reduction=6,
        exposes="non-trailing axes: Keras's own layer cannot broadcast its (H, W) scale",
    ),
)  # fmt: skip

# -- UnitNormalization --------------------------------------------------------------------------

register(
    LayerCase(
        name="unitnorm-zero-row", layer=L.UnitNormalization, input_shape=(4, 5),
        inputs=_zero_row, reference=R.unit_normalization, fd_mask=_nonzero_rows, reduction=5,
        half_bound=normalized_bound(5),
        exposes="a zero vector: Keras's x*min(1/|x|, 1e12) and torch's x/max(|x|, 1e-12) give "
                "0 with gradient 1e12*g (no NaN)",
        errors=(
            BadInput(kwargs={"axis": [0]}, input_shape=(4, 5), error=ValueError,
                     match=r"axis=0.*the batch axis 0 excluded"),
            BadInput(input_shape=(5,), error=ValueError, match=r"rank >= 2"),
        ),
    ),
    LayerCase(
        name="unitnorm-axes-1-2", layer=L.UnitNormalization, kwargs={"axis": [1, 2]},
        input_shape=(2, 2, 3, 2), reference=R.unit_normalization, reduction=6,
        exposes="the norm over several axes (torch F.normalize takes one dim)",
    ),
)  # fmt: skip
