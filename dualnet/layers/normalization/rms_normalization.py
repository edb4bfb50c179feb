"""RMSNormalization (see the package docstring for the torch | Keras | dualnet table)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dualnet import initializers as _initializers
from dualnet.layers.base import WeightSpec
from dualnet.layers.normalization.base_normalization import BaseNormalization, epsilon_argument


class RMSNormalization(BaseNormalization):
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
        self._configure_axis(axis)
        self._epsilon = epsilon_argument(epsilon, type(self).__name__)
        self._finish(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    epsilon = property(lambda self: self._epsilon)

    def declare_weights(self) -> list[WeightSpec]:
        return [WeightSpec(name="scale", shape=self._weight_shape(),
                           initializer=_initializers.Ones())]  # fmt: skip

    def _config(self) -> dict[str, Any]:
        return {**super()._config(), "epsilon": self.epsilon}
