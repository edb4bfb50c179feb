"""Recurrent layers on tf.keras (builders named like the neutral classes).

* SimpleRNN, LSTM and GRU adopt Keras's own layers (``keras.layers.SimpleRNN/LSTM/GRU``, both
  GRU variants), which compute exactly the documented math, masks and ``go_backwards``
  included, when the layer has no dropout and computes in float32 or float64. dualnet's
  activations are passed as Keras's own ``tanh``/``sigmoid`` where they are those (the same
  function; Keras's cuDNN path recognises them), as dualnet callables otherwise. On a GPU the
  cuDNN kernel runs only for calls without a mask: cuDNN refuses masks that are not right-padded
  and gives zeros at padded steps, where Keras's loop (and dualnet) repeats the last output.
* :class:`Recurrent` otherwise: a Keras layer of dualnet's on Keras's own ``rnn`` loop
  (``keras.src.backend.tensorflow.rnn.rnn``: masks, ``go_backwards``, ``tf.while_loop``) with
  the input projections of every step computed first. It applies dualnet's dropout masks
  (Note [Recurrent dropout masks]; Keras's own are drawn from TensorFlow's generator) and
  computes float16/bfloat16 layers in float32, rounding the outputs once.
* :class:`Bidirectional` runs the two directions' natives (either kind) and merges them as
  Keras's wrapper does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from dualnet.backends.tensorflow.layers.base import Layer, activate, adopt, keras_activation
from keras.src.backend.tensorflow.rnn import rnn as keras_rnn

from dualnet.layers.recurrent.base_rnn import standard


def _activation(fn: Any, name: str) -> Any:
    """Keras's own activation ``name`` where ``fn`` is dualnet's (identical on TensorFlow for
    float32/float64), else ``fn`` as a Keras callable."""
    return name if standard(fn, name) else (keras_activation(fn) or "linear")


class _Keras:
    """Keras's RNN layer, with two corrections:

    * the input's mask is passed explicitly: ``keras.layers.Layer.__call__`` fills ``mask``
      only for a call with one tensor argument, so with ``initial_state`` Keras 3.15 ignores
      the mask attached to the input (recorded in ``dualnet/parity/divergences.py``);
    * the fused (cuDNN) path is tried only for calls without a mask (cuDNN refuses masks that
      are not right-padded and gives zeros at padded steps)."""

    def __call__(self, sequences: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("mask") is None and getattr(sequences, "_keras_mask", None) is not None:
            kwargs["mask"] = sequences._keras_mask
        return super().__call__(sequences, *args, **kwargs)

    def inner_loop(self, sequences: Any, initial_state: Any, mask: Any,
                   training: bool = False) -> Any:  # fmt: skip
        if mask is not None:
            return keras.layers.RNN.inner_loop(self, sequences, initial_state, mask,
                                               training=training)  # fmt: skip
        return super().inner_loop(sequences, initial_state, mask, training=training)


class _KerasSimpleRNN(_Keras, keras.layers.SimpleRNN):
    pass


class _KerasLSTM(_Keras, keras.layers.LSTM):
    pass


class _KerasGRU(_Keras, keras.layers.GRU):
    pass


def _adoptable(layer: Any) -> bool:
    return (layer.dtype in ("float32", "float64") and layer.dropout == 0.0
            and layer.recurrent_dropout == 0.0)  # fmt: skip


def _keras_layer(layer: Any) -> keras.layers.Layer:
    """Keras's own layer configured as ``layer`` (weights loaded by :func:`adopt`)."""
    name = type(layer).__name__
    config = dict(
        units=layer.units, activation=_activation(layer.activation, "tanh"),
        use_bias=layer.use_bias, return_sequences=layer.return_sequences,
        return_state=layer.return_state, go_backwards=layer.go_backwards,
        zero_output_for_mask=layer.zero_output_for_mask,
        # Zeros: Keras's own random initializers would only be overwritten by adopt().
        kernel_initializer="zeros", recurrent_initializer="zeros", bias_initializer="zeros",
        dtype=layer.dtype, name=layer.name,
    )  # fmt: skip
    if name == "SimpleRNN":
        return _KerasSimpleRNN(**config)
    config["recurrent_activation"] = _activation(layer.recurrent_activation, "sigmoid")
    if name == "LSTM":
        return _KerasLSTM(**config, unit_forget_bias=False)
    return _KerasGRU(**config, reset_after=layer.reset_after)


# -- dualnet's own loop ---------------------------------------------------------------------


def _draw_masks(layer: Any, x: tf.Tensor, dtype: tf.DType) -> tuple[Any, Any]:
    """The neutral layer's dropout factors for this training call, as tensors (None where a
    rate is 0); in a graph, drawn by ``tf.numpy_function`` each time it runs (then ones stand
    for a rate of 0)."""
    if tf.executing_eagerly():
        masks = layer.next_dropout_masks(int(x.shape[0]))
        return tuple(None if m is None else tf.constant(m, dtype) for m in masks)
    count = layer.mask_count

    def host(batch: np.ndarray) -> list[np.ndarray]:
        b = int(batch)
        masks = layer.next_dropout_masks(b)
        sizes = (layer.in_features, layer.units)
        return [np.ones((count, b, n)) if m is None else m for m, n in zip(masks, sizes,
                                                                         strict=True)]  # fmt: skip

    din, drec = tf.numpy_function(host, [tf.shape(x)[0]], [tf.float64, tf.float64],
                                  stateful=True)  # fmt: skip
    din.set_shape((count, None, layer.in_features))
    drec.set_shape((count, None, layer.units))
    return (None if layer.dropout == 0.0 else tf.cast(din, dtype),
            None if layer.recurrent_dropout == 0.0 else tf.cast(drec, dtype))  # fmt: skip


def _per_gate(a: tf.Tensor, w: tf.Tensor, factors: Any, gates: int) -> tf.Tensor:
    """``a·w`` with ``a``'s features multiplied by the dropout factors ``(n, batch, features)``
    (n = 1: one shared by the gates; else one per gate block of ``w``); ``a`` is ``(batch,
    features)`` or ``(batch, T, features)``."""

    def scaled(f: tf.Tensor) -> tf.Tensor:
        return a * (f[:, None, :] if a.shape.rank == 3 else f)

    if factors is None:
        return tf.matmul(a, w) if a.shape.rank == 2 else tf.einsum("btf,fu->btu", a, w)
    product = tf.matmul if a.shape.rank == 2 else (lambda p, q: tf.einsum("btf,fu->btu", p, q))
    if factors.shape[0] == 1:
        return product(scaled(factors[0]), w)
    u = w.shape[-1] // gates
    return tf.concat([product(scaled(factors[g]), w[:, g * u:(g + 1) * u])
                      for g in range(gates)], axis=-1)  # fmt: skip


class Recurrent(Layer):
    """SimpleRNN, LSTM, GRU on Keras's ``rnn`` loop with dualnet's dropout masks (and float32
    math for half-precision layers)."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        named = dict(zip(layer.weight_names(), self.dualnet_variables, strict=True))
        object.__setattr__(self, "named", named)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return _output_mask(self.layer, mask)

    def call(self, x: tf.Tensor, initial_state: Any = None, mask: Any = None,
             training: Any = None) -> Any:  # fmt: skip
        layer = self.layer
        if mask is None:  # Keras fills mask= only for a call with one tensor argument
            mask = getattr(x, "_keras_mask", None)
        compute = tf.float32 if x.dtype in (tf.float16, tf.bfloat16) else x.dtype
        weights = [tf.cast(self.named[n].value, compute) if n in self.named else None
                   for n in ("kernel", "recurrent_kernel", "bias")]  # fmt: skip
        xc = tf.cast(x, compute)
        din = drec = None
        if training:
            din, drec = _draw_masks(layer, xc, compute)
        if initial_state is None:
            zeros = tf.zeros(tf.stack([tf.shape(xc)[0], layer.units]), compute)
            states = [zeros for _ in layer.state_names]
        else:
            given = initial_state if isinstance(initial_state, list | tuple) else [initial_state]
            states = [tf.cast(s, compute) for s in given]
        step, zx = _cell(layer, weights, xc, din, drec)
        last, sequence, states = keras_rnn(
            step, zx, states, go_backwards=layer.go_backwards, mask=mask,
            zero_output_for_mask=layer.zero_output_for_mask,
            return_all_outputs=layer.return_sequences,
        )  # fmt: skip
        y = tf.cast(sequence if layer.return_sequences else last, x.dtype)
        if not layer.return_state:
            return y
        return [y, *(tf.cast(s, x.dtype) for s in states)]


def _cell(layer: Any, weights: list[Any], x: tf.Tensor, din: Any,
          drec: Any) -> tuple[Any, tf.Tensor]:  # fmt: skip
    """The step function for Keras's ``rnn`` and its per-step inputs (the input projections
    of every step, ``(batch, T, G·u)``)."""
    kernel, recurrent, bias = weights
    name, u, G = type(layer).__name__, layer.units, layer.gates
    phi, sigma = layer.activation, layer.recurrent_activation
    reset_after = name == "GRU" and layer.reset_after
    b_in, b_rec = bias, None
    if bias is not None and reset_after:
        b_in, b_rec = bias[0], bias[1]
    zx = _per_gate(x, kernel, din, G)
    if b_in is not None:
        zx = zx + b_in

    def lstm_step(xt: tf.Tensor, states: Any) -> Any:
        h, c = states
        zi, zf, zc, zo = tf.split(xt + _per_gate(h, recurrent, drec, G), 4, axis=-1)
        c_new = activate(sigma, zf) * c + activate(sigma, zi) * activate(phi, zc)
        h_new = activate(sigma, zo) * activate(phi, c_new)
        return h_new, [h_new, c_new]

    def gru_step(xt: tf.Tensor, states: Any) -> Any:
        (h,) = states
        xz, xr, xh = tf.split(xt, 3, axis=-1)
        if reset_after:
            hp = _per_gate(h, recurrent, drec, G)
            if b_rec is not None:
                hp = hp + b_rec
            hz, hr, hh = tf.split(hp, 3, axis=-1)
            z, r = activate(sigma, xz + hz), activate(sigma, xr + hr)
            candidate = activate(phi, xh + r * hh)
        else:
            zr = None if drec is None or drec.shape[0] == 1 else drec[:2]
            hzr = _per_gate(h, recurrent[:, : 2 * u], drec if zr is None else zr, 2)
            hz, hr = tf.split(hzr, 2, axis=-1)
            z, r = activate(sigma, xz + hz), activate(sigma, xr + hr)
            h_h = h if drec is None else h * drec[2 % drec.shape[0]]
            candidate = activate(phi, xh + tf.matmul(r * h_h, recurrent[:, 2 * u :]))
        h_new = z * h + (1.0 - z) * candidate
        return h_new, [h_new]

    def simple_step(xt: tf.Tensor, states: Any) -> Any:
        h_new = activate(phi, xt + _per_gate(states[0], recurrent, drec, 1))
        return h_new, [h_new]

    step = {"LSTM": lstm_step, "GRU": gru_step}.get(name, simple_step)
    return step, zx


def _output_mask(layer: Any, mask: Any) -> Any:
    """Keras's: the input mask with ``return_sequences``, else None; None for each state."""
    out = mask if layer.return_sequences else None
    if not layer.return_state:
        return out
    return [out, *([None] * len(layer.state_names))]


def _native(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Layer:
    if _adoptable(layer):
        return adopt(_keras_layer(layer), layer, weights, layer.input_shape)
    return Recurrent(layer, weights)


def simple_rnn(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Layer:
    return _native(layer, weights)


def lstm(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Layer:
    return _native(layer, weights)


def gru(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Layer:
    return _native(layer, weights)


# -- Bidirectional --------------------------------------------------------------------------


class Bidirectional(keras.layers.Layer):
    """The forward and backward layers' natives on the same input, merged as Keras's wrapper
    does (Keras's own wrapper is not adopted: its directions may be dualnet's layers)."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(name=layer.name, dtype=layer.dtype)
        object.__setattr__(self, "layer", layer)
        fw, bw = layer.layers
        n = len(fw.weight_specs)
        self.forward_layer = _native(fw, weights[:n])
        self.backward_layer = _native(bw, weights[n:])
        variables = [*self.forward_layer.dualnet_variables,
                     *self.backward_layer.dualnet_variables]  # fmt: skip
        object.__setattr__(self, "dualnet_variables", variables)
        self.supports_masking = True
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self.layer.compute_output_shape(input_shape)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        layer = self.layer
        out = mask if layer.return_sequences else None
        head = [out, out] if layer.merge_mode is None else [out]
        if not layer.return_state:
            return head if layer.merge_mode is None else out
        states = sum(len(inner.state_names) for inner in layer.layers)
        return [*head, *([None] * states)]

    def call(self, x: tf.Tensor, initial_state: Any = None, mask: Any = None,
             training: Any = None) -> Any:  # fmt: skip
        layer = self.layer
        if mask is None:  # Keras fills mask= only for a call with one tensor argument
            mask = getattr(x, "_keras_mask", None)
        fw_layer, _ = layer.layers
        fw_init = bw_init = None
        if initial_state is not None:
            k = len(fw_layer.state_names)
            fw_init, bw_init = list(initial_state[:k]), list(initial_state[k:])
        results = []
        for native, init in ((self.forward_layer, fw_init), (self.backward_layer, bw_init)):
            out = native(x, initial_state=init, mask=mask, training=training)
            results.append(list(out) if layer.return_state else [out])
        (y, *fw_states), (y_rev, *bw_states) = results
        if layer.return_sequences:  # back to the forward time order
            y_rev = tf.reverse(y_rev, axis=[1])
        merged = _merge(layer.merge_mode, y, y_rev)
        if not layer.return_state:
            return merged
        head = merged if layer.merge_mode is None else [merged]
        return [*head, *fw_states, *bw_states]


def _merge(mode: str | None, y: tf.Tensor, y_rev: tf.Tensor) -> Any:
    """Keras's merge of the two directions."""
    if mode == "concat":
        return tf.concat([y, y_rev], axis=-1)
    if mode == "sum":
        return y + y_rev
    if mode == "mul":
        return y * y_rev
    if mode == "ave":
        return (y + y_rev) / 2
    return [y, y_rev]


def bidirectional(layer: Any, weights: Sequence[np.ndarray]) -> Bidirectional:
    return Bidirectional(layer, weights)
