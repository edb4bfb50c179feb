"""LayerNormalization (see the package docstring for the torch | Keras | dualnet table)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from dualnet.layers.normalization.base_normalization import AffineNormalization


class LayerNormalization(AffineNormalization):
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

    # Keras's flag: an incoming mask passes through.
    supports_masking: ClassVar[bool] = True

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
        self._configure_axis(axis)
        self._configure_affine(epsilon, center, scale)
        self._finish(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable,
                     beta_initializer=beta_initializer,
                     gamma_initializer=gamma_initializer)  # fmt: skip
