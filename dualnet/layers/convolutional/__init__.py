"""Convolutional layers (Keras's ``layers/convolutional`` group): Conv1D, Conv2D, Conv3D,
Conv1DTranspose, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D.

    import dualnet as dn
    conv = dn.layers.Conv2D(8, 3, strides=2, padding="same")   # (B, 16, 16, 3) -> (B, 8, 8, 8)

Every layer here shares :class:`BaseConv`: argument validation, the padding rule, shapes and the
config. The padding amounts are computed here too (:meth:`BaseConv.padding_amounts`, with the
``same`` rule pooling also follows, :func:`dualnet.layers._spatial.same_padding`;
:meth:`ConvTranspose.crop_axes`), so both backends apply the same numbers.

Where torch and Keras differ
----------------------------

=================  =======================  ========================  ========================
topic              torch                    Keras                     dualnet
=================  =======================  ========================  ========================
data layout        channels first           ``data_format=None``:     Keras's; channels_first
                   ``(B, C, ...)``          ``(B, ..., C)``           works on both backends
kernel layout      ``(out, in/groups, *k)`` ``(*k, in/groups, out)``  Keras's, whatever the
                                                                      ``data_format``
transposed kernel  ``(in, out, *k)``        ``(*k, out, in)``         Keras's
depthwise kernel   ``Conv2d(C, C·m,         ``(kh, kw, C, m)``,       Keras's; output channel
                   groups=C)``: ``(C·m, 1,  variable ``kernel``       ``c·m + j`` in all three
                   kh, kw)``
``same`` padding   refuses stride > 1; an   TensorFlow's rule: the    TensorFlow's rule on both
                   int padding is symmetric odd pixel at the end      backends
int padding ``p``  ``p`` zeros on both      none (``ZeroPadding``     torch's: ``padding=p``,
                   sides of every axis      layer first)              per axis, or pairs
``causal`` (1-D)   no such option           left pad ``d·(k-1)``      Keras's
transposed         crops ``padding`` both   length ``n·s``, window    Keras's (below); no torch
``same``           sides; ``output_padding`` from TensorFlow's rule   ``(padding, output_
                   extends the end                                    padding)`` reproduces it;
                                                                      torch's crop with
                                                                      ``padding=p``
strides+dilation   both > 1 allowed         refused (TensorFlow       refused
                                            cannot run it)
default init       U(±1/√fan_in) for kernel ``glorot_uniform``        Keras's; ``"standard"``
                   *and* bias (kernel's     kernel, ``zeros`` bias    for kernel and bias is
                   fan_in)                                            torch's
=================  =======================  ========================  ========================

Padding rules (per spatial axis of size ``n``, kernel ``k``, stride ``s``, dilation ``d``, dilated
kernel ``k' = d·(k-1) + 1``):

* ``valid``: no padding, output ``floor((n - k')/s) + 1``; the input must be at least ``k'``.
* ``same``: output ``ceil(n/s)``; total padding ``max(0, (ceil(n/s) - 1)·s + k' - n)``, of which
  ``total // 2`` goes before and the rest (one more when the total is odd) **after**. For
  ``n = 8, k = 3, s = 2`` that is ``(0, 1)``; torch's ``Conv2d(padding=1)`` pads ``(1, 1)`` and
  gives a different (shifted) result with the same output shape.
* ``causal`` (Conv1D): ``d·(k-1)`` before, none after, then ``valid``: ``y[t]`` sees ``x[≤ t]``.
* explicit amounts (torch's ``padding``): ``padding=p`` pads ``p`` zeros before and after every
  spatial axis, a tuple of one int per axis pads that axis symmetrically, a tuple of
  ``(before, after)`` pairs pads as given (``get_config`` records ``[[before, after], ...]``);
  output ``floor((n + before + after - k')/s) + 1``, and the padded input must be at least
  ``k'``. ``padding=1`` with ``k = 3, s = 2`` on ``n = 8`` is torch's ``Conv2d(padding=1)``,
  not ``same`` (which pads ``(0, 1)``).

Transposed convolutions (the gradient of a convolution with respect to its input) first build the
*full* output of length ``(n-1)·s + k'`` (every input row scattered through the kernel), then keep
a window of it, as TensorFlow does:

* the output length is Keras's: ``valid``: ``n·s + max(k' - s, 0)``, or ``(n-1)·s + k' + op`` with
  ``output_padding=op``; ``same``: ``n·s``, or ``(n-1)·s + k' mod 2 + op``;
* the window starts at ``0`` for ``valid`` and at ``max(0, (n-1)·s + k' - L) // 2`` for ``same``
  (TensorFlow's ``same`` rule seen from the output); where the window reaches past the full output
  (``k' < s``, or ``output_padding``) the missing rows are zeros (plus the bias);
* explicit amounts are torch's ``ConvTranspose`` ``padding``: ``before`` rows cropped at the
  start and ``after`` at the end of the full output, then ``output_padding`` rows appended
  (zeros plus the bias past the full output), ``L = (n-1)·s + k' - before - after + op``.

For ``k = 3, s = 2, same`` Keras keeps ``full[0 : 2n]`` while torch's ``ConvTranspose2d(padding=1,
output_padding=1)`` keeps ``full[1 : 2n + 1]``: same shape, shifted values.

Bad arguments and inputs (wrong rank, a kernel larger than a ``valid`` input, channels not
divisible by ``groups``, a changed channel count) raise here, before any framework runs.
"""

from __future__ import annotations

from dualnet.layers.convolutional.base_conv import BaseConv as BaseConv
from dualnet.layers.convolutional.base_conv import CropAxis as CropAxis
from dualnet.layers.convolutional.conv import Conv as Conv
from dualnet.layers.convolutional.conv import Conv1D, Conv2D, Conv3D
from dualnet.layers.convolutional.conv_transpose import Conv1DTranspose, Conv2DTranspose
from dualnet.layers.convolutional.conv_transpose import ConvTranspose as ConvTranspose
from dualnet.layers.convolutional.depthwise import DepthwiseConv2D, SeparableConv2D

__all__ = [
    "Conv1D", "Conv1DTranspose", "Conv2D", "Conv2DTranspose", "Conv3D", "DepthwiseConv2D",
    "SeparableConv2D",
]  # fmt: skip
