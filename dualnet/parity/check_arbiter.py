"""The float64 arbiter of :func:`dualnet.parity.check_model`: is a failing row a porting error
or float32 rounding?

Note [Float64 arbiter]
----------------------
The check's bounds (Note [Check tolerances] in :mod:`dualnet.parity.check_runs`) model rounding
as ``√K`` growth along the longest chain of sums, times the worst normalisation's ``rms/σ``.
That is first order: a deep net in training mode also *cancels* in BatchNormalization's
backward pass, ``∂L/∂x = (γ/σ)·(g - mean(g) - x̂·mean(g·x̂))``, dozens of times in a row, and
its float32 weight gradients end up ~1e-4 of their scale off the exact ones on *both*
frameworks, beyond the elementwise bound (Keras MobileNetV2, batch 8, training mode: torch vs
TensorFlow up to 11x the bound at ``block_1_depthwise``, while the same model in float64 agrees
to 5e-7 of its bound). Widening every bound would hide real errors; instead, when a row fails
torch vs TensorFlow (after kink flips, Note [Kink flips]), and it is a gradient or the check
loss, or a layer output the float64 numpy reference has no value for, the check rebuilds both
models in float64 (:func:`float64_copy`: the same config with every floating ``dtype`` set to
float64, the weights cast exactly, the runtime state copied so dropout draws the same masks)
and reruns the same mode on the inputs cast to float64 with the same projection ``P``. With
``v64`` the first backend's float64 value, ``v32_s`` side ``s``'s float32 value, the bound
``atol + rtol·|·|`` the row's own (``√K``·gain scaled):

1. **The float64 twins agree**: ``v64`` of the second backend against ``v64`` within the same
   bound built on float64's default (``√K``·gain times rtol 1e-7, atol 1e-7). A porting error
   (a wrong formula, layout, weight) is there in any dtype: failing this fails the row,
   "float64 twins disagree".
2. **Each side is within the row's bound of float64, measured normwise**: ``e_s = max|v32_s -
   v64| <= atol + rtol·max|v64|``. The elementwise bound asks every element to be accurate
   relative to itself, which cancellation makes impossible for the small elements; the
   normwise form is Higham's measure of an accurate computation. A side beyond it is named as
   wrong ("off float64").
3. **Neither side is much further from float64 than the other**: with ``r_s = rms(v32_s -
   v64)``, ``max(r) <= SPREAD·min(r)`` (rms: over every element, steadier than the single
   largest one). Rounding hits both frameworks alike (independent summation orders of the
   same sums); a mistake on one side leaves the other at float64's distance, so the spread
   grows with the mistake. The side further from float64 is named as wrong.

A row passing all three is *rounding-limited*: it stays listed with its numbers (both sides'
distances to float64, their spread, the normwise bound, the twins' agreement) and the verdict
says so (``pass (2 kink flips, 31 rounding-limited gradients)``). No bound is widened: the
torch-vs-TensorFlow comparison of the row still fails; the arbiter only says why.

``SPREAD`` (measured, one intra-op thread as the tests run, and two): Keras MobileNetV2
(alpha 0.35, 32x32) in training mode is the tested architecture whose float32 gradients exceed
their elementwise bound without a kink flip. Over 6 seeds at batch 8 and 16 (16 checks with
such rows, 6-40 rows each), the two frameworks' rms distances to float64 were within a factor
4.65 of each other (most within 1.2-2.6), each max distance at most 0.24 of the normwise bound,
and the float64 twins agreed to 1.2e-6 of their bound; so ``SPREAD = 10``. At batch 4 (the last
BatchNormalizations see 4 values each) the spread reached 5.7 and 2 of 6 seeds put one side
1.1-1.25x beyond the normwise bound: those checks fail, saying so (a statistic over 4 values is
ill-conditioned in float32; check such nets at batch >= 8). A one-sided mistake there is named:
the upstream gradient of ``block_16_project`` scaled by 1.001 on torch only (float32) spreads up
to 25x and 56 rows upstream of it fail ("torch 25.1x further from float64 than tensorflow");
scaled by 1.0005, 2 rows are named (spread 10.3); by 1.0003 every row passes as rounding: the
arbiter's resolution at this conditioning (the rows' rounding level is ~1e-4 of their scale).
Kink flips are confirmed the same way (:func:`confirm_flips`): a flip explains gradient rows
upstream of it (Note [Kink flips]), so a genuine mistake in the backward pass of one of those
layers would hide behind it. The float64 copies of the *first* model on both backends (the same
weights; float64 moves a pre-activation within float32 rounding of the kink far enough from it
that both sides take the same branch) must agree on every explained row under rule 1; a row
where they do not loses its explanation and fails, "float64 twins disagree".

What the arbiter cannot see: a mistake below that resolution; a mistake identical on both
frameworks in float32 and float64 (dualnet's shared code), which is the numpy reference's job
(output rows that have one are not arbitrated: their ``~f64`` columns already say which side is
right).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from dualnet._backend import use_backend
from dualnet.parity import tolerance as tol
from dualnet.parity.compare import Diff, compare

__all__ = ["SPREAD", "Arbitration", "Float64Pair", "arbitrate", "confirm_flips",
           "float64_bound", "float64_copy", "judge_rows"]  # fmt: skip

# Rule 3's factor: about twice the largest spread of the two frameworks' rms distances to
# float64 measured over the failing rows of the tested architectures at batch >= 8 (4.65, Keras
# MobileNetV2 in training mode, one thread; batch 4 reached 5.7; Note [Float64 arbiter]).
SPREAD = 10.0


def _floats_to_float64(config: Any, dtypes: tuple[str, ...]) -> Any:
    """``config`` with every ``"dtype"`` entry that names a floating dtype set to float64
    (integer inputs, e.g. token ids, keep theirs)."""
    if isinstance(config, dict):
        return {k: "float64" if k == "dtype" and v in dtypes else _floats_to_float64(v, dtypes)
                for k, v in config.items()}  # fmt: skip
    if isinstance(config, list | tuple):
        return [_floats_to_float64(v, dtypes) for v in config]
    return config


def float64_copy(model: Any) -> Any:
    """``model`` rebuilt in float64 on its own backend: the same config with every floating
    layer/input dtype float64, its weights cast exactly (float32 → float64 is exact), layer
    names, ``trainable`` flags and runtime state (the next dropout masks) copied.

    Raises:
        NotImplementedError: the config does not carry the dtype (a subclassed model whose
            ``__init__`` takes none): some weight is still not float64.
    """
    config = _floats_to_float64(model.get_config(), ("float16", "bfloat16", "float32"))
    with use_backend(model.backend):
        copy = type(model).from_config(config)
        model._after_clone(copy)
        if model.built and not copy.built:
            copy._build_like(model)
    kept = [w.path for w in copy.weights if w.dtype != "float64" and "float" in w.dtype]
    if kept:
        raise NotImplementedError(f"{model.name}: its config does not set the dtype of "
                                  f"{', '.join(kept[:3])}{'...' if len(kept) > 3 else ''}; no "
                                  "float64 copy")  # fmt: skip
    copy.set_weights([w.astype(np.float64) if w.dtype.kind == "f" else w
                      for w in model.get_weights()])  # fmt: skip
    for mine, theirs in zip(model.layers, copy.layers, strict=True):
        theirs.set_runtime_state(mine.get_runtime_state())
        theirs.trainable = mine.trainable
    return copy


def float64_bound(bound: tol.Tolerance, dtype: str) -> tol.Tolerance:
    """The row's bound for ``dtype`` rebuilt on float64's default: the same ``√K``·gain factor
    (each component's ratio to ``dtype``'s default) times rtol 1e-7, atol 1e-7."""
    base, wide = tol.default(dtype), tol.default("float64")
    factor = max(bound.rtol / base.rtol, bound.atol / base.atol)
    return wide.scaled(factor, f"float64 default x{factor:.3g} (the row's sqrt(K)·gain)")


@dataclass(frozen=True, kw_only=True)
class Arbitration:
    """What the float64 arbiter found on one failing row (Note [Float64 arbiter]).

    Attributes:
        rounding_limited: every rule holds: the row's failure is float32 rounding.
        wrong: the backends named as wrong (both for "float64 twins disagree").
        reason: one line: what held or which rule failed, with the numbers.
        twins: the second backend's float64 value against the first's (rule 1).
        errors: ``{backend: max|v32 - v64|}`` (rule 2).
        limit: the normwise bound ``atol + rtol·max|v64|`` (rule 2).
        rms: ``{backend: rms(v32 - v64)}`` (rule 3).
        spread: ``max(rms) / min(rms)`` (rule 3; inf when one side is exact, 1 when both are).
        reference: ``{backend: Diff}`` of each side against the float64 value, under the
            row's bound (the report's ``~f64`` columns).
    """

    rounding_limited: bool
    wrong: tuple[str, ...]
    reason: str
    twins: Diff
    errors: dict[str, float]
    limit: float
    rms: dict[str, float]
    spread: float
    reference: dict[str, Diff] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"rounding_limited": self.rounding_limited, "wrong": list(self.wrong),
                "reason": self.reason, "float64_twins": self.twins.to_dict(),
                "max_abs_vs_float64": self.errors, "normwise_limit": self.limit,
                "rms_vs_float64": self.rms,
                "spread": self.spread if np.isfinite(self.spread) else str(self.spread),
                "spread_limit": SPREAD}  # fmt: skip


def arbitrate(values: dict[str, np.ndarray], values64: dict[str, np.ndarray],
              bound: tol.Tolerance, dtype: str,
              mask: np.ndarray | None = None) -> Arbitration:  # fmt: skip
    """Judge one failing row (Note [Float64 arbiter]).

    Args:
        values: ``{backend: float32 value}``, the first backend first.
        values64: ``{backend: float64 value}`` of the float64 copies, same order.
        bound: the row's bound (its torch-vs-TensorFlow tolerance).
        dtype: the models' floating dtype.
        mask: positions compared (True), as in the row.
    """
    (a, b), (va, vb) = list(values), list(values.values())
    v64, w64 = (np.asarray(values64[k], np.float64) for k in (a, b))
    sel = np.ones(np.shape(v64), bool) if mask is None else np.broadcast_to(mask, np.shape(v64))
    twins = compare(w64, v64, float64_bound(bound, dtype), mask=mask)
    reference = {a: compare(va, v64, bound, mask=mask), b: compare(vb, v64, bound, mask=mask)}

    def off(v: np.ndarray) -> np.ndarray:
        # NaN/inf on one side: an infinite distance (never rounding).
        return np.nan_to_num(np.abs(np.asarray(v, np.float64) - v64)[sel], nan=np.inf)

    dist = {k: off(v) for k, v in ((a, va), (b, vb))}
    errors = {k: float(d.max()) if d.size else 0.0 for k, d in dist.items()}
    rms = {k: float(np.sqrt(np.mean(d * d))) if d.size else 0.0 for k, d in dist.items()}
    scale = float(np.abs(v64[sel]).max()) if sel.any() else 0.0
    limit = bound.atol + bound.rtol * scale
    lo, hi = sorted(rms.values())
    spread = hi / lo if lo > 0 else (1.0 if hi == 0 else float("inf"))
    far = max(rms, key=lambda k: rms[k])
    nums = (f"vs float64: max {a} {errors[a]:.2e}, {b} {errors[b]:.2e} (normwise bound "
            f"{limit:.2e}), rms {a} {rms[a]:.2e}, {b} {rms[b]:.2e} (spread {spread:.3g}, at "
            f"most {SPREAD:g}); float64 twins err/bound {twins.worst_ratio:.2g}")  # fmt: skip
    beyond = tuple(k for k in (a, b) if not errors[k] <= limit)
    if not twins.passed:
        why, wrong = "float64 twins disagree: a porting error", (a, b)
    elif beyond:
        why, wrong = f"{' and '.join(beyond)} off float64 beyond the normwise bound", beyond
    elif not spread <= SPREAD:
        why, wrong = f"{far} {spread:.3g}x further from float64 than {b if far == a else a}", (
            far,)  # fmt: skip
    else:
        why, wrong = "float32 rounding", ()
    return Arbitration(rounding_limited=not wrong, wrong=wrong, reason=f"{why}; {nums}",
                       twins=twins, errors=errors, limit=limit, rms=rms, spread=spread,
                       reference=reference)  # fmt: skip


class Float64Pair:
    """The float64 copies of the two checked models (built on first use) and their values in
    each mode: every layer call's outputs and the check loss with every trainable gradient."""

    def __init__(self, a: Any, b: Any, x: Any, projections: dict[str, list[np.ndarray]]):
        self.models = (a, b)
        self.x = [_as_float64(v) for v in x] if isinstance(x, list) else _as_float64(x)
        self.projections = {m: [p.astype(np.float64) for p in ps]
                            for m, ps in projections.items()}  # fmt: skip
        self._pair: tuple[Any, Any] | None = None
        self._outputs: dict[str, tuple[dict[str, list[np.ndarray]], ...]] = {}
        self._grads: dict[str, tuple[dict[str, np.ndarray], ...]] = {}

    def pair(self) -> tuple[Any, Any]:
        if self._pair is None:
            # Each side from its own model (a twin given with ``other=`` keeps its weights).
            self._pair = (float64_copy(self.models[0]), float64_copy(self.models[1]))
        return self._pair

    def outputs(self, mode: str) -> tuple[dict[str, list[np.ndarray]], ...]:
        """Per backend: ``{call label: [outputs]}`` of the float64 copy in ``mode``."""
        from dualnet.parity import check_runs as R

        if mode not in self._outputs:
            runs = [R.forward(m, self.x, mode == "training")[0] for m in self.pair()]
            self._outputs[mode] = tuple({c.label: [R.host(o) for o in R.outputs_of(c)]
                                         for c in calls} for calls in runs)  # fmt: skip
        return self._outputs[mode]

    def gradients(self, mode: str) -> tuple[dict[str, np.ndarray], ...]:
        """Per backend: ``{"(loss)": loss, "<layer>/<weight>": gradient}`` in ``mode``."""
        from dualnet.parity import check_runs as R

        if mode not in self._grads:
            out = []
            for m in self.pair():
                loss, grads = R.gradients(m, self.x, self.projections[mode], mode == "training")
                values = {"(loss)": np.asarray(loss, np.float64)}
                paths = [w.path.split("/", 1)[1] for w in m.trainable_weights]
                values.update(zip(paths, grads, strict=True))
                out.append(values)
            self._grads[mode] = tuple(out)
        return self._grads[mode]


def _as_float64(v: Any) -> np.ndarray:
    v = np.asarray(v)
    return v.astype(np.float64) if v.dtype.kind == "f" else v


def judge_rows(rows: list[Any], judge: Float64Pair | None, kept: dict[tuple, tuple],
               kinds: tuple[str, ...], dtype: str, notes: list[str],
               times: dict[str, float]) -> list[Any]:  # fmt: skip
    """``rows`` (:class:`~dualnet.parity.check.CheckRow`) with those of ``kinds`` that fail with
    no kink flip to explain them judged (Note [Float64 arbiter]): ``arbiter`` set, and the
    ``~f64`` columns from the float64 value where the row has none. ``kept``: the two sides'
    values and mask of each failing row by (mode, layer, kind, name)."""
    todo = [r for r in rows if r.kind in kinds and r.failed and r.arbiter is None
            and (r.mode, r.layer, r.kind, r.name) in kept]  # fmt: skip
    if judge is None or not todo:
        return rows
    start = time.perf_counter()
    found: dict[int, Any] = {}
    try:
        for r in todo:
            va, vb, mask = kept[(r.mode, r.layer, r.kind, r.name)]
            if r.kind == "output":
                index = int(r.name.partition(":")[2] or 0)
                pair = [v[r.layer][index] for v in judge.outputs(r.mode)]
            else:
                key = r.layer if r.kind == "loss" else f"{r.layer}/{r.name}"
                pair = [v[key] for v in judge.gradients(r.mode)]
            a, b = judge.models[0].backend, judge.models[1].backend
            verdict = arbitrate({a: va, b: vb}, {a: pair[0], b: pair[1]}, r.diff.tolerance,
                                dtype, mask)  # fmt: skip
            found[id(r)] = replace(r, arbiter=verdict, reference=r.reference or verdict.reference)
    except (NotImplementedError, ValueError, TypeError, KeyError) as exc:
        note = f"no float64 arbiter ({type(exc).__name__}: {exc})"
        notes.extend([note] if note not in notes else [])  # both phases meet the same cause
        return rows
    finally:
        label = f"float64 arbiter ({', '.join(kinds)})"
        times[label] = times.get(label, 0.0) + time.perf_counter() - start
    return [found.get(id(r), r) for r in rows]


def confirm_flips(rows: list[Any], judge: Float64Pair | None, kept: dict[tuple, tuple],
                  dtype: str, notes: list[str], times: dict[str, float]) -> list[Any]:  # fmt: skip
    """``rows`` with every gradient row that kink flips explain checked against rule 1 of Note
    [Float64 arbiter] on ``judge``'s float64 copies (built from the same weights on both
    backends): where the float64 twins disagree the explanation is dropped and the row carries
    the arbiter's "float64 twins disagree" verdict (a failure)."""
    todo = [r for r in rows if r.kind == "gradient" and not r.passed and r.flips
            and (r.mode, r.layer, r.kind, r.name) in kept]  # fmt: skip
    if judge is None or not todo:
        return rows
    start = time.perf_counter()
    found: dict[int, Any] = {}
    worst = 0.0
    try:
        a, b = judge.models[0].backend, judge.models[1].backend
        for r in todo:
            va, vb, mask = kept[(r.mode, r.layer, r.kind, r.name)]
            pair = [v[f"{r.layer}/{r.name}"] for v in judge.gradients(r.mode)]
            verdict = arbitrate({a: va, b: vb}, {a: pair[0], b: pair[1]}, r.diff.tolerance,
                                dtype, mask)  # fmt: skip
            worst = max(worst, verdict.twins.worst_ratio)
            if not verdict.twins.passed:
                found[id(r)] = replace(r, flips=(), arbiter=verdict)
    except (NotImplementedError, ValueError, TypeError, KeyError) as exc:
        notes.append(f"kink flips not confirmed in float64 ({type(exc).__name__}: {exc})")
        return rows
    finally:
        times["float64 kink-flip confirmation"] = time.perf_counter() - start
    notes.append(f"kink flips: {len(todo) - len(found)} of {len(todo)} explained gradient rows "
                 f"confirmed by the float64 twins (worst err/bound {worst:.2g})")  # fmt: skip
    return [found.get(id(r), r) for r in rows]
