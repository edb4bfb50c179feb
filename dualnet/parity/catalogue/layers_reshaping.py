"""Layer entries (Note [Layer entries]) for the reshaping group.

These layers copy, pad, slice or repeat values, so the forward pass is exact in every dtype
(``rounding_bound(0)``) and only the gradients sum anything (the copies of an element:
``reduction`` = repeats). Bilinear upsampling is the exception: a weighted sum of 4 pixels,
computed in float32 for half inputs and rounded once. Entries meet the torch/Keras splits on
purpose: H, W, C flatten order, Keras's transpose in ``Flatten(data_format="channels_first")``,
shape arguments without the batch, 1-based ``Permute``, ``((top, bottom), (left, right))``
padding against ``F.pad``'s last-axis-first order, non-square factors, half-pixel bilinear.
"""

from __future__ import annotations

from dualnet import layers as L
from dualnet.parity.cases import register
from dualnet.parity.catalogue.layers_pooling import float32_rounded_once
from dualnet.parity.layer_cases import BadInput, LayerCase, rounding_bound
from dualnet.reference.layers import reshaping as R

EXACT = rounding_bound(0)
# Bilinear output = two lerps a + t·(b − a) in float32 (TensorFlow's kernel; torch's is alike).
# Each costs at most 3 roundings of values <= (|a| + |b|), and (|a| + |b|)·max(t, 1 − t) is
# within 3·Σw|x| for t ∈ {¼, ¾} or {⅓, ⅔}: about 9·u₃₂ per lerp, so K = 16 bounds both stages of
# the 4-pixel weighted sum (the final half rounding, 2u·|y|, dominates anyway).
BILINEAR_HALF = float32_rounded_once(16)

register(
    # -- Flatten -----------------------------------------------------------------------------
    LayerCase(
        name="flatten-after-conv", layer=L.Flatten, input_shape=(2, 3, 4, 2),
        reference=R.flatten, half_bound=EXACT,
        exposes="features in H, W, C order (torch's x.flatten(1) on NCHW: C, H, W), so the rows "
                "of a following Dense kernel differ between the frameworks",
        errors=(BadInput(kwargs={"data_format": "NCHW"}, error=ValueError,
                         match=r"data_format='NCHW'"),),
    ),
    LayerCase(
        name="flatten-channels-first", layer=L.Flatten, kwargs={"data_format": "channels_first"},
        input_shape=(2, 2, 3, 4), reference=R.flatten, half_bound=EXACT,
        exposes="Keras moves channels last before flattening: NOT torch's C, H, W order",
    ),
    # -- Reshape / Permute / RepeatVector ----------------------------------------------------
    LayerCase(
        name="reshape-inferred", layer=L.Reshape, kwargs={"target_shape": (3, -1)},
        input_shape=(2, 4, 3, 2), reference=R.reshape, half_bound=EXACT,
        exposes="target_shape excludes the batch (torch's reshape includes it); -1 inferred",
        errors=(
            BadInput(kwargs={"target_shape": (-1, -1)}, error=ValueError,
                     match=r"target_shape=\(-1, -1\).*at most one -1"),
            BadInput(kwargs={"target_shape": (0, 4)}, error=ValueError, match=r"target_shape="),
            BadInput(kwargs={"target_shape": 24}, error=TypeError, match=r"target_shape=24"),
            BadInput(kwargs={"target_shape": (5, 5)}, input_shape=(2, 4, 3, 2), error=ValueError,
                     match=r"expects 25 elements per sample for target_shape=\(5, 5\)"),
            BadInput(kwargs={"target_shape": (5, -1)}, input_shape=(2, 4, 3, 2),
                     error=ValueError, match=r"expects a multiple of 5 elements per sample"),
        ),
    ),
    LayerCase(
        name="permute-channels-first", layer=L.Permute, kwargs={"dims": (3, 1, 2)},
        input_shape=(2, 3, 4, 2), reference=R.permute, half_bound=EXACT,
        exposes="dims are 1-based without the batch: (3, 1, 2) is torch's permute(0, 3, 1, 2)",
        errors=(
            BadInput(kwargs={"dims": (0, 1, 2)}, error=ValueError, match=r"dims=\(0, 1, 2\)"),
            BadInput(kwargs={"dims": (1, 1, 2)}, error=ValueError, match=r"permutation"),
            BadInput(kwargs={"dims": (2, 1)}, input_shape=(2, 3, 4, 2), error=ValueError,
                     match=r"expects inputs of rank 3"),
        ),
    ),
    LayerCase(
        name="repeat-vector", layer=L.RepeatVector, kwargs={"n": 3}, input_shape=(2, 4),
        reference=R.repeat_vector, reduction=1, grad_reduction=3, half_bound=EXACT,
        exposes="the gradient sums the n copies (torch's expand is a view)",
        errors=(
            BadInput(kwargs={"n": 0}, error=ValueError, match=r"n=0"),
            BadInput(kwargs={"n": 2.0}, error=TypeError, match=r"n=2.0"),
            BadInput(input_shape=(2, 4, 1), error=ValueError,
                     match=r"expects inputs of rank 2 \(batch, features\)"),
        ),
    ),
    # -- Zero padding ------------------------------------------------------------------------
    LayerCase(
        name="zero-padding1d-asymmetric", layer=L.ZeroPadding1D, kwargs={"padding": (1, 2)},
        input_shape=(2, 5, 2), reference=R.zero_padding1d, half_bound=EXACT,
        exposes="channels_last (N, L, C): torch's F.pad lists the channel axis first",
        errors=(
            BadInput(kwargs={"padding": -1}, error=ValueError, match=r"padding=\(-1, -1\)"),
            BadInput(kwargs={"padding": (1, 2, 3)}, error=TypeError, match=r"padding="),
            BadInput(input_shape=(2, 5), error=ValueError, match=r"rank 3"),
        ),
    ),
    LayerCase(
        name="zero-padding1d-channels-first", layer=L.ZeroPadding1D,
        kwargs={"padding": 2, "data_format": "channels_first"}, input_shape=(2, 2, 5),
        reference=R.zero_padding1d, half_bound=EXACT,
        exposes="channels_first pads the last axis: F.pad(x, (2, 2))",
    ),
    LayerCase(
        name="zero-padding2d-tblr", layer=L.ZeroPadding2D, kwargs={"padding": ((1, 2), (0, 3))},
        input_shape=(2, 3, 4, 2), reference=R.zero_padding2d, half_bound=EXACT,
        exposes="((top, bottom), (left, right)) is F.pad(x, (0, 0, left, right, top, bottom)) "
                "on channels_last (last axis first); a swapped order pads the wrong sides",
        errors=(
            BadInput(kwargs={"padding": ((1, 2), (3,))}, error=TypeError, match=r"padding="),
            BadInput(kwargs={"padding": ((1, -2), (0, 0))}, error=ValueError,
                     match=r"padding=\(\(1, -2\), \(0, 0\)\)"),
            BadInput(kwargs={"padding": "same"}, error=TypeError, match=r"padding='same'"),
            BadInput(input_shape=(2, 3, 4), error=ValueError,
                     match=r"rank 4 \(batch, height, width, channels\)"),
        ),
    ),
    LayerCase(
        name="zero-padding2d-channels-first", layer=L.ZeroPadding2D,
        kwargs={"padding": (1, 2), "data_format": "channels_first"}, input_shape=(2, 2, 3, 4),
        reference=R.zero_padding2d, half_bound=EXACT,
        exposes="(h, w) pads h rows above and below, w columns each side: F.pad(x, (w, w, h, h))",
    ),
    # -- Cropping ----------------------------------------------------------------------------
    LayerCase(
        name="cropping1d-asymmetric", layer=L.Cropping1D, kwargs={"cropping": (1, 2)},
        input_shape=(2, 6, 2), reference=R.cropping1d, half_bound=EXACT,
        exposes="(start, end) steps removed, batch and channels untouched",
        errors=(
            BadInput(kwargs={"cropping": (3, 3)}, input_shape=(2, 6, 2), error=ValueError,
                     match=r"expects more than 6 steps for cropping=\(3, 3\)"),
            BadInput(kwargs={"cropping": (-1, 0)}, error=ValueError, match=r"cropping="),
            BadInput(input_shape=(2, 6), error=ValueError, match=r"rank 3"),
        ),
    ),
    LayerCase(
        name="cropping2d-tblr", layer=L.Cropping2D, kwargs={"cropping": ((1, 0), (2, 1))},
        input_shape=(2, 5, 6, 2), reference=R.cropping2d, half_bound=EXACT,
        exposes="((top, bottom), (left, right)) with a zero end (x[:, 1:, 2:-1] — a naive "
                "x[:, 1:-0] would be empty)",
        errors=(
            BadInput(kwargs={"cropping": ((2, 3), (0, 0))}, input_shape=(2, 5, 6, 2),
                     error=ValueError, match=r"expects height > 5 and width > 0"),
            BadInput(kwargs={"cropping": (1, 2, 3)}, error=TypeError, match=r"cropping="),
        ),
    ),
    LayerCase(
        name="cropping2d-channels-first", layer=L.Cropping2D,
        kwargs={"cropping": 1, "data_format": "channels_first"}, input_shape=(2, 2, 5, 6),
        reference=R.cropping2d, half_bound=EXACT,
        exposes="channels_first crops axes 2 and 3",
        errors=(BadInput(kwargs={"cropping": 3, "data_format": "channels_first"},
                         input_shape=(2, 2, 5, 6), error=ValueError,
                         match=r"expects height > 6 and width > 6"),),
    ),
    # -- Upsampling --------------------------------------------------------------------------
    LayerCase(
        name="up-sampling1d", layer=L.UpSampling1D, kwargs={"size": 3}, input_shape=(2, 4, 2),
        reference=R.up_sampling1d, reduction=1, grad_reduction=3, half_bound=EXACT,
        exposes="each step repeated (torch: repeat_interleave, not repeat/tile)",
        errors=(
            BadInput(kwargs={"size": 0}, error=ValueError, match=r"size=0"),
            BadInput(kwargs={"size": (2,)}, error=TypeError, match=r"size=\(2,\)"),
            BadInput(input_shape=(2, 4), error=ValueError, match=r"rank 3"),
        ),
    ),
    LayerCase(
        name="up-sampling2d-nearest", layer=L.UpSampling2D, kwargs={"size": (2, 3)},
        input_shape=(2, 3, 4, 2), reference=R.up_sampling2d, reduction=1, grad_reduction=6,
        half_bound=EXACT,
        exposes="non-square integer factors, pixel repeat on channels_last",
        errors=(
            BadInput(kwargs={"size": (2, 0)}, error=ValueError, match=r"size=\(2, 0\)"),
            BadInput(kwargs={"interpolation": "bicubic"}, error=ValueError,
                     match=r"interpolation='bicubic'"),
            BadInput(kwargs={"data_format": "channels_middle"}, error=ValueError,
                     match=r"data_format="),
            BadInput(input_shape=(2, 3, 4), error=ValueError, match=r"rank 4"),
        ),
    ),
    LayerCase(
        name="up-sampling2d-bilinear", layer=L.UpSampling2D,
        kwargs={"interpolation": "bilinear"}, input_shape=(2, 3, 4, 2),
        reference=R.up_sampling2d, reduction=16, half_bound=BILINEAR_HALF,
        exposes="half-pixel centres (torch align_corners=False; True gives other values); "
                "TensorFlow's resize kernel rounds float64 to float32",
    ),
    LayerCase(
        name="up-sampling2d-bilinear-channels-first", layer=L.UpSampling2D,
        kwargs={"size": (3, 2), "data_format": "channels_first", "interpolation": "bilinear"},
        input_shape=(2, 2, 3, 4), reference=R.up_sampling2d, reduction=24,
        half_bound=BILINEAR_HALF,
        exposes="factor 3 (weights ⅓, ⅔ not exact in binary) on channels_first",
    ),
)  # fmt: skip
