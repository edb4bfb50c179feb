"""Layer entries (Note [Layer entries]) for the convolutional group: Conv1D/2D/3D,
Conv1D/2DTranspose, DepthwiseConv2D, SeparableConv2D.

Each entry is built to expose one torch/Keras difference (its ``exposes``): TensorFlow's ``same``
padding with stride 2 on even sizes and with even kernels, causal padding, the window a
transposed convolution keeps, ``output_padding``, kernels smaller than the stride, groups,
dilation, depthwise/separable layouts, ``channels_first`` (TensorFlow's CPU kernels refuse
NCHW), torch's explicit padding (symmetric ints where TensorFlow's ``same`` is asymmetric,
``(before, after)`` pairs, a transposed convolution's crop). Shapes are the smallest that still
show the difference: gradients are checked by finite differences, four reference calls per
input and weight element.

``reduction`` is the longest sum of the forward or backward pass: the kernel gradient sums over
batch × output positions, the forward over taps × input channels (+1 for the bias). Half
precision uses :func:`bilinear_bound` with the forward sum length: the layers are bilinear in
input and weights; the separable one adds both stages' lengths (its intermediate is rounded).
"""

from __future__ import annotations

from typing import Any

from dualnet import layers as L
from dualnet.parity.cases import register
from dualnet.parity.layer_cases import BadInput, LayerCase, bilinear_bound
from dualnet.reference.layers import convolutional as R

_conv1d, _conv2d, _conv3d = R.conv1d_layer, R.conv2d_layer, R.conv3d_layer
_conv1d_transpose, _conv2d_transpose = R.conv1d_transpose_layer, R.conv2d_transpose_layer
_depthwise, _separable = R.depthwise_conv2d_layer, R.separable_conv2d_layer


def _rank(shape: tuple[int | None, ...]) -> BadInput:
    return BadInput(input_shape=shape, error=ValueError, match=r"expects inputs of rank")


def _too_small(shape: tuple[int, ...], **kwargs: Any) -> BadInput:
    return BadInput(kwargs=kwargs, input_shape=shape, error=ValueError,
                    match=r"padding='valid' expects each spatial size to be at least the "
                          r"dilated kernel size")  # fmt: skip


def _bad(error: type[Exception] = ValueError, match: str = "", **kwargs: Any) -> BadInput:
    """A constructor argument that must be refused."""
    return BadInput(kwargs=kwargs, error=error, match=match)


_STRIDED_DILATION = r"strides > 1 together with dilation_rate > 1 is not supported"
_PADDING_EXPECTED = r"expected one of 'valid', 'same'.*or an int >= 0"


def _explicit_too_small(shape: tuple[int, ...], **kwargs: Any) -> BadInput:
    return BadInput(kwargs=kwargs, input_shape=shape, error=ValueError,
                    match=r"expects each spatial size plus its padding to be at least the "
                          r"dilated kernel size")  # fmt: skip


register(
    # ---------------------------------------------------------------------------- Conv2D
    LayerCase(
        name="conv2d-same-stride2-even", layer=L.Conv2D,
        kwargs={"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same"},
        input_shape=(2, 8, 6, 2), reference=_conv2d, reduction=24, half_bound=bilinear_bound(19),
        exposes="same, k=3, s=2 on H=8 and W=6: TensorFlow pads (0, 1); torch's padding=1 pads "
                "(1, 1), same output shape, values shifted by a pixel",
        errors=(
            _rank((2, 8, 6)),
            _too_small((2, 2, 6, 2), padding="valid"),
            _bad(padding="full", match=r"padding='full'.*'valid', 'same'"),
            _bad(padding="causal", match=r"padding='causal'.*'valid', 'same'"),
            _bad(data_format="NHWC", match=r"data_format='NHWC'"),
            _bad(strides=0, match=r"strides=\(0, 0\).*int >= 1"),
            _bad(dilation_rate=(1, 0), match=r"dilation_rate=\(1, 0\).*int >= 1"),
            _bad(filters=0, match=r"filters=0.*positive int"),
            _bad(kernel_size=0, match=r"kernel_size=\(0, 0\).*int >= 1"),
            _bad(dilation_rate=2, match=_STRIDED_DILATION),
            _bad(TypeError, use_bias="yes", match=r"use_bias='yes'.*bool"),
        ),
    ),
    LayerCase(
        name="conv2d-same-even-kernel", layer=L.Conv2D,
        kwargs={"filters": 3, "kernel_size": (2, 4), "padding": "same", "activation": "tanh"},
        input_shape=(2, 5, 6, 2), reference=_conv2d, reduction=60, half_bound=bilinear_bound(17),
        exposes="same with even kernels at stride 1: TensorFlow pads (0, 1) for k=2 and (1, 2) "
                "for k=4; no symmetric torch padding gives that",
    ),
    LayerCase(
        name="conv2d-groups-dilated", layer=L.Conv2D,
        kwargs={"filters": 4, "kernel_size": 3, "dilation_rate": (2, 1), "groups": 2},
        input_shape=(2, 7, 5, 4), reference=_conv2d, reduction=19, half_bound=bilinear_bound(19),
        exposes="groups=2: Keras kernel (kh, kw, C/groups, filters) vs torch (filters, C/groups, "
                "kh, kw), output channel o reads group o // (filters/groups); TensorFlow's "
                "float64/float16 CPU kernels have no grouped gradient; dilation (2, 1)",
        errors=(
            BadInput(input_shape=(2, 7, 5, 3), error=ValueError,
                     match=r"groups=2 expects input channels divisible by it; got 3"),
            _bad(groups=3, match=r"groups=3.*divisor of filters=4"),
            _too_small((2, 4, 5, 4)),
        ),
    ),
    LayerCase(
        name="conv2d-channels-first", layer=L.Conv2D,
        kwargs={"filters": 4, "kernel_size": 3, "strides": (1, 2), "padding": "same",
                "data_format": "channels_first", "use_bias": False},
        input_shape=(2, 3, 5, 6), reference=_conv2d, reduction=30, half_bound=bilinear_bound(27),
        exposes="channels_first: TensorFlow's CPU Conv2D refuses NCHW (float16/float64); the "
                "canonical kernel stays (kh, kw, in, out); unequal strides (1, 2)",
        errors=(_rank((2, 3, 5, 6, 1)),),
    ),
    # ---------------------------------------------------------------------------- Conv1D
    LayerCase(
        name="conv1d-causal-dilated", layer=L.Conv1D,
        kwargs={"filters": 3, "kernel_size": 3, "dilation_rate": 2, "padding": "causal",
                "activation": "tanh"},
        input_shape=(2, 9, 2), reference=_conv1d, reduction=18, half_bound=bilinear_bound(7),
        exposes="causal: Keras left-pads d·(k-1) = 4 steps and runs valid; torch has no causal "
                "padding (its symmetric padding lets y[t] see the future)",
        errors=(
            _rank((2, 9, 2, 1)),
            _bad(strides=2, match=_STRIDED_DILATION),
            _bad(padding="full", match=r"'valid', 'same', 'causal'"),
        ),
    ),
    LayerCase(
        name="conv1d-same-stride2-channels-first", layer=L.Conv1D,
        kwargs={"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same",
                "data_format": "channels_first"},
        input_shape=(2, 2, 8), reference=_conv1d, reduction=8, half_bound=bilinear_bound(7),
        exposes="same, k=3, s=2 on an even length: TensorFlow pads (0, 1), torch's padding=1 "
                "(1, 1); channels_first steps",
        errors=(_too_small((2, 2, 2), padding="valid"),),
    ),
    # ---------------------------------------------------------------------------- Conv3D
    LayerCase(
        name="conv3d-same-stride2", layer=L.Conv3D,
        kwargs={"filters": 2, "kernel_size": (2, 3, 3), "strides": 2, "padding": "same"},
        input_shape=(1, 4, 5, 4, 2), reference=_conv3d, reduction=37,
        half_bound=bilinear_bound(37),
        exposes="3-D same with stride 2: pads (0, 0), (1, 1) and (0, 1): the odd pixel at the "
                "end on the last axis only; kernel (kd, kh, kw, in, out) vs torch (out, in, kd, "
                "kh, kw)",
        errors=(_rank((1, 4, 5, 4)), _too_small((1, 4, 2, 4, 2), padding="valid")),
    ),
    LayerCase(
        name="conv3d-groups", layer=L.Conv3D,
        kwargs={"filters": 4, "kernel_size": 2, "groups": 2, "padding": "same"},
        input_shape=(1, 3, 3, 3, 4), reference=_conv3d, reduction=27,
        half_bound=bilinear_bound(16),
        exposes="grouped 3-D kernel (kd, kh, kw, in/groups, out): TensorFlow's CPU Conv3D "
                "refuses groups in every dtype (the backend convolves each group)",
    ),
    # ------------------------------------------------------------------- Conv2DTranspose
    LayerCase(
        name="conv2d-transpose-same-k3-s2", layer=L.Conv2DTranspose,
        kwargs={"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same"},
        input_shape=(2, 4, 3, 2), reference=_conv2d_transpose, reduction=27,
        half_bound=bilinear_bound(19),
        exposes="same, k=3, s=2: Keras keeps full[0:2n]; torch's ConvTranspose2d(padding=1, "
                "output_padding=1) keeps full[1:2n+1] (same shape, shifted)",
        errors=(
            _rank((2, 4, 3)),
            _bad(output_padding=2, match=r"output_padding=2.*smaller than strides=\(2, 2\)"),
            _bad(padding="causal", match=r"padding='causal'"),
            _bad(dilation_rate=2, match=_STRIDED_DILATION),
            _bad(filters=-1, match=r"filters=-1"),
        ),
    ),
    LayerCase(
        name="conv2d-transpose-valid-k-lt-s", layer=L.Conv2DTranspose,
        kwargs={"filters": 3, "kernel_size": (3, 2), "strides": (2, 3), "padding": "valid"},
        input_shape=(2, 4, 3, 2), reference=_conv2d_transpose, reduction=24,
        half_bound=bilinear_bound(13),
        exposes="valid, stride 2 with k=3 and stride 3 with k=2 < s: Keras's output n·s ends "
                "with a bias-only row that torch's output_padding=0 output lacks",
    ),
    LayerCase(
        name="conv2d-transpose-output-padding-cf", layer=L.Conv2DTranspose,
        kwargs={"filters": 2, "kernel_size": (3, 4), "strides": 2, "padding": "same",
                "output_padding": 1, "data_format": "channels_first", "activation": "tanh"},
        input_shape=(2, 2, 4, 3), reference=_conv2d_transpose, reduction=25,
        half_bound=bilinear_bound(25),
        exposes="same with output_padding=1: Keras's window starts at 0 (k=3) and 1 (k=4), "
                "torch's padding crops both ends; channels_first (NCHW refused on TF's CPU)",
        errors=(_rank((2, 2, 4)),),
    ),
    LayerCase(
        name="conv2d-transpose-dilated", layer=L.Conv2DTranspose,
        kwargs={"filters": 3, "kernel_size": 3, "dilation_rate": 2, "padding": "same"},
        input_shape=(2, 4, 5, 2), reference=_conv2d_transpose, reduction=40,
        half_bound=bilinear_bound(19),
        exposes="dilated transposed convolution: TensorFlow's float64/float16 CPU kernel refuses "
                "dilation > 1 (run as a correlation with the flipped kernel); window start "
                "(k'-1)//2 = 2",
    ),
    # ------------------------------------------------------------------- Conv1DTranspose
    LayerCase(
        name="conv1d-transpose-same-k5-s2", layer=L.Conv1DTranspose,
        kwargs={"filters": 3, "kernel_size": 5, "strides": 2, "padding": "same"},
        input_shape=(2, 5, 2), reference=_conv1d_transpose, reduction=15,
        half_bound=bilinear_bound(11),
        exposes="same, k=5, s=2: Keras keeps full[1:2n+1]; torch's padding=2, output_padding=1 "
                "keeps full[2:2n+2]",
        errors=(_rank((2, 5)), _bad(output_padding=(2,), match=r"output_padding=\(2,\)")),
    ),
    LayerCase(
        name="conv1d-transpose-valid-k2-s3-cf", layer=L.Conv1DTranspose,
        kwargs={"filters": 2, "kernel_size": 2, "strides": 3, "padding": "valid",
                "data_format": "channels_first"},
        input_shape=(2, 3, 5), reference=_conv1d_transpose, reduction=10,
        half_bound=bilinear_bound(7),
        exposes="valid with k=2 < s=3: Keras's output 3n ends with a bias-only step, torch's "
                "(n-1)·s + k does not; channels_first",
    ),
    # ------------------------------------------------------------------- DepthwiseConv2D
    LayerCase(
        name="depthwise-same-stride2-m2", layer=L.DepthwiseConv2D,
        kwargs={"kernel_size": 3, "strides": 2, "padding": "same", "depth_multiplier": 2},
        input_shape=(2, 6, 5, 2), reference=_depthwise, reduction=18,
        half_bound=bilinear_bound(10),
        exposes="depthwise layout: Keras kernel (kh, kw, C, m) vs torch Conv2d(C, C·m, groups=C) "
                "weight (C·m, 1, kh, kw), output channel c·m + q; same, s=2 pads (0, 1) on H=6",
        errors=(
            _rank((2, 6, 5)),
            _bad(depth_multiplier=0, match=r"depth_multiplier=0.*positive int"),
            _bad(dilation_rate=2, match=_STRIDED_DILATION),
            _too_small((2, 2, 5, 2), padding="valid"),
        ),
    ),
    LayerCase(
        name="depthwise-unequal-strides-cf", layer=L.DepthwiseConv2D,
        kwargs={"kernel_size": (2, 3), "strides": (1, 2), "padding": "same",
                "data_format": "channels_first"},
        input_shape=(2, 3, 5, 6), reference=_depthwise, reduction=30,
        half_bound=bilinear_bound(7),
        exposes="strides (1, 2): TensorFlow's float64/float16 CPU depthwise kernel refuses "
                "unequal strides; channels_first; even kernel height with same pads (0, 1)",
    ),
    LayerCase(
        name="depthwise-dilated-m2", layer=L.DepthwiseConv2D,
        kwargs={"kernel_size": 2, "dilation_rate": (2, 3), "padding": "same",
                "depth_multiplier": 2, "activation": "tanh"},
        input_shape=(2, 5, 6, 2), reference=_depthwise, reduction=60,
        half_bound=bilinear_bound(5),
        exposes="dilated even kernel with same: dilated sizes 3 and 4 pad (1, 1) and (1, 2)",
    ),
    # ------------------------------------------------------------------- SeparableConv2D
    LayerCase(
        name="separable-same-stride2-m2", layer=L.SeparableConv2D,
        kwargs={"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same",
                "depth_multiplier": 2},
        input_shape=(2, 6, 5, 2), reference=_separable, reduction=18,
        half_bound=bilinear_bound(15),
        exposes="separable: Keras's depthwise_kernel (kh, kw, C, m) and pointwise_kernel (1, 1, "
                "C·m, filters) vs torch's two Conv2d modules; same, s=2",
        errors=(
            _rank((2, 6, 5, 2, 1)),
            _bad(depth_multiplier=-2, match=r"depth_multiplier=-2"),
            _bad(padding="causal", match=r"padding='causal'"),
        ),
    ),
    LayerCase(
        name="separable-dilated-cf", layer=L.SeparableConv2D,
        kwargs={"filters": 3, "kernel_size": 3, "dilation_rate": 2, "use_bias": False,
                "data_format": "channels_first"},
        input_shape=(2, 2, 7, 6), reference=_separable, reduction=12,
        half_bound=bilinear_bound(12),
        exposes="dilation 2 in the depthwise step, channels_first, no bias",
        errors=(_too_small((2, 2, 4, 6)),),
    ),
    # ------------------------------------------------------- explicit (torch-style) padding
    LayerCase(
        name="conv2d-explicit-pad1-stride2-even", layer=L.Conv2D,
        kwargs={"filters": 3, "kernel_size": 3, "strides": 2, "padding": 1},
        input_shape=(2, 8, 6, 2), reference=_conv2d, reduction=24, half_bound=bilinear_bound(19),
        exposes="torch's Conv2d(padding=1), k=3, s=2 on H=8, W=6: pads (1, 1) where "
                "TensorFlow's same pads (0, 1), same output shape, windows a pixel apart",
        errors=(
            _bad(padding=-1, match=r"padding=-1.*ints >= 0"),
            _bad(padding=((1, 1), (0, -2)), match=r"padding=\(\(1, 1\), \(0, -2\)\)"),
            _bad(TypeError, padding=(1, 2, 3), match=r"padding=\(1, 2, 3\)"),
            _bad(TypeError, padding=((1, 2, 3), 1), match=r"padding=\(\(1, 2, 3\), 1\)"),
            _bad(padding=1.5, match=r"padding=1.5.*" + _PADDING_EXPECTED),
            _bad(padding=None, match=r"padding=None"),
            _explicit_too_small((2, 2, 6, 2), padding=((0, 0), (1, 1))),
        ),
    ),
    LayerCase(
        name="conv2d-explicit-pairs-cf", layer=L.Conv2D,
        kwargs={"filters": 2, "kernel_size": (2, 3), "strides": (1, 2),
                "padding": ((1, 2), (0, 3)), "data_format": "channels_first",
                "use_bias": False},
        input_shape=(2, 3, 5, 6), reference=_conv2d, reduction=56,
        half_bound=bilinear_bound(18),
        exposes="explicit (before, after) pairs (1, 2) and (0, 3) (torch: F.pad then a valid "
                "conv), channels_first; output 7x4",
    ),
    LayerCase(
        name="conv1d-explicit-pad2-even-kernel", layer=L.Conv1D,
        kwargs={"filters": 3, "kernel_size": 4, "strides": 2, "padding": 2},
        input_shape=(2, 8, 2), reference=_conv1d, reduction=10, half_bound=bilinear_bound(9),
        exposes="torch's Conv1d(k=4, s=2, padding=2): 5 outputs where TensorFlow's same gives 4 "
                "(pads (1, 1))",
        errors=(
            _bad(TypeError, padding=(1, 2), match=r"padding=\(1, 2\).*tuple of 1 ints"),
            _explicit_too_small((2, 1, 2), padding=((1, 1),)),
        ),
    ),
    LayerCase(
        name="conv1d-explicit-causal-pair-cf", layer=L.Conv1D,
        kwargs={"filters": 2, "kernel_size": 3, "dilation_rate": 2, "padding": ((4, 0),),
                "data_format": "channels_first"},
        input_shape=(2, 2, 9), reference=_conv1d, reduction=18, half_bound=bilinear_bound(7),
        exposes="explicit ((4, 0),) is causal padding written out (d·(k-1) = 4 before, none "
                "after); channels_first",
    ),
    LayerCase(
        name="conv3d-explicit-pad-per-axis", layer=L.Conv3D,
        kwargs={"filters": 2, "kernel_size": 2, "strides": 2, "padding": (1, 0, 1)},
        input_shape=(1, 3, 4, 4, 2), reference=_conv3d, reduction=17,
        half_bound=bilinear_bound(17),
        exposes="one int per axis (torch's padding=(1, 0, 1)): symmetric per axis, none on H",
    ),
    LayerCase(
        name="depthwise-explicit-pad1-stride2-m2", layer=L.DepthwiseConv2D,
        kwargs={"kernel_size": 3, "strides": 2, "padding": 1, "depth_multiplier": 2},
        input_shape=(2, 6, 6, 2), reference=_depthwise, reduction=18,
        half_bound=bilinear_bound(10),
        exposes="torch's Conv2d(C, 2C, 3, stride=2, padding=1, groups=C) (MobileNet's): pads "
                "(1, 1) where same pads (0, 1) on 6",
        errors=(_bad(padding=(1, -1), match=r"padding=\(1, -1\)"),),
    ),
    LayerCase(
        name="depthwise-explicit-unequal-strides-cf", layer=L.DepthwiseConv2D,
        kwargs={"kernel_size": (3, 2), "strides": (1, 2), "padding": ((1, 1), (0, 1)),
                "data_format": "channels_first"},
        input_shape=(2, 2, 5, 6), reference=_depthwise, reduction=30,
        half_bound=bilinear_bound(7),
        exposes="explicit pairs with unequal strides: TensorFlow's float64/float16 CPU depthwise "
                "kernel refuses them (stride-1 fallback on the padded input); channels_first",
    ),
    LayerCase(
        name="separable-explicit-pairs-stride2", layer=L.SeparableConv2D,
        kwargs={"filters": 3, "kernel_size": 3, "strides": 2, "padding": ((1, 0), (2, 1))},
        input_shape=(2, 6, 5, 2), reference=_separable, reduction=18,
        half_bound=bilinear_bound(12),
        exposes="explicit pairs in the depthwise step of a separable convolution (torch: F.pad, "
                "then the two Conv2d modules)",
        errors=(_bad(padding="causal", match=r"padding='causal'"),),
    ),
    LayerCase(
        name="conv2d-transpose-explicit-pad1-op1", layer=L.Conv2DTranspose,
        kwargs={"filters": 2, "kernel_size": 3, "strides": 2, "padding": 1,
                "output_padding": 1},
        input_shape=(2, 4, 3, 2), reference=_conv2d_transpose, reduction=24,
        half_bound=bilinear_bound(19),
        exposes="torch's ConvTranspose2d(padding=1, output_padding=1): keeps full[1:2n+1] where "
                "Keras's same keeps full[0:2n] (same shape)",
        errors=(
            BadInput(kwargs={"padding": 3}, input_shape=(2, 1, 3, 2), error=ValueError,
                     match=r"expects inputs giving a non-empty output"),
            _bad(padding=-1, match=r"padding=-1"),
        ),
    ),
    LayerCase(
        name="conv1d-transpose-explicit-pair-op2-cf", layer=L.Conv1DTranspose,
        kwargs={"filters": 2, "kernel_size": 3, "strides": 3, "padding": ((1, 0),),
                "output_padding": 2, "data_format": "channels_first"},
        input_shape=(2, 3, 4), reference=_conv1d_transpose, reduction=10,
        half_bound=bilinear_bound(10),
        exposes="explicit (1, 0) crops one row at the start; output_padding=2 > after appends "
                "two bias-only rows (torch's output_padding)",
    ),
)  # fmt: skip
