"""Catalogue records: what a parity case is and how one is evaluated.

Note [Parity cases]
-------------------
A case describes one piece of the spec once, in the style of PyTorch's OpInfo: how to make
sample inputs (edge values included), how to run it through dualnet's public API, the float64
numpy reference, and the tolerance per dtype with the reason for any looser bound. Evaluating a
case for a dtype and device produces :class:`Check` rows; each row carries the comparisons

* ``torch~tensorflow``: torch against TensorFlow;
* ``torch~ref`` / ``tensorflow~ref``: each backend against the float64 reference;

and passes only if all of them pass. Inputs are generated in float64, rounded once to the
dtype under test, and the reference is evaluated on the *rounded* values, so the comparison
measures the computation and not the rounding of the inputs.

Gradients are vector-Jacobian products ``g = cᵀ·∂f/∂x`` with a fixed random cotangent ``c``,
compared against a float64 central finite difference of the reference, whose own error is
estimated per element (two step sizes) and added to the dtype's default bound. Finite differences
are wrong at kinks (relu at 0, clip boundaries), so a case may give ``fd_mask`` to exclude
such points from the *reference* comparison; torch and TensorFlow are still compared with each
other there, because they must agree with each other on the documented convention.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from dualnet._backend import BACKENDS, backend_module, use_backend
from dualnet.dtypes import FLOAT_DTYPES, numpy_dtype
from dualnet.parity import tolerance as tol
from dualnet.parity.compare import Diff, compare

LOW_PRECISION = ("float16", "bfloat16")
REF = "ref"


@dataclass(frozen=True, kw_only=True)
class Check:
    """One row of the parity report."""

    family: str
    case: str
    check: str
    dtype: str
    device: str
    status: str  # "pass" | "FAIL" | "skip" | "error"
    comparisons: Mapping[str, Diff] = field(default_factory=dict)
    detail: str = ""

    @property
    def id(self) -> str:
        return f"{self.family}/{self.case}/{self.check}/{self.dtype}/{self.device}"

    @property
    def failed(self) -> bool:
        return self.status in ("FAIL", "error")

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "case": self.case,
            "check": self.check,
            "dtype": self.dtype,
            "device": self.device,
            "status": self.status,
            "detail": self.detail,
            "comparisons": {k: v.to_dict() for k, v in self.comparisons.items()},
        }

    def explain(self) -> str:
        parts = [f"{self.id}: {self.status} {self.detail}".rstrip()]
        for key, diff in self.comparisons.items():
            if not diff.passed:
                parts.append(diff.message(key))
        return "\n".join(parts)


def status_of(comparisons: Mapping[str, Diff]) -> str:
    """``"pass"`` when every comparison passed; a row that compared nothing proves nothing
    and FAILs (as a comparison of no elements does)."""
    return "pass" if comparisons and all(d.passed for d in comparisons.values()) else "FAIL"


def three_way(
    torch_value: Any, tf_value: Any, expected: Any, tolerance: tol.Tolerance, *,
    cross_tolerance: tol.Tolerance | None = None, mask: np.ndarray | None = None,
    extra_atol: np.ndarray | None = None,
) -> dict[str, Diff]:  # fmt: skip
    """The three comparisons of a row: torch~tensorflow, torch~ref, tensorflow~ref.

    ``mask`` (e.g. kink points excluded from finite differences) applies to the reference
    comparisons only: the two frameworks must agree with each other everywhere. A mask that
    excludes every point leaves the cross-backend comparison alone in the row (an empty
    comparison would fail: nothing compared proves nothing). So does
    ``extra_atol``, the reference's own per-element error (a finite difference's, say).
    """
    cross = {"torch~tensorflow": compare(torch_value, tf_value, cross_tolerance or tolerance)}
    if mask is not None and np.size(mask) and not np.any(mask):
        return cross  # every point at a kink: the reference says nothing there (see kink_detail)
    return {
        **cross,
        "torch~ref": compare(torch_value, expected, tolerance, mask=mask, extra_atol=extra_atol),
        "tensorflow~ref": compare(tf_value, expected, tolerance, mask=mask, extra_atol=extra_atol),
    }


def kink_detail(mask: np.ndarray | None, fd_error: np.ndarray | None = None) -> str:
    """The gradient row's detail: the largest finite-difference error allowed for, and how
    many kink points were compared across backends only."""
    parts = []
    if fd_error is not None and np.size(fd_error):
        selected = fd_error if mask is None else np.where(mask, fd_error, 0.0)
        parts.append(f"ref error <= {float(np.max(selected)):.1e} (finite difference)")
    if mask is not None and not np.all(mask):
        parts.append(
            f"{int(np.size(mask) - np.sum(mask))} kink point(s) compared across backends only"
        )
    return "; ".join(parts)


def flat(arrays: Any) -> np.ndarray:
    """Arrays raveled and concatenated in float64 (weights, gradients: one vector to compare)."""
    arrays = list(arrays)
    if not arrays:
        return np.zeros(0)
    return np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])


def flat_state(state: Mapping[str, list[np.ndarray]]) -> np.ndarray:
    """An optimizer state ``{slot: [array per parameter]}`` as one vector, slots sorted."""
    return flat(a for k in sorted(state) for a in state[k])


def case_seed(name: str) -> int:
    """A stable per-case seed (crc32 of the name), so every run sees the same inputs."""
    return zlib.crc32(name.encode())


def is_float(x: Any) -> bool:
    """Floating arrays, ml_dtypes' bfloat16 included (numpy reports its kind as 'V')."""
    return np.asarray(x).dtype.name in FLOAT_DTYPES


def round_to(x: np.ndarray, dtype: str) -> np.ndarray:
    """Round a float64 array to ``dtype`` (returned in that dtype); integer arrays pass through."""
    x = np.asarray(x)
    if not is_float(x):
        return x
    with np.errstate(over="ignore"):  # overflow to ±inf is the correct rounding, not an error
        return x.astype(numpy_dtype(dtype))


@dataclass(frozen=True, kw_only=True)
class Case:
    """Base record. Subclasses implement :meth:`evaluate`."""

    name: str
    family: str
    dtypes: tuple[str, ...] = ("float32", "float64", "float16", "bfloat16")
    notes: str = ""
    # Combinations a framework is known to refuse, as PyTorch's OpInfo lists them:
    # {(backend, check, dtype): reason}, "*" matching any check. A raise listed here is a skip
    # that gives the reason; any other raise is an error, in every dtype; a listed combination
    # that runs is an error too (the list is out of date).
    unsupported: Mapping[tuple[str, str, str], str] = field(default_factory=dict)

    def expected_unsupported(self, backend: str, check: str, dtype: str) -> str | None:
        return (self.unsupported.get((backend, check, dtype))
                or self.unsupported.get((backend, "*", dtype)))  # fmt: skip

    def raised(self, backend: str, check: str, dtype: str, device: str, exc: Exception) -> Check:
        """The row for a backend that raised: a skip where listed, else an error."""
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        what = f"{backend} raised {type(exc).__name__}: {first}"
        reason = self.expected_unsupported(backend, check, dtype)
        if reason is None:
            return self.check(check, dtype, device, "error", detail=what)
        return self.check(
            check,
            dtype,
            device,
            "skip",
            detail=f"expected unsupported on {backend} {device}: {reason} ({what})",
        )

    def stale(self, backend: str, check: str, dtype: str, device: str) -> Check | None:
        """An error row when ``backend`` ran a combination the case lists as unsupported."""
        if self.expected_unsupported(backend, check, dtype) is None:
            return None
        return self.check(
            check,
            dtype,
            device,
            "error",
            detail=f"listed as unsupported on {backend} but ran: update the case",
        )

    @property
    def id(self) -> str:
        return f"{self.family}/{self.name}"

    def evaluate(self, dtype: str, device: str) -> list[Check]:
        raise NotImplementedError

    def on_each_backend(
        self, dtype: str, device: str, run: Callable[[str], Any], *, check: str = "forward"
    ) -> dict[str, Any] | Check:
        """``{backend: run(backend)}``, or the row that reports the first backend that raised.

        A raise is a *skip* only where :attr:`unsupported` lists it (with its reason), else an
        *error* (a regression that raises must not hide as a skip, in half precision either);
        a listed combination that runs is an error too. Never swallowed.
        """
        results: dict[str, Any] = {}
        for backend in BACKENDS:
            try:
                results[backend] = run(backend)
            except Exception as exc:
                return self.raised(backend, check, dtype, device, exc)
            stale = self.stale(backend, check, dtype, device)
            if stale is not None:
                return stale
        return results

    def check(self, check: str, dtype: str, device: str, status: str, **kw: Any) -> Check:
        return Check(
            family=self.family, case=self.name, check=check, dtype=dtype, device=device,
            status=status, **kw,
        )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class FunctionCase(Case):
    """A differentiable function of array inputs, run through dualnet's public API.

    Attributes:
        inputs: ``rng -> {name: float64 or int array}`` (edge values included).
        fn: called as ``fn(**tensors)`` with native tensors under the active backend; returns
            a native tensor.
        reference: the float64 numpy reference, called as ``reference(**arrays)``.
        grad_wrt: names of inputs to differentiate (default: every floating input).
        fd_mask: ``arrays -> {name: bool mask}`` of elements where finite differences are valid.
        elementwise: the output depends on each input element alone (allows a vectorised FD).
        tolerance: per-dtype overrides for the forward comparison (each with its reason).
        grad_tolerance: per-dtype overrides for the gradient comparisons.
        differentiable: False to skip the gradient checks (e.g. integer outputs).
    """

    inputs: Callable[[np.random.Generator], dict[str, np.ndarray]]
    fn: Callable[..., Any]
    reference: Callable[..., np.ndarray]
    grad_wrt: tuple[str, ...] | None = None
    fd_mask: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None
    elementwise: bool = False
    tolerance: Mapping[str, tol.Tolerance] = field(default_factory=dict)
    grad_tolerance: Mapping[str, tol.Tolerance] = field(default_factory=dict)
    differentiable: bool = True

    def sample(self, dtype: str) -> dict[str, np.ndarray]:
        """The inputs rounded to ``dtype`` (integers untouched)."""
        raw = self.inputs(np.random.default_rng(case_seed(self.name)))
        return {k: round_to(v, dtype) for k, v in raw.items()}

    def _wrt(self, arrays: Mapping[str, np.ndarray]) -> list[str]:
        if not self.differentiable:
            return []
        if self.grad_wrt is not None:
            return list(self.grad_wrt)
        return [k for k, v in arrays.items() if is_float(v)]

    def forward_tolerance(self, dtype: str) -> tol.Tolerance:
        return self.tolerance.get(dtype, tol.default(dtype))

    def gradient_tolerance(self, dtype: str, *, reference: bool) -> tol.Tolerance:
        if dtype in self.grad_tolerance:
            return self.grad_tolerance[dtype]
        return tol.for_gradient_reference(dtype) if reference else tol.default(dtype)

    def run_backend(
        self, backend: str, arrays: Mapping[str, np.ndarray], dtype: str, device: str,
        cotangent: np.ndarray | None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:  # fmt: skip
        """Forward value (and the VJP when ``cotangent`` is given) on one backend, as float64."""
        names = list(arrays)
        wrt = self._wrt(arrays)
        with use_backend(backend):
            core = backend_module(backend).core
            with core.device_scope(device):
                args = [core.convert_to_tensor(arrays[n]) for n in names]

                def call(*tensors: Any) -> Any:
                    return self.fn(**dict(zip(names, tensors, strict=True)))

                if cotangent is None or not wrt:
                    return _f64(core.to_numpy(call(*args))), []
                out, grads = core.vjp(call, args, [names.index(n) for n in wrt], cotangent)
                return _f64(core.to_numpy(out)), [_f64(core.to_numpy(g)) for g in grads]

    def evaluate(self, dtype: str, device: str) -> list[Check]:
        arrays = self.sample(dtype)
        ref_in = {k: _f64(v) if is_float(v) else v for k, v in arrays.items()}
        # The best a dtype can do is the correctly rounded exact value, so the float64 reference
        # is rounded to the dtype under test (in float16, e^80 is inf, and so is the reference).
        expected = _f64(round_to(np.asarray(self.reference(**ref_in), dtype=np.float64), dtype))
        wrt = self._wrt(arrays)
        rng = np.random.default_rng(case_seed(self.name) + 1)
        cotangent = round_to(rng.standard_normal(expected.shape), dtype) if wrt else None

        results = self.on_each_backend(
            dtype, device, lambda b: self.run_backend(b, arrays, dtype, device, cotangent)
        )
        if isinstance(results, Check):
            return [results]
        comparisons = three_way(
            results["torch"][0], results["tensorflow"][0], expected, self.forward_tolerance(dtype)
        )
        checks = [self.check("forward", dtype, device, status_of(comparisons),
                             comparisons=comparisons)]  # fmt: skip
        if not wrt:
            return checks

        masks = self.fd_mask(ref_in) if self.fd_mask is not None else {}
        ct64 = _f64(cotangent)
        for i, name in enumerate(wrt):
            fd = finite_difference(self.reference, ref_in, name, ct64, self.elementwise)
            mask = masks.get(name)
            ref_tol = self.gradient_tolerance(dtype, reference=True)
            cross_tol = self.gradient_tolerance(dtype, reference=False)
            gt, gtf = results["torch"][1][i], results["tensorflow"][1][i]
            expected_grad = _f64(round_to(fd.value, dtype))
            comps = three_way(gt, gtf, expected_grad, ref_tol, cross_tolerance=cross_tol,
                              mask=mask, extra_atol=fd.error)  # fmt: skip
            detail = kink_detail(mask, fd.error)
            checks.append(self.check(f"grad[{name}]", dtype, device, status_of(comps),
                                     comparisons=comps, detail=detail))  # fmt: skip
        return checks


def _f64(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


class FiniteDifference(NamedTuple):
    """A finite-difference gradient with a per-element bound on its own error."""

    value: np.ndarray
    error: np.ndarray


# Rounding in the reference's own evaluation of f, in units of ε·Σ|cᵢ·fᵢ| (its magnitude).
_ROUNDING_UNITS = 16.0


def finite_difference(
    reference: Callable[..., np.ndarray], inputs: Mapping[str, np.ndarray], name: str,
    cotangent: np.ndarray, elementwise: bool,
) -> FiniteDifference:  # fmt: skip
    """Central finite difference of ``cᵀ·reference(...)`` with respect to ``inputs[name]``,
    with an estimate of its own error.

    Two steps are taken, ``h = ε^(1/3)`` ≈ 6e-6 (ε = float64 machine epsilon; it balances the
    O(h²) truncation error against the O(ε/h) rounding error) and ``h/2``. The value is the
    ``h/2`` difference D₂ and the error bound is ``2·|D₂ - D₁| + 16·ε·Σ|c·f| / h``: for a smooth
    function D₂'s truncation error is ``|D₂ - D₁|/3``; where the *second* derivative jumps
    (softsign at 0) it is ``|D₂ - D₁|``; the last term bounds the rounding of f itself. Points
    where the *first* derivative jumps (relu at 0) must still be masked by the case: there both
    steps give the same (wrong) average and the estimate says nothing.

    The step is absolute, not relative to ``|x|``: shift-invariant functions (softmax of logits
    near 1e4) vary on a scale of 1 whatever the offset. The divisor is the step actually taken,
    ``(x+h) - (x-h)`` in floating point.
    """
    # C order: the loop below writes through reshape(-1) views, which a Fortran-ordered array
    # (an orthogonal initializer's transpose) would turn into copies.
    x = np.ascontiguousarray(inputs[name], dtype=np.float64)
    eps = np.finfo(np.float64).eps

    def value(perturbed: np.ndarray) -> np.ndarray:
        return np.asarray(reference(**{**inputs, name: perturbed}), dtype=np.float64)

    def central(step: float) -> tuple[np.ndarray, np.ndarray]:
        """(derivative, rounding-error bound) for one step size."""
        if elementwise:  # ∂f_i/∂x_j = 0 for i ≠ j: one pair of evaluations gives every element
            up, down = cotangent * value(x + step), cotangent * value(x - step)
            taken = (x + step) - (x - step)
            scale = np.abs(up) + np.abs(down)
            # Where x ± h rounds to x (|x| > ~1e10) nothing was taken: the difference is inf or
            # NaN, its error inf, and the element is compared across backends only.
            with np.errstate(divide="ignore", invalid="ignore"):
                return (up - down) / taken, _ROUNDING_UNITS * eps * scale / taken
        grad, rounding = np.empty_like(x), np.empty_like(x)
        flat, gflat, rflat = x.reshape(-1), grad.reshape(-1), rounding.reshape(-1)
        for j in range(flat.size):
            plus, minus = flat.copy(), flat.copy()
            plus[j] += step
            minus[j] -= step
            up = cotangent * value(plus.reshape(x.shape))
            down = cotangent * value(minus.reshape(x.shape))
            # inf - inf at a deliberately infinite input; 0 taken where x ± h rounds to x.
            with np.errstate(divide="ignore", invalid="ignore"):
                taken = plus[j] - minus[j]
                gflat[j] = (np.sum(up) - np.sum(down)) / taken
                rflat[j] = (_ROUNDING_UNITS * eps * (np.sum(np.abs(up)) + np.sum(np.abs(down)))
                            / taken)  # fmt: skip
        return grad, rounding

    step = float(np.cbrt(eps))
    d1, _ = central(step)
    d2, rounding = central(step / 2)
    with np.errstate(invalid="ignore"):  # inf - inf where f overflows: the error is then inf
        error = 2.0 * np.abs(d2 - d1) + rounding
    return FiniteDifference(d2, np.where(np.isfinite(error), error, np.inf))


_REGISTRY: dict[str, Case] = {}


def register(*cases: Case) -> None:
    """Add cases to the catalogue (ids must be unique)."""
    for case in cases:
        if case.id in _REGISTRY:
            raise ValueError(f"duplicate parity case id {case.id!r}")
        _REGISTRY[case.id] = case


def registered() -> list[Case]:
    return list(_REGISTRY.values())


def kink_mask(points: Sequence[float], *, margin: float = 1e-4):
    """An ``fd_mask`` factory: exclude elements of every float input within ``margin`` of a kink."""

    def mask(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for k, v in arrays.items():
            if is_float(v):
                near = np.zeros(np.shape(v), dtype=bool)
                for p in points:
                    near |= np.abs(np.asarray(v) - p) <= margin * max(1.0, abs(p))
                out[k] = ~near
        return out

    return mask
