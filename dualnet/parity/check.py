"""``dualnet check``: does this model give the same numbers on torch and on tf.keras?

    report = dn.parity.check_model("model.keras")                 # or a dualnet model
    report = dn.parity.check_model("nets.resnet:build", input_shape=(3, 32, 32))
    print(report)                # per layer: outputs and gradients, torch vs TensorFlow
    report.verdict               # "pass", "pass (1 kink flip)" or "FAIL: ..."
    report.to_json("check.json")

:func:`check_model` imports the model (:mod:`dualnet.parity.sources`), builds its twin on the
other framework (``model.to_backend``), and in inference and in training mode (batch
statistics, dualnet's portable dropout masks) runs both layer by layer and the float64
reference (:mod:`dualnet.reference.layers`) on the same inputs. It compares, each against its
derived tolerance (Note [Check tolerances] in :mod:`dualnet.parity.check_runs`):

* the weights of the two (identical by construction unless a twin is given with ``other=``);
* the original Keras model's or torch module's output against the import's;
* every layer call's output (masked positions left out), with each side's error against the
  float64 reference where the reference has the layer: which side is right;
* in training mode, the moving statistics after the call;
* the check loss ``Σ y·P`` (Note [Check loss]) and the gradient of every trainable weight.

Verdict (Note [Kink flips] in :mod:`dualnet.parity.kinks`, Note [Float64 arbiter] in
:mod:`dualnet.parity.check_arbiter`): any failing weight, output or state row fails the model,
and names its layer (the *first departure*: forward rows in execution order first, then the
loss, then gradients in backward order). When every forward row passes, a failing gradient of a
weight at or upstream of a kink flip of the same mode is *explained* by that flip (listed with
its error and the flips). A failing float32 gradient or loss that no flip explains, or a
failing layer output the float64 reference has no value for, goes to the float64 arbiter: the
same two models rebuilt in float64 must agree, and each float32 side must be comparably close
to them (within the row's bound normwise, neither more than ``SPREAD`` times further than the
other). Such a row is *rounding-limited* (listed with its numbers, not a failure); otherwise it
fails and the arbiter names the side that is wrong, or both when the float64 twins disagree
too. The verdict is ``pass``, ``pass (N kink flips, M rounding-limited gradients)`` or
``FAIL: first departure at layer ...``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dualnet._backend import BACKENDS
from dualnet.errors import bad_type, bad_value
from dualnet.parity import check_runs as R
from dualnet.parity import tolerance as tol
from dualnet.parity.check_arbiter import Arbitration, Float64Pair, confirm_flips, judge_rows
from dualnet.parity.compare import Diff, compare
from dualnet.parity.kinks import (
    Flip,
    ancestors,
    explained_by,
    find_flips,
    kink_is_exact,
    kink_values,
)
from dualnet.parity.sources import (
    Loaded,
    describe_inputs,
    load_source,
    random_inputs,
    read_inputs,
    run_original,
)

__all__ = ["CheckReport", "CheckRow", "check_model"]

FORWARD_KINDS = ("weight", "original", "output", "state")
MODES = ("inference", "training")


@dataclass(frozen=True, kw_only=True)
class CheckRow:
    """One comparison of the check.

    Attributes:
        mode: ``"inference"``, ``"training"``, or ``"-"`` for the weights.
        layer: the layer call's label (``"(loss)"`` for the loss, ``"(original)"``...).
        kind: ``"weight"``, ``"original"``, ``"output"``, ``"state"``, ``"loss"`` or
            ``"gradient"``.
        name: the output (``"output"``, ``"output:1"``) or weight name.
        shape: the compared array's shape.
        diff: the second backend's value against the first's (the import's against the
            original's for kind ``"original"``).
        reference: ``{backend: Diff}`` of each side against the float64 reference.
        flips: for a failing gradient row: the kink flips that explain it (Note [Kink flips]).
        arbiter: for a failing row judged by the float64 arbiter (Note [Float64 arbiter] in
            :mod:`dualnet.parity.check_arbiter`): rounding-limited, or which side is wrong.
    """

    mode: str
    layer: str
    kind: str
    name: str
    shape: tuple[int, ...]
    diff: Diff
    reference: dict[str, Diff] = field(default_factory=dict)
    flips: tuple[Flip, ...] = ()
    arbiter: Arbitration | None = None

    @property
    def passed(self) -> bool:
        return self.diff.passed

    @property
    def rounding_limited(self) -> bool:
        """Failing torch vs TensorFlow, and float32 rounding by the float64 arbiter."""
        return not self.passed and self.arbiter is not None and self.arbiter.rounding_limited

    @property
    def failed(self) -> bool:
        """Failing, and neither a kink flip nor float32 rounding explains it."""
        return not self.passed and not self.flips and not self.rounding_limited

    @property
    def status(self) -> str:
        if self.passed:
            return "ok"
        if self.flips:
            return f"kink flip ({len(self.flips)})"
        if self.arbiter is None:
            return "DIVERGES"
        if self.arbiter.rounding_limited:
            return "rounding-limited"
        if len(self.arbiter.wrong) == 2 and not self.arbiter.twins.passed:
            return "DIVERGES (float64 too)"
        return f"DIVERGES ({' and '.join(self.arbiter.wrong)} off f64)"

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "layer": self.layer, "kind": self.kind, "name": self.name,
                "shape": list(self.shape), "status": self.status, **self.diff.to_dict(),
                "reference": {b: d.to_dict() for b, d in self.reference.items()},
                "explained_by": [f.to_dict() for f in self.flips],
                "arbiter": None if self.arbiter is None else self.arbiter.to_dict()}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class CheckReport:
    """What :func:`check_model` found; ``str(report)`` is the printed report."""

    model: str
    source: str
    kind: str
    backends: tuple[str, str]
    dtype: str
    inputs: list[dict[str, Any]]
    rows: list[CheckRow]
    flips: list[Flip]
    times: dict[str, float]
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[CheckRow]:
        """Failing rows that neither a kink flip nor float32 rounding (the float64 arbiter)
        explains, in the order of the first departure."""
        bad = [r for r in self.rows if r.failed]
        rank = {k: i for i, k in enumerate((*FORWARD_KINDS, "loss", "gradient"))}
        return sorted(bad, key=lambda r: rank[r.kind])  # stable: execution order within a kind

    @property
    def explained(self) -> list[CheckRow]:
        """Failing gradient rows explained by kink flips."""
        return [r for r in self.rows if not r.passed and r.flips]

    @property
    def rounding_limited(self) -> list[CheckRow]:
        """Rows failing torch vs TensorFlow that the float64 arbiter finds to be float32
        rounding (Note [Float64 arbiter]): listed with their numbers, not failures."""
        return [r for r in self.rows if r.rounding_limited]

    @property
    def first_departure(self) -> CheckRow | None:
        failures = self.failures
        return failures[0] if failures else None

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def verdict(self) -> str:
        first = self.first_departure
        if first is not None:
            where = f"{first.mode} " if first.mode != "-" else ""
            why = ""
            if first.arbiter is not None:  # the float64 arbiter says which side is wrong
                why = f": {first.arbiter.reason.split(';')[0]}"
            return (f"FAIL: first departure at layer {first.layer!r} ({where}{first.kind} "
                    f"{first.name}{why}); {len(self.failures)} failing rows")  # fmt: skip
        parts = []
        if self.flips:
            n = len(self.flip_sites)
            parts.append(f"{n} kink flip{'s' if n > 1 else ''}")
        limited = self.rounding_limited
        if limited:
            noun = "gradient" if all(r.kind == "gradient" for r in limited) else "row"
            parts.append(f"{len(limited)} rounding-limited {noun}{'s' if len(limited) > 1 else ''}")
        return f"pass ({', '.join(parts)})" if parts else "pass"

    @property
    def flip_sites(self) -> list[tuple[str, str, tuple[int, ...]]]:
        """The distinct flipped activations (layer, output, index), whichever mode found them
        (the same activation usually flips in inference and in training mode)."""
        return sorted({(f.layer, f.output, f.index) for f in self.flips})

    def worst(self, kind: str) -> tuple[float, float]:
        """The largest max-abs difference and err/bound ratio over rows of ``kind``."""
        rows = [r for r in self.rows if r.kind == kind]
        return (max([r.diff.max_abs for r in rows] + [0.0]),
                max([r.diff.worst_ratio for r in rows] + [0.0]))  # fmt: skip

    def table(self, failures_only: bool = False, all_rows: bool = False) -> str:
        """The report: one row per comparison (only the failing ones with ``failures_only``;
        the weights identical on both sides folded into one line unless ``all_rows``), the
        kink flips, the explained and the rounding-limited rows, the failures' details, times,
        verdict."""
        from tabulate import tabulate

        a, b = self.backends
        body = []
        same = [r for r in self.rows if r.kind == "weight" and r.passed and r.diff.max_abs == 0]
        folded = set() if all_rows else {id(r) for r in same}
        for r in self.rows:
            if (failures_only and r.passed) or id(r) in folded:
                continue
            refs = [r.reference.get(x) for x in (a, b)]
            body.append([r.mode, r.layer, r.kind, r.name, "x".join(map(str, r.shape)) or "()",
                         f"{r.diff.max_abs:.2e}", f"{r.diff.worst_ratio:.2g}",
                         *(f"{d.max_abs:.1e}" if d else "" for d in refs), r.status])  # fmt: skip
        head = (f"{self.model} ({self.kind}: {self.source}): {a} vs {b}, {self.dtype}, inputs "
                + ", ".join(f"{'x'.join(map(str, i['shape']))} {i['dtype']}"
                            for i in self.inputs))  # fmt: skip
        headers = ("mode", "layer", "kind", "name", "shape", f"|{b}-{a}|", "err/bound",
                   f"{a}~f64", f"{b}~f64", "")  # fmt: skip
        lines = [head]
        if folded and not failures_only:
            lines.append(f"weights: {len(folded)} tensors, identical on both backends (--all "
                         "lists each)")  # fmt: skip
        lines.append(tabulate(body, headers=headers, disable_numparse=True))
        if self.flips:
            lines.append("kink flips (Note [Kink flips]):")
            lines += [f"  {f.mode}: {f.describe()}" for f in self.flips]
        if self.explained:
            lines.append("gradient rows explained by kink flips (not failures):")
            lines += [f"  {r.mode} {r.layer}/{r.name}: max abs {r.diff.max_abs:.2e}, "
                      f"err/bound {r.diff.worst_ratio:.1f}" for r in self.explained]  # fmt: skip
        if self.rounding_limited:
            lines.append("rows limited by float32 rounding (float64 arbiter; not failures):")
            lines += [f"  {r.mode} {r.layer}/{r.name}: |{b}-{a}| {r.diff.max_abs:.2e}, "
                      f"err/bound {r.diff.worst_ratio:.1f}; {r.arbiter.reason}"
                      for r in self.rounding_limited if r.arbiter]  # fmt: skip
        for r in self.failures[:10]:
            lines.append(r.diff.message(f"{r.mode} {r.layer} {r.kind} {r.name}"))
            if r.arbiter is not None:
                lines.append(f"float64 arbiter: {r.arbiter.reason}")
        lines += [f"note: {n}" for n in self.notes]
        lines.append("times: " + ", ".join(f"{k} {v:.2f}s" for k, v in self.times.items()))
        lines.append(f"verdict: {self.verdict}")
        return "\n".join(lines)

    __str__ = table

    def to_dict(self) -> dict[str, Any]:
        first = self.first_departure
        return {
            "model": self.model, "source": self.source, "kind": self.kind,
            "backends": list(self.backends), "dtype": self.dtype, "inputs": self.inputs,
            "verdict": self.verdict, "ok": self.ok,
            "first_departure": None if first is None else first.to_dict(),
            "flips": [f.to_dict() for f in self.flips],
            "explained": [r.to_dict() for r in self.explained],
            "rounding_limited": [r.to_dict() for r in self.rounding_limited],
            "times": self.times, "notes": self.notes, "rows": [r.to_dict() for r in self.rows],
        }  # fmt: skip

    def to_json(self, path: str | Path | None = None) -> str:
        """The report as JSON text; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text)
        return text


# ------------------------------------------------------------------------------ check_model


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise bad_value(name, value, "an int >= 1", where="check_model")
    return int(value)


def _twin(model: Any, other: Any) -> Any:
    from dualnet.models import Model

    if other is None:
        return model.to_backend(next(b for b in BACKENDS if b != model.backend))
    if not isinstance(other, Model) or not other.built:
        raise bad_type("other", other, "a built dualnet Model on the other backend",
                       where="check_model")  # fmt: skip
    if other.backend == model.backend:
        raise bad_value("other", other, f"a model built on the backend other than "
                        f"{model.backend!r}", where="check_model")  # fmt: skip
    shapes = ([w.shape for w in model.weights], [w.shape for w in other.weights])
    if shapes[0] != shapes[1]:
        raise bad_value("other", other, f"a model with the same weights as the model "
                        f"({shapes[0]}), got {shapes[1]}", where="check_model")  # fmt: skip
    return other


def _pre_activation(call: Any, calls: dict[str, Any], index: tuple[int, ...]) -> Any:
    """The input of a separate elementwise activation layer at ``index`` (its pre-activation);
    None for a fused activation or a layer whose input has another shape."""
    if type(call.layer).__name__ not in ("ReLU", "LeakyReLU", "PReLU", "Activation"):
        return None
    if len(call.parents) != 1:
        return None
    parent = R.outputs_of(calls[call.parents[0]])
    if len(parent) != 1:
        return None
    value = R.host(parent[0])
    return float(value[index]) if value.shape == R.host(call.output).shape else None


ModeResult = tuple[list[CheckRow], list[Flip], dict[str, tuple], int, float]
# The two sides' values (and mask) of each failing row the float64 arbiter may judge, by
# (mode, layer, kind, name); only failing rows are kept (a ResNet's gradients are 100 MB).
Kept = dict[tuple[str, str, str, str], tuple[np.ndarray, np.ndarray, np.ndarray | None]]


def _check_mode(a: Any, b: Any, x: Any, mode: str, seed: int, notes: list[str],
                times: dict[str, float], kept: Kept,
                projections: dict[str, list[np.ndarray]]) -> ModeResult:  # fmt: skip
    """Rows and flips of one mode; also each call's parents and the whole chain's length.
    Failing rows' values go to ``kept``, the check loss's projection to ``projections``."""
    training = mode == "training"
    start = time.perf_counter()
    calls_a, after_a = R.forward(a, x, training)
    calls_b, after_b = R.forward(b, x, training)
    if [c.label for c in calls_a] != [c.label for c in calls_b]:
        labels = ([c.label for c in calls_a], [c.label for c in calls_b])
        raise ValueError(f"check_model: the two models call different layers: {labels[0]} vs "
                         f"{labels[1]}.")  # fmt: skip
    items = x if isinstance(x, list) else [x]
    lengths, in_shapes, gains = R.chain_lengths(calls_a, items, training)
    total = max(lengths.values())
    gain = max(gains.values())
    times[f"{mode}: layer-by-layer run, both backends"] = time.perf_counter() - start
    start = time.perf_counter()
    try:
        reference = R.reference_calls(a, x, training)
    except (NotImplementedError, ValueError, TypeError, KeyError) as exc:
        reference = {}
        notes.append(f"{mode}: no float64 reference per layer ({type(exc).__name__}: {exc})")
    times[f"{mode}: float64 reference"] = time.perf_counter() - start
    rows: list[CheckRow] = []
    flips: list[Flip] = []
    by_label = {c.label: c for c in calls_a}
    by_label_b = {c.label: c for c in calls_b}
    for ca, cb in zip(calls_a, calls_b, strict=True):
        outs_a, outs_b = R.outputs_of(ca), R.outputs_of(cb)
        refs = reference.get(ca.label)
        kinks = kink_values(ca.layer)
        for i, (oa, ob) in enumerate(zip(outs_a, outs_b, strict=True)):
            ha, hb = R.host(oa), R.host(ob)
            if ha.dtype.kind not in "fc":
                continue  # ids and masks: nothing rounds
            name = f"output:{i}" if len(outs_a) > 1 else "output"
            bound = R.bound(str(ha.dtype), lengths[ca.label], gains[ca.label])
            mask = R.mask_of(oa, ha.shape)
            ref: dict[str, Diff] = {}
            if refs is not None and i < len(refs) and np.shape(refs[i]) == ha.shape:
                ref = {a.backend: compare(ha, refs[i], bound, mask=mask),
                       b.backend: compare(hb, refs[i], bound, mask=mask)}  # fmt: skip
            rows.append(CheckRow(mode=mode, layer=ca.label, kind="output", name=name,
                                 shape=ha.shape, diff=compare(hb, ha, bound, mask=mask),
                                 reference=ref))  # fmt: skip
            if not rows[-1].passed and not ref:  # no reference: the float64 arbiter judges
                kept[(mode, ca.label, "output", name)] = (ha, hb, mask)
            exact = kink_is_exact(ca.layer)
            for index, kink in find_flips(ha, hb, kinks, bound, mask, exact=exact):
                pre_a = _pre_activation(ca, by_label, index)
                pre_b = _pre_activation(cb, by_label_b, index)
                flips.append(Flip(
                    mode=mode, layer=ca.label, output=name, index=index, kink=kink,
                    values={a.backend: float(ha[index]), b.backend: float(hb[index])},
                    reference=float(refs[i][index]) if ref else None,
                    pre_activation=None if pre_a is None or pre_b is None
                    else {a.backend: pre_a, b.backend: pre_b},
                ))  # fmt: skip
    if training:  # the moving statistics the training call updated
        for info, wa, wb in zip(a.weights, after_a, after_b, strict=True):
            if not info.trainable:
                layer, weight = info.path.split("/", 2)[1:]
                bound = R.bound(info.dtype, lengths.get(layer, total), gains.get(layer, gain))
                rows.append(CheckRow(mode=mode, layer=layer, kind="state", name=weight,
                                     shape=wa.shape, diff=compare(wb, wa, bound)))  # fmt: skip
    start = time.perf_counter()
    rows += _gradient_rows(a, b, x, mode, seed, total, gain, in_shapes, items, kept,
                           projections)  # fmt: skip
    times[f"{mode}: gradients, both backends"] = time.perf_counter() - start
    return rows, flips, {c.label: c.parents for c in calls_a}, total, gain


def _gradient_rows(a: Any, b: Any, x: Any, mode: str, seed: int, total: int, gain: float,
                   in_shapes: dict[str, list[tuple]], items: list[Any], kept: Kept,
                   projections: dict[str, list[np.ndarray]]) -> list[CheckRow]:  # fmt: skip
    """The check loss (Note [Check loss]) and every weight's gradient, in backward order."""
    training = mode == "training"
    final = a(x)  # inference: only the outputs' shapes, dtypes and masks are used
    finals = final if isinstance(final, list) else [final]
    hosts = [R.host(o) for o in finals]
    masks = [R.mask_of(o, h.shape) for o, h in zip(finals, hosts, strict=True)]
    proj = R.projections(hosts, masks, seed)
    projections[mode] = proj
    la, ga = R.gradients(a, x, proj, training)
    lb, gb = R.gradients(b, x, proj, training)
    dtype = str(hosts[0].dtype)
    size = sum(h.size for h in hosts)
    rows = [CheckRow(mode=mode, layer="(loss)", kind="loss", name="sum(y*P)", shape=(),
                     diff=compare(lb, la, R.bound(dtype, total + size, gain)))]  # fmt: skip
    if not rows[0].passed:
        kept[(mode, "(loss)", "loss", "sum(y*P)")] = (np.asarray(la), np.asarray(lb), None)
    batch = int(np.shape(items[0])[0])
    order = {layer.name: i for i, layer in enumerate(a.layers)}
    grads = []
    # Paths are "<model>/<layer>/<weight>"; a weight name may hold "/" itself
    # (MultiHeadAttention's "query/kernel"), a layer name never does.
    for info, va, vb in zip(a.trainable_weights, ga, gb, strict=True):
        layer, weight = info.path.split("/", 2)[1:]
        shape = (in_shapes.get(layer) or [(batch,)])[0]
        positions = batch * int(np.prod(shape[1:-1]))  # what the weight's gradient sums over
        bound = R.bound(info.dtype, total + positions, gain)
        grads.append(CheckRow(mode=mode, layer=layer, kind="gradient", name=weight,
                              shape=va.shape, diff=compare(vb, va, bound)))  # fmt: skip
        if not grads[-1].passed:
            kept[(mode, layer, "gradient", weight)] = (va, vb, None)
    grads.sort(key=lambda r: -order.get(r.layer, 0))  # backward: the last layer first
    return rows + grads


def check_model(model_or_path: Any, inputs: Any = None, *, other: Any = None,
                weights: str | Path | None = None, input_shape: Any = None,
                input_dtype: str = "float32", batch_size: int = 8, seed: int = 0,
                sequence_length: int = 8, training: bool = True, arbiter: bool = True,
                search_path: list[str] | None = None) -> CheckReport:  # fmt: skip
    """Check that a model gives the same outputs and gradients on torch and tf.keras.

    Args:
        model_or_path: a dualnet model, a ``keras.Model``, an ``nn.Module``, a ``.keras`` or
            dualnet file, or a torch ``package.module:factory`` (:mod:`~dualnet.parity.sources`).
        inputs: an array (a list for several inputs), or an ``.npz`` file; default: seeded
            random inputs of the model's input shape (ids in the vocabulary for an Embedding).
        other: the twin on the other backend (default ``model.to_backend(...)``).
        weights: a torch ``state_dict`` file for a factory (``torch.load(weights_only=True)``).
        input_shape, input_dtype: a torch module's example input shape (without the batch; a
            list for several inputs) and dtype.
        batch_size, seed, sequence_length: the random inputs' batch, seed, unknown lengths.
        training: also check training mode (batch statistics, dropout).
        arbiter: judge failing gradients (and outputs the float64 reference has no value for)
            with float64 copies of the two models: float32 rounding or a wrong side (Note
            [Float64 arbiter] in :mod:`dualnet.parity.check_arbiter`).
        search_path: directories for a factory's module (besides the current directory).

    Returns:
        A :class:`CheckReport`; ``report.ok`` and ``report.verdict`` say whether it ports.

    Raises:
        dualnet.errors.UnsupportedModelError: the model uses what dualnet cannot represent
            (``.problems`` lists every one).
    """
    batch_size = _positive_int(batch_size, "batch_size")
    sequence_length = _positive_int(sequence_length, "sequence_length")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise bad_type("seed", seed, "an int", where="check_model")
    for flag, value in (("training", training), ("arbiter", arbiter)):
        if not isinstance(value, bool):
            raise bad_type(flag, value, "a bool", where="check_model")
    source = str(model_or_path) if isinstance(model_or_path, str | Path) else None
    if isinstance(inputs, str | Path):
        inputs = read_inputs(inputs)
    loaded: Loaded = load_source(model_or_path, weights=weights, input_shape=input_shape,
                                 input_dtype=input_dtype, inputs=_match(inputs, None),
                                 batch_size=batch_size, seed=seed,
                                 search_path=search_path)  # fmt: skip
    a = loaded.model
    times = {"import": loaded.seconds}
    start = time.perf_counter()
    b = _twin(a, other)
    times["twin build"] = time.perf_counter() - start
    x = _match(inputs, a)
    if x is None:
        x = random_inputs(a, batch_size=batch_size, seed=seed, sequence_length=sequence_length)
    x = [np.asarray(v) for v in x] if isinstance(x, list | tuple) else np.asarray(x)
    notes: list[str] = []
    rows = _weight_rows(a, b)
    flips: list[Flip] = []
    parents: dict[str, dict[str, tuple]] = {}
    kept: Kept = {}
    projections: dict[str, list[np.ndarray]] = {}
    for mode in MODES if training else MODES[:1]:
        mode_rows, mode_flips, parents[mode], total, gain = _check_mode(
            a, b, x, mode, seed, notes, times, kept, projections)  # fmt: skip
        if mode == "inference" and loaded.original is not None:
            rows.append(_original_row(loaded, a, x, total, gain, times))
        rows += mode_rows
        flips += mode_flips
    first = a.weights[0].dtype if a.weights else "float32"
    judge = Float64Pair(a, b, x, projections) if arbiter and first != "float64" else None
    # The arbiter judges forward rows first (a rounding-limited output lets kink flips explain
    # gradients), then the gradients that no kink flip explains (Note [Float64 arbiter]).
    rows = judge_rows(rows, judge, kept, ("output",), first, notes, times)
    rows = _explain(rows, flips, parents)
    if judge is not None and any(r.flips for r in rows):
        # Flips are confirmed on float64 copies of one model's weights on both backends (a
        # twin given with other= may differ from it by rounding; Note [Float64 arbiter]).
        same = all(r.diff.max_abs == 0 for r in rows if r.kind == "weight")
        confirm = judge if same else Float64Pair(a, a.to_backend(b.backend), x, projections)
        rows = confirm_flips(rows, confirm, kept, first, notes, times)
    rows = judge_rows(rows, judge, kept, ("loss", "gradient"), first, notes, times)
    return CheckReport(model=a.name, source=source or loaded.description, kind=loaded.kind,
                       backends=(a.backend, b.backend), dtype=first,
                       inputs=describe_inputs(x), rows=rows, flips=flips, times=times,
                       notes=notes)  # fmt: skip


def _match(inputs: Any, model: Any) -> Any:
    """Inputs read from a file as ``{name: array}`` matched to the model's inputs: by name
    where every input's name is a key, else in the file's order."""
    if not isinstance(inputs, dict):
        return inputs
    arrays = list(inputs.values())
    names = [layer.name for layer in model._input_layers()] if model is not None else []
    if names and all(n in inputs for n in names):
        arrays = [inputs[n] for n in names]
    return arrays[0] if len(arrays) == 1 else arrays


def _weight_rows(a: Any, b: Any) -> list[CheckRow]:
    rows = []
    for info, wa, wb in zip(a.weights, a.get_weights(), b.get_weights(), strict=True):
        layer, weight = info.path.split("/", 2)[1:]
        # The assert_close default: copies are exact, a given twin's weights may round apart.
        diff = compare(wb, wa, tol.default(info.dtype))
        rows.append(CheckRow(mode="-", layer=layer, kind="weight", name=weight, shape=wa.shape,
                             diff=diff))  # fmt: skip
    return rows


def _original_row(loaded: Loaded, a: Any, x: Any, total: int, gain: float,
                  times: dict[str, float]) -> CheckRow:  # fmt: skip
    """The original Keras model's or torch module's output against the import's."""
    start = time.perf_counter()
    want = run_original(loaded, x) or []
    got = a(x)
    gots = [R.host(g) for g in (got if isinstance(got, list) else [got])]
    times["original model run"] = time.perf_counter() - start
    bound = R.bound(str(gots[0].dtype), total, gain)
    if len(want) != len(gots):
        diff = compare(np.zeros(0), np.zeros(1), bound)  # a shape mismatch: fails, with a note
    else:
        diff = _concat_diff(gots, want, bound)
    return CheckRow(mode="inference", layer="(original)", kind="original", name="output",
                    shape=gots[0].shape, diff=diff)  # fmt: skip


def _concat_diff(got: list[np.ndarray], want: list[np.ndarray], bound: tol.Tolerance) -> Diff:
    if any(g.shape != w.shape for g, w in zip(got, want, strict=True)):
        return compare(got[0], np.zeros((0,)), bound)
    return compare(np.concatenate([g.ravel() for g in got]),
                   np.concatenate([np.ravel(w) for w in want]), bound)  # fmt: skip


def _explain(rows: list[CheckRow], flips: list[Flip],
             parents: dict[str, dict[str, tuple]]) -> list[CheckRow]:  # fmt: skip
    """Mark failing gradient rows that kink flips explain (Note [Kink flips]): only when every
    forward row passes, and only by flips of the same mode at or downstream of the weight."""
    if not flips or any(r.failed for r in rows if r.kind in FORWARD_KINDS):
        return rows
    upstream = {mode: ancestors(p) for mode, p in parents.items()}
    out = []
    for r in rows:
        if r.kind == "gradient" and not r.passed:
            mine = [f for f in flips if f.mode == r.mode]
            found = explained_by(r.layer, mine, upstream[r.mode])
            if found:
                r = CheckRow(**{**r.__dict__, "flips": tuple(found)})
        out.append(r)
    return out
