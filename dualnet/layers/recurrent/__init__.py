"""Recurrent layers: SimpleRNN, LSTM, GRU and the Bidirectional wrapper (Keras's
``layers/rnn`` group), one module each as in Keras, sharing
:mod:`~dualnet.layers.recurrent.base_rnn` (arguments, weights, shapes, dropout masks).

A recurrent layer reads ``(batch, timesteps, features)`` and runs its cell over the steps from
the initial states (zeros, or the ``initial_state`` call argument). It returns the output of the
last step ``(batch, units)``, or every step's ``(batch, timesteps, units)`` with
``return_sequences``; with ``return_state`` the list ``[output, *final states]`` (LSTM: h, c).

* ``go_backwards``: the steps run from the last to the first, and the sequence returned is in
  that (reversed) order, Keras's rule (:class:`Bidirectional` re-reverses it).
* Masks (a ``(batch, timesteps)`` boolean mask of the input, from ``Embedding(mask_zero=True)``
  or ``Masking``): a masked step is skipped: the states are carried over unchanged and the
  step's output repeats the previous step's output (zeros before the first valid step), or is
  zeros with ``zero_output_for_mask=True`` (which :class:`Bidirectional` sets with
  ``return_sequences``, as Keras does). The final states are those after the last valid step
  (the initial states for a fully masked row). The output mask is the input mask with
  ``return_sequences``, else None.
* Dropout in training mode: Note [Recurrent dropout masks] in
  :mod:`~dualnet.layers.recurrent.base_rnn`.
* ``stateful=True`` is refused (pass the final states of one call as ``initial_state`` of the
  next); ``unroll`` is accepted and changes nothing (both backends run a loop or a fused
  kernel either way).

Where torch and Keras differ
----------------------------
Each row gives the same shapes and no error, only other numbers. dualnet takes Keras's rule.

==================  ========================  ========================  ======================
what                torch ``nn.LSTM/GRU/RNN``  Keras 3                   dualnet
==================  ========================  ========================  ======================
weight layout       ``weight_ih (G·u, in)``,  ``kernel (in, G·u)``,     Keras's (canonical);
                    ``weight_hh (G·u, u)``    ``recurrent_kernel        torch's fused kernel
                                              (u, G·u)``                gets the transposes
biases              ``bias_ih + bias_hh``     one ``bias (G·u,)``       Keras's; on torch
                    (two vectors)             (= their sum)             ``bias_ih = bias``,
                                                                        ``bias_hh = 0``
GRU gate order      r, z, n                   z, r, h                   Keras's; reordered
                                                                        for torch's kernel
GRU biases          ``bias_ih``, ``bias_hh``  ``reset_after=True``:     Keras's; the rows are
                                              ``(2, 3u)`` = [input;     torch's two biases
                                              recurrent] rows           (reordered)
GRU variant         reset after the product   ``reset_after=True``      both
                    only                      (default) or False
initialisation      everything U(±1/√u)       glorot_uniform kernel,    Keras's
                                              orthogonal recurrent,
                                              zero bias, forget slice
                                              1 (``unit_forget_bias``)
batch axis          ``batch_first=False``:    batch first               batch first
                    (T, B, F)
final state         ``h_n (layers·dirs, B,    ``[output, h(, c)]``      Keras's (a list)
                    u)``, a tuple ``(h, c)``  with ``return_state``
last output         ``output[:, -1]`` (the    the last step's output    Keras's
                    same, unidirectional)
``go_backwards``    none (flip the input)     reversed steps, output    Keras's
                                              in reversed order
masks               packed sequences (right-  any mask; a masked step   Keras's (any mask)
                    padded only); zeros at    repeats the previous
                    padded steps              output
Bidirectional       ``output[:, -1]`` holds   the two final outputs     Keras's
final output        the backward direction's  concatenated
                    *first* step
Bidirectional       h_n ``(2, B, u)``         ``[merged, *fw states,    Keras's
states                                        *bw states]``
dropout             between stacked layers    input and recurrent       Keras's, masks drawn
                    only (``dropout=``)       masks, one per call       by dualnet
                                              (per gate with
                                              recurrent dropout)
==================  ========================  ========================  ======================

torch's defaults, for a model ported from torch: ``kernel_initializer``,
``recurrent_initializer`` and ``bias_initializer`` =
``RandomUniform(-1/√units, 1/√units)``, ``unit_forget_bias=False``, and the loaded bias is
``bias_ih + bias_hh`` (GRU: the two rows ``[bias_ih; bias_hh]``, gate blocks reordered).

Where it runs
-------------
torch: the fused kernels (``torch._VF.lstm``, ``gru``, ``rnn_tanh``, ``rnn_relu``) with the
canonical weights reordered on the fly, whenever the call has no mask and no recurrent dropout
and the cell is torch's (LSTM: tanh/sigmoid; GRU: tanh/sigmoid with ``reset_after=True``;
SimpleRNN: tanh or relu); input dropout alone keeps the fused kernel (the sequence is masked
first). Otherwise a Python loop over the steps (``backends/torch/layers/recurrent.py``).
TensorFlow: Keras's own layers where they compute exactly this (no dropout, float32/float64);
a Keras layer of dualnet's on Keras's ``rnn`` loop otherwise.

Not provided: Keras's regularizers, constraints, ``stateful``, the generic ``RNN(cell)``
wrapper and its cells, ``use_cudnn``; torch's ``num_layers``, ``proj_size``, ``bias=False``
only on one of the two biases.
"""

from __future__ import annotations

from dualnet.layers.recurrent.base_rnn import BaseRNN as BaseRNN
from dualnet.layers.recurrent.bidirectional import Bidirectional
from dualnet.layers.recurrent.gru import GRU
from dualnet.layers.recurrent.lstm import LSTM
from dualnet.layers.recurrent.simple_rnn import SimpleRNN

__all__ = ["GRU", "LSTM", "Bidirectional", "SimpleRNN"]
