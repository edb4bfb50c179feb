"""Loss functions: one definition, both backends, Keras 3 semantics.

A loss is a frozen, validated spec object; calling it returns a native tensor of the active
backend::

    loss = dn.losses.CategoricalCrossentropy(from_logits=True)
    value = loss(y_true, logits)                       # scalar
    per_sample = dn.losses.categorical_crossentropy(y_true, logits, from_logits=True)

Inputs may be numpy arrays, lists or native tensors. ``y_pred`` fixes the dtype (lists become
float32, integer predictions are cast to float32, as Keras casts to ``floatx``); ``y_true`` is
cast to it (integer class labels for :class:`SparseCategoricalCrossentropy`). The float64
reference in :mod:`dualnet.reference.losses` gives every formula as code.

How a loss is reduced (Keras 3, ``keras/src/losses/loss.py``)
-------------------------------------------------------------
1. The *per-sample* loss: the mean over the last axis (MSE, MAE, Huber, SmoothL1, binary
   cross-entropy, whose ``axis`` picks the averaged axis) or the cross-entropy over the class
   axis (categorical, sparse). ``(B, T, F)`` inputs give ``(B, T)`` per-sample values.
2. ``sample_weight`` multiplies the per-sample values. It may be a scalar, have their shape, or
   be a *prefix* of it (``(B,)`` for ``(B, T)`` values: one weight per sample, expanded on the
   right); a trailing axis of size 1 is squeezed/expanded as Keras does.
3. The reduction: ``"none"`` returns the weighted per-sample values; ``"sum"`` their sum;
   ``"sum_over_batch_size"`` (default; ``"mean"`` is the same, as in Keras 3) the sum divided
   by the **number of per-sample values**, zero-weight samples included. With
   ``ignore_class`` the divisor is the number of non-ignored labels (Keras's mask). A zero
   divisor gives 0 (Keras's ``divide_no_nan``).

4. A mask attached to ``y_pred`` (Note [Masks] in :mod:`dualnet.layers.base`: an
   ``Embedding(mask_zero=True)`` upstream) weights the per-sample values by 0 at masked steps;
   ``"sum_over_batch_size"`` then divides by the number of *valid* steps (Keras's
   ``apply_mask``: the mean over the real timesteps, 0 if there is none), ``"sum"`` and
   ``"none"`` just weight. torch has no masks: a torch user passes ``reduction="none"`` and
   averages by hand. A mask together with ``ignore_class`` is refused (Keras intersects them).

float16/bfloat16 predictions are computed in float32 and the result rounded once to the input
dtype. (Keras computes losses in ``floatx`` = float32 and *returns* float32; torch computes in
the input dtype with float32 accumulation. dualnet returns the input dtype, computed as Keras.)
float64 stays float64 (Keras would compute a float64 input in float32 unless the loss is built
with ``dtype="float64"``).

Where torch and Keras disagree (and what dualnet does)
------------------------------------------------------
* **Cross-entropy on probabilities.** Keras normalises (categorical), clips p to [ε, 1-ε] with
  ε = 1e-7, then takes the log. torch's ``BCELoss`` clamps the *log* at -100 and has no
  probability form of the categorical loss. On ``y_true=[1,0,1,0]``, ``y_pred=[1,1,1,0]``:
  Keras 3.98559 (float32), torch 25.0. dualnet: Keras on both backends;
  ``BinaryCrossentropy(clip="torch")`` gives torch's number (and gradient) on both.
* **Provenance of probabilities.** On TF, Keras silently replaces a tensor made by
  ``keras.activations.sigmoid``/``softmax`` by its logits (``_keras_logits``): σ(20) against
  target 0 costs 20.0 instead of 16.03. torch and dualnet compute what they are given.
* **Default reduction.** Keras ``sum_over_batch_size``: mean over the last axis, then the sum
  over samples divided by their number (zero weights counted). torch ``'mean'``: the mean
  over all elements (the same number for MSE without weights; torch has no per-sample
  weights). dualnet: Keras.
* **ignore_class / ignore_index.** Both divide by the number of non-ignored labels. Same.
* **(B,) sample weights on (B, T) per-sample values.** Keras 3 multiplies along the *last*
  axis: an error, or silently wrong weights when B == T. dualnet: one weight per sample
  (leading axes), as Keras 2 did.
* **Shapes (B,) vs (B, 1).** Keras squeezes/expands the trailing 1; torch's ``MSELoss``
  broadcasts to (B, B) with a warning. dualnet: Keras; any other mismatch is an error.
* **Huber / SmoothL1.** Keras ``Huber(delta=1)`` = torch ``HuberLoss(delta=1)``; torch's
  ``SmoothL1Loss(beta)`` = Huber(beta)/beta, equal only at 1. dualnet has both, named apart
  (``beta = 0``, torch's L1 special case, is refused).
* **Cross-entropy from logits.** Both use a log-softmax; TF's fused
  ``softmax_cross_entropy_with_logits`` (behind Keras) has gradient ``softmax - t``, wrong when
  the targets do not sum to 1. dualnet: ``-Σ t·log_softmax``, exact gradient on both.
* **dtype.** Keras computes in the loss's dtype (``floatx`` = float32 by default, even for
  float64 inputs); torch in the input dtype. dualnet: y_pred's dtype, half precision in
  float32 (above).

The shared machinery (the ``Loss`` base, the reduction, Note [Checked once per signature])
is in :mod:`dualnet.loss_base`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from dualnet import _ops
from dualnet.dtypes import FLOAT_DTYPES, INT_DTYPES
from dualnet.errors import bad_type, bad_value, check_real, unknown_name
from dualnet.loss_base import (
    CLIP_MODES,
    EPSILON,
    REDUCTIONS,  # noqa: F401 (re-exported: dn.losses.REDUCTIONS)
    TORCH_LOG_CLAMP,  # noqa: F401 (re-exported)
    Loss,
    _align_shapes,
    _canonical_axis,
    _dtype_of,
    _flag,
    _int,
    _losses,
    _shape,
    _shape_error,
)

__all__ = [
    "BinaryCrossentropy", "CategoricalCrossentropy", "Huber", "Loss", "MeanAbsoluteError",
    "MeanSquaredError", "SmoothL1", "SparseCategoricalCrossentropy", "binary_crossentropy",
    "categorical_crossentropy", "get", "huber", "mean_absolute_error", "mean_squared_error",
    "serialize", "smooth_l1", "sparse_categorical_crossentropy",
]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class MeanSquaredError(Loss):
    """Mean squared error, ``mean((y_true - y_pred)², axis=-1)`` per sample.

    torch's ``MSELoss(reduction='mean')`` averages over all elements, which is the same number
    without weights; ``reduction='none'`` there is element-wise, here per sample.

    ====================  ================================  ==============================
    unweighted mean       how it is computed                rounding
    ====================  ================================  ==============================
    Keras                 per-sample means, their sum,      sums of ``D``, then of ``B``
                          ÷ batch                           terms
    torch ``MSELoss()``   one kernel: Σ e² ÷ (B·D)          one sum of ``B·D`` terms
    dualnet               Keras's on TensorFlow,            the same number; the sums
                          ``MSELoss``'s on torch            differ by their rounding
    ====================  ================================  ==============================

    The two are equal in exact arithmetic (every sample has ``D`` values); on torch the fused
    kernel takes one autograd node where the formula takes five, which is most of what a
    small network's training step spends on its loss. Weighted, masked and ``"sum"`` /
    ``"none"`` reductions follow the per-sample formula on both backends.
    """

    default_name: ClassVar[str] = "mean_squared_error"

    def _signature_checked(self):
        return True

    def _layout(self, ts, ps, where):
        return (*_align_shapes(ts, ps, where), None)

    def _kernel(self, t, p, axis):
        return _losses().mean_squared_error(t, p)

    def _whole(self, t, p, axis, count):
        return _losses().mean_squared_error_mean(t, p, count)


@dataclass(frozen=True, kw_only=True)
class MeanAbsoluteError(Loss):
    """Mean absolute error, ``mean(|y_true - y_pred|, axis=-1)`` per sample.

    The derivative of ``|e|`` at ``e = 0`` is 0 in both frameworks.
    """

    default_name: ClassVar[str] = "mean_absolute_error"

    def _signature_checked(self):
        return True

    def _layout(self, ts, ps, where):
        return (*_align_shapes(ts, ps, where), None)

    def _kernel(self, t, p, axis):
        return _losses().mean_absolute_error(t, p)


@dataclass(frozen=True, kw_only=True)
class Huber(Loss):
    """Huber loss, per element ``½e²`` if ``|e| ≤ δ`` else ``δ·|e| - ½δ²``, then the mean over
    the last axis (``e = y_pred - y_true``).

    Keras ``Huber`` and torch ``HuberLoss`` use the same formula and ``δ = 1``. The loss is
    C¹: both branches have value ``½δ²`` and slope ``±δ`` at ``|e| = δ``.

    Args:
        delta: the threshold ``δ > 0`` between the quadratic and the linear part.
    """

    delta: float = 1.0
    default_name: ClassVar[str] = "huber_loss"

    def _validate(self, where):
        delta = check_real("delta", self.delta, where)
        if not delta > 0:
            raise bad_value("delta", self.delta, "a number > 0", where=where)
        object.__setattr__(self, "delta", delta)

    def _signature_checked(self):
        return True

    def _layout(self, ts, ps, where):
        return (*_align_shapes(ts, ps, where), None)

    def _kernel(self, t, p, axis):
        return _losses().huber(t, p, self.delta)


@dataclass(frozen=True, kw_only=True)
class SmoothL1(Loss):
    """torch's smooth L1 loss: ``½e²/β`` if ``|e| < β`` else ``|e| - ½β``, mean over the last
    axis.

    ``SmoothL1(beta=β) = Huber(delta=β) / β``: it equals Huber only at ``β = 1``. Keras has no
    such loss; torch's ``SmoothL1Loss`` takes ``beta = 0`` to mean L1, which dualnet refuses
    (use :class:`MeanAbsoluteError`).

    Args:
        beta: the threshold ``β > 0``.
    """

    beta: float = 1.0
    default_name: ClassVar[str] = "smooth_l1"

    def _validate(self, where):
        beta = check_real("beta", self.beta, where)
        if not beta > 0:
            raise bad_value("beta", self.beta, "a number > 0 (use MeanAbsoluteError for 0)",
                            where=where)  # fmt: skip
        object.__setattr__(self, "beta", beta)

    def _signature_checked(self):
        return True

    def _layout(self, ts, ps, where):
        return (*_align_shapes(ts, ps, where), None)

    def _kernel(self, t, p, axis):
        return _losses().smooth_l1(t, p, self.beta)


def _validate_ce(loss: Any, where: str, *, smoothing: bool) -> None:
    _flag("from_logits", loss.from_logits, where)
    _int("axis", loss.axis, where)
    if smoothing:
        ls = check_real("label_smoothing", loss.label_smoothing, where)
        if not 0.0 <= ls <= 1.0:
            raise bad_value("label_smoothing", loss.label_smoothing, "a number in [0, 1]",
                            where=where)  # fmt: skip
        object.__setattr__(loss, "label_smoothing", ls)


@dataclass(frozen=True, kw_only=True)
class BinaryCrossentropy(Loss):
    """Binary cross-entropy, ``-[t·log p + (1-t)·log(1-p)]`` per element, then the mean over
    ``axis``.

    * ``from_logits=False`` (Keras semantics, both backends): ``p`` is clipped to
      ``[ε, 1-ε]`` with ``ε = 1e-7``, the clip bounds rounded to the compute dtype (in float32
      ``1-ε`` is 0.99999988, so ``-log(1-p)`` tops out at 15.942; in float64 at 16.118). The
      gradient is zero outside the bounds and passes through at them (``tf.clip_by_value`` and
      ``torch.clamp`` agree). torch's ``BCELoss`` instead clamps the *log* at -100: on
      ``y_true=[1,0,1,0]``, ``y_pred=[1,1,1,0]`` Keras gives ≈3.98559 (float32) and torch 25.0.
      ``clip="torch"`` computes torch's rule (and torch's gradient, ``(p-t)/max(p(1-p), 1e-12)``)
      on both backends, so the difference can be seen rather than hidden.
    * ``from_logits=True``: ``-[t·log σ(x) + (1-t)·log σ(-x)]``, stable for any ``|x|``
      (``tf.nn.sigmoid_cross_entropy_with_logits`` / ``F.binary_cross_entropy_with_logits``).
    * ``label_smoothing=s`` replaces ``t`` by ``t·(1-s) + s/2``.

    Args:
        from_logits: whether ``y_pred`` holds logits rather than probabilities.
        label_smoothing: ``s`` in [0, 1].
        axis: the axis averaged into the per-sample value (default -1).
        clip: ``"keras"`` (default) or ``"torch"``; only used with probabilities.
    """

    from_logits: bool = False
    label_smoothing: float = 0.0
    axis: int = -1
    clip: str = "keras"
    default_name: ClassVar[str] = "binary_crossentropy"

    def _validate(self, where):
        _validate_ce(self, where, smoothing=True)
        if self.clip not in CLIP_MODES:
            raise bad_value("clip", self.clip, "'keras' or 'torch'", where=where)

    def _signature_checked(self):
        # clip="torch" on probabilities checks their values (below): every call is checked.
        return self.from_logits or self.clip != "torch"

    def _layout(self, ts, ps, where):
        t_to, p_to = _align_shapes(ts, ps, where)
        return t_to, p_to, _canonical_axis(self.axis, len(ps if p_to is None else p_to), where)

    def _values(self, y_true, p, compute, where):
        t, p, axis = self._laid_out(y_true, p, compute, where)
        if self.clip == "torch" and not self.from_logits:
            arr = _ops.to_numpy(p)
            bad = ~((arr >= 0) & (arr <= 1))
            if bad.any():  # torch's BCELoss refuses these; TF's log would give NaN silently
                raise bad_value("y_pred", float(arr[bad][0]), "probabilities in [0, 1] with "
                                "clip='torch'", where=where)  # fmt: skip
        return self._kernel(t, p, axis), None

    def _kernel(self, t, p, axis):
        if self.label_smoothing:
            t = t * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        return _losses().binary_crossentropy(
            t, p, from_logits=self.from_logits, axis=axis, clip=self.clip, epsilon=EPSILON
        )


@dataclass(frozen=True, kw_only=True)
class CategoricalCrossentropy(Loss):
    """Categorical cross-entropy, ``-Σ_c t_c·log p_c`` over the class ``axis``.

    * ``from_logits=False`` (Keras semantics, both backends): ``p`` is divided by its sum along
      ``axis``, clipped to ``[ε, 1-ε]`` (``ε = 1e-7``, bounds rounded to the compute dtype), then
      logged; zero gradient outside the bounds. torch has no probability form.
    * ``from_logits=True``: ``-Σ t·log_softmax(x)``, stable for any logits, gradient
      ``Σt·softmax(x) - t``. (TF's fused ``softmax_cross_entropy_with_logits``, which Keras
      uses, returns ``softmax(x) - t``: wrong when the targets do not sum to 1, so dualnet
      does not use it.)
    * ``label_smoothing=s`` replaces ``t`` by ``t·(1-s) + s/K`` (``K`` classes).

    ``y_true`` must have ``y_pred``'s shape (one-hot or probabilities); integer labels are
    refused with a pointer to :class:`SparseCategoricalCrossentropy`.

    Args:
        from_logits: whether ``y_pred`` holds logits.
        label_smoothing: ``s`` in [0, 1].
        axis: the class axis (default -1).
    """

    from_logits: bool = False
    label_smoothing: float = 0.0
    axis: int = -1
    default_name: ClassVar[str] = "categorical_crossentropy"

    def _validate(self, where):
        _validate_ce(self, where, smoothing=True)

    def _signature_checked(self):
        return True

    def _layout(self, ts, ps, where):
        axis = _canonical_axis(self.axis, len(ps), where)
        k = ps[axis]
        without = ps[:axis] + ps[axis + 1 :]
        if k > 1 and (ts == without or ts == (*ps[:axis], 1, *ps[axis + 1 :])):
            raise ValueError(
                f"{where}: y_true.shape={ts} looks like integer class labels for "
                f"y_pred.shape={ps}; CategoricalCrossentropy expects one-hot or probability "
                f"targets of y_pred's shape. Use SparseCategoricalCrossentropy for labels."
            )
        return (*_align_shapes(ts, ps, where), (axis, k))

    def _kernel(self, t, p, axis):
        axis, k = axis  # the class axis and K, the number of classes, of y_pred as given
        if self.label_smoothing:
            t = t * (1.0 - self.label_smoothing) + self.label_smoothing / k
        return _losses().categorical_crossentropy(
            t, p, from_logits=self.from_logits, axis=axis, epsilon=EPSILON
        )


@dataclass(frozen=True, kw_only=True)
class SparseCategoricalCrossentropy(Loss):
    """Categorical cross-entropy with integer class labels, ``-log p_y`` over the class ``axis``.

    * ``from_logits=False`` (Keras): ``p`` is clipped to ``[ε, 1-ε]``, logged and passed through
      a log-softmax, i.e. ``-log(clip(p)_y / Σ clip(p))``. Note the order differs from the
      categorical form (normalise, then clip); the two agree for normalised ``p`` away from the
      bounds.
    * ``from_logits=True``: ``-log_softmax(x)_y`` (``sparse_softmax_cross_entropy_with_logits``
      / ``F.cross_entropy``).
    * ``ignore_class=c``: labels equal to ``c`` contribute 0 and no gradient, and
      ``sum_over_batch_size`` divides by the number of other labels (Keras's mask; torch's
      ``ignore_index`` with ``reduction='mean'`` divides by the same count).

    Labels have ``y_pred``'s shape without the class axis (or with it of size 1); integer, or
    float with integral values. Labels outside ``[0, K)`` are refused (TF's CPU kernel raises,
    its GPU kernel returns NaN, torch raises an IndexError).

    Args:
        from_logits: whether ``y_pred`` holds logits.
        ignore_class: a label value to ignore, or None.
        axis: the class axis (default -1).
    """

    from_logits: bool = False
    ignore_class: int | None = None
    axis: int = -1
    default_name: ClassVar[str] = "sparse_categorical_crossentropy"

    def _validate(self, where):
        _validate_ce(self, where, smoothing=False)
        if self.ignore_class is not None:
            object.__setattr__(self, "ignore_class", _int("ignore_class", self.ignore_class, where))

    def _values(self, y_true, p, compute, where):
        ps = _shape(p)
        axis = _canonical_axis(self.axis, len(ps), where)
        k = ps[axis]
        native = _ops.tensor(y_true)  # refuses the other framework's tensors
        kind = _dtype_of(native, "y_true", where)
        expected = ps[:axis] + ps[axis + 1 :]
        if _ops.backend().core.is_symbolic(native):
            return self._traced_values(native, p, expected, axis, where)
        labels = _ops.to_numpy(native)  # labels are checked on the host (range, integrality)
        if labels.shape == (*ps[:axis], 1, *ps[axis + 1 :]):  # (..., 1) labels: squeezed
            labels = labels.reshape(expected)
        if labels.shape != expected:
            want = f"labels of shape {expected} (y_pred's shape without axis {axis})"
            raise _shape_error(where, labels.shape, ps, want)
        if kind in FLOAT_DTYPES:
            flat = np.asarray(labels, dtype=np.float64)
            if not np.all(np.isfinite(flat) & (flat == np.round(flat))):
                bad = flat[~(np.isfinite(flat) & (flat == np.round(flat)))][0]
                raise bad_value("y_true", float(bad), "integer class labels", where=where)
        elif kind not in INT_DTYPES:
            raise bad_type("y_true", kind, "integer class labels", where=where)
        labels = np.asarray(labels).astype(np.int64)
        valid = None if self.ignore_class is None else labels != self.ignore_class
        checked = labels if valid is None else labels[valid]
        out_of_range = (checked < 0) | (checked >= k)
        if out_of_range.any():
            extra = "" if valid is None else f" or ignore_class={self.ignore_class}"
            raise bad_value("y_true", int(checked[out_of_range][0]),
                            f"class labels in [0, {k}){extra}", where=where)  # fmt: skip
        safe = labels if valid is None else np.where(valid, labels, 0)
        values = _losses().sparse_categorical_crossentropy(
            _ops.tensor(safe, "int64"), p, from_logits=self.from_logits, axis=axis,
            epsilon=EPSILON, valid=None if valid is None else _ops.tensor(valid),
        )  # fmt: skip
        return values, None if valid is None else int(valid.sum())

    def _traced_values(self, native, p, expected, axis, where):
        """Inside tf.function / torch.compile the labels' values are not on the host, so the
        range and integrality checks (eager only) are skipped; the arithmetic is the same."""
        core = _ops.backend().core
        if _shape(native) == (*expected[:axis], 1, *expected[axis:]):  # (..., 1) labels: squeezed
            native = core.reshape(native, expected)
        if _shape(native) != tuple(expected):
            want = f"labels of shape {expected} (y_pred's shape without axis {axis})"
            raise _shape_error(where, _shape(native), _shape(p), want)
        labels = core.convert_to_tensor(native, "int64")
        valid = count = None
        if self.ignore_class is not None:
            valid = labels != self.ignore_class
            count = core.count_nonzero(valid)
            labels = labels * core.convert_to_tensor(valid, "int64")  # ignored rows read class 0
        values = _losses().sparse_categorical_crossentropy(
            labels, p, from_logits=self.from_logits, axis=axis, epsilon=EPSILON, valid=valid
        )
        return values, count


# --------------------------------------------------------------------------- functional forms


def mean_squared_error(y_true: Any, y_pred: Any) -> Any:
    """Per-sample ``mean((y_true - y_pred)², axis=-1)`` (see :class:`MeanSquaredError`)."""
    return MeanSquaredError().call(y_true, y_pred)


def mean_absolute_error(y_true: Any, y_pred: Any) -> Any:
    """Per-sample ``mean(|y_true - y_pred|, axis=-1)`` (see :class:`MeanAbsoluteError`)."""
    return MeanAbsoluteError().call(y_true, y_pred)


def huber(y_true: Any, y_pred: Any, delta: float = 1.0) -> Any:
    """Per-sample Huber loss (see :class:`Huber`)."""
    return Huber(delta=delta).call(y_true, y_pred)


def smooth_l1(y_true: Any, y_pred: Any, beta: float = 1.0) -> Any:
    """Per-sample torch smooth-L1 loss, ``Huber(β)/β`` (see :class:`SmoothL1`)."""
    return SmoothL1(beta=beta).call(y_true, y_pred)


def binary_crossentropy(
    y_true: Any, y_pred: Any, from_logits: bool = False, label_smoothing: float = 0.0,
    axis: int = -1, clip: str = "keras",
) -> Any:  # fmt: skip
    """Per-sample binary cross-entropy (see :class:`BinaryCrossentropy`)."""
    loss = BinaryCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing,
                              axis=axis, clip=clip)  # fmt: skip
    return loss.call(y_true, y_pred)


def categorical_crossentropy(
    y_true: Any, y_pred: Any, from_logits: bool = False, label_smoothing: float = 0.0,
    axis: int = -1,
) -> Any:  # fmt: skip
    """Per-sample categorical cross-entropy (see :class:`CategoricalCrossentropy`)."""
    loss = CategoricalCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing,
                                   axis=axis)  # fmt: skip
    return loss.call(y_true, y_pred)


def sparse_categorical_crossentropy(
    y_true: Any, y_pred: Any, from_logits: bool = False, ignore_class: int | None = None,
    axis: int = -1,
) -> Any:  # fmt: skip
    """Per-sample cross-entropy with integer labels (see :class:`SparseCategoricalCrossentropy`)."""
    loss = SparseCategoricalCrossentropy(from_logits=from_logits, ignore_class=ignore_class,
                                         axis=axis)  # fmt: skip
    return loss.call(y_true, y_pred)


# --------------------------------------------------------------------------- registry

_CLASSES: dict[str, type[Loss]] = {
    cls.__name__: cls
    for cls in (BinaryCrossentropy, CategoricalCrossentropy, Huber, MeanAbsoluteError,
                MeanSquaredError, SmoothL1, SparseCategoricalCrossentropy)
}  # fmt: skip
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "mean_squared_error": mean_squared_error, "mse": mean_squared_error,
    "MSE": mean_squared_error, "mean_absolute_error": mean_absolute_error,
    "mae": mean_absolute_error, "MAE": mean_absolute_error, "huber": huber,
    "huber_loss": huber, "smooth_l1": smooth_l1, "binary_crossentropy": binary_crossentropy,
    "categorical_crossentropy": categorical_crossentropy,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
}  # fmt: skip
NAMES: tuple[str, ...] = (*_FUNCTIONS, *_CLASSES)


def get(identifier: Any) -> Any:
    """Resolve a loss, as ``keras.losses.get``.

    * a function name or alias (``"mse"``, ``"categorical_crossentropy"``, ``"huber"``, ...)
      gives the functional form (per-sample values);
    * a class name (``"Huber"``) gives an instance with the default configuration;
    * a dict ``{"class_name": ..., "config": {...}}`` (from :func:`serialize`) rebuilds it;
    * a :class:`Loss` or any callable is returned as is; None gives None.
    """
    if identifier is None:
        return None
    if isinstance(identifier, str):
        if identifier in _FUNCTIONS:
            return _FUNCTIONS[identifier]
        if identifier in _CLASSES:
            return _CLASSES[identifier]()
        raise unknown_name("loss", identifier, list(NAMES))
    if isinstance(identifier, dict):
        name = identifier.get("class_name")
        if name not in _CLASSES:
            raise unknown_name("loss class_name", name, list(_CLASSES))
        return _CLASSES[name].from_config(dict(identifier.get("config", {})))
    if callable(identifier):
        return identifier
    raise bad_type("loss", identifier, "a loss name, a config dict, a Loss or a callable")


def serialize(loss: Any) -> Any:
    """``{"class_name", "config"}`` for a :class:`Loss`; the name of a built-in function;
    other callables as is."""
    if isinstance(loss, Loss):
        return {"class_name": type(loss).__name__, "config": loss.get_config()}
    for name, fn in _FUNCTIONS.items():
        if fn is loss:
            return name
    return loss
