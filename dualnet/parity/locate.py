"""The divergence locator: where, layer by layer and step by step, torch and TensorFlow part ways.

    report = dn.parity.compare(model, x, y, loss="categorical_crossentropy")
    print(report)                      # a table, one row per layer output / weight / gradient
    report.first_divergence            # the first row beyond tolerance, or None
    report.to_json("report.json")

    run = dn.parity.compare_training(model, x, y, loss="mse", optimizer="adam", steps=100)
    run.first_divergence               # (step, parameter) where the weights first disagree

:func:`compare_model` runs the model on both backends with identical weights (the model and
``model.to_backend(other)``, or a pair you give with ``other=``, e.g. to inspect a model you
loaded separately) and compares, in execution order,

* each layer's **weights** (canonical layout: torch's ``(out, in)`` kernels transposed),
* each layer call's **output** (per-layer intermediate values: a Sequential or functional model
  is run layer by layer; a subclassed model's ``call`` is run with layer calls recorded),
* with ``y`` and ``loss``: the **loss** and the **gradient** of every weight.

The *first divergence* is the first weight or output row beyond tolerance in forward order
(a wrong weight or op shows up at its own layer, and everything after it inherits the error);
if every forward row passes, the first failing gradient in *backward* order (the backward pass
starts at the last layer). Tolerance: :func:`~dualnet.parity.tolerance.for_reduction` for the
model's dtype with ``K`` the longest sum in one step (fan-ins, fan-outs, the batch).

:func:`compare_training` trains both with ``train_step`` on the same batches (``fit``'s seeded
order) and compares the loss and every weight after every step; the bound for step ``k`` is the
one-step bound grown by the parity suite's policy for error over steps
(:func:`dualnet.parity.tolerance.grown`, Note [Growth over steps]): by default
:data:`~dualnet.parity.tolerance.TRAINING_DEFAULT`, the largest growth the optimizer and
training families measured, interpolated like a random walk (``1 + (F-1)·√(k/100)``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dualnet import layers as _layers
from dualnet import optimizers as _optimizers
from dualnet import training as _training
from dualnet._backend import BACKENDS, backend_module, use_backend
from dualnet._ops import to_numpy
from dualnet.errors import bad_type, bad_value
from dualnet.parity import tolerance as tol
from dualnet.parity.compare import Diff, compare

__all__ = ["LayerCall", "ModelReport", "Row", "TrainingReport", "compare_model",
           "compare_training", "layer_calls", "layer_outputs"]  # fmt: skip


# --------------------------------------------------------------------------- per-layer values


@dataclass(frozen=True)
class LayerCall:
    """One layer call of a model run: ``label`` (the layer name, ``#k`` for the k-th call of a
    layer used more than once), the layer, its native output (a list for a layer with several
    outputs) and the labels of the calls whose outputs it read (its parents in the graph)."""

    label: str
    layer: Any
    output: Any
    parents: tuple[str, ...]


def _symbolic_value(value: Any, values: dict[int, Any]) -> Any:
    """A node's call argument with its symbolic tensors replaced by the computed tensors."""
    from dualnet.layers._symbolic import SymbolicTensor

    if isinstance(value, SymbolicTensor):
        return values[id(value)]
    if isinstance(value, list | tuple) and any(isinstance(v, SymbolicTensor) for v in value):
        return [_symbolic_value(v, values) for v in value]
    return value


def call_labeller() -> Any:
    """A function giving each layer call, in order, its label: the layer's name, with ``#k``
    for the k-th call of a layer used more than once."""
    counts: dict[int, int] = {}

    def label(layer: Any) -> str:
        k = counts.get(id(layer), 0)
        counts[id(layer)] = k + 1
        return layer.name if k == 0 else f"{layer.name}#{k}"

    return label


def layer_calls(model: Any, x: Any, *, training: bool = False) -> list[LayerCall]:
    """Every layer call of ``model`` on ``x`` in execution order, with its output and parents.

    A Sequential model runs its layers in turn; a functional model runs every node as
    ``Functional._run`` does (several inputs for Add/Concatenate, call arguments such as
    MultiHeadAttention's ``value``/``attention_mask`` or an RNN's ``initial_state``, several
    outputs, masks travelling with the tensors); a subclassed model runs ``call`` with every
    eager layer call recorded. ``training=True`` runs the layers in training mode (batch
    statistics, the next dropout masks: the caller restores moving statistics and runtime
    state if it needs them unchanged). No gradients are recorded.
    """
    from dualnet.models import Functional, Sequential

    if not isinstance(training, bool):
        raise bad_type("training", training, "a bool", where="layer_calls")
    if not model.built:
        model(x)
    backend = model.backend
    core = backend_module(backend).core
    xs, single = model._split_inputs(x)
    tensors = [core.convert_to_tensor(item) for item in xs]
    calls: list[tuple[Any, Any, tuple[int, ...]]] = []  # (layer, output, parent call indices)
    with use_backend(backend), backend_module(backend).models.inference():
        if isinstance(model, Sequential):
            h = model._prepare(tensors, core)[0]
            for i, layer in enumerate(model.layers):
                h = layer(h, training=training)
                calls.append((layer, h, (i - 1,) if i else ()))
        elif isinstance(model, Functional):
            prepared = model._prepare(tensors, core)
            values = {id(t): v for t, v in zip(model.inputs, prepared, strict=True)}
            producer: dict[int, int] = {}  # symbolic tensor id -> index of the call making it
            for node in model._nodes:
                layer = node.layer
                args = ([values[id(t)] for t in node.inputs] if layer.multi_input
                        else values[id(node.inputs[0])])  # fmt: skip
                kwargs = {k: _symbolic_value(v, values) for k, v in node.kwargs.items()}
                out = layer(args, training=training, **kwargs)
                outs = out if len(node.outputs) > 1 else [out]
                parents = tuple(sorted({producer[id(t)] for t in node.parents
                                        if id(t) in producer}))  # fmt: skip
                for t, o in zip(node.outputs, outs, strict=True):
                    values[id(t)] = o
                    producer[id(t)] = len(calls)
                calls.append((layer, out, parents))
        else:  # subclassed: run call() with every eager layer call recorded
            with _layers.tracing() as trace:
                model._call_with_training(tensors[0] if single else tensors, training)
            made: dict[int, int] = {}
            for layer, inputs, out in trace:
                items = inputs if isinstance(inputs, list | tuple) else [inputs]
                parents = tuple(sorted({made[id(t)] for t in items if id(t) in made}))
                for o in out if isinstance(out, list) else [out]:
                    made[id(o)] = len(calls)
                calls.append((layer, out, parents))
    label = call_labeller()
    labels = [label(layer) for layer, _, _ in calls]
    return [LayerCall(label, layer, out, tuple(labels[p] for p in parents))
            for label, (layer, out, parents) in zip(labels, calls, strict=True)]  # fmt: skip


def layer_outputs(model: Any, x: Any, *, training: bool = False) -> list[tuple[str, Any]]:
    """``(label, native output)`` for every layer call of ``model`` on ``x``, in execution
    order (:func:`layer_calls` without the graph). The label is the layer name, with ``#k`` for
    the k-th call of a layer used more than once; a layer with several outputs gives a list.
    No gradients are recorded."""
    return [(c.label, c.output) for c in layer_calls(model, x, training=training)]


# --------------------------------------------------------------------------------- the report


class _JsonReport:
    """``to_json`` shared by the two report classes (each defines ``to_dict``)."""

    def to_json(self, path: str | Path | None = None) -> str:
        """The report as JSON text; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2)  # type: ignore[attr-defined]
        if path is not None:
            Path(path).write_text(text)
        return text


@dataclass(frozen=True, kw_only=True)
class Row:
    """One comparison: ``kind`` is ``"weight"``, ``"output"``, ``"loss"`` or ``"gradient"``."""

    layer: str
    kind: str
    name: str
    shape: tuple[int, ...]
    diff: Diff

    @property
    def passed(self) -> bool:
        return self.diff.passed

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "kind": self.kind, "name": self.name,
                "shape": list(self.shape), **self.diff.to_dict()}  # fmt: skip


def _table(rows: list[list[Any]], headers: tuple[str, ...]) -> str:
    from tabulate import tabulate

    return tabulate(rows, headers=headers, disable_numparse=True)


@dataclass(frozen=True, kw_only=True)
class ModelReport:
    """What :func:`compare_model` found; ``str(report)`` is the table."""

    model: str
    backends: tuple[str, str]
    dtype: str
    tolerance: tol.Tolerance
    rows: list[Row] = field(default_factory=list)

    @property
    def first_divergence(self) -> Row | None:
        """The first forward row (weight/output, execution order) beyond tolerance; else the
        loss; else the first failing gradient in backward order (rows are stored that way)."""
        for row in self.rows:
            if not row.passed:
                return row
        return None

    @property
    def first_layer(self) -> str | None:
        """The layer of :attr:`first_divergence` (None when everything agrees)."""
        row = self.first_divergence
        return None if row is None else row.layer

    @property
    def ok(self) -> bool:
        return self.first_divergence is None

    def table(self) -> str:
        a, b = self.backends
        body = [
            [r.layer, r.kind, r.name, "x".join(map(str, r.shape)) or "()",
             f"{r.diff.max_abs:.2e}", f"{r.diff.max_rel:.2e}", f"{r.diff.worst_ratio:.2f}",
             r.diff.nonfinite_matched or "", "ok" if r.passed else "DIVERGES"]
            for r in self.rows
        ]  # fmt: skip
        first = self.first_divergence
        verdict = (
            "all rows within tolerance" if first is None
            else f"first divergence: layer {first.layer!r} ({first.kind} {first.name})"
        )  # fmt: skip
        nonfinite = sum(r.diff.nonfinite_matched for r in self.rows)
        if nonfinite:  # NaN/inf on both sides agree, but the user must see them
            verdict += f" ({nonfinite} NaN/inf value(s) on both sides, matched)"
        head = (f"{self.model}: {a} vs {b}, {self.dtype}, tolerance {self.tolerance} "
                f"({self.tolerance.reason})")  # fmt: skip
        headers = ("layer", "kind", "name", "shape", "max abs", "max rel", "err/bound",
                   "NaN/inf both", "")  # fmt: skip
        return f"{head}\n{_table(body, headers)}\n{verdict}"

    __str__ = table

    def to_dict(self) -> dict[str, Any]:
        first = self.first_divergence
        return {
            "model": self.model, "backends": list(self.backends), "dtype": self.dtype,
            "rtol": self.tolerance.rtol, "atol": self.tolerance.atol,
            "tolerance_reason": self.tolerance.reason,
            "first_divergence": None if first is None else first.to_dict(),
            "rows": [r.to_dict() for r in self.rows],
        }  # fmt: skip

    to_json = _JsonReport.to_json


# ---------------------------------------------------------------------------- compare_model


def _pair(model: Any, other: Any) -> tuple[Any, Any]:
    from dualnet.models import Model

    if not isinstance(model, Model):
        raise bad_type("model", model, "a dualnet Model")
    if not model.built:
        raise bad_value("model", model, "a built model (call it once, or give dn.Input)")
    if other is None:
        target = next(b for b in BACKENDS if b != model.backend)
        return model, model.to_backend(target)
    if not isinstance(other, Model) or not other.built:
        raise bad_type("other", other, "a built dualnet Model on the other backend")
    if other.backend == model.backend:
        raise bad_value("other", other, f"a model built on the backend other than "
                        f"{model.backend!r}")  # fmt: skip
    shapes_a = [w.shape for w in model.weights]
    shapes_b = [w.shape for w in other.weights]
    if shapes_a != shapes_b:
        raise bad_value("other", other, f"a model with the same weights as model ({shapes_a}), "
                        f"got {shapes_b}")  # fmt: skip
    return model, other


def _default_tolerance(model: Any, x: Any) -> tuple[str, tol.Tolerance]:
    infos = model.weights
    dtype = infos[0].dtype if infos else "float32"
    dims = [d for w in infos for d in w.shape]
    batch = int(np.shape(x[0] if isinstance(x, list | tuple) else x)[0])
    return dtype, tol.for_reduction(dtype, max([*dims, batch, 1]))


def _host(x: Any) -> np.ndarray:
    return np.asarray(to_numpy(x), dtype=np.float64)


def compare_model(model: Any, x: Any, y: Any = None, loss: Any = None, *, other: Any = None,
                  tolerance: tol.Tolerance | None = None) -> ModelReport:  # fmt: skip
    """Compare ``model`` with its twin on the other backend, layer by layer.

    Args:
        model: a built dualnet model.
        x: inputs (numpy, or a list for several inputs).
        y, loss: targets and a loss (name or object); with both, the loss and every weight's
            gradient are compared too.
        other: the twin on the other backend (default ``model.to_backend(...)``, which has the
            same weights by construction).
        tolerance: the bound for every row (default: see the module docstring).

    Returns:
        A :class:`ModelReport`.
    """
    if (y is None) != (loss is None):
        raise bad_value("loss" if loss is None else "y", None, "both y and loss, or neither")
    a, b = _pair(model, other)
    dtype, default = _default_tolerance(a, x)
    bound = tolerance or default
    # Host copies (dtype kept), so both models get the very same values.
    x_host = [to_numpy(v) for v in x] if isinstance(x, list | tuple) else to_numpy(x)
    rows: list[Row] = []
    outs_a, outs_b = layer_outputs(a, x_host), layer_outputs(b, x_host)
    if [k for k, _ in outs_a] != [k for k, _ in outs_b]:
        raise ValueError(
            f"compare: the two models call different layers: {[k for k, _ in outs_a]} vs "
            f"{[k for k, _ in outs_b]}."
        )
    layers_a = {layer.name: layer for layer in a.layers}
    layers_b = {layer.name: layer for layer in b.layers}
    for label, out_a in outs_a:
        name = label.split("#")[0]
        if "#" not in label and name in layers_a:
            wa, wb = layers_a[name].get_weights(), layers_b[name].get_weights()
            for info, va, vb in zip(layers_a[name].weights, wa, wb, strict=True):
                rows.append(Row(layer=name, kind="weight", name=info.name, shape=va.shape,
                                diff=compare(vb, va, bound)))  # fmt: skip
        out_b = dict(outs_b)[label]
        several = isinstance(out_a, list)  # a layer with several outputs: one row each
        for i, (oa, ob) in enumerate(zip(*(o if several else [o] for o in (out_a, out_b)),
                                         strict=True)):  # fmt: skip
            ha, hb = _host(oa), _host(ob)
            name = f"output:{i}" if several else "output"
            rows.append(Row(layer=label, kind="output", name=name, shape=ha.shape,
                            diff=compare(hb, ha, bound)))  # fmt: skip
    if y is not None:
        la, ga = _training.value_and_gradients(a, x_host, y, loss)
        lb, gb = _training.value_and_gradients(b, x_host, y, loss)
        rows.append(Row(layer="(loss)", kind="loss", name="loss", shape=(),
                        diff=compare(lb, la, bound)))  # fmt: skip
        infos = a.trainable_weights
        grad_rows = []
        # Paths are "<model>/<layer>/<weight>"; a weight name may hold "/" itself
        # (MultiHeadAttention's "query/kernel"), a layer name never does.
        for info, va, vb in zip(infos, ga, gb, strict=True):
            layer, weight = info.path.split("/", 2)[1:]
            grad_rows.append(Row(layer=layer, kind="gradient", name=weight, shape=va.shape,
                                 diff=compare(vb, va, bound)))  # fmt: skip
        # Backward order: the last layer's gradients first (the order backprop produces them).
        order = {layer.name: i for i, layer in enumerate(a.layers)}
        grad_rows.sort(key=lambda r: -order.get(r.layer, 0))
        rows.extend(grad_rows)
    return ModelReport(model=a.name, backends=(a.backend, b.backend), dtype=dtype,
                       tolerance=bound, rows=rows)  # fmt: skip


# ------------------------------------------------------------------------- compare_training


@dataclass(frozen=True, kw_only=True)
class TrainingReport:
    """What :func:`compare_training` found.

    Attributes:
        losses: ``{backend: per-step losses}`` (each before its update).
        weight_diff: per step, ``{weight path: max |w_a - w_b|}`` after the update.
        first_divergence: at the first step where a weight (or the loss) is beyond the step's
            bound: ``{"step", "parameter" (the one furthest past its bound), "max_abs",
            "bound", "err_over_bound", "all" (every weight beyond it then)}``; or None.
    """

    model: str
    backends: tuple[str, str]
    dtype: str
    tolerance: tol.Tolerance
    losses: dict[str, list[float]]
    weight_diff: list[dict[str, float]]
    first_divergence: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return self.first_divergence is None

    def growth(self) -> list[float]:
        """Per step, the largest ``|w_a - w_b|`` over all weights."""
        return [max(d.values()) if d else 0.0 for d in self.weight_diff]

    def table(self, every: int | None = None) -> str:
        """One row per step (every ``every``-th step plus the divergence; default ~20 rows)."""
        a, b = self.backends
        n = len(self.weight_diff)
        every = every or max(1, n // 20)
        first = self.first_divergence
        marked = first["step"] if first else None
        rows = []
        for k in range(1, n + 1):
            if k % every and k not in (1, n, marked):
                continue
            d = self.weight_diff[k - 1]
            worst = max(d, key=d.get) if d else "-"
            la, lb = self.losses[a][k - 1], self.losses[b][k - 1]
            rows.append([k, f"{la:.8g}", f"{lb:.8g}", f"{abs(la - lb):.2e}",
                         f"{d.get(worst, 0.0):.2e}", worst,
                         "FIRST DIVERGENCE" if k == marked else ""])  # fmt: skip
        verdict = (
            "the two backends agree at every step" if first is None
            else f"first divergence at step {first['step']}: {first['parameter']} "
            f"(max abs {first['max_abs']:.2e} > bound {first['bound']:.2e})"
        )  # fmt: skip
        head = f"{self.model}: training {a} vs {b}, {self.dtype}, {n} steps"
        headers = ("step", f"loss {a}", f"loss {b}", "|Δloss|", "max |Δw|", "worst weight", "")
        return f"{head}\n{_table(rows, headers)}\n{verdict}"

    __str__ = table

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "backends": list(self.backends), "dtype": self.dtype,
            "rtol": self.tolerance.rtol, "atol": self.tolerance.atol,
            "tolerance_reason": self.tolerance.reason, "losses": self.losses,
            "weight_diff": self.weight_diff, "first_divergence": self.first_divergence,
        }  # fmt: skip

    to_json = _JsonReport.to_json


def _optimizer_for(optimizer: Any, backend: str) -> _optimizers.Optimizer:
    if isinstance(optimizer, Mapping) and set(optimizer) == set(BACKENDS):
        optimizer = optimizer[backend]
    spec = _optimizers.get(optimizer)
    return type(spec).from_config(spec.get_config())  # a fresh, unbuilt copy per backend


def compare_training(model: Any, x: Any, y: Any, *, loss: Any, optimizer: Any = "rmsprop",
                     steps: int = 100, batch_size: int | None = None, seed: int = 0,
                     other: Any = None, tolerance: tol.Tolerance | None = None,
                     growth: tol.Growth | None = None) -> TrainingReport:  # fmt: skip
    """Train ``model`` and its twin for ``steps`` updates on identical batches; name the first
    step and weight at which they part ways.

    Args:
        model: a built dualnet model (its weights are the starting point; neither it nor
            ``other`` is changed: both are trained as copies).
        x, y: training data (numpy).
        loss: a loss name or object.
        optimizer: a name or spec (a fresh copy per backend), or ``{"torch": spec,
            "tensorflow": spec}`` to give each backend its own (e.g. to see a perturbed
            learning rate being located).
        steps: updates to run.
        batch_size: None for full-batch; else ``fit``'s seeded mini-batches (``seed``).
        other: the twin on the other backend (default ``model.to_backend(...)``).
        tolerance: the one-step bound (default as :func:`compare_model`).
        growth: how that bound grows over the steps (default
            :data:`~dualnet.parity.tolerance.TRAINING_DEFAULT`; a measured
            :class:`~dualnet.parity.tolerance.Growth` for a known configuration).

    Returns:
        A :class:`TrainingReport`.
    """
    a0, b0 = _pair(model, other)
    steps = _training._check_positive_int(steps, "steps", "compare_training")
    x = np.asarray(x)
    y = np.asarray(y)
    if len(x) != len(y):
        raise ValueError(
            f"compare_training: x and y must have the same number of samples; got x with "
            f"{len(x)} and y with {len(y)} samples."
        )
    size = len(x) if batch_size is None else _training._check_positive_int(
        batch_size, "batch_size", "compare_training")  # fmt: skip
    dtype, default = _default_tolerance(a0, x)
    one = tolerance or default
    if growth is None:
        growth = tol.TRAINING_DEFAULT
    elif not isinstance(growth, tol.Growth):
        raise bad_type("growth", growth, "a dualnet.parity.tolerance.Growth or None",
                       where="compare_training")  # fmt: skip
    # Train copies, so the caller's models keep their weights.
    a = a0.to_backend(a0.backend)
    b = b0.to_backend(b0.backend)
    for m in (a, b):
        m.compile(optimizer=_optimizer_for(optimizer, m.backend), loss=loss)
    per_epoch = -(-len(x) // size)
    orders = _training.batch_orders(len(x), size, -(-steps // per_epoch), shuffle=True,
                                    seed=seed)  # fmt: skip
    batches = [o[i : i + size] for o in orders for i in range(0, len(x), size)][:steps]
    names = [w.path for w in a.trainable_weights]
    losses: dict[str, list[float]] = {a.backend: [], b.backend: []}
    diffs: list[dict[str, float]] = []
    first = None
    for k, idx in enumerate(batches, start=1):
        bound = tol.grown(one, growth, k)  # the one policy for error growth over steps
        la = a.train_step(x[idx], y[idx])["loss"]
        lb = b.train_step(x[idx], y[idx])["loss"]
        losses[a.backend].append(la)
        losses[b.backend].append(lb)
        step_diff = {}
        candidates = []
        loss_diff = compare(lb, la, bound)
        if first is None and not loss_diff.passed:
            candidates.append(("loss", loss_diff))
        for name, wa, wb in zip(names, a.get_weights(), b.get_weights(), strict=True):
            d = compare(wb, wa, bound)
            step_diff[name] = d.max_abs
            if first is None and not d.passed:
                candidates.append((name, d))
        diffs.append(step_diff)
        if first is None and candidates:
            # The weight furthest past its bound (all that failed at this step are listed).
            name, d = max(candidates, key=lambda c: c[1].worst_ratio)
            first = {
                "step": k, "parameter": name, "max_abs": d.max_abs,
                "bound": bound.atol + bound.rtol * abs(d.worst_expected),
                "err_over_bound": d.worst_ratio, "all": [c[0] for c in candidates],
            }  # fmt: skip
    return TrainingReport(model=a0.name, backends=(a.backend, b.backend), dtype=dtype,
                          tolerance=one, losses=losses, weight_diff=diffs,
                          first_divergence=first)  # fmt: skip
