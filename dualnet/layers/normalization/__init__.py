"""Normalization layers (Keras's ``layers/normalization`` group): BatchNormalization,
LayerNormalization, GroupNormalization, RMSNormalization, UnitNormalization, one module each
as in Keras, sharing :mod:`~dualnet.layers.normalization.base_normalization` (the ``axis``
argument, shape checks, γ and β, the config).

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

from dualnet.layers.normalization.base_normalization import (
    AffineNormalization as AffineNormalization,
)
from dualnet.layers.normalization.base_normalization import (
    BaseNormalization as BaseNormalization,
)
from dualnet.layers.normalization.base_normalization import (
    ChannelNormalization as ChannelNormalization,
)
from dualnet.layers.normalization.batch_normalization import BatchNormalization
from dualnet.layers.normalization.group_normalization import GroupNormalization
from dualnet.layers.normalization.layer_normalization import LayerNormalization
from dualnet.layers.normalization.rms_normalization import RMSNormalization
from dualnet.layers.normalization.unit_normalization import UnitNormalization

__all__ = [
    "BatchNormalization", "GroupNormalization", "LayerNormalization", "RMSNormalization",
    "UnitNormalization",
]  # fmt: skip
