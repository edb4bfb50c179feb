"""float64 numpy reference of the normalization layers, written from the documented math (the
docstrings of :mod:`dualnet.layers.normalization`), independent of both frameworks.

Each function takes the input, the weights as a dict of canonical arrays and the layer's config
as keywords (``layer.get_config()`` without name/dtype/trainable) plus ``training``; it returns
the output, or for a BatchNormalization training call ``(output, {"moving_mean": ...,
"moving_variance": ...})``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

# Keras's UnitNormalization floors the norm at 1e-12 (its inverse is capped at 1e12).
UNIT_EPSILON = 1e-12


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _axes(axis, ndim: int) -> tuple[int, ...]:
    """``axis`` (an int or a list) as sorted non-negative axes."""
    items = [axis] if isinstance(axis, int | np.integer) else list(axis)
    return tuple(sorted(int(a) % ndim for a in items))


def _over(values: np.ndarray, ndim: int, axes: Sequence[int]) -> np.ndarray:
    """A weight shaped by the sizes of ``axes`` (in increasing order), reshaped to broadcast
    against an input of rank ``ndim``."""
    values = _f64(values)
    shape = [1] * ndim
    for size, a in zip(values.shape, axes, strict=True):
        shape[a] = size
    return values.reshape(shape)


def _moments(x: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and *biased* variance over ``axes`` (kept, for broadcasting), two-pass."""
    mean = x.mean(axis=axes, keepdims=True)
    return mean, np.square(x - mean).mean(axis=axes, keepdims=True)


def _affine(y: np.ndarray, weights: Mapping[str, np.ndarray], axes: Sequence[int], *,
            scale: bool, center: bool) -> np.ndarray:  # fmt: skip
    if scale:
        y = y * _over(weights["gamma"], y.ndim, axes)
    if center:
        y = y + _over(weights["beta"], y.ndim, axes)
    return y


def batch_normalization(x, weights, *, axis=-1, momentum=0.99, epsilon=1e-3, center=True,
                        scale=True, moving_variance_estimator="biased", training=False,
                        mask=None, **_):  # fmt: skip
    """``γ·(x - μ)/√(σ² + ε) + β`` per channel of ``axis``.

    Training: μ, σ² = the batch mean and biased variance over every other axis, and returns
    ``(y, state)`` with ``moving = momentum·moving + (1 - momentum)·statistic`` where the
    variance statistic is σ² (``"biased"``) or σ²·n/(n-1) (``"unbiased"``). Inference: μ, σ² =
    the moving statistics.

    With a mask (Note [Masks]: the input's leading axes) in training, μ and σ² are taken over
    the valid entries only, ``n`` being their count per channel (Keras divides by
    ``n + 1e-7``; an all-masked batch gives μ = σ² = 0 in both)."""
    x = _f64(x)
    channel = _axes(axis, x.ndim)
    others = tuple(a for a in range(x.ndim) if a not in channel)
    moving_mean = _f64(weights["moving_mean"])
    moving_variance = _f64(weights["moving_variance"])
    n = x.size // x.shape[channel[0]]  # values per channel
    if training and mask is not None:
        m = np.asarray(mask, bool)
        valid = np.broadcast_to(m.reshape(m.shape + (1,) * (x.ndim - m.ndim)), x.shape)
        count = valid.sum(axis=others, keepdims=True)
        mean = np.where(valid, x, 0.0).sum(axis=others, keepdims=True) / np.maximum(count, 1)
        variance = (np.where(valid, np.square(x - mean), 0.0).sum(axis=others, keepdims=True)
                    / np.maximum(count, 1))  # fmt: skip
        n = count.reshape(-1)
        if moving_variance_estimator == "unbiased" and np.any(n < 2):
            raise ValueError(f"batch_normalization: unbiased variance of n={n.min()} values")
    elif training:
        mean, variance = _moments(x, others)
    else:
        mean = _over(moving_mean, x.ndim, channel)
        variance = _over(moving_variance, x.ndim, channel)
    y = _affine((x - mean) / np.sqrt(variance + epsilon), weights, channel,
                scale=scale, center=center)  # fmt: skip
    if not training:
        return y
    batch_mean, batch_variance = mean.reshape(-1), variance.reshape(-1)
    if moving_variance_estimator == "unbiased":
        batch_variance = batch_variance * n / (n - 1)  # Bessel's correction (torch's update)
    state = {
        "moving_mean": moving_mean * momentum + batch_mean * (1.0 - momentum),
        "moving_variance": moving_variance * momentum + batch_variance * (1.0 - momentum),
    }
    return y, state


def layer_normalization(x, weights, *, axis=-1, epsilon=1e-3, center=True, scale=True, **_):
    """``γ·(x - μ)/√(σ² + ε) + β`` with μ and the biased σ² over ``axis``, per sample and per
    position of the other axes; γ, β shaped over the normalised axes."""
    x = _f64(x)
    axes = _axes(axis, x.ndim)
    mean, variance = _moments(x, axes)
    return _affine((x - mean) / np.sqrt(variance + epsilon), weights, axes,
                   scale=scale, center=center)  # fmt: skip


def group_normalization(x, weights, *, groups=32, axis=-1, epsilon=1e-3, center=True,
                        scale=True, **_):  # fmt: skip
    """Channels split into ``groups`` blocks of consecutive channels (``-1``: one per channel);
    each sample normalised over every non-batch position of each block; γ, β per channel."""
    x = _f64(x)
    (channel,) = _axes(axis, x.ndim)
    moved = np.moveaxis(x, channel, -1)  # (batch, ..., C)
    channels = moved.shape[-1]
    groups = channels if groups == -1 else groups
    grouped = moved.reshape((*moved.shape[:-1], groups, channels // groups))
    # Everything but the batch and the group axis: the spatial axes and the channels of a block.
    reduce = (*range(1, grouped.ndim - 2), grouped.ndim - 1)
    mean, variance = _moments(grouped, reduce)
    normalised = ((grouped - mean) / np.sqrt(variance + epsilon)).reshape(moved.shape)
    y = np.moveaxis(normalised, -1, channel)
    return _affine(y, weights, (channel,), scale=scale, center=center)


def rms_normalization(x, weights, *, axis=-1, epsilon=1e-6, **_):
    """``scale · x / √(mean(x²) + ε)``, the mean over ``axis``; ``scale`` shaped over the
    normalised axes."""
    x = _f64(x)
    axes = _axes(axis, x.ndim)
    mean_square = np.square(x).mean(axis=axes, keepdims=True)
    return x / np.sqrt(mean_square + epsilon) * _over(weights["scale"], x.ndim, axes)


def unit_normalization(x, weights=None, *, axis=-1, **_):
    """``x · min(1/‖x‖, 1e12)`` with the L2 norm over ``axis`` (Keras's formula: a zero vector
    gives zeros)."""
    x = _f64(x)
    axes = _axes(axis, x.ndim)
    square_sum = np.square(x).sum(axis=axes, keepdims=True)
    with np.errstate(divide="ignore"):  # 1/√0 = inf, capped below
        inverse = np.minimum(1.0 / np.sqrt(square_sum), 1.0 / UNIT_EPSILON)
    return x * inverse
