"""BatchNormalization (see the package docstring for the torch | Keras | dualnet table)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

from dualnet.layers import _args
from dualnet.layers.base import WeightSpec
from dualnet.layers.normalization.base_normalization import ChannelNormalization

# The moving-variance update: Keras's biased batch variance, or torch's unbiased one (Bessel's
# correction n/(n-1)).
VARIANCE_ESTIMATORS = ("biased", "unbiased")


class BatchNormalization(ChannelNormalization):
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
    * **masks** (Note [Masks] in :mod:`dualnet.layers.base`): in training, μ and σ² are taken
      over the valid entries only (n = their count per channel; an all-masked batch gives
      μ = σ² = 0), as Keras does (Keras divides by n + 1e-7); the mask passes on unchanged.

    A layer whose ``trainable`` is False runs in inference mode whatever ``training`` says and
    never updates (Keras's rule, Note [Training flag] in :mod:`dualnet.layers.base`). Half
    precision inputs are normalised in float32 and the result rounded once (both frameworks do
    so); the moving statistics are then updated in float32 and rounded once when stored.

    torch | Keras | dualnet (see the package docstring for the full table):

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

    # Keras's flag: an incoming mask passes through (and restricts the batch moments).
    supports_masking: ClassVar[bool] = True

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
        where = type(self).__name__
        self._configure_axis(axis)
        self._momentum = _args.real(momentum, "momentum", where, low=0.0, high=1.0)
        self._configure_affine(epsilon, center, scale)
        self._moving_variance_estimator = _args.choice(
            moving_variance_estimator, VARIANCE_ESTIMATORS, "moving_variance_estimator", where
        )
        self._finish(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable,
                     beta_initializer=beta_initializer, gamma_initializer=gamma_initializer,
                     moving_mean_initializer=moving_mean_initializer,
                     moving_variance_initializer=moving_variance_initializer)  # fmt: skip

    @classmethod
    def torch_defaults(cls, axis: int = -1, **kwargs: Any) -> BatchNormalization:
        """The layer with torch ``nn.BatchNormNd``'s numbers: ``momentum=0.9`` (torch's 0.1:
        the batch statistic's weight), ``epsilon=1e-5`` and the unbiased moving-variance
        update; any argument may still be overridden (``torch_defaults(axis=1, center=False)``).
        """
        options = {"momentum": 0.9, "epsilon": 1e-5, "moving_variance_estimator": "unbiased"}
        return cls(axis=axis, **{**options, **kwargs})

    momentum = property(lambda self: self._momentum)
    moving_variance_estimator = property(lambda self: self._moving_variance_estimator)
    moving_mean_initializer = property(lambda self: self._initializers["moving_mean_initializer"])
    moving_variance_initializer = property(
        lambda self: self._initializers["moving_variance_initializer"]
    )

    def reduction_axes(self, rank: int | None = None) -> tuple[int, ...]:
        """The axes the batch statistics are taken over for inputs of ``rank`` (the built
        layer's by default): all but the channel axis."""
        rank = len(self._build_shape) if rank is None else rank
        (channel,) = self.resolve_axes(rank)
        return tuple(a for a in range(rank) if a != channel)

    def check_batch_statistics(self, count: int) -> None:
        """Raise if a training call with ``count`` values per channel cannot update the moving
        variance (the unbiased estimator divides by ``count - 1``). Eager calls are refused by
        :meth:`check_call` before the layer is bound to a backend; the backends call this too,
        for calls through a model, before anything is computed or updated."""
        if self._moving_variance_estimator == "unbiased" and count < 2:
            raise ValueError(
                f"{self._where()}: moving_variance_estimator='unbiased' divides by n - 1, so a "
                f"training call needs more than one value per channel; got n={count}."
            )

    def check_call(self, shape: Sequence[int | None], training: bool) -> None:
        # A frozen layer runs in inference mode whatever `training` says (frozen_means_inference).
        if not (training and self.trainable):
            return
        sizes = [shape[a] for a in self.reduction_axes(len(shape))]
        if all(d is not None for d in sizes):
            self.check_batch_statistics(math.prod(sizes))

    def declare_weights(self) -> list[WeightSpec]:
        shape = self._weight_shape()
        return [
            *super().declare_weights(),
            WeightSpec(name="moving_mean", shape=shape,
                       initializer=self.moving_mean_initializer, trainable=False),
            WeightSpec(name="moving_variance", shape=shape,
                       initializer=self.moving_variance_initializer, trainable=False),
        ]  # fmt: skip

    def _config(self) -> dict[str, Any]:
        return {**super()._config(), "momentum": self.momentum,
                "moving_variance_estimator": self.moving_variance_estimator}  # fmt: skip
