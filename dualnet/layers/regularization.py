"""Regularization layers: Dropout, SpatialDropout1D, SpatialDropout2D, GaussianNoise,
GaussianDropout (Keras's ``layers/regularization`` group).

Each is the identity in inference mode (``training=False``: a bare call, ``predict``,
``evaluate``) and random in training mode (``fit``, ``train_step``, ``layer(x, training=True)``);
see Note [Training flag] in :mod:`dualnet.layers.base`. None has weights.

Note [Portable noise]
---------------------
torch and TensorFlow draw dropout masks from different generators, so no seed makes their masks
agree. dualnet draws every mask and every noise tensor itself, on the host, with numpy's PCG64:

* A layer has a seed: its ``seed`` argument, or one drawn from dualnet's global generator when
  the layer is constructed (:func:`dualnet.set_random_seed` makes that repeatable). The seed is
  stored and returned by ``get_config``, so a copy (``from_config``, ``model.to_backend``) draws
  the same masks. Keras returns ``seed=None`` for an unseeded layer instead.
* The layer counts its training-mode calls (:attr:`training_calls`). Call ``k`` (from 0) draws
  from ``np.random.default_rng([seed, k])``: :func:`keep_mask` for the dropout layers and
  :func:`standard_normal` for the Gaussian ones are the definition of the noise, and the float64
  reference uses them too. Every training call advances the count by one, even where the layer
  is the identity (rate 0), so the sequence does not depend on the rate; inference calls draw
  nothing and leave the count alone. A copy from ``from_config`` starts again at call 0 (the
  count is not config); ``model.to_backend`` carries the count over (runtime state), so the twin
  draws the next mask the original would. A training step that fails after the forward pass (a
  non-finite loss) has used its index.
* Consequently two layers with the same seed, one on torch and one on TensorFlow, apply the same
  masks call by call, and a model trained step by step on both backends sees the same masks at
  every step.
* Cost: a training call draws its noise on the host (about 3-5 ns per mask element for dropout's
  uniforms, about 10 ns for Gaussian noise, on one CPU core) and copies it to the
  layer's device (1 byte per element for a boolean keep-mask, 4 or 8 for float noise), where the
  frameworks' own dropout generates the mask on the device. This is the price of parity;
  inference is free. Inside ``tf.function`` the draw runs through ``tf.numpy_function`` each
  time the graph runs, so the sequence is the eager one; XLA (``jit_compile=True``) cannot run
  it.

Where the frameworks differ
---------------------------
==================  ======================  ======================  ========================
behaviour           torch                   Keras 3                 dualnet
==================  ======================  ======================  ========================
mask generator      torch's RNG             TF stateless RNG        numpy PCG64 on the host
                                                                    (Note [Portable noise])
kept values         ``x·mask·(1/(1-p))``    ``x / (1-rate)``        ``x·(1/(1-rate))``
dropped inf/NaN     NaN (``inf·0``)         0 (``where``)           0 (``where``, as Keras)
rate = 1            zeros; NaN for inf      ``zeros_like(x)``       zeros (all dropped)
default mode        training (a fresh       inference unless        inference unless
                    module is ``.train()``  ``training=True``       ``training=True`` (Keras)
spatial dropout     ``nn.Dropout1d/2d``,    SpatialDropout1D/2D,    Keras's layers, channels
                    channels first          channels last           last by default
Gaussian layers     none                    GaussianNoise,          Keras's layers
                                            GaussianDropout
noise stddev        --                      in [0, 1]               in [0, 1] (Keras)
==================  ======================  ======================  ========================

Precision: the scale ``1/(1-rate)`` (or the Gaussian noise) is computed in float64 and rounded
once to the compute dtype, which is the layer's dtype, or float32 for float16/bfloat16 layers;
the output is computed in that dtype and rounded once to the layer's dtype (torch's CPU rule for
half precision; TensorFlow would round the scale to half first). Gradients: ``keep·scale`` for
the dropout layers, the identity for GaussianNoise, the drawn factor for GaussianDropout.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from dualnet import random as _random
from dualnet.layers import _args, _spatial
from dualnet.layers.base import Layer, check_layer_arguments, format_shape

__all__ = ["Dropout", "GaussianDropout", "GaussianNoise", "SpatialDropout1D", "SpatialDropout2D"]


# --------------------------------------------------------------------------------------------
# The noise itself (Note [Portable noise]): the definition both backends and the reference use.


def generator_for(seed: int, call: int) -> np.random.Generator:
    """The generator of training call ``call`` (from 0) of a layer with ``seed``."""
    return np.random.default_rng([int(seed), int(call)])


def keep_mask(seed: int, call: int, shape: Sequence[int], rate: float) -> np.ndarray:
    """The dropout keep-mask of training call ``call``: ``u >= rate`` for ``u`` uniform in
    [0, 1) (float64, one per element of ``shape``). An element is kept with probability
    ``1 - rate`` (up to 2⁻⁵³); ``rate=1`` drops everything."""
    shape = tuple(int(d) for d in shape)
    if rate <= 0.0:  # nothing dropped: nothing to draw
        return np.ones(shape, dtype=bool)
    return generator_for(seed, call).random(shape) >= rate


def standard_normal(seed: int, call: int, shape: Sequence[int]) -> np.ndarray:
    """The N(0, 1) float64 draws of training call ``call`` (GaussianNoise, GaussianDropout)."""
    return generator_for(seed, call).standard_normal(tuple(int(d) for d in shape))


def compute_dtype(dtype: str) -> str:
    """Where the noise is applied: float32 for half-precision layers (rounded once at the end),
    else the layer's dtype."""
    return "float32" if dtype in ("float16", "bfloat16") else dtype


class _RandomLayer(Layer):
    """Shared by the five layers: the seed, the count of training calls, the base checks."""

    # Keras's flag: an incoming mask passes through (the noise ignores it, as Keras's).
    supports_masking: ClassVar[bool] = True

    runtime_state: ClassVar[tuple[str, ...]] = ("_training_calls",)  # the next mask

    def __init__(self, seed: Any, *, name: str | None, dtype: Any, input_shape: Any,
                 trainable: bool):  # fmt: skip
        where = type(self).__name__
        seed = _args.seed(seed, "seed", where)
        # Every check before the global generator is touched: a failed construction must not
        # change which seeds later layers and initializers draw.
        check_layer_arguments(where, name=name, dtype=dtype, input_shape=input_shape,
                              trainable=trainable)  # fmt: skip
        self._seed = _random.draw_seed() if seed is None else seed
        self._training_calls = 0
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    @property
    def seed(self) -> int:
        """The seed of the noise sequence (drawn at construction when none was given)."""
        return self._seed

    @property
    def training_calls(self) -> int:
        """Training-mode calls so far: the next one draws with call index ``training_calls``."""
        return self._training_calls

    def _advance(self) -> int:
        call = self._training_calls
        self._training_calls += 1
        return call

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        if len(tuple(shape)) < 1:
            raise ValueError(f"{self._where()} expects inputs of rank >= 1, got a scalar.")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "seed": self.seed}


class Dropout(_RandomLayer):
    """Randomly sets input units to 0 in training mode, scaling the kept ones by
    ``1/(1 - rate)`` so the expected value is unchanged; the identity in inference mode.

    ``y = where(keep, x·(1/(1 - rate)), 0)`` with ``keep`` the mask of Note [Portable noise],
    drawn for the noise shape (the input's, or ``noise_shape``) and broadcast to the input.
    ``∂y/∂x = keep·(1/(1 - rate))``. A dropped element is exactly 0 even when it is inf or NaN
    (Keras; torch would give NaN). ``rate=1`` drops everything: zeros, zero gradient.

    Args:
        rate: fraction of the units to drop, a number in [0, 1] (Keras's range; torch's ``p``).
        noise_shape: the mask's shape, batch dimension included, to drop whole slices (e.g.
            ``(None, 1, C)`` drops the same features at every timestep); ``None`` entries take
            the input's size, other entries must be 1 or the input's size. Default: the input's
            shape.
        seed: seed of the mask sequence (Note [Portable noise]); None draws one from dualnet's
            global generator.
        name, dtype, input_shape, trainable: see :class:`Layer`.

    Shape:
        any rank >= 1; the output has the input's shape.
    """

    def __init__(self, rate: float, noise_shape: Any = None, seed: int | None = None, *,
                 name: str | None = None, dtype: Any = None, input_shape: Any = None,
                 trainable: bool = True):  # fmt: skip
        where = type(self).__name__
        self._rate = _args.real(rate, "rate", where, low=0.0, high=1.0)
        self._noise_shape = _args.batch_shape(noise_shape, "noise_shape", where)
        super().__init__(seed, name=name, dtype=dtype, input_shape=input_shape,
                         trainable=trainable)  # fmt: skip

    rate = property(lambda self: self._rate)
    noise_shape = property(lambda self: self._noise_shape)

    @property
    def scale(self) -> float:
        """The factor of the kept values, ``1/(1 - rate)``; 0 for ``rate=1`` (nothing is kept,
        and an infinite factor would make the gradient ``0·inf = NaN``)."""
        return 0.0 if self._rate >= 1.0 else 1.0 / (1.0 - self._rate)

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        super().check_input_shape(shape)
        self._resolve(tuple(shape))

    def _resolve(self, shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        """The mask shape for inputs of ``shape`` (known dims where the input's are)."""
        ns = self._noise_shape
        if ns is None:
            return shape
        if len(ns) != len(shape) or any(
            n is not None and s is not None and n not in (1, s)
            for n, s in zip(ns, shape, strict=True)
        ):
            raise ValueError(
                f"{self._where()}: noise_shape={format_shape(ns)} does not fit inputs of shape "
                f"{format_shape(shape)}; expected the input's rank, each entry None, 1 or the "
                "input's size."
            )
        return tuple(s if n is None else n for n, s in zip(ns, shape, strict=True))

    def mask_shape(self, shape: Sequence[int]) -> tuple[int, ...]:
        """The shape of the keep-mask for an input of ``shape`` (broadcastable to it)."""
        return self._resolve(tuple(int(d) for d in shape))  # type: ignore[return-value]

    def next_mask(self, shape: Sequence[int]) -> np.ndarray | None:
        """The keep-mask of the next training call (bool, :meth:`mask_shape`), advancing the
        count; None when ``rate=0`` (the call is the identity)."""
        call = self._advance()
        if self._rate <= 0.0:
            return None
        return keep_mask(self._seed, call, self.mask_shape(shape), self._rate)

    def get_config(self) -> dict[str, Any]:
        ns = None if self._noise_shape is None else list(self._noise_shape)
        return {**super().get_config(), "rate": self.rate, "noise_shape": ns}


class _SpatialDropout(Dropout):
    """Shared by SpatialDropout1D/2D: one mask value per sample and channel, broadcast over the
    spatial axes (``noise_shape`` is 1 there and not an argument)."""

    spatial_dims: ClassVar[int]
    # Keras's SpatialDropout1D takes no data_format: its inputs are channels last.
    _data_format = "channels_last"

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        self._check_rank(tuple(shape), self.spatial_dims + 2,
                         _spatial.layout(self.spatial_dims, self._data_format))  # fmt: skip

    def _resolve(self, shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        spatial = _spatial.spatial_axes(len(shape), self._data_format)
        return tuple(1 if axis in spatial else d for axis, d in enumerate(shape))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["noise_shape"]
        return config


class SpatialDropout1D(_SpatialDropout):
    """Dropout of whole feature channels of a sequence: the mask has shape ``(batch, 1, C)``,
    so a dropped channel is zero at every step (the same rule as :class:`Dropout` otherwise).

    torch's ``nn.Dropout1d`` drops channels of a channels-first ``(N, C, L)`` input; Keras and
    dualnet take channels-last ``(batch, steps, C)``: transpose, or pass
    ``Dropout(rate, noise_shape=(None, None, 1))`` for a channels-first input.

    Args:
        rate: fraction of the channels to drop, in [0, 1].
        seed: see :class:`Dropout`.
        name, dtype, input_shape, trainable: see :class:`Layer`.

    Shape:
        ``(batch, steps, channels)``, unchanged.
    """

    spatial_dims = 1

    def __init__(self, rate: float, seed: int | None = None, *, name: str | None = None,
                 dtype: Any = None, input_shape: Any = None, trainable: bool = True):  # fmt: skip
        super().__init__(rate, None, seed, name=name, dtype=dtype, input_shape=input_shape,
                         trainable=trainable)  # fmt: skip


class SpatialDropout2D(_SpatialDropout):
    """Dropout of whole feature maps: the mask has shape ``(batch, 1, 1, C)`` (channels_last)
    or ``(batch, C, 1, 1)`` (channels_first); otherwise as :class:`Dropout`.

    torch's ``nn.Dropout2d`` takes channels-first ``(N, C, H, W)``; Keras and dualnet default
    to channels_last (pass ``data_format="channels_first"`` for torch's layout).

    Args:
        rate: fraction of the channels to drop, in [0, 1].
        data_format: ``"channels_last"`` (default, Keras) or ``"channels_first"``.
        seed: see :class:`Dropout`.
        name, dtype, input_shape, trainable: see :class:`Layer`.

    Shape:
        ``(batch, height, width, channels)`` or ``(batch, channels, height, width)``,
        unchanged.
    """

    spatial_dims = 2

    def __init__(self, rate: float, data_format: str | None = None, seed: int | None = None, *,
                 name: str | None = None, dtype: Any = None, input_shape: Any = None,
                 trainable: bool = True):  # fmt: skip
        self._data_format = _args.data_format(data_format, type(self).__name__)
        super().__init__(rate, None, seed, name=name, dtype=dtype, input_shape=input_shape,
                         trainable=trainable)  # fmt: skip

    data_format = property(lambda self: self._data_format)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_format": self.data_format}


class GaussianNoise(_RandomLayer):
    """Adds zero-mean Gaussian noise in training mode: ``y = x + stddev·n``, ``n ~ N(0, 1)``
    drawn per element as in Note [Portable noise]; the identity in inference mode.
    ``∂y/∂x = 1``.

    Keras's layer (torch has none). ``stddev`` must lie in [0, 1], Keras's own limit, so a
    config moves between dualnet and Keras unchanged.

    Args:
        stddev: standard deviation of the noise, in [0, 1].
        seed: see :class:`Dropout`.
        name, dtype, input_shape, trainable: see :class:`Layer`.

    Shape:
        any rank >= 1, unchanged.
    """

    def __init__(self, stddev: float, seed: int | None = None, *, name: str | None = None,
                 dtype: Any = None, input_shape: Any = None, trainable: bool = True):  # fmt: skip
        self._stddev = _args.real(stddev, "stddev", type(self).__name__, low=0.0, high=1.0)
        super().__init__(seed, name=name, dtype=dtype, input_shape=input_shape,
                         trainable=trainable)  # fmt: skip

    stddev = property(lambda self: self._stddev)

    def next_noise(self, shape: Sequence[int]) -> np.ndarray | None:
        """The additive noise of the next training call, in the compute dtype (float32 for
        half-precision layers), advancing the count; None when ``stddev=0``."""
        call = self._advance()
        if self._stddev <= 0.0:
            return None
        # float64 product, rounded once to the compute dtype.
        noise = self._stddev * standard_normal(self._seed, call, shape)
        return noise.astype(compute_dtype(self.dtype))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "stddev": self.stddev}


class GaussianDropout(_RandomLayer):
    """Multiplies by Gaussian noise of mean 1 in training mode: ``y = x·(1 + σ·n)``,
    ``σ = √(rate/(1 - rate))``, ``n ~ N(0, 1)`` per element (Note [Portable noise]); the
    identity in inference mode. ``∂y/∂x = 1 + σ·n``.

    Keras's layer (torch has none). ``rate=1`` (an infinite σ, which Keras accepts at
    construction and then fails on with a division by zero) is refused.

    Args:
        rate: the equivalent dropout rate, in [0, 1).
        seed: see :class:`Dropout`.
        name, dtype, input_shape, trainable: see :class:`Layer`.

    Shape:
        any rank >= 1, unchanged.
    """

    def __init__(self, rate: float, seed: int | None = None, *, name: str | None = None,
                 dtype: Any = None, input_shape: Any = None, trainable: bool = True):  # fmt: skip
        self._rate = _args.real(rate, "rate", type(self).__name__, low=0.0, high=1.0,
                                high_open=True)  # fmt: skip
        super().__init__(seed, name=name, dtype=dtype, input_shape=input_shape,
                         trainable=trainable)  # fmt: skip

    rate = property(lambda self: self._rate)

    @property
    def stddev(self) -> float:
        """σ = √(rate/(1 - rate)), the standard deviation of the multiplicative noise."""
        return math.sqrt(self._rate / (1.0 - self._rate))

    def next_noise(self, shape: Sequence[int]) -> np.ndarray | None:
        """The factor ``1 + σ·n`` of the next training call, in the compute dtype, advancing
        the count; None when ``rate=0``."""
        call = self._advance()
        if self._rate <= 0.0:
            return None
        # float64, rounded once to the compute dtype.
        factor = 1.0 + self.stddev * standard_normal(self._seed, call, shape)
        return factor.astype(compute_dtype(self.dtype))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate}
