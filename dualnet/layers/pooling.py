"""Pooling layers (Keras's ``layers/pooling`` group): Max/AveragePooling1D/2D/3D over sliding
windows, GlobalAverage/GlobalMaxPooling1D/2D over all positions.

Window pooling reduces, per channel, a window of ``pool_size`` positions that moves by
``strides`` along each spatial axis::

    y[b, o, c] = max or mean of  x[b, o·s − before + j, c],  j = 0 … k−1  (real positions only)

* ``padding="valid"``: no padding, ``out = floor((n − k) / s) + 1`` (needs ``n >= k``);
* ``padding="same"``: TensorFlow's rule, ``out = ceil(n / s)``, ``total = max(0, (out − 1)·s +
  k − n)``, ``before = total // 2`` and the odd position at the **end** (the rule convolutions
  follow, :func:`dualnet.layers._spatial.same_padding`; per layer
  :meth:`MaxPooling2D.padding_amounts`);
* explicit (torch-style) amounts ``padding=p``: an int (``p`` before and after every axis,
  torch's ``padding=p``), one int per axis, or ``(before, after)`` pairs per axis, each at
  most ``k // 2`` (torch refuses more). ``out = floor((n + before + after − k) / s) + 1``; with
  ``ceil_mode=True`` ``ceil`` instead of ``floor`` (a last, partial window), minus one where
  that window would start in the right padding, ``(out − 1)·s >= n + before`` (torch's rule;
  ``padding=0`` is explicit, so ``MaxPooling2D(2, padding=0, ceil_mode=True)`` is torch's
  ``MaxPool2d(2, ceil_mode=True)``).

With ``"same"`` padded positions are not data: they never win a max, and a mean divides by the
number of *real* positions in its window (Keras's rule; a border window of a 3x3 mean with one
padded row divides by 6, not 9). With explicit amounts torch's rules hold: the padding still
never wins a max (torch pads with −inf), and a mean divides by the window's positions inside
``[−before, n + after)`` with ``count_include_pad=True`` (torch's default: the explicit zeros
count, the ``ceil_mode`` overhang past them never does), by its real positions with
``count_include_pad=False``. ``ceil_mode`` and ``count_include_pad`` need explicit amounts:
with ``"valid"``/``"same"`` their non-default values are refused.

Where torch and Keras differ:

================  ===================================  ===========================  =========
                  torch                                Keras                        dualnet
================  ===================================  ===========================  =========
layout            channels first (N, C, H, W)          ``data_format``, default     Keras
                                                       channels_last (N, H, W, C)
default stride    ``stride=None``: kernel_size         ``strides=None``: pool_size  pool_size
"same" padding    no ``"same"``; ``padding=p`` pads    TF rule above (extra at the  Keras;
                  ``p`` on both sides (p <= k/2)       end)                         torch's
                                                                                    with ``p``
mean divisor      ``count_include_pad=True``: padded   real positions only          Keras's
                  zeros counted (default)                                           for same,
                                                                                    torch's
                                                                                    for ``p``
max padding       −inf (never wins)                    never wins                   never wins
extra options     ceil_mode, dilation,                 —                            ceil_mode
                  divisor_override
global pooling    ``x.mean((2, 3))`` / ``amax`` or     GlobalAverage/Max layers,    Keras
                  ``adaptive_avg_pool2d(x, 1)``        ``keepdims=False``
================  ===================================  ===========================  =========

``nn.AvgPool2d(k, s, padding=p, ceil_mode=c, count_include_pad=i)`` is
``AveragePooling2D(k, s, padding=p, ceil_mode=c, count_include_pad=i,
data_format="channels_first")``, and ``nn.MaxPool2d(k, s, padding=p, ceil_mode=c)`` likewise
(``dilation`` and ``divisor_override`` have no dualnet counterpart).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from dualnet.errors import bad_value
from dualnet.layers import _args, _spatial
from dualnet.layers.base import Layer, format_shape

__all__ = [
    "AveragePooling1D", "AveragePooling2D", "AveragePooling3D", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "MaxPooling1D",
    "MaxPooling2D", "MaxPooling3D",
]  # fmt: skip

PADDINGS = ("valid", "same")


def _document(template: str, **fields: Any):
    """Fill a class docstring template (the 1-D, 2-D and 3-D variants share one text)."""

    def decorate(cls: type) -> type:
        cls.__doc__ = template.format(**fields)
        return cls

    return decorate


class _WindowPooling(Layer):
    """Shared by Max/AveragePooling1D/2D/3D: arguments, shape rule, config (see the module
    docstring for the math). Its constructor is AveragePooling's (``pool_size`` required, as
    Keras); MaxPooling's restate it with their default ``pool_size`` and without
    ``count_include_pad`` (torch's max pooling has none)."""

    # Number of spatial axes, and "max" or "average"; set by each public class.
    spatial_dims: ClassVar[int]
    mode: ClassVar[str]

    def __init__(self, pool_size: Any, strides: Any = None, padding: Any = "valid",
                 data_format: str | None = None, *, ceil_mode: bool = False,
                 count_include_pad: bool = True, name: str | None = None, dtype: Any = None,
                 input_shape: Any = None, trainable: bool = True):  # fmt: skip
        where = type(self).__name__
        n = self.spatial_dims
        self._pool_size = _args.int_tuple(pool_size, n, "pool_size", where)
        # strides=None means pool_size (non-overlapping windows) in Keras and in torch alike.
        self._strides = (
            self._pool_size if strides is None else _args.int_tuple(strides, n, "strides", where)
        )
        self._padding = _args.padding(padding, PADDINGS, n, "padding", where)
        self._data_format = _args.data_format(data_format, where)
        self._ceil_mode = _args.boolean(ceil_mode, "ceil_mode", where)
        self._count_include_pad = _args.boolean(count_include_pad, "count_include_pad", where)
        self._check_torch_options(padding)
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    def _check_torch_options(self, given: Any) -> None:
        """torch's limits: explicit amounts of at most ``k // 2`` per side; ``ceil_mode`` and
        ``count_include_pad`` only mean something with explicit amounts."""
        where = type(self).__name__
        pads = self.explicit_padding
        if pads is None:
            for argument, value, default in (("ceil_mode", self._ceil_mode, False),
                                             ("count_include_pad", self._count_include_pad,
                                              True)):  # fmt: skip
                if value != default:
                    raise bad_value(argument, value,
                                    f"{default} with padding={self._padding!r} ({argument} is "
                                    "torch's and needs explicit padding amounts, e.g. "
                                    "padding=0)", where=where)  # fmt: skip
            return
        for k, (before, after) in zip(self._pool_size, pads, strict=True):
            if max(before, after) > k // 2:
                # torch: "pad should be at most half of effective kernel size".
                raise bad_value("padding", given,
                                f"amounts of at most half the pool size on each side "
                                f"(pool_size={self._pool_size}: at most "
                                f"{tuple(k // 2 for k in self._pool_size)}), as torch requires",
                                where=where)  # fmt: skip

    pool_size = property(lambda self: self._pool_size)
    strides = property(lambda self: self._strides)
    # The padding mode ("valid", "same") or the explicit (before, after) pairs.
    padding = property(lambda self: self._padding)
    data_format = property(lambda self: self._data_format)
    ceil_mode = property(lambda self: self._ceil_mode)
    # Average pooling only (always True for max pooling, where it means nothing).
    count_include_pad = property(lambda self: self._count_include_pad)

    @property
    def explicit_padding(self) -> tuple[tuple[int, int], ...] | None:
        """The explicit ``(before, after)`` amounts per spatial axis, None for a mode."""
        return self._padding if _spatial.is_explicit(self._padding) else None

    def _output_length(self, n: int, i: int) -> int:
        """Output length along spatial axis ``i`` for an input of length ``n``."""
        k, s = self.pool_size[i], self.strides[i]
        if self.explicit_padding is not None:
            return _spatial.padded_length(n, k, s, *self.explicit_padding[i], self._ceil_mode)
        return _spatial.output_length(n, k, s, self._padding)

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        shape = tuple(shape)
        n = self.spatial_dims
        self._check_rank(shape, n + 2, _spatial.layout(n, self.data_format))
        if self.explicit_padding is not None:
            sizes = [shape[a] for a in _spatial.spatial_axes(n + 2, self.data_format)]
            if any(d is not None and self._output_length(d, i) < 1 for i, d in enumerate(sizes)):
                raise ValueError(
                    f"{self._where()} expects each spatial dimension plus its padding "
                    f"{self.explicit_padding} to be at least pool_size={self.pool_size}, got "
                    f"shape {format_shape(shape)} ({self.data_format}: spatial dimensions "
                    f"{format_shape(tuple(sizes))})."
                )
        elif self.padding == "valid":
            sizes = [shape[a] for a in _spatial.spatial_axes(n + 2, self.data_format)]
            if any(d is not None and d < k for d, k in zip(sizes, self.pool_size, strict=True)):
                raise ValueError(
                    f"{self._where()} expects spatial dimensions >= pool_size={self.pool_size} "
                    f"with padding='valid', got shape {format_shape(shape)} "
                    f"({self.data_format}: spatial dimensions {format_shape(tuple(sizes))})."
                )

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return _spatial.map_spatial(input_shape, self.data_format, self._output_length)

    def padding_amounts(self, spatial_shape: Sequence[int]) -> tuple[tuple[int, int], ...]:
        """``(before, after)`` padding per spatial axis for inputs of these spatial sizes: none
        for ``"valid"``, TensorFlow's rule for ``"same"`` (the module docstring; the padded
        positions are not data), the explicit amounts as given (the ``ceil_mode`` overhang
        not included, see :meth:`window_pads`)."""
        if self.explicit_padding is not None:
            return self.explicit_padding
        if self.padding == "valid":
            return tuple((0, 0) for _ in spatial_shape)
        return tuple(
            _spatial.same_padding(int(n), k, s)
            for n, k, s in zip(spatial_shape, self.pool_size, self.strides, strict=True)
        )

    def window_pads(self, spatial_shape: Sequence[int]) -> tuple[tuple[int, int], ...]:
        """``(before, after)`` per spatial axis such that a ``"valid"`` pool of the input padded
        by them has exactly this layer's windows: ``before`` as :meth:`padding_amounts`, and
        ``after = (out − 1)·s + k − n − before``, which adds the ``ceil_mode`` overhang or is
        negative where trailing positions lie in no window (a backend pads ``max(after, 0)``
        and keeps the first ``n + before + after`` positions)."""
        out = []
        for i, (n, (before, _)) in enumerate(zip(spatial_shape,
                                                 self.padding_amounts(spatial_shape),
                                                 strict=True)):  # fmt: skip
            length = self._output_length(int(n), i)
            out.append((before, (length - 1) * self.strides[i] + self.pool_size[i] - n - before))
        return tuple(out)

    def window_counts(self, spatial_shape: Sequence[int]) -> tuple[tuple[int, ...], ...]:
        """Per spatial axis, the divisor's factor of each output position of a mean: the real
        positions of the window (``"same"``, ``"valid"``) or torch's count (explicit padding,
        :func:`dualnet.layers._spatial.window_counts`). A window's divisor is the product over
        axes."""
        out = []
        for i, (n, (before, after)) in enumerate(zip(spatial_shape,
                                                     self.padding_amounts(spatial_shape),
                                                     strict=True)):  # fmt: skip
            k, s = self.pool_size[i], self.strides[i]
            if self.explicit_padding is not None:
                out.append(_spatial.window_counts(int(n), k, s, before, after, self._ceil_mode,
                                                  self._count_include_pad))  # fmt: skip
                continue
            starts = [o * s - before for o in range(self._output_length(int(n), i))]
            # Real positions of the window [start, start + k) ∩ [0, n).
            out.append(tuple(min(t + k, int(n)) - max(t, 0) for t in starts))
        return tuple(out)

    def get_config(self) -> dict[str, Any]:
        pads = self.explicit_padding
        config = {
            **super().get_config(),
            "pool_size": self.pool_size,
            "strides": self.strides,
            # Explicit amounts as a list of [before, after] lists (JSON's).
            "padding": self.padding if pads is None else [list(p) for p in pads],
            "data_format": self.data_format,
            "ceil_mode": self.ceil_mode,
        }
        if self.mode == "average":
            config["count_include_pad"] = self.count_include_pad
        return config


_MAX_DOC = """Max pooling over {n}-D windows: the largest value of each window, per channel.

    ``y[b, o, c] = max_j x[b, o·s − before + j, c]`` over the real positions of the window (see
    :mod:`dualnet.layers.pooling` for the ``"valid"``/``"same"``/explicit rules). A padded
    position never wins, also when every real value of a border window is negative: torch pads
    with −inf (``padding=p`` or an explicit ``F.pad(value=-inf)``), never with zeros; so does
    dualnet, with ``"same"`` and with explicit amounts.

    ==============  ===============================  ==========================  ============
                    torch ``nn.MaxPool{n}d``           Keras ``MaxPooling{n}D``      dualnet
    ==============  ===============================  ==========================  ============
    layout          channels first                   channels_last (default)     Keras
    default stride  kernel_size                      pool_size                   pool_size
    "same"          none (symmetric int padding)     TF rule, extra at the end   Keras
    ``padding=p``   symmetric, ``p <= k // 2``       none                        torch's
    ``ceil_mode``   a last partial window            none                        torch's
    ==============  ===============================  ==========================  ============

    Args:
        pool_size: window size, an int or a tuple of {ints} (default {default}).
        strides: step of the window, an int or a tuple of {ints}; None means ``pool_size``.
        padding: ``"valid"`` (no padding), ``"same"`` (``out = ceil(n / s)``), or explicit
            amounts as torch's: an int, a tuple of {ints} (symmetric per axis) or of {n}
            ``(before, after)`` pairs, each at most ``pool_size // 2``.
        data_format: ``"channels_last"`` (default, Keras's) or ``"channels_first"`` (torch's
            layout).
        ceil_mode: torch's (explicit padding only): ``ceil`` in the output length, a last
            partial window unless it would start in the right padding.
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        input ``({layout_last})`` (channels_last) or
        ``({layout_first})`` (channels_first); output the same with each spatial length
        pooled. The gradient flows to the argmax of each window (ties have no
        well-defined gradient; the frameworks may pick different elements).
    """

_AVG_DOC = """Average pooling over {n}-D windows: the mean of the real positions of each window.

    ``y[b, o, c] = (1 / |W(o)|) · Σ_{{j ∈ W(o)}} x[b, o·s − before + j, c]`` where ``W(o)`` is
    the set of window positions inside the input (see :mod:`dualnet.layers.pooling` for the
    ``"valid"``/``"same"`` rule): with ``"same"`` a border window divides by its number of real
    positions, not by the window size.

    ==============  ===============================  ==========================  ============
                    torch ``nn.AvgPool{n}d``           Keras ``AveragePooling{n}D``  dualnet
    ==============  ===============================  ==========================  ============
    layout          channels first                   channels_last (default)     Keras
    default stride  kernel_size                      pool_size                   pool_size
    "same"          none (symmetric int padding)     TF rule, extra at the end   Keras
    divisor         ``count_include_pad=True``:      real positions only         Keras's for
                    padded zeros counted                                         "same",
                                                                                 torch's for
                                                                                 ``padding=p``
    ``ceil_mode``   a last partial window            none                        torch's
    ==============  ===============================  ==========================  ============

    With explicit amounts the divisor is torch's: the window's positions inside ``[−before,
    n + after)`` with ``count_include_pad=True`` (the ``ceil_mode`` overhang past ``n + after``
    never counts), its real positions with ``False``. float16/bfloat16 inputs are averaged in
    float32 and rounded once, on both backends.

    Args:
        pool_size: window size, an int or a tuple of {ints} (required, as in Keras).
        strides: step of the window, an int or a tuple of {ints}; None means ``pool_size``.
        padding: ``"valid"`` (no padding), ``"same"`` (``out = ceil(n / s)``), or explicit
            amounts as torch's: an int, a tuple of {ints} (symmetric per axis) or of {n}
            ``(before, after)`` pairs, each at most ``pool_size // 2``.
        data_format: ``"channels_last"`` (default, Keras's) or ``"channels_first"`` (torch's
            layout).
        ceil_mode: torch's (explicit padding only): ``ceil`` in the output length, a last
            partial window unless it would start in the right padding.
        count_include_pad: torch's (explicit padding only; default True as torch): the
            explicit zeros count in the divisor.
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        input ``({layout_last})`` (channels_last) or
        ``({layout_first})`` (channels_first); output the same with each spatial length
        pooled.
    """


def _fields(n: int, default: str = "") -> dict[str, Any]:
    return {"n": n, "ints": "1 int" if n == 1 else f"{n} ints", "default": default,
            "layout_last": _spatial.layout(n, "channels_last"),
            "layout_first": _spatial.layout(n, "channels_first")}  # fmt: skip


@_document(_MAX_DOC, **_fields(1, "2"))
class MaxPooling1D(_WindowPooling):
    spatial_dims, mode = 1, "max"

    def __init__(self, pool_size: Any = 2, strides: Any = None, padding: Any = "valid",
                 data_format: str | None = None, *, ceil_mode: bool = False,
                 name: str | None = None, dtype: Any = None, input_shape: Any = None,
                 trainable: bool = True):  # fmt: skip
        super().__init__(pool_size, strides, padding, data_format, ceil_mode=ceil_mode,
                         name=name, dtype=dtype, input_shape=input_shape,
                         trainable=trainable)  # fmt: skip


@_document(_MAX_DOC, **_fields(2, "(2, 2)"))
class MaxPooling2D(_WindowPooling):
    spatial_dims, mode = 2, "max"

    def __init__(self, pool_size: Any = (2, 2), strides: Any = None, padding: Any = "valid",
                 data_format: str | None = None, *, ceil_mode: bool = False,
                 name: str | None = None, dtype: Any = None, input_shape: Any = None,
                 trainable: bool = True):  # fmt: skip
        super().__init__(pool_size, strides, padding, data_format, ceil_mode=ceil_mode,
                         name=name, dtype=dtype, input_shape=input_shape,
                         trainable=trainable)  # fmt: skip


@_document(_MAX_DOC, **_fields(3, "(2, 2, 2)"))
class MaxPooling3D(_WindowPooling):
    spatial_dims, mode = 3, "max"

    def __init__(self, pool_size: Any = (2, 2, 2), strides: Any = None, padding: Any = "valid",
                 data_format: str | None = None, *, ceil_mode: bool = False,
                 name: str | None = None, dtype: Any = None, input_shape: Any = None,
                 trainable: bool = True):  # fmt: skip
        super().__init__(pool_size, strides, padding, data_format, ceil_mode=ceil_mode,
                         name=name, dtype=dtype, input_shape=input_shape,
                         trainable=trainable)  # fmt: skip


@_document(_AVG_DOC, **_fields(1))
class AveragePooling1D(_WindowPooling):
    spatial_dims, mode = 1, "average"


@_document(_AVG_DOC, **_fields(2))
class AveragePooling2D(_WindowPooling):
    spatial_dims, mode = 2, "average"


@_document(_AVG_DOC, **_fields(3))
class AveragePooling3D(_WindowPooling):
    spatial_dims, mode = 3, "average"


class _GlobalPooling(Layer):
    """Shared by GlobalAverage/GlobalMaxPooling1D/2D: arguments, shape rule, config."""

    spatial_dims: ClassVar[int]
    mode: ClassVar[str]

    def __init__(self, data_format: str | None = None, keepdims: bool = False, *,
                 name: str | None = None, dtype: Any = None, input_shape: Any = None,
                 trainable: bool = True):  # fmt: skip
        where = type(self).__name__
        self._data_format = _args.data_format(data_format, where)
        self._keepdims = _args.boolean(keepdims, "keepdims", where)
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    data_format = property(lambda self: self._data_format)
    keepdims = property(lambda self: self._keepdims)

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        self._check_rank(tuple(shape), self.spatial_dims + 2,
                         _spatial.layout(self.spatial_dims, self.data_format))  # fmt: skip

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        shape = tuple(input_shape)
        axes = _spatial.spatial_axes(len(shape), self.data_format)
        if self.keepdims:
            return tuple(1 if i in axes else d for i, d in enumerate(shape))
        return tuple(d for i, d in enumerate(shape) if i not in axes)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_format": self.data_format,
                "keepdims": self.keepdims}  # fmt: skip


_GLOBAL_DOC = """Global {kind} pooling of {n}-D inputs: one value per channel over all positions.

    ``y[b, c] = {formula}`` over every spatial position ``p``.

    ==============  ===============================  ==========================  ============
                    torch                            Keras                       dualnet
    ==============  ===============================  ==========================  ============
    layer           none: {torch:<25}  {keras:<26}  Keras
    layout          channels first                   channels_last (default)     Keras
    kept axes       ``keepdim=False`` / adaptive     ``keepdims=False``          Keras
                    pooling keeps them (size 1)
    ==============  ===============================  ==========================  ============
{note}
    Args:
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        keepdims: keep the spatial axes with length 1 (``(batch, 1, ..., channels)``).
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        input ``({layout_last})`` (channels_last) or
        ``({layout_first})`` (channels_first); output ``(batch, channels)``, or
        the input's rank with spatial lengths 1 when ``keepdims``.
    """

_HALF_MEAN = (
    "\n    float16/bfloat16 inputs are averaged in float32 and rounded once, on both backends.\n"
)


_MASKED_MEAN = _HALF_MEAN + (
    "\n    With a mask (Note [Masks] in :mod:`dualnet.layers.base`, ``(batch, steps)``) the mean is"
    "\n    over the valid steps, ``Σ_t m·x / max(Σ_t m, 1)``: a row without any valid step is 0,"
    "\n    where Keras divides 0 by 0 (NaN). The output carries no mask.\n"
)


@_document(_GLOBAL_DOC, kind="average", keras="``GlobalAveragePooling1D``",
           formula="mean_p x[b, p, c]", torch="``x.mean(2)``", note=_MASKED_MEAN,
           **_fields(1))  # fmt: skip
class GlobalAveragePooling1D(_GlobalPooling):
    # Keras's flag: with a mask (Note [Masks] in dualnet.layers.base) the mean is over the
    # valid steps, Σ_t m·x / max(Σ_t m, 1): a row without any is 0 (Keras: 0/0 = NaN); the
    # output has no mask.
    supports_masking: ClassVar[bool] = True
    spatial_dims, mode = 1, "average"


@_document(_GLOBAL_DOC, kind="average", keras="``GlobalAveragePooling2D``",
           formula="mean_p x[b, p, c]", torch="``x.mean((2, 3))``", note=_HALF_MEAN,
           **_fields(2))  # fmt: skip
class GlobalAveragePooling2D(_GlobalPooling):
    spatial_dims, mode = 2, "average"


@_document(_GLOBAL_DOC, kind="max", keras="``GlobalMaxPooling1D``", formula="max_p x[b, p, c]",
           torch="``x.amax(2)``", note="", **_fields(1))  # fmt: skip
class GlobalMaxPooling1D(_GlobalPooling):
    spatial_dims, mode = 1, "max"


@_document(_GLOBAL_DOC, kind="max", keras="``GlobalMaxPooling2D``", formula="max_p x[b, p, c]",
           torch="``x.amax((2, 3))``", note="", **_fields(2))  # fmt: skip
class GlobalMaxPooling2D(_GlobalPooling):
    spatial_dims, mode = 2, "max"
