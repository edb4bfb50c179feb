"""Reshaping layers (Keras's ``layers/reshaping`` group): Flatten, Reshape, Permute,
RepeatVector, ZeroPadding1D/2D, Cropping1D/2D, UpSampling1D/2D.

None of them has weights. Every shape argument excludes the batch axis, as in Keras; the torch
equivalents count it:

=================  ==================================  ===========================  ==========
                   torch                               Keras                        dualnet
=================  ==================================  ===========================  ==========
flatten order      ``x.flatten(1)`` on NCHW: C, H, W   layout of the input:         Keras
                                                       H, W, C (channels_last)
reshape            ``x.view(N, *shape)`` (batch        ``Reshape(target_shape)``,   Keras
                   included)                           batch excluded
permute            ``x.permute(0, 3, 1, 2)``:          ``Permute((3, 1, 2))``:      Keras
                   0-based, batch included             1-based, batch excluded
2-D zero padding   ``F.pad(x, (l, r, t, b))``, last    ``((t, b), (l, r))``, first  Keras
                   axis first                          spatial axis first
upsampling         ``nn.Upsample``: channels first,    ``UpSampling2D``: integer    Keras
                   any scale, ``align_corners``        ``size``, half-pixel
                                                       bilinear only
=================  ==================================  ===========================  ==========
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from dualnet.layers import _args, _spatial
from dualnet.layers.base import Layer, format_shape

__all__ = [
    "Cropping1D", "Cropping2D", "Flatten", "Permute", "RepeatVector", "Reshape", "UpSampling1D",
    "UpSampling2D", "ZeroPadding1D", "ZeroPadding2D",
]  # fmt: skip

INTERPOLATIONS = ("nearest", "bilinear")


class Flatten(Layer):
    """Flattens every axis but the batch: ``(batch, d1, ..., dk) -> (batch, d1·…·dk)``.

    The order is the input's layout: after a channels_last convolution the features come in
    H, W, C order; torch's ``x.flatten(1)`` on an NCHW tensor gives C, H, W. The rows of a
    following Dense kernel are therefore permuted between a Keras and a torch model of the
    same network: porting torch weights means reordering them
    (``kernel = W.T.reshape(C, H, W, units).transpose(1, 2, 0, 3).reshape(-1, units)``).

    ``data_format="channels_first"`` does **not** give torch's order: like Keras, it first moves
    the channels last (``(batch, C, H, W) -> (batch, H, W, C)``) and then flattens, so the
    result equals the channels_last Flatten of the same data stored channels last.

    ======================  =======================  ======================  ===============
    input                   torch ``x.flatten(1)``   Keras ``Flatten``       dualnet
    ======================  =======================  ======================  ===============
    channels_last NHWC      H, W, C                  H, W, C                 H, W, C
    channels_first NCHW     C, H, W                  H, W, C (transposes)    H, W, C (Keras)
    ======================  =======================  ======================  ===============

    torch's order from channels_first data is ``Reshape((-1,))``, a plain reshape.

    Args:
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        input ``(batch, ...)``, output ``(batch, product of the other axes)``; a rank-1 input
        ``(batch,)`` gives ``(batch, 1)``, as Keras.
    """

    def __init__(self, data_format: str | None = None, *, name: str | None = None,
                 dtype: Any = None, input_shape: Any = None, trainable: bool = True):  # fmt: skip
        self._data_format = _args.data_format(data_format, type(self).__name__)
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    data_format = property(lambda self: self._data_format)

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        if len(tuple(shape)) < 1:
            raise ValueError(f"{self._where()} expects inputs of rank >= 1 (batch, ...), got a "
                             "scalar.")  # fmt: skip

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        batch, *rest = tuple(input_shape)
        return (batch, None if any(d is None for d in rest) else math.prod(rest))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_format": self.data_format}


class Reshape(Layer):
    """Reshapes each sample to ``target_shape`` (batch axis excluded), in row-major order.

    One entry may be ``-1``: it takes whatever length makes the size match. torch's
    ``x.reshape(N, *target_shape)`` includes the batch; Keras's and dualnet's ``target_shape``
    does not.

    Args:
        target_shape: a tuple of positive ints, at most one of them ``-1``.
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        input ``(batch, ...)`` with as many elements per sample as ``target_shape`` holds;
        output ``(batch, *target_shape)`` (a ``-1`` stays None while the input has unknown
        lengths).
    """

    def __init__(self, target_shape: Sequence[int], *, name: str | None = None,
                 dtype: Any = None, input_shape: Any = None, trainable: bool = True):  # fmt: skip
        self._target_shape = _args.target_shape(target_shape, "target_shape", type(self).__name__)
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    target_shape = property(lambda self: self._target_shape)

    def _known_size(self) -> int:
        return math.prod(d for d in self.target_shape if d != -1)

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        shape = tuple(shape)
        if len(shape) < 1:
            raise ValueError(f"{self._where()} expects inputs of rank >= 1 (batch, ...), got a "
                             "scalar.")  # fmt: skip
        rest = shape[1:]
        if any(d is None for d in rest):
            return  # checked again on data
        size, known = math.prod(rest), self._known_size()
        fits = size % known == 0 if -1 in self.target_shape else size == known
        if not fits:
            need = f"a multiple of {known}" if -1 in self.target_shape else str(known)
            raise ValueError(
                f"{self._where()} expects {need} elements per sample for "
                f"target_shape={self.target_shape}, got shape {format_shape(shape)} ({size} per "
                "sample)."
            )

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        shape = tuple(input_shape)
        rest = shape[1:]
        if -1 not in self.target_shape:
            return (shape[0], *self.target_shape)
        free = None if any(d is None for d in rest) else math.prod(rest) // self._known_size()
        return (shape[0], *(free if d == -1 else d for d in self.target_shape))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "target_shape": self.target_shape}


class Permute(Layer):
    """Permutes the non-batch axes: output axis ``i`` is input axis ``dims[i-1]``.

    ``dims`` is 1-based and excludes the batch, as in Keras: ``Permute((3, 1, 2))`` turns
    ``(N, H, W, C)`` into ``(N, C, H, W)``, which is torch's ``x.permute(0, 3, 1, 2)``
    (0-based, batch included).

    Args:
        dims: a permutation of ``1 … rank − 1``.
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        input of rank ``len(dims) + 1``; output ``(batch, *(shape[d] for d in dims))``.
    """

    def __init__(self, dims: Sequence[int], *, name: str | None = None, dtype: Any = None,
                 input_shape: Any = None, trainable: bool = True):  # fmt: skip
        self._dims = _args.permutation(dims, "dims", type(self).__name__)
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    dims = property(lambda self: self._dims)

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        what = f"batch and the {len(self.dims)} axes that dims={self.dims} permutes"
        self._check_rank(tuple(shape), len(self.dims) + 1, what)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        shape = tuple(input_shape)
        return (shape[0], *(shape[d] for d in self.dims))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dims": self.dims}


class RepeatVector(Layer):
    """Repeats each feature vector ``n`` times: ``(batch, features) -> (batch, n, features)``.

    torch: ``x.unsqueeze(1).expand(-1, n, -1)``. The gradient sums the ``n`` copies.

    Args:
        n: repetitions, a positive int.
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        input ``(batch, features)``, output ``(batch, n, features)``.
    """

    def __init__(self, n: int, *, name: str | None = None, dtype: Any = None,
                 input_shape: Any = None, trainable: bool = True):  # fmt: skip
        self._n = _args.positive_int(n, "n", type(self).__name__)
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    n = property(lambda self: self._n)

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        self._check_rank(tuple(shape), 2, "batch, features")

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        batch, features = tuple(input_shape)
        return (batch, self.n, features)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n": self.n}


class ZeroPadding1D(Layer):
    """Pads the steps axis with zeros: ``left`` zeros before and ``right`` after.

    torch: ``F.pad(x, (left, right))`` on ``(N, C, L)``; on channels_last ``(N, L, C)`` the
    channel axis comes first in ``F.pad``'s list: ``F.pad(x, (0, 0, left, right))``.

    Args:
        padding: an int ``p`` (``p`` on both sides) or ``(left, right)``, ints >= 0.
        data_format: ``"channels_last"`` (default) or ``"channels_first"`` (Keras 3 accepts it
            here too).
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        input ``(batch, steps, channels)`` (channels_last), output
        ``(batch, left + steps + right, channels)``.
    """

    def __init__(self, padding: Any = 1, data_format: str | None = None, *,
                 name: str | None = None, dtype: Any = None, input_shape: Any = None,
                 trainable: bool = True):  # fmt: skip
        where = type(self).__name__
        self._padding = _args.int_tuple(padding, 2, "padding", where, minimum=0)
        self._data_format = _args.data_format(data_format, where)
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    padding = property(lambda self: self._padding)
    data_format = property(lambda self: self._data_format)

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        self._check_rank(tuple(shape), 3, _spatial.layout(1, self.data_format))

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return _spatial.map_spatial(input_shape, self.data_format,
                                    lambda n, _: n + sum(self.padding))  # fmt: skip

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "padding": self.padding, "data_format": self.data_format}


class ZeroPadding2D(Layer):
    """Pads rows and columns with zeros: ``((top, bottom), (left, right))``.

    ==================  ================================  ============================  =======
                        torch                             Keras                         dualnet
    ==================  ================================  ============================  =======
    argument order      ``F.pad(x, (l, r, t, b))``: last  ``((t, b), (l, r))``: rows    Keras
                        axis first                        first
    channels_last       ``F.pad(x, (0, 0, l, r, t, b))``  ``data_format`` (default)     Keras
    ==================  ================================  ============================  =======

    Args:
        padding: an int ``p`` (every side), ``(h, w)`` (``h`` above and below, ``w`` left and
            right) or ``((top, bottom), (left, right))``; ints >= 0.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        input ``(batch, height, width, channels)`` (channels_last), output
        ``(batch, top + height + bottom, left + width + right, channels)``.
    """

    def __init__(self, padding: Any = (1, 1), data_format: str | None = None, *,
                 name: str | None = None, dtype: Any = None, input_shape: Any = None,
                 trainable: bool = True):  # fmt: skip
        where = type(self).__name__
        self._padding = _args.int_pairs(padding, 2, "padding", where)
        self._data_format = _args.data_format(data_format, where)
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    padding = property(lambda self: self._padding)
    data_format = property(lambda self: self._data_format)

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        self._check_rank(tuple(shape), 4, _spatial.layout(2, self.data_format))

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return _spatial.map_spatial(input_shape, self.data_format,
                                    lambda n, i: n + sum(self.padding[i]))  # fmt: skip

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "padding": self.padding, "data_format": self.data_format}


class Cropping1D(Layer):
    """Removes ``start`` steps at the beginning and ``end`` steps at the end of the steps axis.

    torch has no layer: ``x[:, start:L - end]`` (or ``F.pad`` with negative amounts).

    Args:
        cropping: an int ``c`` (both ends) or ``(start, end)``, ints >= 0 (default ``(1, 1)``).
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        input ``(batch, steps, channels)`` with ``steps > start + end``, output
        ``(batch, steps − start − end, channels)``.
    """

    def __init__(self, cropping: Any = (1, 1), *, name: str | None = None, dtype: Any = None,
                 input_shape: Any = None, trainable: bool = True):  # fmt: skip
        self._cropping = _args.int_tuple(cropping, 2, "cropping", type(self).__name__,
                                         minimum=0)  # fmt: skip
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    cropping = property(lambda self: self._cropping)

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        shape = tuple(shape)
        self._check_rank(shape, 3, _spatial.layout(1, "channels_last"))
        if shape[1] is not None and sum(self.cropping) >= shape[1]:
            raise ValueError(
                f"{self._where()} expects more than {sum(self.cropping)} steps for "
                f"cropping={self.cropping}, got shape {format_shape(shape)}."
            )

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return _spatial.map_spatial(input_shape, "channels_last",
                                    lambda n, _: n - sum(self.cropping))  # fmt: skip

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "cropping": self.cropping}


class Cropping2D(Layer):
    """Removes ``((top, bottom), (left, right))`` rows and columns at the borders.

    torch has no layer: ``x[:, :, top:H - bottom, left:W - right]`` on NCHW.

    Args:
        cropping: an int ``c`` (every side), ``(h, w)`` (symmetric per axis) or
            ``((top, bottom), (left, right))``; ints >= 0 (default no cropping, as Keras).
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        input ``(batch, height, width, channels)`` (channels_last) with ``height > top +
        bottom`` and ``width > left + right``; output ``(batch, height − top − bottom, width −
        left − right, channels)``.
    """

    def __init__(self, cropping: Any = ((0, 0), (0, 0)), data_format: str | None = None, *,
                 name: str | None = None, dtype: Any = None, input_shape: Any = None,
                 trainable: bool = True):  # fmt: skip
        where = type(self).__name__
        self._cropping = _args.int_pairs(cropping, 2, "cropping", where)
        self._data_format = _args.data_format(data_format, where)
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    cropping = property(lambda self: self._cropping)
    data_format = property(lambda self: self._data_format)

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        shape = tuple(shape)
        self._check_rank(shape, 4, _spatial.layout(2, self.data_format))
        sizes = [shape[a] for a in _spatial.spatial_axes(4, self.data_format)]
        if any(n is not None and sum(pair) >= n
               for n, pair in zip(sizes, self.cropping, strict=True)):  # fmt: skip
            raise ValueError(
                f"{self._where()} expects height > {sum(self.cropping[0])} and width > "
                f"{sum(self.cropping[1])} for cropping={self.cropping}, got shape "
                f"{format_shape(shape)} ({self.data_format})."
            )

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return _spatial.map_spatial(input_shape, self.data_format,
                                    lambda n, i: n - sum(self.cropping[i]))  # fmt: skip

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "cropping": self.cropping,
                "data_format": self.data_format}  # fmt: skip


class UpSampling1D(Layer):
    """Repeats each step ``size`` times: ``y[b, t, c] = x[b, t // size, c]``.

    torch: ``x.repeat_interleave(size, dim=1)`` (or ``nn.Upsample`` on ``(N, C, L)``).

    Args:
        size: the repetition factor, a positive int (default 2).
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        input ``(batch, steps, channels)``, output ``(batch, size·steps, channels)``.
    """

    def __init__(self, size: int = 2, *, name: str | None = None, dtype: Any = None,
                 input_shape: Any = None, trainable: bool = True):  # fmt: skip
        self._size = _args.positive_int(size, "size", type(self).__name__)
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    size = property(lambda self: self._size)

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        self._check_rank(tuple(shape), 3, _spatial.layout(1, "channels_last"))

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return _spatial.map_spatial(input_shape, "channels_last",
                                    lambda n, _: n * self.size)  # fmt: skip

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "size": self.size}


class UpSampling2D(Layer):
    """Enlarges rows and columns by integer factors ``size = (sh, sw)``.

    * ``"nearest"``: each pixel repeated, ``y[i, j] = x[i // sh, j // sw]``;
    * ``"bilinear"``: half-pixel centres. Output row ``i`` samples input coordinate
      ``c = (i + ½) / sh − ½``, clamped to ``[0, rows − 1]``, and interpolates linearly between
      rows ``floor(c)`` and ``floor(c) + 1`` (the same along columns): the edges repeat the
      border pixels, and for ``sh = 2`` the weights are ¾ and ¼.

    ===============  =================================  ===========================  ==========
                     torch ``F.interpolate``            Keras ``UpSampling2D``       dualnet
    ===============  =================================  ===========================  ==========
    bilinear grid    ``align_corners=False``:           half-pixel centres only      Keras
                     half-pixel; ``True`` maps corner   (no align_corners=True)      (= torch
                     to corner (another result)                                      ``False``)
    nearest          ``"nearest"``: ``floor(i·scale)``  pixel repeat                 repeat
                     (equal for integer factors)
    factors          any float ``scale_factor``         positive ints                ints
    float64          computed in float64                TF's resize kernel computes  float64
                                                        in float32                   exact
    ===============  =================================  ===========================  ==========

    float16/bfloat16 inputs are interpolated in float32 and rounded once, on both backends.
    Keras's other interpolations (bicubic: a = −0.5 in TensorFlow, −0.75 in torch; lanczos;
    area) are not offered.

    Args:
        size: an int or ``(height factor, width factor)``, positive ints (default ``(2, 2)``).
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        interpolation: ``"nearest"`` (default) or ``"bilinear"``.
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        input ``(batch, height, width, channels)`` (channels_last), output
        ``(batch, sh·height, sw·width, channels)``.
    """

    def __init__(self, size: Any = (2, 2), data_format: str | None = None,
                 interpolation: str = "nearest", *, name: str | None = None, dtype: Any = None,
                 input_shape: Any = None, trainable: bool = True):  # fmt: skip
        where = type(self).__name__
        self._size = _args.int_tuple(size, 2, "size", where)
        self._data_format = _args.data_format(data_format, where)
        self._interpolation = _args.choice(interpolation, INTERPOLATIONS, "interpolation", where)
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    size = property(lambda self: self._size)
    data_format = property(lambda self: self._data_format)
    interpolation = property(lambda self: self._interpolation)

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        self._check_rank(tuple(shape), 4, _spatial.layout(2, self.data_format))

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return _spatial.map_spatial(input_shape, self.data_format,
                                    lambda n, i: n * self.size[i])  # fmt: skip

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "size": self.size, "data_format": self.data_format,
                "interpolation": self.interpolation}  # fmt: skip
