"""Attention layers on tf.keras (builders named like the neutral classes).

MultiHeadAttention (Note [Multi-head attention] in :mod:`dualnet.layers.attention`) is a custom
Keras layer with the ops of Keras's own ``MultiHeadAttention``'s explicit path (``einsum``
projections, the query scaled before ``einsum`` with the key, ``softmax``, ``einsum`` with the
value, ``einsum`` output projection), not Keras's layer itself:

* Keras's layer takes ``ops.dot_product_attention`` when there is no dropout and no
  ``return_attention_scores``, which gives a query row with no key to attend to the uniform
  average of the values; dualnet's rule is zero weights (Keras's explicit path);
* its dropout draws from TensorFlow's generator; dualnet's masks are the portable ones.

``tests/test_layers_attention.py`` checks this layer against Keras's own with the same weights.
The variables are created in sub-layers named ``query``, ``key``, ``value`` and
``attention_output`` so that their paths are Keras's (``<layer>/query/kernel``, ...).
Half precision: computed in float32, rounded once at the end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from dualnet.backends.tensorflow.layers.base import Layer, compute_dtype
from dualnet.backends.tensorflow.layers.regularization import _draw

from dualnet.layers.attention import fold_permutation


class MultiHeadAttention(Layer):
    """Projections, scores, masked softmax, portable dropout and output projection with
    ``einsum`` (see the module note)."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        # Not Layer.__init__: Keras refuses "/" in a variable name, so each projection's
        # variables live in a sub-layer of that name.
        keras.layers.Layer.__init__(self, name=layer.name, dtype=layer.dtype)
        object.__setattr__(self, "layer", layer)
        groups: dict[str, keras.layers.Layer] = {}
        variables = []
        for spec, array in zip(layer.weight_specs, weights, strict=True):
            group, name = spec.name.split("/")
            if group not in groups:
                groups[group] = keras.layers.Layer(name=group, dtype=layer.dtype)
            with keras.name_scope(layer.name, caller=self):  # paths <layer>/<group>/<name>
                variable = groups[group].add_weight(
                    name=name, shape=spec.shape, initializer="zeros", trainable=spec.trainable,
                    dtype=layer.dtype,
                )  # fmt: skip
            variable.assign(np.asarray(array))
            variables.append(variable)
        self.projections = list(groups.values())  # tracked: their variables are this layer's
        object.__setattr__(self, "named", dict(zip(layer.weight_names(), variables, strict=True)))
        object.__setattr__(self, "dualnet_variables", variables)
        self.supports_masking = True
        self.built = True

    def _weight(self, name: str, dtype: tf.DType) -> tf.Tensor | None:
        variable = self.named.get(name)
        return None if variable is None else tf.cast(variable, dtype)

    def _project(self, x: tf.Tensor, name: str, dtype: tf.DType) -> tf.Tensor:
        """``x (B', L, E) -> (B', L, N, H)``: Keras's EinsumDense ``abc,cde->abde`` + bias."""
        y = tf.einsum("abc,cde->abde", x, self._weight(f"{name}/kernel", dtype))
        bias = self._weight(f"{name}/bias", dtype)
        return y if bias is None else y + bias

    def call(self, query: tf.Tensor, value: Any = None, key: Any = None, query_mask: Any = None,
             value_mask: Any = None, key_mask: Any = None, attention_mask: Any = None,
             return_attention_scores: bool = False, training: Any = None,
             use_causal_mask: bool = False) -> Any:  # fmt: skip
        layer = self.layer
        out_dtype = query.dtype
        dtype = compute_dtype(query)  # half: float32 math
        rank = query.shape.rank
        layer.check_input_masks(tuple(query.shape), query_mask, value_mask, key_mask)
        axes = layer.resolved_axes(rank)
        perm = None if axes == (1,) and rank == 3 else fold_permutation(rank, axes)
        xq = _fold(tf.cast(query, dtype), perm, len(axes))
        xv = _fold(tf.cast(value, dtype), perm, len(axes))
        xk = xv if key is None else _fold(tf.cast(key, dtype), perm, len(axes))
        q = self._project(xq, "query", dtype)  # (B', T, N, H)
        k = self._project(xk, "key", dtype)
        v = self._project(xv, "value", dtype)
        # Keras scales the query before the product.
        q = q * tf.constant(layer.scale, dtype)
        scores = tf.einsum("aecd,abcd->acbe", k, q)  # Keras's equation: (B', N, T, S)
        allowed = _attention_mask(tf.shape(xq)[1], tf.shape(xv)[1], attention_mask, query_mask,
                                  value_mask, key_mask if key is not None else None,
                                  use_causal_mask)  # fmt: skip
        if allowed is not None:
            # A row with no key to attend to attends to all of them, then gives zeros: the
            # documented zero weights, with zero gradients (-inf elsewhere: exp(-inf) = 0).
            rows = tf.reduce_any(allowed, axis=-1, keepdims=True)
            safe = tf.logical_or(allowed, tf.logical_not(rows))[:, None]
            scores = tf.where(safe, scores, tf.constant(-math.inf, dtype))
        probs = tf.nn.softmax(scores, axis=-1)
        if allowed is not None:
            probs = tf.where(allowed[:, None], probs, tf.zeros((), dtype))
        weights = probs
        if training:
            # Every training call draws (and counts), as the torch module does.
            keep = _draw(probs, layer.next_keep_mask, tf.bool, True)
            if keep is not None:
                scale = tf.constant(layer.dropout_scale, dtype)  # rounded once (Dropout's)
                weights = tf.where(keep, probs * scale, tf.zeros((), dtype))
                weights.set_shape(probs.shape)  # a graph's host-drawn mask has no static shape
        context = tf.einsum("acbe,aecd->abcd", weights, v)  # (B', T, N, Hv)
        kernel = self._weight("attention_output/kernel", dtype)
        features = kernel.shape[2:]
        flat = tf.reshape(kernel, (kernel.shape[0], kernel.shape[1], -1))
        out = tf.einsum("abcd,cde->abe", context, flat)
        bias = self._weight("attention_output/bias", dtype)
        if bias is not None:
            out = out + tf.reshape(bias, (-1,))
        out = tf.cast(_unfold(out, perm, query, len(axes), features), out_dtype)
        if not return_attention_scores:
            return out
        return [out, tf.cast(_unfold_scores(probs, query, value, axes), out_dtype)]

    def compute_output_shape(self, query_shape: Any, value_shape: Any = None,
                             key_shape: Any = None) -> Any:  # fmt: skip
        return self.layer.compute_output_shape(query_shape, value=value_shape, key=key_shape)

    def compute_output_spec(self, query: Any, value: Any = None, key: Any = None,
                            return_attention_scores: bool = False, **_: Any) -> Any:  # fmt: skip
        """Symbolic outputs (a Keras functional model): two with ``return_attention_scores``."""
        shapes = self.layer.compute_output_shape(
            query.shape, value=value.shape, key=None if key is None else key.shape,
            return_attention_scores=return_attention_scores,
        )  # fmt: skip
        if isinstance(shapes, list):
            return [keras.KerasTensor(s, dtype=self.compute_dtype) for s in shapes]
        return keras.KerasTensor(shapes, dtype=self.compute_dtype)


def _attention_mask(t: Any, s: Any, attention_mask: Any, mask: Any, value_mask: Any,
                    key_mask: Any, causal: bool) -> tf.Tensor | None:  # fmt: skip
    """Keras's ``_compute_attention_mask``: the AND of every mask given, True = attend,
    broadcast to ``(B or 1, T, S)`` (None when there is none)."""
    parts = []
    if attention_mask is not None:
        am = attention_mask
        parts.append(am if am.dtype == tf.bool else tf.not_equal(am, 0))  # nonzero = attend
    if mask is not None:
        parts.append(tf.cast(mask, tf.bool)[:, :, None])  # the query's: rows
    for m in (value_mask, key_mask):
        if m is not None:
            parts.append(tf.cast(m, tf.bool)[:, None, :])  # the value's/key's: columns
    if causal:
        parts.append(tf.linalg.band_part(tf.ones((1, t, s), tf.bool), -1, 0))  # t >= u
    if not parts:
        return None
    allowed = parts[0]
    for part in parts[1:]:
        allowed = tf.logical_and(allowed, part)
    return tf.logical_and(allowed, tf.ones((1, t, s), tf.bool))


def _fold(x: tf.Tensor, perm: tuple[int, ...] | None, n_att: int) -> tf.Tensor:
    """``(B, *others, *attention, E)`` in ``perm``'s order -> ``(B·others, attention, E)``."""
    if perm is None:
        return x
    x = tf.transpose(x, perm)
    sizes = x.shape[x.shape.rank - 1 - n_att : -1]
    return tf.reshape(x, (-1, math.prod(sizes), x.shape[-1]))


def _unfold(y: tf.Tensor, perm: tuple[int, ...] | None, query: tf.Tensor, n_att: int,
            features: Sequence[int]) -> tf.Tensor:  # fmt: skip
    """``(B', T, prod(features))`` -> ``(*query's leading axes, *features)``."""
    if perm is None:
        return tf.reshape(y, (tf.shape(y)[0], tf.shape(y)[1], *features))
    rank = query.shape.rank
    folded = [query.shape[a] for a in perm[1:-1]]  # (*others, *attention) in perm's order
    y = tf.reshape(y, (-1, *folded, *features))
    inverse = [int(i) for i in np.argsort(perm[:-1])]
    return tf.transpose(y, (*inverse, *range(rank - 1, rank - 1 + len(features))))


def _unfold_scores(p: tf.Tensor, query: tf.Tensor, value: tf.Tensor,
                   axes: Sequence[int]) -> tf.Tensor:  # fmt: skip
    """``(B', N, T, S) -> (B, *others, N, *query attention axes, *key attention axes)``."""
    rank = query.shape.rank
    if rank == 3:
        return p
    others = [query.shape[a] for a in range(1, rank - 1) if a not in axes]
    return tf.reshape(p, (-1, *others, p.shape[1], *(query.shape[a] for a in axes),
                          *(value.shape[a] for a in axes)))  # fmt: skip


def multi_head_attention(layer: Any, weights: Sequence[np.ndarray]) -> MultiHeadAttention:
    return MultiHeadAttention(layer, weights)
