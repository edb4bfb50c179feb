"""Recurrent layers on PyTorch (builders named like the neutral classes).

The parameters are stored in the canonical (Keras) layout, ``kernel (in, G·u)``,
``recurrent_kernel (u, G·u)``, ``bias``, so get/set_weights and gradients need no mapping.
Each call then takes one of two paths (see the table in :mod:`dualnet.layers.recurrent`):

* **fused**: torch's own kernels (``torch._VF.lstm`` / ``gru`` / ``rnn_tanh`` / ``rnn_relu``, what
  ``nn.LSTM``/``nn.GRU``/``nn.RNN`` run) with the weights mapped on the fly: ``weight_ih =
  kernelᵀ`` and ``weight_hh = recurrent_kernelᵀ`` (transposed views), GRU's gate blocks z, r, h
  reordered to torch's r, z, n (one ``cat``), Keras's single bias passed as ``bias_ih`` with a
  zero ``bias_hh`` (GRU ``reset_after``: the two rows are torch's two biases). Gradients flow
  back through the views into the canonical parameters. Taken when the call has no mask and no
  recurrent dropout and the cell is torch's: LSTM and GRU (``reset_after=True``) with tanh and
  sigmoid, SimpleRNN with tanh or relu. Input dropout alone keeps it (one mask per call, applied
  to the whole sequence first, as Keras's own fast path does).
* **loop** (:func:`_loop`): everything else (masks, recurrent dropout, other activations, GRU
  ``reset_after=False``): the input projections of all steps in one product, then a Python loop
  over the steps for the recurrence.

Measured (CPU, one thread, batch 32, 100 steps, 256 features and units, median ms): LSTM
forward fused 20 / loop 71 (``nn.LSTM`` 25), forward+backward fused 91 / loop 278 (``nn.LSTM``
88); GRU forward fused 31 / loop 34 (``nn.GRU`` 29), forward+backward 79 / 142 (``nn.GRU`` 76).
Keeping the canonical layout costs nothing measurable: the transposes are views and the GRU
reorder is one ``cat`` of the weights per call.

float16/bfloat16 layers compute in float32 (weights, inputs and states upcast) and round the
outputs once, dualnet's rule for half precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from dualnet.backends.torch.layers.base import Module, activate, host_draw

from dualnet.layers.recurrent.base_rnn import standard

_HALF = (torch.float16, torch.bfloat16)


def _reorder_gru(w: torch.Tensor, units: int) -> torch.Tensor:
    """Keras's GRU gate blocks (z, r, h) along the last axis -> torch's (r, z, n)."""
    u = units
    return torch.cat([w[..., u : 2 * u], w[..., :u], w[..., 2 * u :]], dim=-1)


def fused_kind(layer: Any) -> str | None:
    """The torch kernel that computes ``layer``'s cell exactly, or None."""
    name = type(layer).__name__
    tanh_sigmoid = layer.has_recurrent_activation and (
        standard(layer.activation, "tanh") and standard(layer.recurrent_activation, "sigmoid")
    )
    if name == "LSTM" and tanh_sigmoid:
        return "lstm"
    if name == "GRU" and tanh_sigmoid and layer.reset_after:
        return "gru"
    if name == "SimpleRNN":
        if standard(layer.activation, "tanh"):
            return "rnn_tanh"
        if standard(layer.activation, "relu"):
            return "rnn_relu"
    return None


# torch.compile would trace _VF.lstm/gru into its Python decomposition and unroll every time
# step (minutes of compilation for 100 steps, then 2.5x slower than eager); the fused kernel is
# already the fast path, so the compiler calls it as it is (a graph break around this call).
@torch.compiler.disable
def _fused(kind: str, layer: Any, weights: Sequence[torch.Tensor | None], x: torch.Tensor,
           states: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:  # fmt: skip
    """torch's kernel on batch-first ``x``: the output sequence and the final states."""
    kernel, recurrent, bias = weights
    u = layer.units
    if kind == "gru":
        w_ih, w_hh = _reorder_gru(kernel, u).t(), _reorder_gru(recurrent, u).t()
        biases = [] if bias is None else [_reorder_gru(bias[0], u), _reorder_gru(bias[1], u)]
    else:
        w_ih, w_hh = kernel.t(), recurrent.t()
        # Keras's one bias is torch's bias_ih + bias_hh: all of it in bias_ih.
        biases = [] if bias is None else [bias, torch.zeros_like(bias)]
    params = [w_ih, w_hh, *biases]
    has_biases = bias is not None
    # Arguments after the weights: num_layers=1, dropout=0, train=False, bidirectional=False,
    # batch_first=True. torch's states are (num_layers·directions, batch, units).
    if kind == "lstm":
        hx = (states[0].unsqueeze(0), states[1].unsqueeze(0))
        out, h, c = torch._VF.lstm(x, hx, params, has_biases, 1, 0.0, False, False, True)
        return out, [h[0], c[0]]
    fn = getattr(torch._VF, kind)
    out, h = fn(x, states[0].unsqueeze(0), params, has_biases, 1, 0.0, False, False, True)
    return out, [h[0]]


def _per_gate(a: torch.Tensor, w: torch.Tensor, factors: torch.Tensor | None,
              gates: int) -> torch.Tensor:  # fmt: skip
    """``a·w`` with ``a``'s features multiplied by one dropout factor per gate: ``factors``
    ``(n, batch, features)`` (n = 1: shared, or one per gate) broadcast over the middle axes of
    ``a`` ``(batch, ..., features)``; the result ``(batch, ..., G·u)``."""
    if factors is None:
        return a @ w
    if factors.shape[0] == 1:
        return (a * _over(factors[0], a)) @ w
    u = w.shape[-1] // gates
    blocks = [(a * _over(factors[g], a)) @ w[:, g * u : (g + 1) * u] for g in range(gates)]
    return torch.cat(blocks, dim=-1)


def _over(f: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """A ``(batch, features)`` factor broadcast against ``a`` ``(batch, ..., features)``."""
    return f.reshape(f.shape[0], *([1] * (a.dim() - 2)), f.shape[1])


def _loop(layer: Any, weights: Sequence[torch.Tensor | None], x: torch.Tensor,
          states: list[torch.Tensor], mask: torch.Tensor | None, din: torch.Tensor | None,
          drec: torch.Tensor | None) -> tuple[torch.Tensor, list[torch.Tensor]]:  # fmt: skip
    """The cell step by step (masks, recurrent dropout, any activation); returns the output of
    every step ``(batch, T, u)`` and the final states."""
    kernel, recurrent, bias = weights
    name, u, G = type(layer).__name__, layer.units, layer.gates
    phi = layer.activation
    sigma = layer.recurrent_activation
    reset_after = name == "GRU" and layer.reset_after
    b_in, b_rec = bias, None
    if bias is not None and reset_after:
        b_in, b_rec = bias[0], bias[1]
    # The input side of every step at once: (B, T, G·u).
    zx = _per_gate(x, kernel, din, G)
    if b_in is not None:
        zx = zx + b_in
    previous = torch.zeros_like(states[0])
    outputs = []
    for t in range(x.shape[1]):
        xt = zx[:, t]
        if name == "LSTM":
            h, c = states
            z = xt + _per_gate(h, recurrent, drec, G)
            zi, zf, zc, zo = z.split(u, dim=-1)
            c_new = activate(sigma, zf) * c + activate(sigma, zi) * activate(phi, zc)
            h_new = activate(sigma, zo) * activate(phi, c_new)
            new = [h_new, c_new]
        elif name == "GRU":
            (h,) = states
            xz, xr, xh = xt.split(u, dim=-1)
            if reset_after:
                hp = _per_gate(h, recurrent, drec, G)
                if b_rec is not None:
                    hp = hp + b_rec
                hz, hr, hh = hp.split(u, dim=-1)
                z, r = activate(sigma, xz + hz), activate(sigma, xr + hr)
                candidate = activate(phi, xh + r * hh)
            else:
                hzr = _per_gate(h, recurrent[:, : 2 * u], _gates(drec, 0, 2), 2)
                hz, hr = hzr.split(u, dim=-1)
                z, r = activate(sigma, xz + hz), activate(sigma, xr + hr)
                h_h = h if drec is None else h * drec[2 % drec.shape[0]]
                candidate = activate(phi, xh + (r * h_h) @ recurrent[:, 2 * u :])
            h_new = z * h + (1.0 - z) * candidate
            new = [h_new]
        else:
            h_new = activate(phi, xt + _per_gate(states[0], recurrent, drec, 1))
            new = [h_new]
        out = h_new
        if mask is not None:
            keep = mask[:, t, None]
            # A masked step: states carried over, the output repeats the previous one (Keras's
            # zero_output_for_mask=False) or is 0.
            new = [torch.where(keep, n, s) for n, s in zip(new, states, strict=True)]
            fill = torch.zeros_like(out) if layer.zero_output_for_mask else previous
            out = torch.where(keep, out, fill)
        states, previous = new, out
        outputs.append(out)
    return torch.stack(outputs, dim=1), states


def _gates(factors: torch.Tensor | None, start: int, stop: int) -> torch.Tensor | None:
    """The factors of gates ``start:stop`` (a shared single mask stays as it is)."""
    if factors is None or factors.shape[0] == 1:
        return factors
    return factors[start:stop]


def run(layer: Any, weights: Sequence[torch.Tensor | None], x: torch.Tensor,
        initial_state: Any, mask: torch.Tensor | None, training: bool) -> Any:  # fmt: skip
    """One recurrent layer (``layer`` the neutral one, for its config) on ``x`` with the
    canonical ``weights`` ``(kernel, recurrent_kernel, bias or None)``: the output, or the list
    ``[output, *states]`` with ``return_state``."""
    dtype = x.dtype
    compute = torch.float32 if dtype in _HALF else dtype
    x = x.to(compute)
    weights = [None if w is None else w.to(compute) for w in weights]
    batch = x.shape[0]
    if initial_state is None:
        states = [x.new_zeros((batch, layer.units)) for _ in layer.state_names]
    else:
        given = initial_state if isinstance(initial_state, list | tuple) else [initial_state]
        states = [s.to(compute) for s in given]
    din = drec = None
    if training:
        masks = host_draw(layer.next_dropout_masks, batch)
        din, drec = (None if m is None else torch.from_numpy(m).to(compute).to(x.device)
                     for m in masks)  # fmt: skip
    if mask is not None:
        mask = mask.to(device=x.device, dtype=torch.bool)
    if layer.go_backwards:  # Keras: the steps run backwards, outputs in that order
        x = x.flip(1)
        mask = None if mask is None else mask.flip(1)
    kind = fused_kind(layer)
    if kind is not None and mask is None and drec is None:
        if din is not None:  # one input mask shared by the gates: mask the sequence first
            x = x * din[0].unsqueeze(1)
        sequence, states = _fused(kind, layer, weights, x, states)
    else:
        sequence, states = _loop(layer, weights, x, states, mask, din, drec)
    y = sequence if layer.return_sequences else sequence[:, -1]
    y = y.to(dtype)
    if not layer.return_state:
        return y
    return [y, *(s.to(dtype) for s in states)]


def _output_mask(layer: Any, mask: Any) -> Any:
    """Keras's: the input mask with ``return_sequences``, else None; None for each state."""
    out = mask if layer.return_sequences else None
    if not layer.return_state:
        return out
    return [out, *([None] * len(layer.state_names))]


class Recurrent(Module):
    """SimpleRNN, LSTM and GRU (the neutral layer says which): :func:`run` on the canonical
    parameters."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        if not layer.use_bias:
            self.bias = None

    def forward(self, x: torch.Tensor, training: bool = False, initial_state: Any = None,
                mask: torch.Tensor | None = None) -> Any:  # fmt: skip
        weights = (self.kernel, self.recurrent_kernel, self.bias)
        return run(self.layer, weights, x, initial_state, mask, training)

    def compute_mask(self, x: Any, mask: Any = None) -> Any:
        return _output_mask(self.layer, mask)


class Bidirectional(Module):
    """The forward and backward layers' :func:`run` on the same input, merged (Keras's
    Bidirectional); parameters ``<copy name>/<weight name>``."""

    def _weights(self, inner: Any) -> tuple[torch.Tensor | None, ...]:
        named = dict(self.named_parameters())
        return tuple(named.get(f"{inner.name}/{n}")
                     for n in ("kernel", "recurrent_kernel", "bias"))  # fmt: skip

    def forward(self, x: torch.Tensor, training: bool = False, initial_state: Any = None,
                mask: torch.Tensor | None = None) -> Any:  # fmt: skip
        fw_layer, bw_layer = self.layer.layers
        fw_init = bw_init = None
        if initial_state is not None:
            n = len(fw_layer.state_names)
            fw_init, bw_init = list(initial_state[:n]), list(initial_state[n:])
        results = []
        for inner, init in ((fw_layer, fw_init), (bw_layer, bw_init)):
            out = run(inner, self._weights(inner), x, init, mask, training)
            results.append(out if inner.return_state else [out])
        (y, *fw_states), (y_rev, *bw_states) = results
        if self.layer.return_sequences:  # back to the forward time order
            y_rev = y_rev.flip(1)
        merged = merge(self.layer.merge_mode, y, y_rev)
        if not self.layer.return_state:
            return merged
        head = merged if self.layer.merge_mode is None else [merged]
        return [*head, *fw_states, *bw_states]

    def compute_mask(self, x: Any, mask: Any = None) -> Any:
        out = mask if self.layer.return_sequences else None
        head = [out, out] if self.layer.merge_mode is None else [out]
        if not self.layer.return_state:
            return head if self.layer.merge_mode is None else out
        states = sum(len(inner.state_names) for inner in self.layer.layers)
        return [*head, *([None] * states)]


def merge(mode: str | None, y: torch.Tensor, y_rev: torch.Tensor) -> Any:
    """Keras's merge of the two directions."""
    if mode == "concat":
        return torch.cat([y, y_rev], dim=-1)
    if mode == "sum":
        return y + y_rev
    if mode == "mul":
        return y * y_rev
    if mode == "ave":
        return (y + y_rev) / 2
    return [y, y_rev]


def simple_rnn(layer: Any, weights: Sequence[np.ndarray]) -> Recurrent:
    return Recurrent(layer, weights)


def lstm(layer: Any, weights: Sequence[np.ndarray]) -> Recurrent:
    return Recurrent(layer, weights)


def gru(layer: Any, weights: Sequence[np.ndarray]) -> Recurrent:
    return Recurrent(layer, weights)


def bidirectional(layer: Any, weights: Sequence[np.ndarray]) -> Bidirectional:
    return Bidirectional(layer, weights)
