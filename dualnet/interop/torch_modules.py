"""``from_torch``: ``torch.nn`` modules onto dualnet layers, weights in dualnet's canonical
(Keras) layout.

===============================  ===========================================  ===================
torch module                     dualnet layer(s)                             weights
===============================  ===========================================  ===================
``Linear(i, o)``                 ``Dense(o)`` (on the last axis, any rank)    ``W (o,i)`` → ``Wᵀ``
``Conv1d/2d/3d``                 ``Conv1D/2D/3D(channels_first, padding=p)``  ``(o, i/g, k…)`` →
                                 (``groups``)                                 ``(k…, i/g, o)``
``Conv2d(C, C·m, groups=C)``     ``DepthwiseConv2D(depth_multiplier=m)``      ``(C·m, 1, kh, kw)``
                                                                              → ``(kh, kw, C, m)``
``ConvTranspose1d/2d``           ``Conv1D/2DTranspose(padding=p,              ``(i, o, k…)`` →
                                 output_padding)``                            ``(k…, o, i)``
``BatchNorm1d/2d/3d``            ``BatchNormalization(axis=1, momentum=1-m,   γ, β, mean, var
                                 epsilon=eps, "unbiased")``
``LayerNorm(shape)``             ``LayerNormalization(last len(shape) axes)`` γ, β
``GroupNorm(G, C)``              ``GroupNormalization(G, axis=1)``            γ, β
``Embedding``                    ``Embedding``                                as is
``MaxPool``/``AvgPool1d/2d/3d``  ``Max/AveragePooling(padding=p, ceil_mode,   —
                                 count_include_pad, channels_first)``
``AdaptiveAvgPool(1)``           ``GlobalAveragePooling1D/2D(keepdims=True)`` —
``AdaptiveAvgPool(o)``, n % o=0  ``AveragePooling(n/o)``                      —
``Flatten()``                    ``Flatten()`` (memory order)                 —
``Dropout``, ``Dropout2d``       ``Dropout``, ``SpatialDropout2D``            —
``ZeroPad2d``, ``Upsample``      ``ZeroPadding2D``, ``UpSampling2D(nearest)`` —
activations, ``Softmax(dim)``    see :mod:`~dualnet.interop.torch_functions`  ``PReLU`` α
===============================  ===========================================  ===================

Recurrent and attention modules are in :mod:`~dualnet.interop.torch_recurrent`.
"""

from __future__ import annotations

from typing import Any

from dualnet.interop import torch_functions as fns
from dualnet.interop import torch_recurrent
from dualnet.interop.torch_import import Converter, Tensor, Unsupported, _to_numpy

__all__ = ["MODULES"]


def _layers() -> Any:
    from dualnet import layers

    return layers


def _tuple(value: Any, n: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, tuple | list) else (value,) * n


def _spatial(cv: Converter, x: Tensor, rank: int, what: str) -> Any:
    """``x`` as a channels-first tensor of ``rank`` spatial axes (torch's layout)."""
    if x.rank != rank + 2:
        raise Unsupported(f"{what} on a rank-{x.rank} input; supported: batched inputs of rank "
                          f"{rank + 2} (N, C, *spatial)")  # fmt: skip
    return cv.dense(x)


# -- dense and convolutions -------------------------------------------------------------------


def linear(cv: Converter, m: Any, x: Any) -> Tensor:
    """``y = x·Wᵀ + b`` on the last axis: ``Dense`` with kernel ``Wᵀ``."""
    x = fns.tensor(x)
    weights = [_to_numpy(m.weight).T] + ([_to_numpy(m.bias)] if m.bias is not None else [])
    layer = cv.layer(_layers().Dense, m.out_features, use_bias=m.bias is not None)
    if x.perm[-1] == x.rank - 1:  # the features are already last: the layout may stay lazy
        return Tensor(cv.call(layer, x.sym, weights), x.perm)
    return Tensor(cv.call(layer, cv.dense(x), weights), tuple(range(x.rank)))


def conv_padding(padding: Any, rank: int) -> Any:
    """torch's conv ``padding`` as dualnet's: ``"same"`` (stride 1: torch puts the odd pixel at
    the end, as TensorFlow does), ``"valid"`` for zeros, else the explicit symmetric amounts."""
    if isinstance(padding, str):
        return padding
    amounts = _tuple(padding, rank)
    return "valid" if not any(amounts) else tuple(int(p) for p in amounts)


def conv(cv: Converter, m: Any, x: Any) -> Tensor:
    """``Conv1d/2d/3d``: ``Conv{n}D`` channels-first (``DepthwiseConv2D`` for a depthwise
    2-D convolution), torch's padding."""
    import torch.nn as nn

    layers = _layers()
    rank = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}[type(m)]
    problems = []
    if m.padding_mode != "zeros":
        problems.append(f"padding_mode={m.padding_mode!r}")
    if max(m.stride) > 1 and max(m.dilation) > 1:
        problems.append(f"stride={m.stride} with dilation={m.dilation} (TensorFlow has no "
                        "kernel for the combination)")  # fmt: skip
    if problems:
        raise Unsupported(f"{' and '.join(problems)}; supported: padding_mode='zeros', stride 1 "
                          "or dilation 1")  # fmt: skip
    sym = _spatial(cv, fns.tensor(x), rank, type(m).__name__)
    w = _to_numpy(m.weight)
    bias = [_to_numpy(m.bias)] if m.bias is not None else []
    common = {"strides": m.stride, "padding": conv_padding(m.padding, rank),
              "dilation_rate": m.dilation, "data_format": "channels_first",
              "use_bias": m.bias is not None}  # fmt: skip
    channels = m.in_channels
    if rank == 2 and m.groups == channels and m.groups > 1:
        multiplier = m.out_channels // channels
        # (C·m, 1, kh, kw): output channel c·m + j is input channel c's j-th filter, in both
        kernel = w.reshape(channels, multiplier, *w.shape[2:]).transpose(2, 3, 0, 1)
        layer = cv.layer(layers.DepthwiseConv2D, m.kernel_size, depth_multiplier=multiplier,
                         **common)  # fmt: skip
        cv.note(f"depthwise Conv2d(groups={m.groups}) -> DepthwiseConv2D")
    else:
        cls = {1: layers.Conv1D, 2: layers.Conv2D, 3: layers.Conv3D}[rank]
        kernel = w.transpose(*range(2, 2 + rank), 1, 0)  # (o, i/g, k…) -> (k…, i/g, o)
        layer = cv.layer(cls, m.out_channels, m.kernel_size, groups=m.groups, **common)
    return Tensor(cv.call(layer, sym, [kernel, *bias]), tuple(range(rank + 2)))


def conv_transpose(cv: Converter, m: Any, x: Any, output_size: Any = None) -> Tensor:
    """``ConvTranspose1d/2d``: ``Conv{n}DTranspose`` channels-first with torch's explicit
    ``padding`` (rows cropped from both ends of the full output) and ``output_padding``."""
    import torch.nn as nn

    layers = _layers()
    rank = {nn.ConvTranspose1d: 1, nn.ConvTranspose2d: 2}[type(m)]
    problems = []
    if output_size is not None:
        problems.append("output_size= at call time")
    if m.groups != 1:
        problems.append(f"groups={m.groups}")
    if m.padding_mode != "zeros":
        problems.append(f"padding_mode={m.padding_mode!r}")
    if max(m.stride) > 1 and max(m.dilation) > 1:
        problems.append(f"stride={m.stride} with dilation={m.dilation}")
    if problems:
        raise Unsupported(f"{' and '.join(problems)}; supported: groups=1, padding_mode='zeros', "
                          "stride 1 or dilation 1")  # fmt: skip
    sym = _spatial(cv, fns.tensor(x), rank, type(m).__name__)
    w = _to_numpy(m.weight)
    kernel = w.transpose(*range(2, 2 + rank), 1, 0)  # (i, o, k…) -> (k…, o, i)
    bias = [_to_numpy(m.bias)] if m.bias is not None else []
    cls = {1: layers.Conv1DTranspose, 2: layers.Conv2DTranspose}[rank]
    op = tuple(m.output_padding)
    # torch's padding p crops p rows from both ends of the full output; output_padding adds
    # rows at the end: dualnet's explicit padding of a transposed convolution is that rule.
    # Always the explicit amounts, zeros included: torch's length (n-1)·s + k - 2p + op differs
    # from Keras's "valid" n·s + max(k - s, 0) whenever k < s.
    layer = cv.layer(cls, m.out_channels, m.kernel_size, strides=m.stride,
                     padding=tuple(int(p) for p in m.padding),
                     output_padding=op if any(op) else None, dilation_rate=m.dilation,
                     data_format="channels_first", use_bias=m.bias is not None)  # fmt: skip
    out = cv.call(layer, sym, [kernel, *bias])
    return Tensor(out, tuple(range(rank + 2)))


# -- normalization ---------------------------------------------------------------------------


def batch_norm(cv: Converter, m: Any, x: Any) -> Tensor:
    """``BatchNorm1d/2d/3d``: ``BatchNormalization(axis=1)`` with torch's momentum (Keras's
    sense ``1 - m``), epsilon and unbiased running-variance update."""
    if not m.track_running_stats or m.momentum is None:
        raise Unsupported(
            f"track_running_stats={m.track_running_stats}, momentum={m.momentum}; "
            "supported: running statistics with a fixed momentum (a cumulative "
            "average and batch statistics in eval mode have no dualnet form)"
        )
    x = fns.tensor(x)
    if x.rank < 2:
        raise Unsupported("an unbatched input")
    weights = ([_to_numpy(m.weight), _to_numpy(m.bias)] if m.affine else []) + [
        _to_numpy(m.running_mean), _to_numpy(m.running_var)]  # fmt: skip
    # torch: running = (1 - m)·running + m·batch; Keras's momentum is the old value's weight
    layer = cv.layer(_layers().BatchNormalization, axis=1, momentum=1.0 - m.momentum,
                     epsilon=m.eps, center=m.affine, scale=m.affine,
                     moving_variance_estimator="unbiased")  # fmt: skip
    return Tensor(cv.call(layer, cv.dense(x), weights), tuple(range(x.rank)))


def layer_norm(cv: Converter, m: Any, x: Any) -> Tensor:
    """``LayerNorm(shape)``: ``LayerNormalization`` over the last ``len(shape)`` axes."""
    x = fns.tensor(x)
    k = len(m.normalized_shape)
    scale = m.weight is not None
    center = getattr(m, "bias", None) is not None
    weights = ([_to_numpy(m.weight)] if scale else []) + ([_to_numpy(m.bias)] if center else [])
    tail = tuple(range(x.rank - k, x.rank))
    if k == 1 and x.perm[-1] == x.rank - 1:  # one axis, already last: stay lazy
        layer = cv.layer(_layers().LayerNormalization, axis=-1, epsilon=m.eps, center=center,
                         scale=scale)  # fmt: skip
        return Tensor(cv.call(layer, x.sym, weights), x.perm)
    layer = cv.layer(_layers().LayerNormalization, axis=list(tail) if k > 1 else -1,
                     epsilon=m.eps, center=center, scale=scale)  # fmt: skip
    return Tensor(cv.call(layer, cv.dense(x), weights), tuple(range(x.rank)))


def group_norm(cv: Converter, m: Any, x: Any) -> Tensor:
    """``GroupNorm(G, C)``: ``GroupNormalization(G, axis=1)``."""
    x = fns.tensor(x)
    weights = [_to_numpy(m.weight), _to_numpy(m.bias)] if m.affine else []
    layer = cv.layer(_layers().GroupNormalization, groups=m.num_groups, axis=1, epsilon=m.eps,
                     center=m.affine, scale=m.affine)  # fmt: skip
    return Tensor(cv.call(layer, cv.dense(x), weights), tuple(range(x.rank)))


def embedding(cv: Converter, m: Any, ids: Any) -> Tensor:
    """``Embedding``: the same table (``(num, dim)`` in both)."""
    problems = []
    if m.padding_idx is not None:
        problems.append(
            f"padding_idx={m.padding_idx} (torch never updates that row; dualnet "
            "has no per-row freezing, so training would differ: set "
            "module.padding_idx = None to import it with that row trainable)"
        )
    if m.max_norm is not None:
        problems.append(f"max_norm={m.max_norm} (renormalises rows in place at lookup)")
    if m.scale_grad_by_freq:
        problems.append("scale_grad_by_freq=True (a different gradient)")
    if problems:
        raise Unsupported("; ".join(problems))
    ids = fns.tensor(ids)
    layer = cv.layer(_layers().Embedding, m.num_embeddings, m.embedding_dim)
    return Tensor(cv.call(layer, ids.sym, [_to_numpy(m.weight)]), (*ids.perm, ids.rank))


# -- pooling ---------------------------------------------------------------------------------


def _pool_padding(padding: Any, rank: int, ceil_mode: bool) -> tuple[Any, dict[str, Any]]:
    amounts = _tuple(padding, rank)
    if not any(amounts) and not ceil_mode:
        return "valid", {}
    # torch's explicit symmetric padding (the padding interface: ints per axis, ceil_mode)
    return tuple(int(p) for p in amounts), {"ceil_mode": bool(ceil_mode)}


def max_pool(cv: Converter, x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
             dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = False,
             *, rank: int | None = None) -> Tensor:  # fmt: skip
    """``MaxPool{n}d``/``F.max_pool{n}d``: ``MaxPooling{n}D`` channels-first, torch's padding
    (never wins) and ``ceil_mode``."""
    rank = rank or x.rank - 2
    if max(_tuple(dilation, rank)) > 1 or return_indices:
        raise Unsupported(f"dilation={dilation}, return_indices={return_indices}; supported: "
                          "dilation 1 without indices")  # fmt: skip
    sym = _spatial(cv, x, rank, "max pooling")
    cls = {1: _layers().MaxPooling1D, 2: _layers().MaxPooling2D, 3: _layers().MaxPooling3D}[rank]
    pad, extra = _pool_padding(padding, rank, ceil_mode)
    strides = _tuple(stride, rank) if stride not in (None, []) else _tuple(kernel_size, rank)
    layer = cv.layer(cls, _tuple(kernel_size, rank), strides, pad, data_format="channels_first",
                     **extra)  # fmt: skip
    return Tensor(cv.call(layer, sym), tuple(range(rank + 2)))


def avg_pool(cv: Converter, x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
             ceil_mode: bool = False, count_include_pad: bool = True,
             divisor_override: Any = None, *, rank: int | None = None) -> Tensor:  # fmt: skip
    """``AvgPool{n}d``: ``AveragePooling{n}D`` channels-first with torch's padding,
    ``ceil_mode`` and ``count_include_pad``."""
    rank = rank or x.rank - 2
    if divisor_override is not None:
        raise Unsupported(f"divisor_override={divisor_override}; supported: None")
    sym = _spatial(cv, x, rank, "average pooling")
    cls = {1: _layers().AveragePooling1D, 2: _layers().AveragePooling2D,
           3: _layers().AveragePooling3D}[rank]  # fmt: skip
    pad, extra = _pool_padding(padding, rank, ceil_mode)
    if pad != "valid":
        extra["count_include_pad"] = bool(count_include_pad)
    strides = _tuple(stride, rank) if stride not in (None, []) else _tuple(kernel_size, rank)
    layer = cv.layer(cls, _tuple(kernel_size, rank), strides, pad, data_format="channels_first",
                     **extra)  # fmt: skip
    return Tensor(cv.call(layer, sym), tuple(range(rank + 2)))


def adaptive_avg_pool(cv: Converter, x: Tensor, output_size: Any, *,
                      kind: str = "avg") -> Tensor:  # fmt: skip
    """``AdaptiveAvgPool{n}d(o)``: global pooling (keepdims) for ``o = 1``; a plain pooling of
    window and stride ``n/o`` when ``o`` divides ``n`` (torch's windows are then those)."""
    rank = x.rank - 2
    sizes = x.torch_shape[2:]
    out = tuple(s if o is None else o for o, s in zip(_tuple(output_size, rank), sizes,
                                                       strict=False))  # fmt: skip
    layers = _layers()
    sym = _spatial(cv, x, rank, f"adaptive {kind} pooling")
    if all(o == 1 for o in out) and rank in (1, 2):
        cls = {("avg", 1): layers.GlobalAveragePooling1D, ("avg", 2): layers.GlobalAveragePooling2D,
               ("max", 1): layers.GlobalMaxPooling1D,
               ("max", 2): layers.GlobalMaxPooling2D}[(kind, rank)]  # fmt: skip
        layer = cv.layer(cls, data_format="channels_first", keepdims=True)
        return Tensor(cv.call(layer, sym), tuple(range(rank + 2)))
    if any(n % o for n, o in zip(sizes, out, strict=True)):
        raise Unsupported(f"output_size={output_size} for an input of spatial size {sizes}: "
                          "supported when each output size divides the input size (uniform "
                          "windows)")  # fmt: skip
    window = tuple(n // o for n, o in zip(sizes, out, strict=True))
    pool = avg_pool if kind == "avg" else max_pool
    return pool(cv, x, window, window, rank=rank)


def _adaptive(kind: str):
    def convert(cv: Converter, m: Any, x: Any) -> Tensor:
        if getattr(m, "return_indices", False):
            raise Unsupported("return_indices=True; supported: return_indices=False (dualnet "
                              "pooling returns the values only)")  # fmt: skip
        return adaptive_avg_pool(cv, fns.tensor(x), m.output_size, kind=kind)

    return convert


def _max_pool_module(cv: Converter, m: Any, x: Any) -> Tensor:
    return max_pool(cv, fns.tensor(x), m.kernel_size, m.stride, m.padding, m.dilation,
                    m.ceil_mode, m.return_indices)  # fmt: skip


def _avg_pool_module(cv: Converter, m: Any, x: Any) -> Tensor:
    return avg_pool(cv, fns.tensor(x), m.kernel_size, m.stride, m.padding, m.ceil_mode,
                    m.count_include_pad, getattr(m, "divisor_override", None))  # fmt: skip


# -- the rest --------------------------------------------------------------------------------


def flatten_module(cv: Converter, m: Any, x: Any) -> Tensor:
    return fns.flatten(cv, x, m.start_dim, m.end_dim)


def dropout_module(cv: Converter, m: Any, x: Any) -> Tensor:
    return fns.dropout(cv, x, m.p)


def dropout2d(cv: Converter, m: Any, x: Any) -> Tensor:
    """``Dropout2d``: whole channels dropped, ``SpatialDropout2D`` channels-first."""
    x = fns.tensor(x)
    if m.p == 0:
        return x
    sym = _spatial(cv, x, 2, "Dropout2d")
    cv.note("Dropout2d -> SpatialDropout2D: dualnet's portable mask")
    layer = cv.layer(_layers().SpatialDropout2D, float(m.p), data_format="channels_first")
    return Tensor(cv.call(layer, sym), tuple(range(4)))


def zero_pad2d(cv: Converter, m: Any, x: Any) -> Tensor:
    """``ZeroPad2d((l, r, t, b))`` = ``ZeroPadding2D(((t, b), (l, r)))`` channels-first."""
    left, right, top, bottom = m.padding
    if min(m.padding) < 0:
        raise Unsupported(f"negative padding {m.padding}")
    sym = _spatial(cv, fns.tensor(x), 2, "ZeroPad2d")
    layer = cv.layer(_layers().ZeroPadding2D, ((top, bottom), (left, right)),
                     data_format="channels_first")  # fmt: skip
    return Tensor(cv.call(layer, sym), tuple(range(4)))


def upsample(cv: Converter, m: Any, x: Any) -> Tensor:
    """``Upsample(scale_factor=s, mode="nearest")`` on images: ``UpSampling2D(s)``."""
    x = fns.tensor(x)
    scale = m.scale_factor
    scales = _tuple(scale, 2) if scale is not None else None
    if (m.mode != "nearest" or scales is None or x.rank != 4
            or any(float(s) != int(s) for s in scales)):  # fmt: skip
        raise Unsupported(f"mode={m.mode!r}, scale_factor={scale}, size={m.size} on a rank-"
                          f"{x.rank} input; supported: mode='nearest' with integer "
                          "scale_factor on (N, C, H, W) (Keras's bilinear and bicubic kernels "
                          "are not torch's)")  # fmt: skip
    layer = cv.layer(_layers().UpSampling2D, tuple(int(s) for s in scales),
                     data_format="channels_first")  # fmt: skip
    return Tensor(cv.call(layer, cv.dense(x)), tuple(range(4)))


def prelu(cv: Converter, m: Any, x: Any) -> Tensor:
    """``PReLU(n)``: ``PReLU`` with every axis but the channels (dim 1) shared (all of them for
    one parameter)."""
    x = fns.tensor(x)
    sym = cv.dense(x)
    w = _to_numpy(m.weight)
    shared = list(range(2, x.rank)) if w.size > 1 else list(range(1, x.rank))
    shape = [1] * (x.rank - 1)
    if w.size > 1:
        shape[0] = w.size
    layer = cv.layer(_layers().PReLU, shared_axes=shared or None)
    return Tensor(cv.call(layer, sym, [w.reshape(shape)]), tuple(range(x.rank)))


def identity(cv: Converter, m: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
    return fns.tensor(x)


def _activation(kind: str, **read: str):
    def convert(cv: Converter, m: Any, x: Any) -> Tensor:
        return fns.activation(cv, x, kind, **{k: getattr(m, attr) for k, attr in read.items()})

    return convert


def hardtanh(cv: Converter, m: Any, x: Any) -> Tensor:
    """``Hardtanh(0, m)`` (and ``ReLU6``): ``ReLU(max_value=m)``."""
    if m.min_val != 0:
        raise Unsupported(f"min_val={m.min_val}; supported: min_val=0 (ReLU(max_value))")
    return fns.activation(cv, x, "relu_max", max_value=m.max_val)


def _softmax_module(log: bool):
    def convert(cv: Converter, m: Any, x: Any) -> Tensor:
        return fns.softmax(cv, x, m.dim, log=log)

    return convert


def _table() -> dict[type, Any]:
    import torch.nn as nn

    table: dict[type, Any] = {
        nn.Linear: linear, nn.Conv1d: conv, nn.Conv2d: conv, nn.Conv3d: conv,
        nn.ConvTranspose1d: conv_transpose, nn.ConvTranspose2d: conv_transpose,
        nn.BatchNorm1d: batch_norm, nn.BatchNorm2d: batch_norm, nn.BatchNorm3d: batch_norm,
        nn.LayerNorm: layer_norm, nn.GroupNorm: group_norm, nn.Embedding: embedding,
        nn.MaxPool1d: _max_pool_module, nn.MaxPool2d: _max_pool_module,
        nn.MaxPool3d: _max_pool_module, nn.AvgPool1d: _avg_pool_module,
        nn.AvgPool2d: _avg_pool_module, nn.AvgPool3d: _avg_pool_module,
        nn.AdaptiveAvgPool1d: _adaptive("avg"), nn.AdaptiveAvgPool2d: _adaptive("avg"),
        nn.AdaptiveMaxPool1d: _adaptive("max"), nn.AdaptiveMaxPool2d: _adaptive("max"),
        nn.Flatten: flatten_module, nn.Dropout: dropout_module, nn.Dropout2d: dropout2d,
        nn.ZeroPad2d: zero_pad2d, nn.Upsample: upsample, nn.Identity: identity,
        nn.PReLU: prelu, nn.ReLU: _activation("relu"), nn.ReLU6: hardtanh,
        nn.Hardtanh: hardtanh, nn.LeakyReLU: _activation("leaky_relu",
                                                         negative_slope="negative_slope"),
        nn.ELU: _activation("elu", alpha="alpha"),
        nn.GELU: _activation("gelu", approximate="approximate"), nn.SiLU: _activation("silu"),
        nn.Sigmoid: _activation("sigmoid"), nn.Tanh: _activation("tanh"),
        nn.Hardswish: _activation("hard_silu"), nn.Hardsigmoid: _activation("hard_sigmoid"),
        nn.Mish: _activation("mish"), nn.SELU: _activation("selu"),
        nn.Softsign: _activation("softsign"),
        nn.Softplus: _activation("softplus", beta="beta", threshold="threshold"),
        nn.Softmax: _softmax_module(False), nn.LogSoftmax: _softmax_module(True),
    }  # fmt: skip
    table.update(torch_recurrent.MODULES)
    return table


MODULES = _table()
