"""A compiled model's training configuration in a model file: the compile arguments as JSON,
the optimizer's state as tensors in canonical layout (Note [The model file] in
:mod:`dualnet.saving`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dualnet import _ops
from dualnet._backend import backend_module
from dualnet.saving_format import (
    ITERATIONS_KEY,
    OPTIMIZER_PREFIX,
    ModelFile,
    ModelFileError,
    require,
)


def describe_training(model: Any, tensors: dict[str, np.ndarray], where: str) -> dict[str, Any]:
    """The compile arguments and, once the optimizer is built, its state as tensors."""
    from dualnet import optimizers, training

    c = model._compiled
    doc: dict[str, Any] = {
        "optimizer": optimizers.serialize(c.optimizer),
        "loss": _loss_json(c.loss, where),
        "metrics": [_metric_json(m, where) for m in c.metric_specs],
        "run_eagerly": c.run_eagerly,
        "jit_compile": c.jit_compile,
        "steps_per_execution": c.steps_per_execution,
        "state": None,
    }
    if c.optimizer.built:
        trainable = model.trainable_weights
        state = training.canonical_optimizer_state(model)
        for slot, arrays in state.items():
            if len(arrays) != len(trainable):
                raise ValueError(
                    f"{where}: the optimizer was built for {len(arrays)} variables; "
                    f"the model has {len(trainable)} trainable weights (was a "
                    "layer's trainable flag changed after training began?)."
                )
            for info, array in zip(trainable, arrays, strict=True):
                tensors[f"{OPTIMIZER_PREFIX}{slot}/{info.path}"] = np.ascontiguousarray(array)
        tensors[ITERATIONS_KEY] = np.array(c.optimizer.iterations, dtype=np.int64)
        doc["state"] = {"slots": list(state)}
    return doc


def _loss_json(loss: Any, where: str) -> Any:
    from dualnet import losses, training

    if loss is None:
        return None
    if isinstance(loss, losses.Loss):
        return losses.serialize(loss)
    if isinstance(loss, training._UserLoss):
        return {"function": loss.name}  # rebuilt from custom_objects by that name
    raise ValueError(f"{where}: cannot save the loss {loss!r}.")


def _metric_json(metric: Any, where: str) -> Any:
    import dataclasses

    from dualnet import metrics

    if isinstance(metric, str):
        return metric
    if isinstance(metric, metrics._Function):
        return {"function": getattr(metric.fn, "__name__", metric.name), "name": metric.name}
    cls = type(metric)
    if metrics._CLASSES.get(cls.__name__) is not cls:
        raise ValueError(f"{where}: cannot save the metric {metric!r} (not a dualnet metric).")
    config = {f.name: getattr(metric, f.name) for f in dataclasses.fields(metric)}
    return {"class_name": cls.__name__, "config": config}


class TrainingPlan:
    """A file's training configuration, resolved and checked before any model is built;
    :meth:`apply` compiles a rebuilt model with it and restores the optimizer's state."""

    def __init__(self, file: ModelFile, doc: dict[str, Any], custom: dict[str, Any]):
        from dualnet import losses, metrics, optimizers

        self.file, self.doc = file, doc
        try:
            self.optimizer = optimizers.deserialize(doc.get("optimizer"))
            loss = doc.get("loss")
            self.loss = (self._function(loss, custom, "loss") if isinstance(loss, dict)
                         and "function" in loss else losses.get(loss))  # fmt: skip
            self.metrics = []
            for m in require(file.path, doc, "metrics", list, "training"):
                if isinstance(m, dict) and "function" in m:
                    fn = self._function(m, custom, "metric")
                    self.metrics.append(metrics._Function(fn=fn, name=m.get("name", m["function"])))
                elif isinstance(m, dict):
                    cls = metrics._CLASSES.get(m.get("class_name"))
                    if cls is None:
                        raise ValueError(f"unknown metric class {m.get('class_name')!r}")
                    self.metrics.append(cls(**m.get("config", {})))
                else:
                    self.metrics.append(metrics.get(m))
        except ModelFileError:
            raise
        except (TypeError, ValueError, KeyError) as exc:
            raise ModelFileError(
                file.path,
                f"cannot restore the training configuration: "
                f"{exc}; load with compile=False to skip it.",
            ) from None
        self.state = doc.get("state")
        if self.state is not None and self.state["slots"] != list(self.optimizer.slot_names()):
            raise ModelFileError(file.path, f"optimizer state slots {self.state['slots']} do "
                                 f"not match {type(self.optimizer).__name__}'s "
                                 f"{list(self.optimizer.slot_names())}.")  # fmt: skip

    def _function(self, entry: dict[str, Any], custom: dict[str, Any], what: str) -> Any:
        name = entry["function"]
        fn = custom.get(name)
        if fn is None or not callable(fn):
            raise ModelFileError(self.file.path, f"the {what} is the custom function {name!r}; "
                                 f"pass custom_objects={{{name!r}: {name}}}, or load with "
                                 "compile=False.")  # fmt: skip
        return fn

    def apply(self, model: Any) -> None:
        from dualnet import training

        doc = self.doc
        try:
            model.compile(optimizer=self.optimizer, loss=self.loss, metrics=self.metrics,
                          run_eagerly=doc.get("run_eagerly", False),
                          jit_compile=doc.get("jit_compile", "auto"),
                          steps_per_execution=doc.get("steps_per_execution", 1))  # fmt: skip
        except (TypeError, ValueError) as exc:
            raise ModelFileError(
                self.file.path,
                f"cannot compile the model as saved: {exc}; load with compile=False to skip it.",
            ) from None
        if self.state is None:
            return
        c = model._compiled
        training._params(model, c)  # builds the optimizer for the model's variables
        native = self.optimizer.state()  # fresh slots: their shapes are the native layout
        trainable = model.trainable_weights
        state = {}
        for slot in self.state["slots"]:
            arrays = [self.file.tensors[f"{OPTIMIZER_PREFIX}{slot}/{w.path}"] for w in trainable]
            state[slot] = native_layout(model, arrays, [a.shape for a in native[slot]])
        self.optimizer.set_state(state, iterations=int(self.file.tensors[ITERATIONS_KEY]))


def native_layout(model: Any, arrays: list[np.ndarray], shapes: list[tuple[int, ...]]
                  ) -> list[np.ndarray]:  # fmt: skip
    """Canonical per-trainable-weight arrays in the backend's native layout of the optimizer
    state (torch stores a Dense kernel as ``(out, in)``): the inverse of the backend's
    ``canonical_grads`` map, found by sending each native position's flat index through it."""
    models = backend_module(model._backend).models
    index = [np.arange(int(np.prod(s)), dtype=np.int64).reshape(s) for s in shapes]
    # canonical_grads only transposes and reshapes, so it maps index arrays like slots.
    where = [np.asarray(_ops.to_numpy(i) if not isinstance(i, np.ndarray) else i)
             for i in models.canonical_grads(model, index)]  # fmt: skip
    out = []
    for array, position, shape in zip(arrays, where, shapes, strict=True):
        native = np.empty(int(np.prod(shape)), dtype=array.dtype)
        native[position.ravel()] = array.ravel()  # canonical element k sits at native position[k]
        out.append(native.reshape(shape))
    return out
