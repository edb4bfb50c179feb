"""Compiled training steps: the step of :mod:`dualnet.training` traced once and run natively.

Note [Compiled training]
------------------------
``model.compile(..., run_eagerly=False, jit_compile="auto", steps_per_execution=1)`` chooses
how ``fit`` and ``train_step`` run a step (forward, loss, gradients, finiteness check,
optimizer update):

==================  =========================  =========================  ====================
compile(...)        TensorFlow                 torch                      Keras 3 (for contrast)
==================  =========================  =========================  ====================
default             ``tf.function``; XLA when  eager                      the same
                    a GPU is present and the
                    model draws no host noise
jit_compile=True    ``tf.function`` + XLA      ``torch.compile``          XLA / torch eager
jit_compile=False   ``tf.function``            eager                      the same
run_eagerly=True    eager                      eager                      eager
==================  =========================  =========================  ====================

An eager step is the one described in Note [Non-finite values stop training]: the flag is read
on the host at every step and the error raised at once. A compiled step is traced once per batch
shape with everything that changes between steps passed as tensors: the optimizer's
coefficients (learning rate, bias corrections: Python float64 numbers computed on the host from
the host's step count, :meth:`dualnet.optimizers.Optimizer._coefficient_vector`, so the rules
round them exactly as an eager step does) and the step number. Inside the step:

* **Finiteness** is checked on the device, and the update is skipped there (``tf.cond`` /
  ``torch.where``; no host sync) when the loss, a gradient or a weight is not finite. The first
  failing step records its step number and its per-tensor flags in device variables.
* **Once a step has failed, every later step skips its update** (weights and optimizer slots)
  and puts back the non-trainable variables its forward pass wrote (moving statistics), until
  the host reads the flag. So when step ``k`` fails and the flag is read after step ``k + m``,
  the weights and the optimizer's slots are exactly those from before step ``k``.
* **The flag is read** at the end of every block of ``steps_per_execution`` steps and at the end
  of every epoch (with ``steps_per_execution=1``, the default, after every step, as eagerly).
  The host then *rolls back* what it advanced past step ``k``: the optimizer's step count
  becomes ``k - 1``, and the layers' runtime state (the dropout call counts of Note [Portable
  noise]) becomes what it was after step ``k``'s forward pass, which is what an eager step
  leaves: the moving statistics also keep step ``k``'s update, as eagerly. Then the same
  :class:`~dualnet.errors.NonFiniteError` is raised, with the same message, computed from the
  recorded flags and the epoch and batch the host noted for step ``k``. The losses and
  metrics of the steps after ``k`` are discarded, as is the whole epoch in progress.
* **Labels** are validated once per ``fit`` on the whole label array, on the host (the loss runs
  eagerly on it against zero predictions); the traced loss does no host checks. A bad label is
  then reported before any update, where an eager fit reports it at its batch (and then
  restores the weights, so the model ends the same either way).
* **Losses and metrics** of a block are read at the same point as the flag, in one transfer for
  the losses; metrics are then computed from the step's outputs in float64 numpy as eagerly.

XLA cannot run ``tf.numpy_function``, which a graph uses to draw the portable noise of dropout
layers (Note [Portable noise]): ``jit_compile=True`` on such a model is an error, and "auto"
picks plain ``tf.function`` for it (Keras's "auto" also leaves XLA off on CPU-only machines).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from dualnet import _ops
from dualnet._backend import backend_module, use_backend
from dualnet.errors import bad_value


def check_jit_compile(value: Any, where: str) -> bool | str:
    """``compile``'s ``jit_compile``: True, False or "auto" (Keras's values)."""
    if value != "auto" and not isinstance(value, bool):
        raise bad_value("jit_compile", value, "True, False or 'auto'", where=where)
    return value


def host_noise_layers(model: Any) -> list[str]:
    """Layers that draw host noise in training (Note [Portable noise]): those with a runtime
    state, which a graph advances through ``tf.numpy_function``."""
    return [layer.name for layer in model.layers if layer.get_runtime_state()]


def resolve_mode(model: Any, run_eagerly: bool, jit_compile: bool | str) -> str:
    """``"eager"``, ``"function"``, ``"xla"`` or ``"torch.compile"`` (Note [Compiled
    training])."""
    if run_eagerly:
        return "eager"
    if model._backend == "torch":
        return "torch.compile" if jit_compile is True else "eager"
    noise = host_noise_layers(model)
    if jit_compile is True:
        if noise:
            raise ValueError(
                f"{model._where()}: jit_compile=True, but layers {noise} draw their noise on the "
                "host (Note [Portable noise]), which XLA cannot run; compile with "
                "jit_compile=False or 'auto' (tf.function without XLA)."
            )
        return "xla"
    if jit_compile == "auto" and not noise and backend_module("tensorflow").core.cuda_available():
        return "xla"
    return "function"


@dataclasses.dataclass
class Pending:
    """A step run on the device whose flag, loss and outputs the host has not read yet."""

    step: int
    epoch: int | None
    batch: int | None
    size: int
    loss: Any
    y: Any = None
    outputs: Any = None
    mask: Any = None
    runtime: list[dict[str, Any]] | None = None  # the layers' runtime state before the step


def _several_outputs(model: Any) -> str:
    return f"{model._where()}: training a model with several outputs is not supported yet."


class Runner:
    """A model's compiled step and the host's side of it: coefficients, the step count, the
    blocks of pending steps, the flag read and the rollback (Note [Compiled training])."""

    def __init__(self, model: Any, compiled: Any, mode: str):
        self.model, self.c, self.mode = model, compiled, mode
        B = _ops.package(model._backend).models
        self._B = B
        self._stateful = [layer for layer in model.layers if layer.get_runtime_state()]
        self._single = True  # set by run(); static per model
        self._outputs: dict[tuple, Any] = {}  # output per input spec, for check_labels
        opt = compiled.optimizer

        def forward(inputs: Any, y: Any) -> tuple[Any, Any]:
            outputs = model._run(list(inputs), self._single, True)
            if isinstance(outputs, list):
                raise NotImplementedError(_several_outputs(model))
            return compiled.loss(y, outputs), outputs

        with use_backend(model._backend):
            self.step_fn = B.CompiledStep(
                forward, compiled.params, B.state_variables(model), opt._compiled_values,
                jit=mode in ("xla", "torch.compile"), outputs=bool(compiled.metric_specs),
            )  # fmt: skip
        self._traced = False

    def run(self, inputs: Sequence[Any], single: bool, y: Any, *, epoch: int | None,
            batch: int | None, size: int) -> Pending:  # fmt: skip
        """Launch one step on prepared native ``inputs`` (nothing is read back); the
        optimizer's count moves on the host."""
        self._single = single
        opt = self.c.optimizer
        step = opt.iterations + 1
        vector = opt._coefficient_vector(opt.iterations, step)  # the step number last
        runtime = [layer.get_runtime_state() for layer in self._stateful] or None
        with use_backend(self.model._backend):
            try:
                loss, outputs, mask = self.step_fn(list(inputs), y, vector)
            except Exception as exc:
                if not self._traced:  # the framework's own error, with what to try instead
                    exc.add_note(
                        f"{self.model._where()}: the {self.mode} training step could "
                        "not be built; compile(run_eagerly=True) runs it eagerly."
                    )
                raise
        self._traced = True
        opt._rt.iterations = step
        keep = outputs is not None
        return Pending(step, epoch, batch, size, loss, y if keep else None, outputs, mask, runtime)

    def read(self, pending: list[Pending]) -> list[float]:
        """The losses of a block of steps, after the flag: a failure rolls back and raises."""
        failed, flags = self.step_fn.failure()
        losses = [float(v) for v in self._B.host_values([p.loss for p in pending])]
        if failed:
            self._roll_back(pending, failed)
            from dualnet.training import _raise_nonfinite

            j = next(j for j, p in enumerate(pending) if p.step == failed)
            _raise_nonfinite(self.model, self.c, flags, losses[j], pending[j].epoch,
                             pending[j].batch)  # fmt: skip
        return losses

    def _roll_back(self, pending: list[Pending], failed: int) -> None:
        self.step_fn.reset()
        self.c.optimizer._rt.iterations = failed - 1
        after = [p for p in pending if p.step > failed]
        if after and after[0].runtime is not None:  # the state step `failed` left behind
            for layer, state in zip(self._stateful, after[0].runtime, strict=True):
                layer.set_runtime_state(state)

    def reset(self) -> None:
        """Forget a failure recorded by an interrupted run (an exception between reads)."""
        self.step_fn.reset()

    def check_labels(self, x: Any, y: np.ndarray) -> None:
        """The loss's host checks of the labels (integral, in range, shaped...), once, on the
        whole label array ``y``: the loss runs eagerly on it against zero predictions shaped
        like the model's output (the compiled step's traced loss checks nothing). ``x``: one
        sample's inputs, numpy (a list for several inputs), run once per input shape."""
        model = self.model
        core = backend_module(model._backend).core
        key = tuple(tuple(np.shape(a)[1:]) for a in (x if isinstance(x, list) else [x]))
        if key not in self._outputs:
            with backend_module(model._backend).models.inference():
                out = model(x)
            if isinstance(out, list):
                raise NotImplementedError(_several_outputs(model))
            self._outputs[key] = (tuple(out.shape)[1:], core.dtype_name(out))
        shape, dtype = self._outputs[key]
        zeros = core.convert_to_tensor(np.zeros((len(y), *shape)), dtype)
        with use_backend(model._backend), backend_module(model._backend).models.inference():
            self.c.loss(core.convert_to_tensor(y), zeros)
