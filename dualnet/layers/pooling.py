"""Pooling layers (Keras's ``layers/pooling`` group): Max/AveragePooling1D/2D/3D over sliding
windows, GlobalAverage/GlobalMaxPooling1D/2D over all positions.

Window pooling reduces, per channel, a window of ``pool_size`` positions that moves by
``strides`` along each spatial axis::

    y[b, o, c] = max or mean of  x[b, o·s − before + j, c],  j = 0 … k−1  (real positions only)

* ``padding="valid"``: no padding, ``out = floor((n − k) / s) + 1`` (needs ``n >= k``);
* ``padding="same"``: TensorFlow's rule, ``out = ceil(n / s)``, ``total = max(0, (out − 1)·s +
  k − n)``, ``before = total // 2`` and the odd position at the **end** (the rule convolutions
  follow, :func:`dualnet.layers._spatial.same_padding`; per layer
  :meth:`MaxPooling2D.padding_amounts`).

Padded positions are not data: they never win a max, and a mean divides by the number of *real*
positions in its window (Keras's rule; a border window of a 3x3 mean with one padded row
divides by 6, not 9).

Where torch and Keras differ:

================  ===================================  ===========================  =========
                  torch                                Keras                        dualnet
================  ===================================  ===========================  =========
layout            channels first (N, C, H, W)          ``data_format``, default     Keras
                                                       channels_last (N, H, W, C)
default stride    ``stride=None``: kernel_size         ``strides=None``: pool_size  pool_size
"same" padding    no ``"same"``; ``padding=p`` pads    TF rule above (extra at the  Keras
                  ``p`` on both sides (p <= k/2)       end)
mean divisor      ``count_include_pad=True``: padded   real positions only          Keras
                  zeros counted (default)
max padding       −inf (never wins)                    never wins                   never wins
extra options     ceil_mode, dilation,                 —                            —
                  divisor_override
global pooling    ``x.mean((2, 3))`` / ``amax`` or     GlobalAverage/Max layers,    Keras
                  ``adaptive_avg_pool2d(x, 1)``        ``keepdims=False``
================  ===================================  ===========================  =========

To get torch's default mean (padded zeros counted) write the padding out:
``ZeroPadding2D(p)`` then ``AveragePooling2D(k, s)`` (``"valid"``): the zeros are then data, as
in ``nn.AvgPool2d(k, s, padding=p)``. For torch's layout pass ``data_format="channels_first"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

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
    Keras); MaxPooling's restate it with their default ``pool_size``."""

    # Number of spatial axes, and "max" or "average"; set by each public class.
    spatial_dims: ClassVar[int]
    mode: ClassVar[str]

    def __init__(self, pool_size: Any, strides: Any = None, padding: str = "valid",
                 data_format: str | None = None, *, name: str | None = None, dtype: Any = None,
                 input_shape: Any = None, trainable: bool = True):  # fmt: skip
        where = type(self).__name__
        n = self.spatial_dims
        self._pool_size = _args.int_tuple(pool_size, n, "pool_size", where)
        # strides=None means pool_size (non-overlapping windows) in Keras and in torch alike.
        self._strides = (
            self._pool_size if strides is None else _args.int_tuple(strides, n, "strides", where)
        )
        self._padding = _args.choice(padding, PADDINGS, "padding", where)
        self._data_format = _args.data_format(data_format, where)
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    pool_size = property(lambda self: self._pool_size)
    strides = property(lambda self: self._strides)
    padding = property(lambda self: self._padding)
    data_format = property(lambda self: self._data_format)

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        shape = tuple(shape)
        n = self.spatial_dims
        self._check_rank(shape, n + 2, _spatial.layout(n, self.data_format))
        if self.padding == "valid":
            sizes = [shape[a] for a in _spatial.spatial_axes(n + 2, self.data_format)]
            if any(d is not None and d < k for d, k in zip(sizes, self.pool_size, strict=True)):
                raise ValueError(
                    f"{self._where()} expects spatial dimensions >= pool_size={self.pool_size} "
                    f"with padding='valid', got shape {format_shape(shape)} "
                    f"({self.data_format}: spatial dimensions {format_shape(tuple(sizes))})."
                )

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return _spatial.map_spatial(
            input_shape, self.data_format,
            lambda n, i: _spatial.output_length(n, self.pool_size[i], self.strides[i],
                                                self.padding),
        )  # fmt: skip

    def padding_amounts(self, spatial_shape: Sequence[int]) -> tuple[tuple[int, int], ...]:
        """``(before, after)`` padding per spatial axis for inputs of these spatial sizes: none
        for ``"valid"``, TensorFlow's rule for ``"same"`` (the module docstring); the padded
        positions are not data (never the max, not counted in a mean)."""
        if self.padding == "valid":
            return tuple((0, 0) for _ in spatial_shape)
        return tuple(
            _spatial.same_padding(int(n), k, s)
            for n, k, s in zip(spatial_shape, self.pool_size, self.strides, strict=True)
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
        }


_MAX_DOC = """Max pooling over {n}-D windows: the largest value of each window, per channel.

    ``y[b, o, c] = max_j x[b, o·s − before + j, c]`` over the real positions of the window (see
    :mod:`dualnet.layers.pooling` for the ``"valid"``/``"same"`` rule). A padded position never
    wins, also when every real value of a border window is negative: torch pads with −inf
    (``padding=p`` or an explicit ``F.pad(value=-inf)``), never with zeros.

    ==============  ===============================  ==========================  ============
                    torch ``nn.MaxPool{n}d``           Keras ``MaxPooling{n}D``      dualnet
    ==============  ===============================  ==========================  ============
    layout          channels first                   channels_last (default)     Keras
    default stride  kernel_size                      pool_size                   pool_size
    "same"          none (symmetric int padding)     TF rule, extra at the end   Keras
    ==============  ===============================  ==========================  ============

    Args:
        pool_size: window size, an int or a tuple of {ints} (default {default}).
        strides: step of the window, an int or a tuple of {ints}; None means ``pool_size``.
        padding: ``"valid"`` (no padding) or ``"same"`` (``out = ceil(n / s)``).
        data_format: ``"channels_last"`` (default, Keras's) or ``"channels_first"`` (torch's
            layout).
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
    divisor         ``count_include_pad=True``:      real positions only         Keras
                    padded zeros counted
    ==============  ===============================  ==========================  ============

    torch's default divisor is ``ZeroPadding{n}D(p)`` followed by ``AveragePooling{n}D(k, s)``
    (``"valid"``). float16/bfloat16 inputs are averaged in float32 and rounded once, on both
    backends.

    Args:
        pool_size: window size, an int or a tuple of {ints} (required, as in Keras).
        strides: step of the window, an int or a tuple of {ints}; None means ``pool_size``.
        padding: ``"valid"`` (no padding) or ``"same"`` (``out = ceil(n / s)``).
        data_format: ``"channels_last"`` (default, Keras's) or ``"channels_first"`` (torch's
            layout).
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

    def __init__(self, pool_size: Any = 2, strides: Any = None, padding: str = "valid",
                 data_format: str | None = None, *, name: str | None = None, dtype: Any = None,
                 input_shape: Any = None, trainable: bool = True):  # fmt: skip
        super().__init__(pool_size, strides, padding, data_format, name=name, dtype=dtype,
                         input_shape=input_shape, trainable=trainable)  # fmt: skip


@_document(_MAX_DOC, **_fields(2, "(2, 2)"))
class MaxPooling2D(_WindowPooling):
    spatial_dims, mode = 2, "max"

    def __init__(self, pool_size: Any = (2, 2), strides: Any = None, padding: str = "valid",
                 data_format: str | None = None, *, name: str | None = None, dtype: Any = None,
                 input_shape: Any = None, trainable: bool = True):  # fmt: skip
        super().__init__(pool_size, strides, padding, data_format, name=name, dtype=dtype,
                         input_shape=input_shape, trainable=trainable)  # fmt: skip


@_document(_MAX_DOC, **_fields(3, "(2, 2, 2)"))
class MaxPooling3D(_WindowPooling):
    spatial_dims, mode = 3, "max"

    def __init__(self, pool_size: Any = (2, 2, 2), strides: Any = None, padding: str = "valid",
                 data_format: str | None = None, *, name: str | None = None, dtype: Any = None,
                 input_shape: Any = None, trainable: bool = True):  # fmt: skip
        super().__init__(pool_size, strides, padding, data_format, name=name, dtype=dtype,
                         input_shape=input_shape, trainable=trainable)  # fmt: skip


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
