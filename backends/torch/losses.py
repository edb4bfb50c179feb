"""Loss functions on PyTorch: per-sample values and the weighted reduction.

Inputs arrive validated, shape-aligned and in the compute dtype (the neutral layer in
:mod:`dualnet.losses` owns defaults, validation, label smoothing and dtype handling). The
cross-entropies on probabilities follow Keras's rule (clip p to [ε, 1-ε], then log), written
with torch ops, because torch's own ``binary_cross_entropy`` clamps the log at -100 instead;
that op is used only for the explicit ``clip="torch"`` mode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reshape(x, shape):
    return torch.reshape(x, shape)


def _on(x, ref):
    # Targets, labels and weights given as numpy are created on the current device scope;
    # follow y_pred's device instead (a no-op when they already match).
    return x if x.device == ref.device else x.to(ref.device)


def reduce(values, weight, reduction, count):
    if weight is not None:
        values = values * _on(weight, values)
    if reduction == "none":
        return values
    total = torch.sum(values)
    if reduction == "sum":
        return total
    # "sum_over_batch_size": divide by the element count; Keras's divide_no_nan gives 0 for a
    # zero count (every label ignored). `total * 0` keeps the result in the autograd graph.
    return total / count if count else total * 0.0


def mean_squared_error(t, p):
    return torch.mean(torch.square(_on(t, p) - p), dim=-1)


def mean_squared_error_mean(t, p, count):
    """``reduce(mean_squared_error(t, p), None, "sum_over_batch_size", count)`` as torch's one
    fused kernel (``MSELoss``: Σ e² over every element ÷ their number, the same number in
    exact arithmetic since every one of the ``count`` samples has ``p.shape[-1]`` values);
    None where that kernel does not apply (broadcast targets, no elements)."""
    t = _on(t, p)
    if t.shape != p.shape or p.numel() == 0 or count * p.shape[-1] != p.numel():
        return None
    return F.mse_loss(p, t)


def mean_absolute_error(t, p):
    return torch.mean(torch.abs(_on(t, p) - p), dim=-1)


def huber(t, p, delta):
    # F.huber_loss is exactly Keras's piecewise rule (it takes the linear branch at |e| == δ,
    # Keras the quadratic one; value ½δ² and slope ±δ agree there).
    return torch.mean(F.huber_loss(p, _on(t, p), reduction="none", delta=delta), dim=-1)


def smooth_l1(t, p, beta):
    return torch.mean(F.smooth_l1_loss(p, _on(t, p), reduction="none", beta=beta), dim=-1)


def binary_crossentropy(t, p, *, from_logits, axis, clip, epsilon):
    t = _on(t, p)
    if from_logits:
        # max(x, 0) - x·t + log1p(e^{-|x|}) internally: finite for |x| = 1e4.
        ce = F.binary_cross_entropy_with_logits(p, t, reduction="none")
    elif clip == "torch":
        ce = F.binary_cross_entropy(p, t, reduction="none")  # log clamped at -100 (torch)
    else:
        # Keras: clip p, not the log. The Python bounds are rounded to p's dtype by clamp, as
        # tf.clip_by_value does; clamp's gradient passes at the bounds and is 0 outside.
        p = torch.clamp(p, epsilon, 1.0 - epsilon)
        ce = -(t * torch.log(p) + (1.0 - t) * torch.log(1.0 - p))
    return torch.mean(ce, dim=axis)


def categorical_crossentropy(t, p, *, from_logits, axis, epsilon):
    t = _on(t, p)
    if from_logits:
        return -torch.sum(t * F.log_softmax(p, dim=axis), dim=axis)
    # Keras: normalise along the class axis, then clip, then log.
    p = torch.clamp(p / torch.sum(p, dim=axis, keepdim=True), epsilon, 1.0 - epsilon)
    return -torch.sum(t * torch.log(p), dim=axis)


def sparse_categorical_crossentropy(labels, p, *, from_logits, axis, epsilon, valid):
    labels = _on(labels, p)
    valid = None if valid is None else _on(valid, p)
    p = torch.movedim(p, axis, -1)
    if valid is not None:
        # As Keras: ignored rows become zeros first, so they cannot produce inf/NaN or gradient.
        p = torch.where(valid[..., None], p, p.new_zeros(()))
    if not from_logits:
        # Keras: clip, log, then a log-softmax (so -log(clip(p)_y / Σ clip(p))).
        p = torch.log(torch.clamp(p, epsilon, 1.0 - epsilon))
    ce = -torch.gather(F.log_softmax(p, dim=-1), -1, labels[..., None])[..., 0]
    if valid is not None:
        ce = torch.where(valid, ce, ce.new_zeros(()))
    return ce
