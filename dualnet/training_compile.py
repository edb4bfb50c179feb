"""``compile``: a model's training configuration (Keras's ``model.compile``), neutral.

:func:`compile` validates everything before the model changes and stores a :class:`Compiled`
(the optimizer, the loss, the metric specs, how steps run: Note [Compiled training] in
:mod:`dualnet.training_steps`) on the model; :mod:`dualnet.training` runs the steps.

String losses (``"mse"``, ``"categorical_crossentropy"``...) become the loss *class* with its
default ``sum_over_batch_size`` reduction, as Keras wraps them; a custom callable's per-sample
values are averaged the same way (:class:`_UserLoss`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dualnet import losses as _losses
from dualnet import metrics as _metrics
from dualnet import optimizers as _optimizers
from dualnet import training_steps as _steps
from dualnet._backend import backend_module
from dualnet._ops import tensor_backend, to_numpy
from dualnet.errors import bad_type, bad_value

# Functional loss forms -> the class Keras's compile would wrap them in (reduction
# sum_over_batch_size), so a string loss gives a scalar.
_LOSS_CLASSES: dict[Callable[..., Any], type[_losses.Loss]] = {
    _losses.mean_squared_error: _losses.MeanSquaredError,
    _losses.mean_absolute_error: _losses.MeanAbsoluteError,
    _losses.huber: _losses.Huber,
    _losses.smooth_l1: _losses.SmoothL1,
    _losses.binary_crossentropy: _losses.BinaryCrossentropy,
    _losses.categorical_crossentropy: _losses.CategoricalCrossentropy,
    _losses.sparse_categorical_crossentropy: _losses.SparseCategoricalCrossentropy,
}


@dataclasses.dataclass
class Compiled:
    """A model's training configuration (``model.compile``) and its runtime caches."""

    optimizer: _optimizers.Optimizer
    loss: Callable[..., Any] | None
    metric_specs: list[_metrics.Metric | str]
    metrics: list[_metrics.Metric] | None = None  # resolved on the first batch
    params: list[Any] | None = None  # native variables, cached on the first step
    run_eagerly: bool = False
    jit_compile: bool | str = "auto"
    steps_per_execution: int = 1
    runner: _steps.Runner | None = None  # the compiled step, built on the first step


def resolve_loss(loss: Any) -> Callable[..., Any] | None:
    """A loss for ``compile``: a name (``"mse"``, ``"CategoricalCrossentropy"``), a
    :class:`~dualnet.losses.Loss`, a config dict, or a callable ``fn(y_true, y_pred)`` returning
    a scalar or per-sample values (then averaged, as Keras's ``sum_over_batch_size``)."""
    if loss is None:
        return None
    fn = _losses.get(loss)  # unknown names raise here
    if fn in _LOSS_CLASSES:
        return _LOSS_CLASSES[fn]()
    if isinstance(fn, _losses.Loss):
        return fn
    return _UserLoss(fn)


class _UserLoss:
    """A custom loss callable; non-scalar results are averaged (``sum_over_batch_size``)."""

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn
        self.name = getattr(fn, "__name__", "loss")

    def __call__(self, y_true: Any, y_pred: Any) -> Any:
        values = self.fn(y_true, y_pred)
        if len(tuple(values.shape)) == 0:
            return values
        backend = backend_module(tensor_backend(values))
        mask = getattr(y_pred, "_keras_mask", None)
        if mask is None or tuple(mask.shape) != tuple(values.shape):
            count = math.prod(values.shape)
            return backend.losses.reduce(values, None, "sum_over_batch_size", count)
        # The mean over the valid steps, as for dualnet's own losses (Keras's LossFunctionWrapper
        # applies the mask the same way).
        if backend.core.is_symbolic(mask):  # a compiled step: the count stays on the device
            weight = backend.core.convert_to_tensor(mask, backend.core.dtype_name(values))
            return backend.losses.reduce(values, weight, "sum_over_batch_size",
                                         backend.core.count_nonzero(mask))  # fmt: skip
        weight = backend.core.convert_to_tensor(to_numpy(mask), backend.core.dtype_name(values))
        valid = int(np.count_nonzero(to_numpy(mask)))
        return backend.losses.reduce(values, weight, "sum_over_batch_size", valid)


def compile(model: Any, optimizer: Any = "rmsprop", loss: Any = None,
            metrics: Sequence[Any] | None = None, *, run_eagerly: bool = False,
            jit_compile: bool | str = "auto", steps_per_execution: int = 1) -> None:  # fmt: skip
    """Configure ``model`` for training (see :meth:`dualnet.Model.compile`). Everything is
    validated before the model changes."""
    where = f"{model._where()}.compile"
    if not isinstance(run_eagerly, bool):
        raise bad_type("run_eagerly", run_eagerly, "a bool", where=where)
    jit_compile = _steps.check_jit_compile(jit_compile, where)
    steps_per_execution = _check_positive_int(steps_per_execution, "steps_per_execution", where)
    try:
        opt = _optimizers.get(optimizer)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{where}: {exc}") from None
    if opt.built:
        raise bad_value("optimizer", opt, "an optimizer not yet used with other variables "
                        "(give each model its own, e.g. type(opt).from_config(opt.get_config()))",
                        where=where)  # fmt: skip
    try:
        loss_fn = resolve_loss(loss)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{where}: {exc}") from None
    if metrics is None:
        metrics = []
    if isinstance(metrics, str) or not isinstance(metrics, list | tuple):
        raise bad_type("metrics", metrics, "a list of metric names or Metric objects", where=where)
    try:
        specs = [_metrics.get(m) for m in metrics]
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{where}: {exc}") from None
    names = [m if isinstance(m, str) else m.name for m in specs]
    for key in ("loss", *names):
        if names.count(key) > (0 if key == "loss" else 1):
            raise bad_value("metrics", list(metrics), "metrics with distinct names, none called "
                            "'loss'", where=where)  # fmt: skip
    compiled = Compiled(opt, loss_fn, specs, run_eagerly=run_eagerly, jit_compile=jit_compile,
                        steps_per_execution=steps_per_execution)  # fmt: skip
    object.__setattr__(model, "_compiled", compiled)


def _compiled(model: Any, where: str, *, need_loss: bool = True) -> Compiled:
    c = model._compiled
    if c is None:
        raise ValueError(
            f"{model._where()}.{where}: the model is not compiled; call "
            "model.compile(optimizer=..., loss=...) first."
        )
    if need_loss and c.loss is None:
        raise ValueError(f"{model._where()}.{where}: compile() was given no loss.")
    return c


def _check_positive_int(value: Any, argument: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise bad_type(argument, value, "a positive int", where=where)
    if value <= 0:
        raise bad_value(argument, value, "a positive int", where=where)
    return int(value)
