"""Loss functions on tf.keras: per-sample values and the weighted reduction.

Inputs arrive validated, shape-aligned and in the compute dtype (the neutral layer in
:mod:`dualnet.losses` owns defaults, validation, label smoothing and dtype handling).

The regression losses call ``keras.losses`` directly. The cross-entropies are written with
``tf`` ops, following the formulas of ``keras/src/backend/tensorflow/nn.py``, instead of
calling ``keras.losses.*_crossentropy``, for two reasons:

* Keras's ``_get_logits`` silently swaps a tensor produced by ``keras.activations.sigmoid`` /
  ``softmax`` (it carries ``_keras_logits``) for its logits, so the same probabilities give
  different losses depending on where they came from (20.0 instead of 16.03 for σ(20) vs
  target 0). dualnet computes what it is given, as torch does.
* ``tf.nn.softmax_cross_entropy_with_logits`` returns the gradient ``softmax(x) - t``, which
  is the derivative of ``-Σ t·log_softmax(x)`` only when ``Σ t = 1``.
"""

from __future__ import annotations

import keras
import tensorflow as tf

_L = keras.losses


def reshape(x, shape):
    return tf.reshape(x, shape)


def reduce(values, weight, reduction, count):
    if weight is not None:
        values = values * weight
    if reduction == "none":
        return values
    total = tf.reduce_sum(values)
    if reduction == "sum":
        return total
    # "sum_over_batch_size", as keras/src/losses/loss.py: divide_no_nan by the element count.
    return tf.math.divide_no_nan(total, tf.cast(count, total.dtype))


def mean_squared_error(t, p):
    return _L.mean_squared_error(t, p)


def mean_squared_error_mean(t, p, count):
    """Keras's unweighted ``sum_over_batch_size`` MSE as Keras computes it: the per-sample
    means, summed, ÷ ``count`` (the namesake on torch is one fused kernel)."""
    return reduce(mean_squared_error(t, p), None, "sum_over_batch_size", count)


def mean_absolute_error(t, p):
    return _L.mean_absolute_error(t, p)


def huber(t, p, delta):
    return _L.huber(t, p, delta=delta)


def smooth_l1(t, p, beta):
    # torch's SmoothL1Loss(beta) is Huber(delta=beta) / beta.
    return _L.huber(t, p, delta=beta) / tf.constant(beta, p.dtype)


def binary_crossentropy(t, p, *, from_logits, axis, clip, epsilon):
    if from_logits:
        ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=t, logits=p)
    elif clip == "torch":
        ce = _torch_bce(t, p)
    else:
        # Keras's rule (keras/src/backend/tensorflow/nn.py binary_crossentropy).
        p = tf.clip_by_value(p, epsilon, 1.0 - epsilon)
        ce = -(t * tf.math.log(p) + (1.0 - t) * tf.math.log(1.0 - p))
    return tf.reduce_mean(ce, axis=axis)


@tf.custom_gradient
def _torch_bce(t, p):
    """torch.nn.functional.binary_cross_entropy: logs clamped at -100, with torch's gradient.

    Autodiff of ``max(log p, -100)`` would give ``0·(1/0) = NaN`` at p = 0; torch's backward
    is ``(p - t) / max(p·(1-p), 1e-12)`` for p and ``log(1-p) - log p`` (clamped) for t.
    """
    log_p = tf.maximum(tf.math.log(p), -100.0)
    log_q = tf.maximum(tf.math.log(1.0 - p), -100.0)
    loss = -(t * log_p + (1.0 - t) * log_q)

    def grad(dy):
        gp = dy * (p - t) / tf.maximum(p * (1.0 - p), tf.constant(1e-12, p.dtype))
        return dy * (log_q - log_p), gp

    return loss, grad


def categorical_crossentropy(t, p, *, from_logits, axis, epsilon):
    if from_logits:
        return -tf.reduce_sum(t * tf.nn.log_softmax(p, axis=axis), axis=axis)
    # Keras's rule: normalise along the class axis, clip, log.
    p = tf.clip_by_value(p / tf.reduce_sum(p, axis=axis, keepdims=True), epsilon, 1.0 - epsilon)
    return -tf.reduce_sum(t * tf.math.log(p), axis=axis)


def _to_last(x, axis):
    rank = len(x.shape)
    if axis == rank - 1:
        return x
    perm = [d for d in range(rank) if d != axis] + [axis]
    return tf.transpose(x, perm)


def sparse_categorical_crossentropy(labels, p, *, from_logits, axis, epsilon, valid):
    p = _to_last(p, axis)  # Keras's TF backend supports only axis=-1; move the class axis there
    if valid is not None:
        # As Keras: ignored rows become zeros first, so they cannot produce inf/NaN or gradient.
        p = tf.where(valid[..., None], p, tf.zeros((), p.dtype))
    if not from_logits:
        # Keras's rule: clip, log, then the fused log-softmax cross-entropy.
        p = tf.math.log(tf.clip_by_value(p, epsilon, 1.0 - epsilon))
    # The fused op's gradient softmax - onehot is exact here: a one-hot target sums to 1.
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=p)
    if valid is not None:
        ce = tf.where(valid, ce, tf.zeros((), ce.dtype))
    return ce
