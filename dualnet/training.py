"""The training loop: ``compile`` / ``fit`` / ``evaluate`` / ``train_step``, Keras-style, neutral.

    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=32, epochs=10, validation_data=(xv, yv), seed=0)
    history.history    # {"loss": [...], "accuracy": [...], "val_loss": [...], ...}

Everything here is backend-neutral. Per backend there are only three calls
(``backends/<name>/models.py``): :func:`trainable_params` (the native variables in canonical
order), ``value_and_grads`` (one forward pass and its gradients) and ``finite_flags``; the
update itself is :mod:`dualnet.optimizers`' rule, also written once. So on both backends a
step is the same sequence: forward → loss → gradients → finiteness check → optimizer update.

Note [Keras semantics of fit]
-----------------------------
* **Batches.** Each epoch draws a permutation of the samples from a numpy ``PCG64`` generator
  seeded once per ``fit`` (``seed=``; without it a seed is drawn from dualnet's global
  generator, so :func:`dualnet.set_random_seed` makes runs repeatable). The orders are recorded
  in ``history.orders``: with the same seed, torch and TensorFlow see identical batches in the
  identical order. ``shuffle=False`` keeps the sample order. The last, partial batch is used.
* **Reported loss and metrics.** The epoch's ``loss`` is the mean of the batch losses weighted by
  batch size (Keras's ``Mean`` loss tracker); metrics are averaged over every sample of the
  epoch (see :mod:`dualnet.metrics`). Both are measured *during* the epoch, on the weights each
  batch saw before its update, as in Keras. Validation runs after each epoch on the final
  weights (``val_`` keys).
* **History keys**: ``"loss"``, one per metric (the name given to ``compile``), then
  ``"val_loss"`` and ``"val_<metric>"`` with ``validation_data``. Identical on both backends.
* **String losses** (``"mse"``, ``"categorical_crossentropy"``...) become the loss *class*
  with its default ``sum_over_batch_size`` reduction, as Keras wraps them
  (:mod:`dualnet.training_compile`, which holds ``compile``).

Note [Non-finite values stop training]
--------------------------------------
Before each update the loss, every gradient and every weight are checked (the loss on the host,
where its value is read anyway; the tensors with a few reductions and one device-to-host
transfer; the per-tensor scan that names the culprit runs only when that fails). If any is NaN
or ±inf, the update is **not** applied and :class:`dualnet.errors.NonFiniteError` is raised,
naming the step (the optimizer's
``iterations + 1``), the epoch and batch, what went non-finite first (loss, gradient of a named
weight, or a weight that an earlier update overflowed) and the loss value. The weights and
optimizer state are left exactly as before the failing step; in ``fit`` the error carries the
History of the completed epochs (``err.history``). dualnet raises where Keras would silently
train on (or stop via the ``TerminateOnNaN`` callback *after* the NaN update): a NaN is never
written into the weights by a gradient. (A finite gradient times a huge learning rate can still
overflow a weight within one update; that is caught at the start of the next step, which then
reports ``what="weight"`` and the step whose update overflowed.)

How a step runs (eagerly, in ``tf.function``, with XLA or ``torch.compile``) is chosen by
``compile(run_eagerly=..., jit_compile=..., steps_per_execution=...)``: the TensorFlow step is
compiled by default, the torch step eager, as for Keras users. The check above is the eager
step's. A compiled step keeps its semantics with the check and the skipped update on the
device, and raises the same error when the host reads the flag (every ``steps_per_execution``
steps and at the end of each epoch); Note [Compiled training] in :mod:`dualnet.training_steps`
says where the flag is read and what is rolled back.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from dualnet import _ops
from dualnet import metrics as _metrics
from dualnet import random as _random
from dualnet import training_steps as _steps
from dualnet._backend import backend_module, get_backend, use_backend
from dualnet._ops import tensor_backend, to_numpy
from dualnet._progress import Progress as _Progress
from dualnet.errors import NonFiniteError, bad_type, bad_value
from dualnet.training_compile import (  # noqa: F401 (compile's names, as dualnet.training's)
    Compiled,
    _check_positive_int,
    _compiled,
    _UserLoss,
    compile,
    resolve_loss,
)

__all__ = [
    "History", "NonFiniteError", "batch_orders", "canonical_optimizer_state", "compile",
    "evaluate", "fit", "resolve_loss", "test_step", "train_step", "value_and_gradients",
]  # fmt: skip

DEFAULT_BATCH_SIZE = 32  # Keras's fit/evaluate default


class History:
    """What ``fit`` returns (Keras's ``History``).

    Attributes:
        history: ``{key: [value per epoch]}`` with keys ``loss``, metrics, ``val_*``.
        epoch: the epoch indices (0-based, as Keras).
        params: ``{"epochs", "steps", "batch_size", "seed", "verbose"}``.
        orders: per epoch, the sample order used (numpy int64 arrays; dualnet's addition, so
            two runs can be shown to have seen the same batches).
    """

    def __init__(self, params: dict[str, Any]):
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.params = dict(params)
        self.orders: list[np.ndarray] = []
        self.model: Any = None

    def _append(self, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self) -> str:
        return f"<History epochs={len(self.epoch)} keys={list(self.history)}>"


# --------------------------------------------------------------------------------- one step


def _native_inputs(model: Any, x: Any, where: str) -> tuple[Any, list[Any]]:
    """``x`` as the model takes it (a native tensor, or a list for several inputs)."""
    xs, single = model._split_inputs(x)
    backend = model._backend
    for item in xs:
        model._check_tensor(item, backend)
    core = _ops.package(backend).core
    tensors = [core.convert_to_tensor(item) for item in xs]
    return (tensors[0] if single else tensors), tensors


def _ensure_built(model: Any, x: Any, where: str) -> None:
    if not model.built:  # a subclassed model (or Sequential without Input) builds on first call
        with backend_module().models.inference():
            model(x)


def _forward_loss(model: Any, c: Compiled, x: Any, y: Any, *,
                  training: bool = True) -> Callable[[], tuple[Any, Any]]:  # fmt: skip
    """The loss closure; ``training`` runs dropout and batch statistics (fit, train_step; not
    test_step/evaluate), as Keras."""

    xs, single = model._split_inputs(x)
    core = _ops.package(model._backend).core

    def compute() -> tuple[Any, Any]:
        # What model(x, training=...) runs once the model is built and x is native (checked by
        # the caller), without repeating those checks every step.
        outputs = model._run(model._prepare(xs, core), single, training)
        if isinstance(outputs, list):
            raise NotImplementedError(
                f"{model._where()}: training a model with several outputs is not supported yet."
            )
        return c.loss(y, outputs), outputs

    return compute


def _metric_logs(c: Compiled, y: Any, outputs: Any, mask: Any = None) -> dict[str, np.ndarray]:
    """Per-sample metric values in float64 numpy; ``mask``: the outputs' mask when it is not
    attached to them (a compiled step returns it separately)."""
    if not c.metric_specs:
        return {}
    if c.metrics is None:
        c.metrics = [_metrics.resolve(m, y, outputs) for m in c.metric_specs]
    pred = to_numpy(outputs)
    logs = {m.name: m(to_numpy(y), pred) for m in c.metrics}
    if mask is None:
        mask = getattr(outputs, "_keras_mask", None)
    if mask is None:
        return logs
    # Masked steps do not count (Keras's metrics take the mask as sample weights): keep the
    # values of the valid steps only, so the epoch's mean is over those.
    keep = to_numpy(mask).astype(bool)
    return {k: (v[keep] if v.shape == keep.shape else v) for k, v in logs.items()}


def _param_names(model: Any) -> list[str]:
    return [w.path for w in model.trainable_weights]


def _step(model: Any, c: Compiled, x: Any, y: Any, *, epoch: int | None = None,
          batch: int | None = None) -> tuple[float, dict[str, np.ndarray]]:  # fmt: skip
    """One update; returns the batch loss and per-sample metric values. Applies nothing if a
    value is non-finite (Note [Non-finite values stop training])."""
    B = _ops.package(model._backend).models
    params = _params(model, c)
    with _on_backend(model._backend):
        loss, outputs, grads = B.value_and_grads(_forward_loss(model, c, x, y), params)
        value = float(loss)  # a 0-d tensor of either framework converts itself
        # One cheap all-finite test per step (the loss on the host, where it is read anyway);
        # the per-tensor scan (which names the culprit) runs only when it fails.
        if not (math.isfinite(value) and B.all_finite([*grads, *params])):
            flags = B.finite_flags([loss, *grads, *params])
            if not flags.all():
                _raise_nonfinite(model, c, flags, value, epoch, batch)
        logs = _metric_logs(c, y, outputs)
        c.optimizer.apply(grads, params)
    return value, logs


def _on_backend(backend: str) -> Any:
    """``use_backend(backend)``, or nothing to switch (and undo) when it is already active:
    the common case, once per step."""
    return contextlib.nullcontext() if get_backend() == backend else use_backend(backend)


def _params(model: Any, c: Compiled) -> list[Any]:
    """The native trainable variables (cached), the optimizer built for them."""
    if c.params is None:
        c.params = _ops.package(model._backend).models.trainable_params(model)
        c.optimizer.build(c.params)
    return c.params


def _runner(model: Any, c: Compiled) -> _steps.Runner | None:
    """The model's compiled step, built on first use; None when steps run eagerly (Note
    [Compiled training] in :mod:`dualnet.training_steps`). The model must be built."""
    if c.runner is None:
        mode = _steps.resolve_mode(model, c.run_eagerly, c.jit_compile)
        if mode == "eager":
            return None
        _params(model, c)
        c.runner = _steps.Runner(model, c, mode)
    return c.runner


def _launch(model: Any, runner: _steps.Runner, xs: list[Any], single: bool, y: Any, *,
            epoch: int | None, batch: int | None) -> _steps.Pending:  # fmt: skip
    """One compiled step on host or native inputs ``xs`` and labels ``y`` (not read back)."""
    core = backend_module(model._backend).core
    tensors = model._prepare([core.convert_to_tensor(item) for item in xs], core)
    return runner.run(tensors, single, core.convert_to_tensor(y), epoch=epoch, batch=batch,
                      size=len(xs[0]))  # fmt: skip


def _raise_nonfinite(model: Any, c: Compiled, flags: np.ndarray, loss: float,
                     epoch: int | None, batch: int | None) -> None:  # fmt: skip
    names = _param_names(model)
    n = len(names)
    grad_bad = [names[i] for i in range(n) if not flags[1 + i]]
    weight_bad = [names[i] for i in range(n) if not flags[1 + n + i]]
    step = c.optimizer.iterations + 1
    where = f"step {step}" + (f" (epoch {epoch}, batch {batch})" if epoch is not None else "")
    if weight_bad:
        what, parameter = "weight", weight_bad[0]
        cause = (
            f"weight {parameter!r} is already non-finite"
            + (f" before step {step}: the update of step {step - 1} overflowed it (the learning "
               "rate may be too large), or set_weights loaded it" if step > 1
               else " (it was loaded that way)")
        )  # fmt: skip
    elif not flags[0]:
        what, parameter = "loss", grad_bad[0] if grad_bad else None
        cause = f"the loss is {loss}" + (
            f"; first non-finite gradient: {parameter!r}" if parameter else ""
        )
    else:
        what, parameter = "gradient", grad_bad[0]
        cause = f"the gradient of {parameter!r} is non-finite (the loss is {loss})"
    raise NonFiniteError(
        f"{model._where()}: training stopped at {where}: {cause}. The update was not applied; "
        f"the weights and optimizer state are those from before step {step}.",
        step=step, what=what, parameter=parameter, loss=loss, epoch=epoch, batch=batch,
    )  # fmt: skip


def _one_batch(model: Any, x: Any, y: Any, where: str, run: Any) -> dict[str, float]:
    """Shared by :func:`train_step` and :func:`test_step`: check, convert, run one batch."""
    c = _compiled(model, where)
    _ensure_built(model, x, where)
    xn, _ = _native_inputs(model, x, where)
    yn = backend_module(model._backend).core.convert_to_tensor(_labels(y))
    loss, metric_values = run(model, c, xn, yn)
    return {"loss": loss, **{k: float(np.mean(v)) for k, v in metric_values.items()}}


def train_step(model: Any, x: Any, y: Any) -> dict[str, float]:
    """One optimizer update on the batch ``(x, y)`` (see :meth:`dualnet.Model.train_step`)."""
    c = _compiled(model, "train_step")
    _ensure_built(model, x, "train_step")
    runner = _runner(model, c)
    if runner is None:  # _one_batch's work, without repeating the two checks above
        xn, _ = _native_inputs(model, x, "train_step")
        yn = _ops.package(model._backend).core.convert_to_tensor(_labels(y))
        loss, metric_values = _step(model, c, xn, yn)
        return {"loss": loss, **{k: float(np.mean(v)) for k, v in metric_values.items()}}
    _, xs = _native_inputs(model, x, "train_step")  # the eager step's checks and conversions
    single = model._split_inputs(x)[1]
    yn = backend_module(model._backend).core.convert_to_tensor(_labels(y))
    first = [to_numpy(t)[:1] for t in xs]
    runner.check_labels(first[0] if single else first, to_numpy(yn))
    try:
        pending = _launch(model, runner, xs, single, yn, epoch=None, batch=None)
        loss = runner.read([pending])[0]
    except NonFiniteError:
        raise
    except Exception:
        runner.reset()
        raise
    values = _metric_logs(c, pending.y, pending.outputs, pending.mask)
    return {"loss": loss, **{k: float(np.mean(v)) for k, v in values.items()}}


def test_step(model: Any, x: Any, y: Any) -> dict[str, float]:
    """Loss and metrics of one batch, without gradients or updates."""
    return _one_batch(model, x, y, "test_step", _test_batch)


def _test_batch(model: Any, c: Compiled, x: Any, y: Any) -> tuple[float, dict[str, np.ndarray]]:
    with use_backend(model._backend), backend_module(model._backend).models.inference():
        loss, outputs = _forward_loss(model, c, x, y, training=False)()
        return float(to_numpy(loss)), _metric_logs(c, y, outputs)


def _labels(y: Any) -> Any:
    return y if tensor_backend(y) is not None else np.asarray(y)


# ------------------------------------------------------------------------------ fit/evaluate


def _check_verbose(verbose: Any, where: str) -> int:
    if verbose == "auto":
        return 1
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise bad_value("verbose", verbose, "0, 1, 2 or 'auto'", where=where)
    return int(verbose)


def _host_data(model: Any, x: Any, y: Any, where: str) -> tuple[list[np.ndarray], bool, Any, int]:
    """Validated numpy inputs (a list, one per model input), labels, and the sample count."""
    if y is None:
        raise bad_value("y", None, "the targets (an array with one row per sample)", where=where)
    xs, single = model._split_inputs(x)
    backend = model._backend
    for item in [*xs, y]:
        if backend is not None:
            model._check_tensor(item, backend)
    xs = [to_numpy(item) if tensor_backend(item) else np.asarray(item) for item in xs]
    y = to_numpy(y) if tensor_backend(y) else np.asarray(y)
    for i, item in enumerate(xs):
        if item.ndim == 0:
            raise bad_value("x" if single else f"x[{i}]", item, "an array with a batch dimension",
                            where=where)  # fmt: skip
    if y.ndim == 0:
        raise bad_value("y", y, "an array with a batch dimension", where=where)
    sizes = [len(item) for item in xs]
    if len(set(sizes)) != 1 or sizes[0] != len(y):
        shown = sizes[0] if single else sizes
        raise ValueError(
            f"{where}: x and y must have the same number of samples; got x with {shown} and y "
            f"with {len(y)} samples."
        )
    if len(y) == 0:
        raise bad_value("x", "0 samples", "at least one sample", where=where)
    return xs, single, y, len(y)


def batch_orders(n: int, batch_size: int, epochs: int, *, shuffle: bool,
                 seed: int) -> list[np.ndarray]:  # fmt: skip
    """Per epoch, the order in which ``fit`` visits the ``n`` samples: a permutation drawn from
    ``numpy.random.default_rng(seed)`` (one generator for the whole fit, one draw per epoch),
    or ``arange(n)`` without shuffling. Batches are consecutive slices of ``batch_size``."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(n) if shuffle else np.arange(n) for _ in range(epochs)]


def _slices(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def fit(model: Any, x: Any = None, y: Any = None, *, batch_size: int | None = None,
        epochs: int = 1, verbose: Any = "auto", shuffle: bool = True,
        validation_data: Any = None, seed: int | None = None) -> History:  # fmt: skip
    """Train ``model`` (see :meth:`dualnet.Model.fit` and Note [Keras semantics of fit])."""
    where = f"{model._where()}.fit"
    c = _compiled(model, "fit")
    batch_size = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
    batch_size = _check_positive_int(batch_size, "batch_size", where)
    epochs = _check_positive_int(epochs, "epochs", where)
    verbose = _check_verbose(verbose, where)
    if not isinstance(shuffle, bool):
        raise bad_type("shuffle", shuffle, "a bool", where=where)
    seed = _random.check_seed(seed, argument="seed")
    if seed is None:
        seed = _random.draw_seed()
    xs, single, y_host, n = _host_data(model, x, y, where)
    val = None
    if validation_data is not None:
        if not isinstance(validation_data, tuple | list):
            raise bad_type("validation_data", validation_data, "a tuple (x_val, y_val)",
                           where=where)  # fmt: skip
        if len(validation_data) != 2:
            raise bad_value("validation_data", f"a {type(validation_data).__name__} of length "
                            f"{len(validation_data)}", "a tuple (x_val, y_val)",
                            where=where)  # fmt: skip
        val = _host_data(model, validation_data[0], validation_data[1], where + " (validation)")
    _ensure_built(model, [item[:1] for item in xs] if not single else xs[0][:1], where)
    core = backend_module(model._backend).core

    orders = batch_orders(n, batch_size, epochs, shuffle=shuffle, seed=seed)
    steps = math.ceil(n / batch_size)
    history = History({"epochs": epochs, "steps": steps, "batch_size": batch_size,
                       "seed": seed, "verbose": verbose})  # fmt: skip
    history.model = model
    progress = _Progress(verbose, epochs, steps)
    # Bad input found mid-fit (a label out of range in a late batch, validation data that does
    # not fit the model) must leave nothing half-changed: weights and optimizer are restored to
    # what they were before fit. A NonFiniteError is a documented *stop* instead: the epochs
    # and steps before the failing one are kept (the failing update is never applied).
    weights_before = model.get_weights()
    optimizer_before = c.optimizer._snapshot()
    try:
        runner = _runner(model, c)
        if runner is not None:
            runner.reset()  # a flag an interrupted fit left unread belongs to no step of this one
            # The labels, once, on the host (the compiled step's loss cannot check them).
            runner.check_labels(xs[0][:1] if single else [item[:1] for item in xs], y_host)
        for epoch, order in enumerate(orders):
            history.orders.append(order)
            progress.epoch_start(epoch)
            logs = _EpochLogs()
            slices = _slices(order, batch_size)
            block: list[_steps.Pending] = []
            for b, idx in enumerate(slices):
                xb = [item[idx] for item in xs]
                if runner is None:
                    xb = [core.convert_to_tensor(item) for item in xb]
                    loss, values = _step(model, c, xb[0] if single else xb,
                                         core.convert_to_tensor(y_host[idx]),
                                         epoch=epoch + 1, batch=b + 1)  # fmt: skip
                    logs.add(loss, values, len(idx))
                    progress.batch_end(b, logs.loss.result())
                    continue
                block.append(_launch(model, runner, xb, single, y_host[idx], epoch=epoch + 1,
                                     batch=b + 1))  # fmt: skip
                # The flag (and the losses) are read every steps_per_execution steps and at the
                # end of the epoch (Note [Compiled training]).
                if len(block) == c.steps_per_execution or b + 1 == len(slices):
                    for p, loss in zip(block, runner.read(block), strict=True):
                        logs.add(loss, _metric_logs(c, p.y, p.outputs, p.mask), p.size)
                        progress.batch_end(p.batch - 1, logs.loss.result())
                    block = []
            epoch_logs = logs.result()
            if val is not None:
                val_logs = _evaluate_host(model, c, *val, batch_size)
                epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
            history._append(epoch, epoch_logs)
            progress.epoch_end(epoch, epoch_logs)
    except NonFiniteError as exc:
        exc.history = history
        raise
    except Exception as exc:
        model.set_weights(weights_before)
        c.optimizer._restore(optimizer_before)
        if c.runner is not None:
            c.runner.reset()
        exc.history = history  # the epochs completed before the error, for the record
        raise
    finally:
        progress.close()
    return history


class _EpochLogs:
    """The epoch's running loss (batch means weighted by batch size, Keras's loss tracker) and
    per-sample metric means."""

    def __init__(self) -> None:
        self.loss = _metrics.Mean()
        self.means: dict[str, _metrics.Mean] = {}

    def add(self, loss: float, values: dict[str, np.ndarray], size: int) -> None:
        self.loss.update(loss, weight=size)  # batch mean x batch size (Keras)
        for k, v in values.items():
            self.means.setdefault(k, _metrics.Mean()).update(v)

    def result(self) -> dict[str, float]:
        return {"loss": self.loss.result(), **{k: m.result() for k, m in self.means.items()}}


def _evaluate_host(model: Any, c: Compiled, xs: list[np.ndarray], single: bool, y: np.ndarray,
                   n: int, batch_size: int) -> dict[str, float]:  # fmt: skip
    core = backend_module(model._backend).core
    loss_mean = _metrics.Mean()
    means: dict[str, _metrics.Mean] = {}
    for start in range(0, n, batch_size):
        xb = [core.convert_to_tensor(item[start : start + batch_size]) for item in xs]
        yb = core.convert_to_tensor(y[start : start + batch_size])
        loss, values = _test_batch(model, c, xb[0] if single else xb, yb)
        loss_mean.update(loss, weight=len(y[start : start + batch_size]))
        for k, v in values.items():
            means.setdefault(k, _metrics.Mean()).update(v)
    return {"loss": loss_mean.result(), **{k: m.result() for k, m in means.items()}}


def evaluate(model: Any, x: Any = None, y: Any = None, *, batch_size: int | None = None,
             verbose: Any = "auto", return_dict: bool = False) -> Any:  # fmt: skip
    """Loss (and metrics) on ``(x, y)``, batch-size-weighted means over all samples.

    Returns, as Keras: the loss as a float when there are no metrics, else
    ``[loss, *metrics]``; with ``return_dict=True``, ``{"loss": ..., "<metric>": ...}``.
    """
    where = f"{model._where()}.evaluate"
    c = _compiled(model, "evaluate")
    batch_size = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
    batch_size = _check_positive_int(batch_size, "batch_size", where)
    verbose = _check_verbose(verbose, where)
    if not isinstance(return_dict, bool):
        raise bad_type("return_dict", return_dict, "a bool", where=where)
    xs, single, y_host, n = _host_data(model, x, y, where)
    _ensure_built(model, [item[:1] for item in xs] if not single else xs[0][:1], where)
    logs = _evaluate_host(model, c, xs, single, y_host, n, batch_size)
    if verbose:
        print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


# ------------------------------------------------------------------------ helpers for parity


def value_and_gradients(model: Any, x: Any, y: Any, loss: Any) -> tuple[float, list[np.ndarray]]:
    """The loss of ``model`` on ``(x, y)`` and its gradient for every trainable weight, as
    float64-free numpy arrays in canonical layout (in the order of ``model.trainable_weights``).

    The forward pass runs in training mode, as a training step's does (batch statistics, the
    next dropout masks); nothing is updated: the moving statistics and the layers' runtime state
    (dropout call counts) are put back afterwards."""
    loss_fn = resolve_loss(loss)
    if loss_fn is None:
        raise bad_value("loss", None, "a loss")
    _ensure_built(model, x, "value_and_gradients")
    B = backend_module(model._backend).models
    xn, _ = _native_inputs(model, x, "value_and_gradients")
    yn = backend_module(model._backend).core.convert_to_tensor(_labels(y))
    c = Compiled(optimizer=None, loss=loss_fn, metric_specs=[])  # type: ignore[arg-type]
    weights = model.get_weights()
    runtime = [layer.get_runtime_state() for layer in model.layers]
    try:
        with use_backend(model._backend):
            value, _, grads = B.value_and_grads(_forward_loss(model, c, xn, yn),
                                                B.trainable_params(model))  # fmt: skip
            grads = B.canonical_grads(model, grads)
            return float(to_numpy(value)), [np.array(to_numpy(g)) for g in grads]
    finally:  # a training-mode forward moved the moving statistics and dropout counters
        model.set_weights(weights)
        for layer, state in zip(model.layers, runtime, strict=True):
            layer.set_runtime_state(state)


def canonical_optimizer_state(model: Any) -> dict[str, list[np.ndarray]]:
    """The compiled optimizer's state per slot, each array in canonical layout (torch stores a
    Dense kernel, and so its slots, as ``(out, in)``; they are transposed like gradients)."""
    c = _compiled(model, "canonical_optimizer_state", need_loss=False)
    state = c.optimizer.state()
    if not state:
        return {}
    B = backend_module(model._backend).models
    # canonical_grads only transposes/reshapes per layer, so it maps numpy slots just as well.
    return {k: [np.asarray(a) for a in B.canonical_grads(model, v)] for k, v in state.items()}
