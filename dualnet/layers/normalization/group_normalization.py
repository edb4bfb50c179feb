"""GroupNormalization (see the package docstring for the torch | Keras | dualnet table)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from dualnet.layers import _args
from dualnet.layers.base import format_shape
from dualnet.layers.normalization.base_normalization import ChannelNormalization


class GroupNormalization(ChannelNormalization):
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

    # Keras's flag: an incoming mask passes through.
    supports_masking: ClassVar[bool] = True

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
        self._groups = _args.positive_int(groups, "groups", type(self).__name__,
                                          minus_one="one group per channel")  # fmt: skip
        self._configure_axis(axis)
        self._configure_affine(epsilon, center, scale)
        self._finish(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable,
                     beta_initializer=beta_initializer,
                     gamma_initializer=gamma_initializer)  # fmt: skip

    groups = property(lambda self: self._groups)

    def resolved_groups(self, channels: int) -> int:
        """The number of groups for ``channels`` channels (``-1``: one per channel)."""
        return channels if self._groups == -1 else self._groups

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        super().check_input_shape(shape)
        shape = tuple(shape)
        (channel,) = self.resolve_axes(len(shape))
        channels = shape[channel]
        if channels % self.resolved_groups(channels):
            raise ValueError(
                f"{self._where()} expects a number of channels divisible by groups="
                f"{self._groups}, got {channels} channels (axis={self._axis}, input shape "
                f"{format_shape(shape)})."
            )

    def _config(self) -> dict[str, Any]:
        return {"groups": self.groups, **super()._config()}
