"""Normalization layers (Keras's ``layers/normalization`` group): BatchNormalization,
LayerNormalization, GroupNormalization, RMSNormalization, UnitNormalization.

Where torch and Keras differ
----------------------------
Each row gives the same shapes and no error, only other numbers. dualnet takes Keras's rule and
keeps torch's one argument away (last column).

==================  ====================  ====================  ================================
what                torch                 Keras 3               dualnet (torch's convention)
==================  ====================  ====================  ================================
BN momentum         0.1, weight of the    0.99, weight of the   0.99 (``momentum=0.9``)
                    batch statistic       old value
BN epsilon          1e-5                  1e-3                  1e-3 (``epsilon=1e-5``)
BN moving variance  unbiased batch        biased batch          biased
update              variance, × n/(n-1)   variance              (``moving_variance_estimator=
                                                                "unbiased"``); all three:
                                                                ``BatchNormalization
                                                                .torch_defaults()``
BN channel axis     dim 1                 ``axis=-1``           -1 (``axis=1``)
BN bare call        batch statistics (a   moving statistics     moving statistics
                    module starts in      (inference)           (``training=True``)
                    training mode)
BN frozen           ``requires_grad=      ``trainable=False``:  Keras's
                    False`` still uses    inference, no
                    and updates batch     updates
                    statistics
BN one value per    error in training     variance 0            Keras's (an error with the
channel                                                         unbiased estimator)
BN weights          weight, bias,         gamma, beta,          Keras's (no batch counter)
                    running_mean/var,     moving_mean/variance
                    num_batches_tracked
LN, GN epsilon      1e-5                  1e-3                  1e-3 (``epsilon=1e-5``)
LN on images        ``LayerNorm([C, H,    ``axis=-1``: per      per pixel (``axis=[1, 2, 3]``)
                    W])``: C, H and W     pixel over C
LN ``rms_scaling``  —                     deprecated, scales    not provided (RMSNormalization)
                                          by the variance
LN mixed-sign axes  —                     ``[-1, 1]`` sorted    resolved first: γ is ``(H, C)``
                                          as given, γ
                                          reshaped wrongly
GN channels         dim 1                 ``axis=-1``           -1 (``axis=1``)
GN groups           required              32; -1 = per channel  Keras's
RMS epsilon         machine epsilon of    1e-6                  1e-6 (``epsilon=float(np.finfo(
                    the dtype                                   "float32").eps)``)
RMS weight          ``weight``            ``scale``             ``scale``
RMS axes            trailing only         non-trailing axes     any axes, scale broadcast
                                          fail (the scale is
                                          not broadcast)
UnitNormalization   ``x / max(‖x‖,        ``x·min(1/‖x‖,        Keras's formula (the same
                    1e-12)``              1e12)``               function; 0 for a zero vector)
half precision      float32 accumulation  float32 in BN, LN,    float32 in every layer, rounded
                    in the CPU kernels    GN, RMS; UnitNorm in  once
                                          the input dtype
==================  ====================  ====================  ================================

Not provided: Keras's regularizers, constraints, ``renorm``, ``synchronized`` and masks;
torch's ``momentum=None`` (cumulative average) and ``track_running_stats=False``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dualnet import initializers as _initializers
from dualnet.errors import bad_type, bad_value
from dualnet.layers import _args
from dualnet.layers.base import Layer, WeightSpec, check_dtype, check_name, check_shape

__all__ = [
    "BatchNormalization", "GroupNormalization", "LayerNormalization", "RMSNormalization",
    "UnitNormalization",
]  # fmt: skip

# BatchNormalization's moving-variance update: Keras's biased batch variance, or torch's
# unbiased one (Bessel's correction n/(n-1)).
VARIANCE_ESTIMATORS = ("biased", "unbiased")
# Keras's UnitNormalization: x·min(rsqrt(Σx²), 1/UNIT_EPSILON), i.e. the norm floored at 1e-12.
UNIT_EPSILON = 1e-12


def _check_common(where: str, name: Any, dtype: Any, input_shape: Any) -> None:
    """The base class's arguments, checked before any initializer draws a seed."""
    check_dtype(dtype, where=where)
    if name is not None:
        check_name(name, where=where)
    if input_shape is not None:
        check_shape(input_shape, argument="input_shape", where=where)


def _axis_argument(value: Any, where: str, *, allow_list: bool) -> int | list[int]:
    """An int, or (where allowed) a non-empty list/tuple of distinct ints, kept as given (a
    list) for the config; resolved against the input rank when the layer is built."""
    if _args.is_int(value):
        return int(value)
    if not allow_list:
        raise bad_type("axis", value, "an int", where=where)
    return list(_args.axis_list(value, "axis", where))


class _Normalization(Layer):
    """Shape handling shared by the group: the axes named by ``axis`` (the normalised axes, or
    BatchNormalization's and GroupNormalization's channel axis), resolved against the input
    rank (negative axes counted from the end, never the batch axis) and sorted."""

    # The weights are shaped by the sizes of these axes, which must then be known.
    _sized_axes = True

    def _axis_tuple(self) -> tuple[int, ...]:
        axis = self._axis
        return (axis,) if isinstance(axis, int) else tuple(axis)

    def resolve_axes(self, rank: int) -> tuple[int, ...]:
        """The axes for inputs of ``rank`` (batch included): non-negative, sorted."""
        return tuple(sorted(_args.resolve_axes(self._axis_tuple(), rank, "axis", self._where())))

    @property
    def axes(self) -> tuple[int, ...]:
        """The resolved axes of the built layer (empty before it is built)."""
        return () if self._build_shape is None else self.resolve_axes(len(self._build_shape))

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(
                f"{self._where()} expects inputs of rank >= 2 (batch first), got shape {shape}."
            )
        axes = self.resolve_axes(len(shape))
        if self._sized_axes:
            unknown = [a for a in axes if shape[a] is None]
            if unknown:
                raise ValueError(
                    f"{self._where()} needs the size of axis {unknown[0]} (axis={self._axis!r}) "
                    f"to be known, got shape {shape}."
                )
        if self.built:
            built = self._build_shape
            if len(shape) != len(built):
                raise ValueError(
                    f"{self._where()} was built for inputs of rank {len(built)} (shape "
                    f"{tuple(built)}); got shape {shape}."
                )
            self._check_same_as_built(shape, axes)

    def _weight_shape(self) -> tuple[int, ...]:
        return tuple(self._build_shape[a] for a in self.axes)


class BatchNormalization(_Normalization):
    """Normalises each channel with batch statistics in training and moving averages in
    inference: ``y = γ·(x - μ)/√(σ² + ε) + β``.

    * **training** (``training=True``, ``fit``, ``train_step``): μ and σ² are the mean and the
      *biased* variance of the batch over every axis but ``axis`` (n values per channel), and
      the moving statistics are updated, outside the gradient::

          moving_mean     = momentum·moving_mean     + (1 - momentum)·μ
          moving_variance = momentum·moving_variance + (1 - momentum)·σ²_update

      with ``σ²_update = σ²`` (Keras) or ``σ²·n/(n-1)`` with
      ``moving_variance_estimator="unbiased"`` (torch; needs n > 1).
    * **inference** (a bare call, ``predict``, ``evaluate``, or ``trainable=False``): μ and σ²
      are the moving statistics, nothing is updated.

    A layer whose ``trainable`` is False runs in inference mode whatever ``training`` says and
    never updates (Keras's rule, Note [Training flag] in :mod:`dualnet.layers.base`). Half
    precision inputs are normalised in float32 and the result rounded once (both frameworks do
    so); the moving statistics are then updated in float32 and rounded once when stored.

    torch | Keras | dualnet (see the module docstring for the full table):

    ==========================  =======================  ===================  ==================
    what                        torch ``BatchNorm2d``    Keras                dualnet
    ==========================  =======================  ===================  ==================
    momentum                    0.1 (weight of batch)    0.99 (weight of old) 0.99 (Keras sense)
    epsilon                     1e-5                     1e-3                 1e-3
    moving variance update      unbiased                 biased               biased
    axis                        1                        -1                   -1
    ==========================  =======================  ===================  ==================

    ``BatchNormalization.torch_defaults()`` is the layer with torch's numbers (momentum 0.9 in
    Keras's sense = torch's 0.1, epsilon 1e-5, unbiased moving variance); the layout is still
    chosen by ``axis`` (``axis=1`` for channels-first data, as ``BatchNorm2d``).

    Args:
        axis: the channel axis (an int; not the batch axis), e.g. ``1`` after a channels-first
            convolution.
        momentum: weight of the old value in the moving averages, in ``[0, 1]``.
        epsilon: added to the variance, > 0.
        center: add the learned offset β.
        scale: multiply by the learned γ.
        beta_initializer, gamma_initializer, moving_mean_initializer,
            moving_variance_initializer: initializers (Keras's defaults zeros, ones, zeros,
            ones).
        moving_variance_estimator: ``"biased"`` (Keras) or ``"unbiased"`` (torch): which batch
            variance updates ``moving_variance`` (the batch itself is always normalised with
            the biased one, in both frameworks).
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        any input of rank >= 2 with a known size C along ``axis``; the output has the input's
        shape. Weights, in Keras's order: ``gamma (C,)`` (if ``scale``), ``beta (C,)`` (if
        ``center``), ``moving_mean (C,)``, ``moving_variance (C,)`` (the last two
        non-trainable).
    """

    frozen_means_inference = True

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        moving_mean_initializer: Any = "zeros",
        moving_variance_initializer: Any = "ones",
        *,
        moving_variance_estimator: str = "biased",
        name: str | None = None,
        dtype: Any = None,
        input_shape: Any = None,
        trainable: bool = True,
    ):
        where = "BatchNormalization"
        self._axis = _axis_argument(axis, where, allow_list=False)
        self._momentum = _args.real(momentum, "momentum", where, low=0.0, high=1.0)
        self._epsilon = _args.real(epsilon, "epsilon", where, low=0.0, low_open=True)
        self._center = _args.boolean(center, "center", where)
        self._scale = _args.boolean(scale, "scale", where)
        self._moving_variance_estimator = _args.choice(
            moving_variance_estimator, VARIANCE_ESTIMATORS, "moving_variance_estimator", where
        )
        _check_common(where, name, dtype, input_shape)
        # Initializers last: a named random initializer draws its seed when resolved.
        self._beta_initializer = _args.initializer(beta_initializer, "beta_initializer", where)
        self._gamma_initializer = _args.initializer(gamma_initializer, "gamma_initializer", where)
        self._moving_mean_initializer = _args.initializer(
            moving_mean_initializer, "moving_mean_initializer", where
        )
        self._moving_variance_initializer = _args.initializer(
            moving_variance_initializer, "moving_variance_initializer", where
        )
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    @classmethod
    def torch_defaults(cls, axis: int = -1, **kwargs: Any) -> BatchNormalization:
        """The layer with torch ``nn.BatchNormNd``'s numbers: ``momentum=0.9`` (torch's 0.1:
        the batch statistic's weight), ``epsilon=1e-5`` and the unbiased moving-variance
        update; any argument may still be overridden (``torch_defaults(axis=1, center=False)``).
        """
        options = {"momentum": 0.9, "epsilon": 1e-5, "moving_variance_estimator": "unbiased"}
        return cls(axis=axis, **{**options, **kwargs})

    axis = property(lambda self: self._axis)
    momentum = property(lambda self: self._momentum)
    epsilon = property(lambda self: self._epsilon)
    center = property(lambda self: self._center)
    scale = property(lambda self: self._scale)
    moving_variance_estimator = property(lambda self: self._moving_variance_estimator)
    beta_initializer = property(lambda self: self._beta_initializer)
    gamma_initializer = property(lambda self: self._gamma_initializer)
    moving_mean_initializer = property(lambda self: self._moving_mean_initializer)
    moving_variance_initializer = property(lambda self: self._moving_variance_initializer)

    @property
    def channel_axis(self) -> int | None:
        """The resolved (non-negative) channel axis once built, else None."""
        axes = self.axes
        return axes[0] if axes else None

    def reduction_axes(self) -> tuple[int, ...]:
        """The axes the batch statistics are taken over (all but the channel axis)."""
        return tuple(a for a in range(len(self._build_shape)) if a != self.channel_axis)

    def check_batch_statistics(self, count: int) -> None:
        """Raise if a training call with ``count`` values per channel cannot update the moving
        variance (the unbiased estimator divides by ``count - 1``); the backends call this
        before anything is computed or updated."""
        if self._moving_variance_estimator == "unbiased" and count < 2:
            raise ValueError(
                f"{self._where()}: moving_variance_estimator='unbiased' divides by n - 1, so a "
                f"training call needs more than one value per channel; got n={count}."
            )

    def declare_weights(self) -> list[WeightSpec]:
        shape = self._weight_shape()
        specs = []
        if self.scale:
            specs.append(WeightSpec(name="gamma", shape=shape, initializer=self.gamma_initializer))
        if self.center:
            specs.append(WeightSpec(name="beta", shape=shape, initializer=self.beta_initializer))
        return [
            *specs,
            WeightSpec(name="moving_mean", shape=shape,
                       initializer=self.moving_mean_initializer, trainable=False),
            WeightSpec(name="moving_variance", shape=shape,
                       initializer=self.moving_variance_initializer, trainable=False),
        ]  # fmt: skip

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": _initializers.serialize(self.beta_initializer),
            "gamma_initializer": _initializers.serialize(self.gamma_initializer),
            "moving_mean_initializer": _initializers.serialize(self.moving_mean_initializer),
            "moving_variance_initializer": _initializers.serialize(
                self.moving_variance_initializer
            ),
            "moving_variance_estimator": self.moving_variance_estimator,
        }


class LayerNormalization(_Normalization):
    """Normalises each sample over ``axis``: ``y = γ·(x - μ)/√(σ² + ε) + β`` with μ and the
    biased σ² taken over the axes in ``axis`` (K values), separately for every position of the
    other axes. The same in training and inference.

    =============  ==========================================  ======================  =========
    what           torch ``nn.LayerNorm``                      Keras                   dualnet
    =============  ==========================================  ======================  =========
    epsilon        1e-5                                        1e-3                    1e-3
    axes           trailing ``normalized_shape``               ``axis`` (default -1)   Keras's
    on images      ``LayerNorm([C, H, W])``: over C, H and W   per pixel, over C       per pixel
    =============  ==========================================  ======================  =========

    torch's image convention is ``axis=[1, 2, 3]`` on channels-last data, with γ and β of shape
    ``(H, W, C)`` (torch's ``(C, H, W)`` transposed); ``epsilon=1e-5`` gives torch's epsilon.
    Keras's ``rms_scaling`` (deprecated: it scales by the variance) is not provided; see
    :class:`RMSNormalization`. Axes of mixed sign are resolved before they are sorted (Keras
    sorts ``[-1, 1]`` as given and then reshapes γ in the wrong order).

    Args:
        axis: an int or a list of ints, the axes to normalise over (not the batch axis).
        epsilon: added to the variance, > 0.
        center: add the learned offset β.
        scale: multiply by the learned γ.
        beta_initializer, gamma_initializer: initializers (Keras's defaults zeros, ones).
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        any input of rank >= 2 whose ``axis`` sizes are known; the output has the input's
        shape. ``gamma`` and ``beta`` have the sizes of the normalised axes in increasing axis
        order (``(C,)`` for ``axis=-1``, ``(H, W)`` for ``axis=[1, 2]``).
    """

    def __init__(
        self,
        axis: int | Sequence[int] = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        *,
        name: str | None = None,
        dtype: Any = None,
        input_shape: Any = None,
        trainable: bool = True,
    ):
        where = "LayerNormalization"
        self._axis = _axis_argument(axis, where, allow_list=True)
        self._epsilon = _args.real(epsilon, "epsilon", where, low=0.0, low_open=True)
        self._center = _args.boolean(center, "center", where)
        self._scale = _args.boolean(scale, "scale", where)
        _check_common(where, name, dtype, input_shape)
        self._beta_initializer = _args.initializer(beta_initializer, "beta_initializer", where)
        self._gamma_initializer = _args.initializer(gamma_initializer, "gamma_initializer", where)
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    axis = property(lambda self: self._axis)
    epsilon = property(lambda self: self._epsilon)
    center = property(lambda self: self._center)
    scale = property(lambda self: self._scale)
    beta_initializer = property(lambda self: self._beta_initializer)
    gamma_initializer = property(lambda self: self._gamma_initializer)

    def declare_weights(self) -> list[WeightSpec]:
        shape = self._weight_shape()
        specs = []
        if self.scale:
            specs.append(WeightSpec(name="gamma", shape=shape, initializer=self.gamma_initializer))
        if self.center:
            specs.append(WeightSpec(name="beta", shape=shape, initializer=self.beta_initializer))
        return specs

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": _initializers.serialize(self.beta_initializer),
            "gamma_initializer": _initializers.serialize(self.gamma_initializer),
        }


class GroupNormalization(_Normalization):
    """Splits the C channels into ``groups`` blocks of C/G consecutive channels and normalises
    each sample over every (non-batch) position of each block: ``y = γ·(x - μ)/√(σ² + ε) + β``
    with μ, the biased σ² taken over K = (C/G)·(other non-batch sizes) values; γ and β are per
    channel. The same in training and inference.

    ========  ============================  ===========================  ==========
    what      torch ``nn.GroupNorm``        Keras                        dualnet
    ========  ============================  ===========================  ==========
    epsilon   1e-5                          1e-3                         1e-3
    channels  dim 1                         ``axis`` (default -1)        Keras's
    groups    ``num_groups`` (required)     32 (``-1``: one per channel) Keras's
    ========  ============================  ===========================  ==========

    Both frameworks put channel ``c`` in group ``c // (C/G)``. ``epsilon=1e-5`` gives torch's
    epsilon; ``axis=1`` torch's channels-first layout.

    Args:
        groups: number of groups, a positive divisor of C, or -1 for one group per channel
            (instance normalization).
        axis: the channel axis (an int; not the batch axis).
        epsilon: added to the variance, > 0.
        center, scale, beta_initializer, gamma_initializer: as :class:`LayerNormalization`.
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        any input of rank >= 2 with a known C along ``axis``, divisible by ``groups``; the
        output has the input's shape; ``gamma``, ``beta``: ``(C,)``.
    """

    def __init__(
        self,
        groups: int = 32,
        axis: int = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        *,
        name: str | None = None,
        dtype: Any = None,
        input_shape: Any = None,
        trainable: bool = True,
    ):
        where = "GroupNormalization"
        expected = "a positive int, or -1 for one group per channel"
        if not _args.is_int(groups):
            raise bad_type("groups", groups, expected, where=where)
        if groups <= 0 and groups != -1:
            raise bad_value("groups", groups, expected, where=where)
        self._groups = int(groups)
        self._axis = _axis_argument(axis, where, allow_list=False)
        self._epsilon = _args.real(epsilon, "epsilon", where, low=0.0, low_open=True)
        self._center = _args.boolean(center, "center", where)
        self._scale = _args.boolean(scale, "scale", where)
        _check_common(where, name, dtype, input_shape)
        self._beta_initializer = _args.initializer(beta_initializer, "beta_initializer", where)
        self._gamma_initializer = _args.initializer(gamma_initializer, "gamma_initializer", where)
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    groups = property(lambda self: self._groups)
    axis = property(lambda self: self._axis)
    epsilon = property(lambda self: self._epsilon)
    center = property(lambda self: self._center)
    scale = property(lambda self: self._scale)
    beta_initializer = property(lambda self: self._beta_initializer)
    gamma_initializer = property(lambda self: self._gamma_initializer)

    @property
    def channel_axis(self) -> int | None:
        """The resolved (non-negative) channel axis once built, else None."""
        axes = self.axes
        return axes[0] if axes else None

    def resolved_groups(self, channels: int) -> int:
        """The number of groups for ``channels`` channels (``-1``: one per channel)."""
        return channels if self._groups == -1 else self._groups

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        super().check_input_shape(shape)
        channels = tuple(shape)[self.resolve_axes(len(tuple(shape)))[0]]
        groups = self.resolved_groups(channels)
        if channels % groups:
            raise ValueError(
                f"{self._where()}: groups={self._groups} must divide the number of channels, "
                f"got {channels} channels (axis={self._axis}, input shape {tuple(shape)})."
            )

    def declare_weights(self) -> list[WeightSpec]:
        shape = self._weight_shape()
        specs = []
        if self.scale:
            specs.append(WeightSpec(name="gamma", shape=shape, initializer=self.gamma_initializer))
        if self.center:
            specs.append(WeightSpec(name="beta", shape=shape, initializer=self.beta_initializer))
        return specs

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "groups": self.groups,
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": _initializers.serialize(self.beta_initializer),
            "gamma_initializer": _initializers.serialize(self.gamma_initializer),
        }


class RMSNormalization(_Normalization):
    """Root-mean-square normalization: ``y = scale · x / √(mean(x²) + ε)``, the mean taken over
    the axes in ``axis`` (K values) for every position of the other axes; no centring, no
    offset. The same in training and inference.

    ========================  =====================================  ==============  =========
    what                      torch ``nn.RMSNorm``                   Keras           dualnet
    ========================  =====================================  ==============  =========
    epsilon                   ``eps=None``: ``finfo(x.dtype).eps``   1e-6            1e-6
    weight                    ``weight``                             ``scale``       ``scale``
    non-trailing axes         not possible                           shape error     supported
    ========================  =====================================  ==============  =========

    torch's default on float32 is ``epsilon=float(np.finfo("float32").eps)`` (1.19e-7; 2.2e-16 on
    float64). The ``scale`` is shaped over the normalised axes and broadcast over them (Keras's
    own layer multiplies by it unbroadcast, which fails for ``axis=[1, 2]`` on images).

    Args:
        axis: an int or a list of ints, the axes to normalise over (not the batch axis).
        epsilon: added to the mean square, > 0.
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        any input of rank >= 2 whose ``axis`` sizes are known; the output has the input's
        shape. ``scale`` (initialised to ones, as Keras) has the sizes of the normalised axes in
        increasing axis order.
    """

    def __init__(
        self,
        axis: int | Sequence[int] = -1,
        epsilon: float = 1e-6,
        *,
        name: str | None = None,
        dtype: Any = None,
        input_shape: Any = None,
        trainable: bool = True,
    ):
        where = "RMSNormalization"
        self._axis = _axis_argument(axis, where, allow_list=True)
        self._epsilon = _args.real(epsilon, "epsilon", where, low=0.0, low_open=True)
        _check_common(where, name, dtype, input_shape)
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    axis = property(lambda self: self._axis)
    epsilon = property(lambda self: self._epsilon)

    def declare_weights(self) -> list[WeightSpec]:
        return [WeightSpec(name="scale", shape=self._weight_shape(),
                           initializer=_initializers.Ones())]  # fmt: skip

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}


class UnitNormalization(_Normalization):
    """Scales each sample to unit L2 norm over ``axis``: ``y = x · min(1/‖x‖, 1e12)`` (Keras's
    formula), the norm taken over the axes in ``axis``. No weights.

    It is torch's ``F.normalize(x, dim=axis, eps=1e-12)`` = ``x / max(‖x‖, 1e-12)``: the same
    function. A vector of norm below 1e-12 is multiplied by 1e12; a zero vector gives zeros, and
    the gradient there is the derivative of that branch, ``1e12·g`` (finite on both backends).
    Half precision inputs are normalised in float32 and rounded once (Keras sums the squares in
    float16, which overflows for norms above ~256).

    Args:
        axis: an int or a list of ints (not the batch axis).
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        any input of rank >= 2; the output has the input's shape.
    """

    _sized_axes = False

    def __init__(
        self,
        axis: int | Sequence[int] = -1,
        *,
        name: str | None = None,
        dtype: Any = None,
        input_shape: Any = None,
        trainable: bool = True,
    ):
        where = "UnitNormalization"
        self._axis = _axis_argument(axis, where, allow_list=True)
        _check_common(where, name, dtype, input_shape)
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    axis = property(lambda self: self._axis)
    epsilon = UNIT_EPSILON

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}
