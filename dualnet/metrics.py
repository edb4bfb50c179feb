"""Metrics for ``model.compile(metrics=[...])``: Keras 3 semantics, computed on the host.

    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy", "mae"])

A metric is a frozen spec whose call gives *per-sample* values (float64 numpy arrays); the
training loop averages them over an epoch with :class:`Mean`, weighted by the number of samples
in each batch, exactly as Keras's ``MeanMetricWrapper`` does (``total += Σ values``,
``count += batch size``). The History key is the name given in ``compile`` (``"acc"`` stays
``"acc"``), or the metric object's ``name``.

Keras's ``"accuracy"`` string
-----------------------------
``"accuracy"`` / ``"acc"`` is resolved from the shapes of the first batch, as Keras's
``compile_utils.get_metric`` does: predictions with a last axis of 1 → :class:`BinaryAccuracy`;
labels of lower rank than the predictions, or a label last axis of 1 against predictions with
more than one class → :class:`SparseCategoricalAccuracy`; otherwise :class:`CategoricalAccuracy`.
(:class:`Accuracy`, exact equality, is only used when asked for by class.)

Where dualnet departs from Keras
--------------------------------
Keras computes metrics on the device in ``floatx`` (float32); dualnet converts the predictions
to numpy and computes them in float64. Accuracies are identical (they count exact matches); MAE
and MSE differ from Keras's float32 value by float32 rounding only. In exchange both backends
report *identical* metric values for identical predictions, and the numbers are exact to test.
torch has no metrics of its own (torchmetrics is a separate package).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from dualnet._ops import to_numpy
from dualnet.errors import bad_type, bad_value, unknown_name

__all__ = [
    "Accuracy", "BinaryAccuracy", "CategoricalAccuracy", "Mean", "MeanAbsoluteError",
    "MeanSquaredError", "Metric", "SparseCategoricalAccuracy", "get", "resolve",
]  # fmt: skip


def _host(x: Any) -> np.ndarray:
    """A native tensor or array-like as a float64 numpy array (labels included)."""
    return np.asarray(to_numpy(x), dtype=np.float64)


def _same_rank(t: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keras's ``squeeze_or_expand_to_same_rank``: drop a trailing axis of size 1 on the side
    with one more dimension."""
    if t.ndim == p.ndim + 1 and t.shape[-1] == 1:
        t = t[..., 0]
    elif p.ndim == t.ndim + 1 and p.shape[-1] == 1:
        p = p[..., 0]
    return t, p


def _per_sample(values: np.ndarray) -> np.ndarray:
    """Keras's ``reduce_to_samplewise_values``: the mean over every axis but the first."""
    if values.ndim > 1:
        return values.reshape(values.shape[0], -1).mean(axis=1)
    return values


def _check_shapes(where: str, t: np.ndarray, p: np.ndarray) -> None:
    if t.shape != p.shape:
        raise ValueError(
            f"{where}: y_true.shape={t.shape} does not match y_pred.shape={p.shape} (after "
            "squeezing a trailing axis of size 1)."
        )


@dataclass(frozen=True, kw_only=True)
class Metric:
    """Base class: ``metric(y_true, y_pred)`` returns one float64 value per sample.

    Args:
        name: the History key (default: the Keras name, e.g. ``"categorical_accuracy"``).
    """

    name: str | None = None
    default_name: ClassVar[str] = "metric"

    def __post_init__(self) -> None:
        if self.name is None:
            object.__setattr__(self, "name", self.default_name)
        elif not isinstance(self.name, str) or not self.name:
            raise bad_type("name", self.name, "a non-empty str or None", where=type(self).__name__)

    def values(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, y_true: Any, y_pred: Any) -> np.ndarray:
        """Per-sample values, shape ``(batch,)``, float64."""
        t, p = _host(y_true), _host(y_pred)
        if p.ndim == 0:
            raise bad_value("y_pred.shape", (), "at least one dimension", where=type(self).__name__)
        return _per_sample(self.values(t, p))


@dataclass(frozen=True, kw_only=True)
class Accuracy(Metric):
    """How often ``y_pred == y_true`` exactly (Keras's ``Accuracy``; not what ``"accuracy"``
    resolves to)."""

    default_name: ClassVar[str] = "accuracy"

    def values(self, t, p):
        t, p = _same_rank(t, p)
        _check_shapes(type(self).__name__, t, p)
        return (t == p).astype(np.float64)


@dataclass(frozen=True, kw_only=True)
class BinaryAccuracy(Metric):
    """How often ``(y_pred > threshold) == y_true`` (mean over the last axis per sample).

    Args:
        threshold: probabilities above it count as 1 (default 0.5; pass 0 for logits).
    """

    threshold: float = 0.5
    default_name: ClassVar[str] = "binary_accuracy"

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int | float):
            raise bad_type("threshold", self.threshold, "a real number", where="BinaryAccuracy")

    def values(self, t, p):
        t, p = _same_rank(t, p)
        _check_shapes(type(self).__name__, t, p)
        # Keras: cast(y_pred > threshold) compared for equality with y_true (strict ">").
        return (t == (p > self.threshold).astype(np.float64)).astype(np.float64)


@dataclass(frozen=True, kw_only=True)
class CategoricalAccuracy(Metric):
    """How often ``argmax(y_pred) == argmax(y_true)`` over the last axis (one-hot targets).

    Ties go to the first maximum, as ``argmax`` does in numpy, torch and TensorFlow.
    """

    default_name: ClassVar[str] = "categorical_accuracy"

    def values(self, t, p):
        if t.shape != p.shape:
            raise ValueError(
                f"CategoricalAccuracy: y_true.shape={t.shape} does not match y_pred.shape="
                f"{p.shape}; expected one-hot targets (use SparseCategoricalAccuracy for labels)."
            )
        return (np.argmax(t, axis=-1) == np.argmax(p, axis=-1)).astype(np.float64)


@dataclass(frozen=True, kw_only=True)
class SparseCategoricalAccuracy(Metric):
    """How often ``argmax(y_pred) == y_true`` for integer class labels."""

    default_name: ClassVar[str] = "sparse_categorical_accuracy"

    def values(self, t, p):
        if t.ndim == p.ndim and t.shape[-1] == 1:  # (batch, 1) labels, as Keras squeezes
            t = t[..., 0]
        if t.shape != p.shape[:-1]:
            raise ValueError(
                f"SparseCategoricalAccuracy: y_true.shape={t.shape} does not fit y_pred.shape="
                f"{p.shape}; expected class labels of shape {p.shape[:-1]}."
            )
        return (t == np.argmax(p, axis=-1)).astype(np.float64)


@dataclass(frozen=True, kw_only=True)
class MeanAbsoluteError(Metric):
    """``mean(|y_true - y_pred|)`` over the last axis, per sample."""

    default_name: ClassVar[str] = "mean_absolute_error"

    def values(self, t, p):
        t, p = _same_rank(t, p)
        _check_shapes(type(self).__name__, t, p)
        return np.mean(np.abs(t - p), axis=-1)


@dataclass(frozen=True, kw_only=True)
class MeanSquaredError(Metric):
    """``mean((y_true - y_pred)²)`` over the last axis, per sample."""

    default_name: ClassVar[str] = "mean_squared_error"

    def values(self, t, p):
        t, p = _same_rank(t, p)
        _check_shapes(type(self).__name__, t, p)
        return np.mean(np.square(t - p), axis=-1)


class Mean:
    """Running mean over an epoch, weighted by samples (Keras's ``Mean`` metric state).

    ``update(values)`` adds per-sample values; ``update(value, weight=n)`` adds one value that
    stands for ``n`` samples (how the loss, a batch mean, is tracked). ``result()`` is
    ``total / count`` (0 before any update, as Keras's ``divide_no_nan``).
    """

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0.0

    def update(self, values: Any, weight: float | None = None) -> None:
        values = np.asarray(values, dtype=np.float64)
        if weight is None:
            self.total += float(np.sum(values))
            self.count += float(values.size)
        else:
            self.total += float(values) * weight
            self.count += weight

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0

    def reset(self) -> None:
        self.total = self.count = 0.0


_CLASSES: dict[str, type[Metric]] = {
    cls.__name__: cls
    for cls in (Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
                MeanAbsoluteError, MeanSquaredError)
}  # fmt: skip
_NAMES: dict[str, type[Metric]] = {
    "binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
}  # fmt: skip
AUTO_ACCURACY = ("accuracy", "acc")
NAMES: tuple[str, ...] = (*AUTO_ACCURACY, *_NAMES, *_CLASSES)


def get(identifier: Any) -> Metric | str:
    """Validate a metric identifier for ``compile``.

    A name gives an instance named by that string (Keras: the History key is the string you
    passed); ``"accuracy"``/``"acc"`` are returned as strings and resolved on the first batch by
    :func:`resolve`. A :class:`Metric` is returned as is; a plain callable
    ``fn(y_true, y_pred) -> per-sample values`` is wrapped, named by its ``__name__``.
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        if identifier.lower() in AUTO_ACCURACY:
            return identifier
        if identifier in _NAMES:
            return _NAMES[identifier](name=identifier)
        if identifier in _CLASSES:
            return _CLASSES[identifier]()
        raise unknown_name("metric", identifier, list(NAMES))
    if callable(identifier):
        return _Function(fn=identifier, name=getattr(identifier, "__name__", "metric"))
    raise bad_type("metric", identifier, "a metric name such as 'accuracy', a Metric or a callable")


def resolve(metric: Metric | str, y_true: Any, y_pred: Any) -> Metric:
    """Resolve ``"accuracy"``/``"acc"`` from the shapes, as Keras's ``get_metric``."""
    if isinstance(metric, Metric):
        return metric
    ts, ps = tuple(np.shape(y_true)), tuple(y_pred.shape)
    is_binary = ps[-1] == 1
    is_sparse = len(ts) < len(ps) or (ts[-1] == 1 and ps[-1] > 1)
    if is_binary:
        return BinaryAccuracy(name=metric)
    if is_sparse:
        return SparseCategoricalAccuracy(name=metric)
    return CategoricalAccuracy(name=metric)


@dataclass(frozen=True, kw_only=True)
class _Function(Metric):
    """A user function ``fn(y_true, y_pred)`` returning per-sample values (numpy or native)."""

    fn: Callable[..., Any] | None = None

    def __call__(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return _per_sample(_host(self.fn(y_true, y_pred)).reshape(np.shape(y_pred)[0], -1))
