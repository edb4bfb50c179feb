"""OpInfo-style entries for layers: one record per layer configuration drives the parity
catalogue *and* the tests.

Note [Layer entries]
--------------------
A :class:`LayerCase` says, once, everything needed to check one configuration of a layer:

* the layer class and its constructor arguments (``kwargs``);
* the input shape(s), batch included, and optionally how to draw the inputs (the awkward ones
  on purpose: even sizes with stride 2, negative borders for max pooling, ...);
* the float64 reference (``dualnet.reference.layers.<group>.<layer>``), called as
  ``reference(x, weights, **config, training=...)`` where ``weights`` maps names to canonical
  arrays and ``config`` is ``layer.get_config()`` without ``name``/``dtype``/``trainable``;
  it returns the output, or ``(output, state)`` with the updated non-trainable weights;
* whether the call runs in training mode, the dtypes, the derived tolerance (``reduction``: the
  longest sum, see :func:`dualnet.parity.tolerance.for_reduction`), finite-difference masks at
  kinks, a bound for half precision, the (backend, check, dtype) combinations a framework is
  known to refuse (``unsupported``, with the reason; see :class:`~dualnet.parity.cases.Case`),
  the torch/Keras divergence the case is built to expose, and the bad inputs that must raise
  the same clear error on both backends.

Evaluating a case (:meth:`LayerCase.evaluate`) builds a fresh layer per backend, loads the same
canonical weights, and compares against the reference: the forward value, the gradient with
respect to every floating input and every trainable weight (a vector-Jacobian product with a
fixed random cotangent, against a float64 central finite difference whose own error is added to
the bound), and, for a training-mode call, the non-trainable weights it updated. ``tests/
test_layer_catalogue.py`` expands every entry into tests per dtype and backend, so a new layer
is checked completely by writing its entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dualnet import random as _random
from dualnet._backend import backend_module, use_backend
from dualnet.parity import tolerance as tol
from dualnet.parity.cases import (
    LOW_PRECISION,
    Case,
    Check,
    case_seed,
    finite_difference,
    is_float,
    kink_detail,
    round_to,
    status_of,
    three_way,
)
from dualnet.parity.compare import compare
from dualnet.reference import layers as RL

# Unit roundoff per half-precision dtype.
UNIT_ROUNDOFF = {"float16": 2.0**-11, "bfloat16": 2.0**-8}


def _f64(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


@dataclass(frozen=True, kw_only=True)
class BadInput:
    """A bad argument or input that must raise ``error`` matching ``match`` on both backends,
    with the same message, before any framework runs.

    Attributes:
        kwargs: constructor arguments that replace the case's (``{}``: the case's own).
        input_shape: the input shape to call the layer on (None: construction must raise).
        error: the exception type.
        match: a regular expression the message must match.
    """

    kwargs: Mapping[str, Any] = field(default_factory=dict)
    input_shape: Any = None
    error: type[Exception] = ValueError
    match: str = ""
    inputs: Any = None
    call_inputs: Mapping[str, Any] = field(default_factory=dict)
    call_options: Mapping[str, Any] = field(default_factory=dict)

    def arguments(self, multi: bool) -> tuple[Any, dict[str, Any]]:
        """The call's input (``inputs`` if given, else float32 zeros of ``input_shape``) and
        other arguments (a tuple in ``call_inputs`` is the shape of float32 zeros)."""
        if self.inputs is not None:
            x = self.inputs
        elif multi:
            x = [np.zeros(s, "float32") for s in self.input_shape]
        else:
            x = np.zeros(self.input_shape, "float32")

        def array(v: Any) -> Any:
            if isinstance(v, tuple):
                return np.zeros(v, "float32")
            if isinstance(v, list):
                return [array(a) for a in v]
            return v

        return x, {**{k: array(v) for k, v in self.call_inputs.items()}, **self.call_options}


def default_weights(rng: np.random.Generator, specs: Sequence[Any]) -> list[np.ndarray]:
    """Random canonical weights: N(0, 0.5²) for trainable ones (not the initializer's: the
    constant or zero initial values of biases, gammas and betas would hide layout mistakes),
    N(0, 1) moving means and U(0.5, 2) moving variances (must be positive)."""
    out = []
    for spec in specs:
        if "variance" in spec.name:
            out.append(rng.uniform(0.5, 2.0, spec.shape))
        elif spec.trainable:
            out.append(0.5 * rng.standard_normal(spec.shape))
        else:
            out.append(rng.standard_normal(spec.shape))
    return out


def bilinear_bound(reduction: int) -> Callable[..., np.ndarray]:
    """Half-precision bound for layers linear in the input and in the weights (Dense,
    convolutions): ``γ_K·(|x|⊛|W|) + u·|y|``, Higham's dot-product bound with ``K`` the length of
    each sum; ``|x|⊛|W|`` is the reference evaluated on absolute values (bias included), which is
    exactly Σ|x||w| per output for such layers."""

    def bound(ref_abs: np.ndarray, exact: np.ndarray, u: float) -> np.ndarray:
        gamma = reduction * u / (1.0 - reduction * u)
        return gamma * ref_abs + u * np.abs(exact)

    bound.needs_abs = True  # type: ignore[attr-defined]
    return bound


def rounding_bound(ulps: float = 1.0) -> Callable[..., np.ndarray]:
    """Half-precision bound for layers that compute each output with a few roundings of values
    of the output's size (copies, max, small averages): ``ulps·u·|y|``, plus the input's own
    rounding already in ``x``. ``ulps=0`` for exact copies (reshaping, max pooling)."""

    def bound(ref_abs: np.ndarray | None, exact: np.ndarray, u: float) -> np.ndarray:
        return ulps * u * np.abs(exact)

    bound.needs_abs = False  # type: ignore[attr-defined]
    return bound


U32 = 2.0**-24  # float32 unit roundoff
HALF_SUBNORMAL = 2.0**-24  # float16's subnormal spacing: two roundings there cost at most this


def float32_math_bound(half: int, single: int) -> Callable[..., np.ndarray]:
    """Half-precision bound for a result computed in float32 with ``single`` roundings (each
    relative to the result, ``u₃₂·|y|``) and rounded once to half, against the exact value
    rounded once to half.

    ``|fl_h(y₃₂) - fl_h(y)| <= u|y₃₂| + |y₃₂ - y| + u|y|``: ``half`` (= 2: the backend's and the
    reference's rounding) times ``u·|y|``, plus ``single·u₃₂·|y|``, plus one float16 subnormal
    spacing (below float16's normal range the two roundings are absolute, 2⁻²⁵ each).
    """

    def bound(ref_abs: np.ndarray | None, exact: np.ndarray, u: float) -> np.ndarray:
        return (half * u + single * U32) * np.abs(exact) + HALF_SUBNORMAL

    bound.needs_abs = False  # type: ignore[attr-defined]
    return bound


@dataclass(frozen=True, kw_only=True)
class LayerCase(Case):
    """One configuration of one layer (Note [Layer entries]).

    Attributes:
        layer: the neutral layer class.
        kwargs: its constructor arguments (``name`` and ``dtype`` are set by the case).
        input_shape: the input shape, batch included; a list of shapes for merging layers.
        inputs: ``rng -> array or list of arrays`` in float64; default standard normal.
        reference: the float64 reference (see the note for its signature).
        training: call the layer with ``training=True``.
        weights: ``(rng, specs) -> canonical arrays``; default :func:`default_weights`.
        grad: check gradients (False for layers without a gradient worth checking).
        fd_mask: ``(inputs, weights) -> {name: bool mask}`` where the finite difference is valid
            (False at kinks: ties in max pooling, relu at 0); masked elements are still compared
            between torch and TensorFlow.
        reduction: the longest sum in the forward pass, for its tolerance (1 for layers that
            copy or select values: their forward is exact).
        grad_reduction: the longest sum in the backward pass (an upsampling's gradient sums the
            copies); default ``reduction``.
        tolerance: per-dtype overrides, each with its reason.
        half_bound: ``(reference on |x|,|W| or None, exact, u) -> per-element bound`` for
            float16/bfloat16 forward rows (:func:`bilinear_bound`, :func:`rounding_bound`);
            None: half precision is not run for this case.
        exposes: the torch/Keras divergence this case is built to expose (report notes).
        errors: bad inputs that must raise the same clear error on both backends.
    """

    family: str = "layer"
    dtypes: tuple[str, ...] = ("float32", "float64")
    layer: type
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    input_shape: Any
    inputs: Callable[[np.random.Generator], Any] | None = None
    reference: Callable[..., Any]
    training: bool = False
    weights: Callable[[np.random.Generator, Sequence[Any]], list[np.ndarray]] | None = None
    grad: bool = True
    fd_mask: Callable[[list[np.ndarray], dict[str, np.ndarray]], dict[str, np.ndarray]] | None = (
        None
    )
    reduction: int = 1
    grad_reduction: int | None = None
    tolerance: Mapping[str, tol.Tolerance] = field(default_factory=dict)
    half_bound: Callable[..., np.ndarray] | None = None
    exposes: str = ""
    errors: tuple[BadInput, ...] = ()
    call_inputs: Callable[[np.random.Generator], Mapping[str, Any]] | None = None
    call_options: Mapping[str, Any] = field(default_factory=dict)
    mask: Callable[[np.random.Generator], np.ndarray] | None = None

    def __post_init__(self) -> None:
        if self.half_bound is not None and self.dtypes == ("float32", "float64"):
            object.__setattr__(self, "dtypes", (*self.dtypes, *LOW_PRECISION))
        if self.exposes and not self.notes:
            object.__setattr__(self, "notes", self.exposes)

    # -- construction -----------------------------------------------------------------------

    @property
    def multi(self) -> bool:
        return bool(getattr(self.layer, "multi_input", False))

    def make(self, dtype: str = "float32", **overrides: Any) -> Any:
        """A fresh neutral layer (no framework involved)."""
        kwargs = {**self.kwargs, **overrides}
        kwargs.setdefault("name", "layer")
        return self.layer(**kwargs, dtype=dtype)

    def shapes(self) -> list[tuple[int, ...]]:
        return [tuple(s) for s in self.input_shape] if self.multi else [tuple(self.input_shape)]

    def build(self, layer: Any) -> Any:
        """Build ``layer`` (framework-free) for this case's inputs and call arguments."""
        draw = self.draw(np.random.default_rng(case_seed(self.name)))
        shapes = [x.shape for x in draw.xs]
        layer.build(shapes if self.multi else shapes[0], **draw.call_shapes())
        return layer

    def config(self, layer: Any) -> dict[str, Any]:
        """The reference's keywords: the layer's full config (defaults filled in)."""
        return RL.layer_config(layer)

    def draw(self, rng: np.random.Generator) -> Arguments:
        """The call's tensors in float64 (integer ids as they are) and the input's mask."""
        if self.inputs is None:
            xs = [rng.standard_normal(s) for s in self.shapes()]
        else:
            made = self.inputs(rng)
            xs = list(made) if self.multi else [made]
        call = dict(self.call_inputs(rng)) if self.call_inputs is not None else {}
        mask = None if self.mask is None else np.asarray(self.mask(rng), dtype=bool)
        return Arguments([np.asarray(x) for x in xs], call, mask)

    def sample(self, dtype: str) -> tuple[Arguments, list[np.ndarray], Any]:
        """Call arguments and canonical weights rounded to ``dtype``, and the layer they are
        for."""
        rng = np.random.default_rng(case_seed(self.name))
        args = self.draw(rng)
        # Unseeded initializers (an entry that checks a layer's own initial weights) draw their
        # seeds from dualnet's global generator at construction: seed it from the case.
        _random.set_random_seed(case_seed(self.name) % 2**31)
        layer = self.make(dtype)
        shapes = [x.shape for x in args.xs]
        layer.build(shapes if self.multi else shapes[0], **args.call_shapes())
        make_weights = self.weights or default_weights
        weights = make_weights(rng, layer.weight_specs)
        return (args.rounded(dtype), [round_to(w, dtype) for w in weights], layer)

    def call_reference(
        self, layer: Any, args: Arguments, weights: list[np.ndarray]
    ) -> tuple[list[np.ndarray], Any, list[np.ndarray] | None]:
        """The reference outputs (a list), their mask, and, where it returns one, its state
        (non-trainable weights)."""
        named = {s.name: _f64(w) for s, w in zip(layer.weight_specs, weights, strict=True)}
        a = args.as_float64()
        # A frozen layer whose class says so runs inference whatever the call asks (Keras's
        # BatchNormalization rule), in the reference as in the backends.
        training = self.training and (layer.trainable or not layer.frozen_means_inference)
        out, out_mask, state = RL.call_layer(
            layer, a.first(self.multi), named, training=training, mask=a.mask, fn=self.reference,
            **a.call, **self.call_options,
        )  # fmt: skip
        outs = [_f64(o) for o in (out if isinstance(out, list) else [out])]
        # Non-trainable as the layer sees them (a frozen layer's gamma and beta too, as in Keras).
        frozen = [w.name for w in layer.weights if not w.trainable]
        if state:
            return outs, out_mask, [_f64(state.get(n, named[n])) for n in frozen]
        # No update from the reference (inference, or a frozen layer): the non-trainable weights
        # must come back as they were, which the state row checks.
        return outs, out_mask, ([named[n] for n in frozen] if frozen else None)

    # -- one backend --------------------------------------------------------------------------

    def run_backend(
        self, backend: str, args: Arguments, weights: list[np.ndarray],
        cotangent: np.ndarray | None, dtype: str, device: str,
    ) -> dict[str, Any]:  # fmt: skip
        """Forward value (every output, flattened and concatenated), its mask, gradients
        (floating tensor arguments, then trainable weights, canonical layout) and the
        non-trainable weights after the call, on one backend, as float64."""
        with use_backend(backend):
            b = backend_module(backend)
            with b.core.device_scope(device):
                layer = self.make(dtype)
                names, arrays = args.flat()
                tensors = [b.core.convert_to_tensor(x) for x in arrays]
                shapes = [x.shape for x in args.xs]
                layer.build(shapes if self.multi else shapes[0], **args.call_shapes())
                layer.set_weights(weights)
                layer._realise(backend)
                mask = None if args.mask is None else b.core.convert_to_tensor(args.mask, "bool")
                masks: list[Any] = []

                def call(*ts: Any) -> Any:
                    rebuilt = args.assemble(list(ts))
                    out = layer(rebuilt.first(self.multi), training=self.training, mask=mask,
                                **rebuilt.call, **self.call_options)  # fmt: skip
                    outs = out if isinstance(out, list) else [out]
                    masks[:] = [b.core.get_mask(o) for o in outs]
                    return b.core.flatten_concat(outs)

                wrt = [i for i, x in enumerate(arrays) if is_float(x)]
                if cotangent is None:
                    out, grads = call(*tensors), []
                else:
                    params = b.layers.params(layer.native)
                    out, grads = b.core.vjp(call, tensors, wrt, cotangent, params=params)
                    n = len(wrt)
                    grads = [*grads[:n], *b.layers.canonical_grads(layer.native, grads[n:])]
                state = [w for w, info in zip(layer.get_weights(), layer.weights, strict=True)
                         if not info.trainable]  # fmt: skip
                return {
                    "out": _f64(b.core.to_numpy(out)),
                    "mask": [_host_mask(b, m) for m in masks],
                    "grads": [_f64(b.core.to_numpy(g)) for g in grads],
                    "grad_names": [names[i] for i in wrt],
                    "state": [_f64(s) for s in state],
                }

    # -- evaluation ---------------------------------------------------------------------------

    def forward_tolerance(self, dtype: str) -> tol.Tolerance:
        return self.tolerance.get(dtype) or tol.for_reduction(dtype, self.reduction)

    def evaluate(self, dtype: str, device: str, *, gradients: bool = True) -> list[Check]:
        if dtype in LOW_PRECISION:
            return self._evaluate_low_precision(dtype, device)
        args, weights, layer = self.sample(dtype)
        outs, out_mask, expected_state = self.call_reference(layer, args, weights)
        expected = _joined(outs)
        do_grads = gradients and self.grad
        cotangent = None
        if do_grads:
            rng = np.random.default_rng(case_seed(self.name) + 1)
            cotangent = round_to(rng.standard_normal(expected.shape), dtype)
        results = self.on_each_backend(
            dtype, device, lambda b: self.run_backend(b, args, weights, cotangent, dtype, device)
        )
        if isinstance(results, Check):
            return [results]
        bound = self.forward_tolerance(dtype)
        rounded = _f64(round_to(expected, dtype))
        comps = three_way(results["torch"]["out"], results["tensorflow"]["out"], rounded, bound)
        detail = f"{len(outs)} outputs, flattened and concatenated" if len(outs) > 1 else ""
        checks = [self.check("forward", dtype, device, status_of(comps), comparisons=comps,
                             detail=detail)]  # fmt: skip
        checks.extend(self._mask_check(out_mask, len(outs), results, dtype, device))
        if expected_state is not None:
            want = _flat([round_to(s, dtype) for s in expected_state])
            comps = three_way(_flat(results["torch"]["state"]),
                              _flat(results["tensorflow"]["state"]), want, bound)  # fmt: skip
            checks.append(self.check("state", dtype, device, status_of(comps), comparisons=comps,
                                     detail="non-trainable weights after the call"))  # fmt: skip
        if do_grads:
            grad_bound = (self.tolerance.get(dtype) if self.grad_reduction is None else None) or \
                tol.for_reduction(dtype, self.grad_reduction or self.reduction)  # fmt: skip
            checks.extend(self._gradient_checks(layer, args, weights, cotangent, results, dtype,
                                                device, grad_bound))  # fmt: skip
        return checks

    def _mask_check(self, expected: Any, n_outputs: int, results: dict[str, Any], dtype: str,
                    device: str) -> list[Check]:  # fmt: skip
        """The output mask(s), exactly (Note [Masks]); no row when no side makes one."""
        want = expected if isinstance(expected, list) else [expected] * n_outputs
        sides = {"ref": want, "torch": results["torch"]["mask"],
                 "tensorflow": results["tensorflow"]["mask"]}  # fmt: skip
        if all(m is None for ms in sides.values() for m in ms):
            return []
        present = {k: [m is not None for m in ms] for k, ms in sides.items()}
        if len({tuple(v) for v in present.values()}) > 1:
            detail = f"which outputs carry a mask differs: {present}"
            return [self.check("mask", dtype, device, "FAIL", detail=detail)]
        flat = {k: _flat([np.asarray(m, np.float64) for m in ms if m is not None])
                for k, ms in sides.items()}  # fmt: skip
        comps = three_way(flat["torch"], flat["tensorflow"], flat["ref"], tol.EXACT)
        return [self.check("mask", dtype, device, status_of(comps), comparisons=comps,
                           detail="output mask, exact")]  # fmt: skip

    def _gradient_checks(self, layer: Any, args: Arguments, weights: list[np.ndarray],
                         cotangent: np.ndarray, results: dict[str, Any], dtype: str,
                         device: str, bound: tol.Tolerance) -> list[Check]:  # fmt: skip
        specs = list(layer.weight_specs)
        names, tensors = args.flat()
        x_names = names[: len(args.xs)]
        arrays: dict[str, np.ndarray] = {n: (_f64(x) if is_float(x) else x)
                                         for n, x in zip(names, tensors, strict=True)}  # fmt: skip
        w_keys = [f"w:{s.name}" for s in specs]
        arrays.update({k: _f64(w) for k, w in zip(w_keys, weights, strict=True)})

        def reference(**kw: np.ndarray) -> np.ndarray:
            rebuilt = args.assemble([kw[n] for n in names])
            ws = [kw[k] for k in w_keys]
            return _joined(self.call_reference(layer, rebuilt, ws)[0])

        wrt = results["torch"]["grad_names"]
        trainable = [f"w:{s.name}" for s in specs if s.trainable] if layer.trainable else []
        masks = {}
        if self.fd_mask is not None:
            named = {s.name: _f64(w) for s, w in zip(specs, weights, strict=True)}
            raw = self.fd_mask([arrays[n] for n in x_names], named)
            masks = {(k if k in names else f"w:{k}"): v for k, v in raw.items()}
        checks = []
        ct64 = _f64(cotangent)
        for i, key in enumerate([*wrt, *trainable]):
            fd = finite_difference(reference, arrays, key, ct64, False)
            gt, gtf = results["torch"]["grads"][i], results["tensorflow"]["grads"][i]
            mask = masks.get(key)
            comps = three_way(gt, gtf, _f64(round_to(fd.value, dtype)), bound, mask=mask,
                              extra_atol=fd.error)  # fmt: skip
            label = key.removeprefix("w:")
            detail = kink_detail(mask, fd.error)
            checks.append(self.check(f"grad[{label}]", dtype, device, status_of(comps),
                                     comparisons=comps, detail=detail))  # fmt: skip
        return checks

    def _evaluate_low_precision(self, dtype: str, device: str) -> list[Check]:
        """Forward values in float16/bfloat16 against a derived per-element bound (see
        :func:`bilinear_bound`, :func:`rounding_bound`); gradients are not checked there."""
        if self.half_bound is None:
            return [self.check("forward", dtype, device, "skip",
                               detail="no derived half-precision bound for this case")]  # fmt: skip
        args, weights, layer = self.sample(dtype)
        exact = _joined(self.call_reference(layer, args, weights)[0])
        results = self.on_each_backend(
            dtype, device, lambda b: self.run_backend(b, args, weights, None, dtype, device)
        )
        if isinstance(results, Check):
            return [results]
        u = UNIT_ROUNDOFF[dtype]
        ref_abs = None
        if getattr(self.half_bound, "needs_abs", False):
            ref_abs = _joined(self.call_reference(layer, args.absolute(),
                                                [np.abs(_f64(w)) for w in weights])[0])  # fmt: skip
        bound = self.half_bound(ref_abs, exact, u)
        base = tol.EXACT.scaled(1.0, f"derived half-precision bound (u={u:g})")
        comps = three_way(results["torch"]["out"], results["tensorflow"]["out"],
                          _f64(round_to(exact, dtype)), base, extra_atol=bound)  # fmt: skip
        # The two backends may sit on opposite sides of the exact value: twice the bound.
        comps["torch~tensorflow"] = compare(results["torch"]["out"], results["tensorflow"]["out"],
                                            base, extra_atol=2 * bound)  # fmt: skip
        detail = f"bound <= {float(np.max(bound, initial=0.0)):.2g}; gradients not checked"
        return [self.check("forward", dtype, device, status_of(comps), comparisons=comps,
                           detail=detail)]  # fmt: skip


@dataclass(frozen=True)
class Arguments:
    """One call's tensors: the first argument's arrays (one, or one per input of a merging
    layer), the other tensor arguments by name (an array, a list of arrays, or None), and the
    first argument's mask."""

    xs: list[np.ndarray]
    call: dict[str, Any]
    mask: np.ndarray | None = None

    def first(self, multi: bool) -> Any:
        return list(self.xs) if multi else self.xs[0]

    def call_shapes(self) -> dict[str, Any]:
        def shape(v: Any) -> Any:
            return [tuple(a.shape) for a in v] if isinstance(v, list) else tuple(v.shape)

        return {k: shape(v) for k, v in self.call.items() if v is not None}

    def flat(self) -> tuple[list[str], list[np.ndarray]]:
        """Every tensor with its row name: ``x`` (``x0``, ``x1``... for several), then ``name``
        or ``name[i]`` for the call arguments."""
        names = ["x"] if len(self.xs) == 1 else [f"x{i}" for i in range(len(self.xs))]
        arrays = list(self.xs)
        for k, v in self.call.items():
            if isinstance(v, list):
                names += [f"{k}[{i}]" for i in range(len(v))]
                arrays += list(v)
            elif v is not None:
                names.append(k)
                arrays.append(v)
        return names, arrays

    def assemble(self, arrays: list[Any]) -> Arguments:
        """The same structure with the tensors of :meth:`flat` replaced by ``arrays``."""
        it = iter(arrays)
        xs = [next(it) for _ in self.xs]
        call: dict[str, Any] = {}
        for k, v in self.call.items():
            if isinstance(v, list):
                call[k] = [next(it) for _ in v]
            else:
                call[k] = None if v is None else next(it)
        return Arguments(xs, call, self.mask)

    def _map(self, fn: Callable[[np.ndarray], np.ndarray]) -> Arguments:
        return self.assemble([fn(a) for a in self.flat()[1]])

    def rounded(self, dtype: str) -> Arguments:
        return self._map(lambda a: round_to(a, dtype))

    def as_float64(self) -> Arguments:
        return self._map(lambda a: _f64(a) if is_float(a) else a)

    def absolute(self) -> Arguments:
        """|x| for the floating tensors (the bilinear half-precision bound)."""
        return self._map(lambda a: np.abs(_f64(a)) if is_float(a) else a)


def _joined(outs: list[np.ndarray]) -> np.ndarray:
    """One output as it is; several flattened and concatenated (as the backends'
    ``flatten_concat``)."""
    return outs[0] if len(outs) == 1 else _flat(outs)


def _host_mask(b: Any, mask: Any) -> np.ndarray | None:
    return None if mask is None else np.asarray(b.core.to_numpy(mask), dtype=bool)


def _flat(arrays: Sequence[np.ndarray]) -> np.ndarray:
    if not arrays:
        return np.zeros(0)
    return np.concatenate([_f64(a).ravel() for a in arrays])
