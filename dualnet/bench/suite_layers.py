"""Layer kernels: convolutions (group ``conv``), pooling (``pool``) and normalization (``norm``).

Every kernel is one dualnet layer called on a batch of images in dualnet's canonical layout,
channels last ``(batch, H, W, C)`` (Keras's), except the ``channels_first`` convolution row,
whose input is ``(batch, C, H, W)``. That row shows the price of the layout on each side:
torch's convolution takes NCHW, so dualnet's torch backend hands it a channels-last tensor as a
permuted view (torch's channels_last memory format: no copy, but another kernel path than a
contiguous NCHW tensor, which the channels_first row gets); TensorFlow's CPU convolution is
NHWC only, so its backend transposes a channels-first tensor (two copies) around it, and a
channels-last one not at all.

Passes:

* ``forward``: ``layer(x)`` (BatchNormalization in training mode: ``layer(x, training=True)``,
  which also updates the moving statistics, on both backends, every call).
* ``forward+backward``: the forward, then the gradients of the output (an all-ones cotangent)
  with respect to the layer's trainable weights **and its input**: the work a layer does inside
  a network, where the layer below needs the input gradient. The input is made differentiable
  outside the clock (a leaf tensor with ``requires_grad`` on torch, a ``tf.Variable`` on
  TensorFlow).

Work per call:

* convolutions, GFLOP/s: ``2·B·Ho·Wo·Cout·kh·kw·Cin/groups`` (a multiply-add counts 2; the bias
  add is not counted, as for Dense); forward+backward three times that (the input gradient and
  the kernel gradient each cost one forward).
* pooling and normalization, GB/s: the elements read and written at the least. Forward: the
  input read once and the output written once. Backward: the output gradient read and the input
  gradient written (pooling); the output gradient and the input read and the input gradient
  written (normalization, whose backward needs the input again). Per-channel vectors (gamma,
  beta, moving statistics: at most 6·C elements, < 0.1% here) are not counted; neither is the
  second pass over the input that batch statistics need when the input does not stay in cache,
  nor where max pooling's backward finds the maxima (a re-read of the input or saved indices).
  The figures are therefore lower bounds on the traffic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dualnet.bench.kernels import Kernel, Setup, Unavailable, Workload
from dualnet.bench.suite import _normal, _require, _seed, _tensor, native_parameters

# (batch, H, W, in channels, filters). 32×32×64 → 64 is a ResNet-style early stage; 16×16×256 →
# 256 the late stages, where the channels (not the image) make the work (4× the FLOPs of the
# first for a 3×3 kernel).
CONV_SHAPES = ((32, 32, 32, 64, 64), (32, 16, 16, 256, 256))
QUICK_CONV_SHAPE = (8, 32, 32, 64, 64)
# (batch, H, W, C): the first convolution's input, for depthwise, pooling and normalization.
SPATIAL_SHAPE = (32, 32, 32, 64)
QUICK_SPATIAL_SHAPE = (8, 32, 32, 64)

PASSES = ("forward", "forward+backward")


def _layer_class(name: str) -> type:
    """``dn.layers.<name>``; missing -> :class:`Unavailable` (the row is recorded as such)."""
    layers = _require("dualnet.layers")
    cls = getattr(layers, name, None)
    if cls is None:
        raise Unavailable(f"dn.layers.{name} is not available")
    return cls


def _differentiable(t: Any, backend: str) -> Any:
    """The input as something the harness can differentiate with respect to (made outside the
    clock): a leaf tensor requiring grad on torch, a ``tf.Variable`` on TensorFlow (the tape
    watches it; dualnet layers read it as a tensor)."""
    if backend == "torch":
        return t.detach().clone().requires_grad_(True)
    import tensorflow as tf

    return tf.Variable(t, trainable=True)


def _layer_kernel(
    group: str,
    name: str,
    shape: tuple[int, ...],
    input_shape: tuple[int, ...],
    make: Callable[[Any, str], Any],
    pass_: str,
    *,
    training: bool = False,
    flops: float | None = None,
    elements_moved: float | None = None,
    modes: tuple[str, ...] = ("eager", "compiled"),
    note: str = "",
) -> Kernel:
    """One layer on a ``input_shape`` batch; ``make(cls, dtype)`` constructs the layer."""
    class_name = name.split("-")[0]

    def build(setup: Setup) -> Workload:
        cls = _layer_class(class_name)
        _seed(setup.seed)
        layer = make(cls, setup.dtype)
        x = _tensor(_normal(input_shape, setup.seed), setup.dtype)

        def fn(t: Any) -> Any:
            return layer(t, training=training)

        fn.layer = layer  # the layer behind the workload, for inspection (tests)
        fn(x)  # build and realise on the active backend and device, outside the clock
        if pass_ == "forward":
            return Workload(fn=fn, args=(x,))
        x = _differentiable(x, setup.backend)
        params = [*native_parameters(layer, setup.backend), x]
        return Workload(fn=fn, args=(x,), params=params)

    return Kernel(group=group, name=name, shape=shape, build=build, flops=flops,
                  elements_moved=elements_moved, pass_=pass_, modes=modes,
                  note=note)  # fmt: skip


def conv_flops(batch: int, out_hw: tuple[int, int], cout: int, kernel: tuple[int, int],
               cin: int, groups: int = 1) -> int:  # fmt: skip
    """Forward FLOPs of a 2-D convolution: ``2·B·Ho·Wo·Cout·kh·kw·Cin/groups``."""
    return 2 * batch * out_hw[0] * out_hw[1] * cout * kernel[0] * kernel[1] * cin // groups


def _times(pass_: str) -> int:
    """FLOPs of a pass in forwards: the backward computes the input and the kernel gradients."""
    return 1 if pass_ == "forward" else 3


def _conv_kernel(shape: tuple[int, int, int, int, int], k: int, pass_: str,
                 channels_first: bool = False, modes=("eager", "compiled")) -> Kernel:  # fmt: skip
    b, h, w, cin, cout = shape
    data_format = "channels_first" if channels_first else "channels_last"
    name = f"Conv2D-{k}x{k}" + ("-channels_first" if channels_first else "")
    input_shape = (b, cin, h, w) if channels_first else (b, h, w, cin)

    def make(cls: Any, dtype: str) -> Any:
        return cls(cout, k, padding="same", data_format=data_format, dtype=dtype)

    flops = conv_flops(b, (h, w), cout, (k, k), cin) * _times(pass_)
    note = ("shape = (batch, H, W, in channels, filters); padding same; input "
            + ("(batch, C, H, W)" if channels_first else "(batch, H, W, C)"))  # fmt: skip
    return _layer_kernel("conv", name, shape, input_shape, make, pass_, flops=flops,
                         modes=modes, note=note)  # fmt: skip


def _depthwise_kernel(shape: tuple[int, int, int, int], pass_: str) -> Kernel:
    b, h, w, c = shape

    def make(cls: Any, dtype: str) -> Any:
        return cls(3, padding="same", dtype=dtype)  # depth_multiplier 1: C in, C out

    flops = conv_flops(b, (h, w), c, (3, 3), c, groups=c) * _times(pass_)
    note = "shape = (batch, H, W, C); padding same, depth_multiplier 1"
    return _layer_kernel("conv", "DepthwiseConv2D-3x3", shape, shape, make, pass_, flops=flops,
                         note=note)  # fmt: skip


def _pool_kernel(cls_name: str, shape: tuple[int, int, int, int], pass_: str,
                 modes=("eager", "compiled")) -> Kernel:  # fmt: skip
    b, h, w, c = shape

    def make(cls: Any, dtype: str) -> Any:
        return cls(2, dtype=dtype)  # pool 2×2, strides = pool size, padding valid

    n_in, n_out = b * h * w * c, b * (h // 2) * (w // 2) * c
    # Forward: read the input, write the output; backward: read the output gradient, write the
    # input gradient.
    moved = n_in + n_out if pass_ == "forward" else 2 * (n_in + n_out)
    return _layer_kernel("pool", f"{cls_name}-2x2", shape, shape, make, pass_,
                         elements_moved=moved, modes=modes,
                         note="shape = (batch, H, W, C); pool 2x2, stride 2")  # fmt: skip


def _norm_kernel(name: str, shape: tuple[int, int, int, int], pass_: str,
                 modes=("eager", "compiled")) -> Kernel:  # fmt: skip
    training = name.endswith("-training")

    def make(cls: Any, dtype: str) -> Any:
        return cls(dtype=dtype)  # Keras defaults (axis -1; BN momentum 0.99, epsilon 1e-3)

    n = 1
    for d in shape:
        n *= d
    # Forward: read x, write y. Backward: read dy and x, write dx.
    moved = 2 * n if pass_ == "forward" else 5 * n
    mode = {"BatchNormalization-training": "training=True (batch statistics, moving "
            "statistics updated)", "BatchNormalization-inference": "inference (moving "
            "statistics)"}.get(name, "per pixel over the channels (axis -1)")  # fmt: skip
    return _layer_kernel("norm", name, shape, shape, make, pass_, training=training,
                         elements_moved=moved, modes=modes,
                         note=f"shape = (batch, H, W, C); {mode}")  # fmt: skip


NORM_NAMES = ("BatchNormalization-inference", "BatchNormalization-training", "LayerNormalization")


def kernels(quick: bool = False) -> list[Kernel]:
    """The layer kernels. ``quick=True``: one small 3×3 convolution (forward, both modes), max
    pooling and training-mode BatchNormalization (forward, eager) — a few seconds."""
    if quick:
        eager = ("eager",)
        return [
            _conv_kernel(QUICK_CONV_SHAPE, 3, "forward"),
            _pool_kernel("MaxPooling2D", QUICK_SPATIAL_SHAPE, "forward", modes=eager),
            _norm_kernel("BatchNormalization-training", QUICK_SPATIAL_SHAPE, "forward", eager),
        ]
    out: list[Kernel] = []
    for k in (3, 1):
        for shape in CONV_SHAPES:
            out += [_conv_kernel(shape, k, p) for p in PASSES]
    out += [_conv_kernel(CONV_SHAPES[0], 3, p, channels_first=True) for p in PASSES]
    out += [_depthwise_kernel(SPATIAL_SHAPE, p) for p in PASSES]
    for cls_name in ("MaxPooling2D", "AveragePooling2D"):
        out += [_pool_kernel(cls_name, SPATIAL_SHAPE, p) for p in PASSES]
    for name in NORM_NAMES:
        out += [_norm_kernel(name, SPATIAL_SHAPE, p) for p in PASSES]
    return out
