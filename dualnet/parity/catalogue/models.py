"""Parity cases for whole models: the seed tutorial's network built three ways, and a deep MLP.

A :class:`ModelCase` builds the same network on each backend, loads the same canonical weights,
and compares the forward values and the gradients with respect to the input *and every weight*
(in canonical layout: Dense kernels ``(in, out)`` on both backends) between torch, TensorFlow
and the float64 reference (:func:`dualnet.reference.layers.mlp`).

Tolerance. An assert_close bound relative to each output cannot hold for a dot product whose
terms cancel (a ±1e3 input row whose products sum to ~1), so every float32/float64 comparison
uses the per-element bound derived from the computation itself
(:func:`dualnet.parity.error_bounds.dense_error_bounds`, Note [Dense error bounds]): Higham's
``γ_K·(|x|·|W| + |b|)`` for each sum with ``K`` its own length (``in_features`` + 1 for an
output, the batch for a kernel or bias gradient, ``units`` for an input gradient), and each
activation's rounding, carried to the compared value through the exact Jacobian. It is a worst
case over summation orders, so backends sit well below it (the err/bound column shows where).
A backend is compared with the reference rounded to its dtype (``rtol = u`` for that rounding,
plus the float64 reference's own bound); torch with TensorFlow within twice the bound (they may
sit on opposite sides of the exact value). Gradients add the finite difference's own error, as
everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import dualnet as dn
from dualnet._backend import backend_module, use_backend
from dualnet.parity import tolerance as tol
from dualnet.parity.cases import (
    LOW_PRECISION,
    Case,
    Check,
    case_seed,
    finite_difference,
    kink_detail,
    register,
    round_to,
    status_of,
    three_way,
)
from dualnet.parity.compare import compare
from dualnet.parity.error_bounds import dense_error_bounds
from dualnet.reference import layers as R

# Activations with kinks (where a finite difference is wrong), and where the kinks are.
KINKS: dict[str, tuple[float, ...]] = {
    "relu": (0.0,), "leaky_relu": (0.0,), "relu6": (0.0, 6.0), "hard_sigmoid": (-3.0, 3.0),
    "hard_silu": (-3.0, 3.0), "elu": (0.0,), "selu": (0.0,),
}  # fmt: skip
# finite_difference's step (cube root of float64 epsilon).
_FD_STEP = float(np.cbrt(np.finfo(np.float64).eps))


def _f64(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _bounded(
    torch_value: np.ndarray, tf_value: np.ndarray, expected: np.ndarray, bound: np.ndarray,
    ref_error: np.ndarray, u: float, reason: str, *, mask: np.ndarray | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The three comparisons under a derived per-element ``bound``: each backend within
    ``bound`` + the reference's own error + ``u·|expected|`` (the reference's rounding to the
    dtype) of the reference; torch within ``2·bound`` of TensorFlow (both may sit on opposite
    sides of the exact value)."""
    to_ref = tol.Tolerance(rtol=u, atol=0.0, reason=reason)
    comps = three_way(torch_value, tf_value, expected, to_ref, mask=mask,
                      extra_atol=bound + ref_error)  # fmt: skip
    across = tol.Tolerance(rtol=0.0, atol=0.0, reason=f"twice the bound: {reason}")
    comps["torch~tensorflow"] = compare(torch_value, tf_value, across, extra_atol=2 * bound)
    return comps


def _worst(bound: np.ndarray) -> str:
    return f"{float(np.max(bound, initial=0.0)):.2g}"


@dataclass(frozen=True, kw_only=True)
class ModelCase(Case):
    """A stack of Dense layers run through a dualnet model (or a lone layer) on both backends.

    Attributes:
        build: ``dtype -> model or layer``, called under each backend; builds the network with
            explicit layer names (the weights are replaced by :attr:`weights`).
        units: ``(in_features, units_1, ..., units_L)``.
        activations: one activation name per layer.
        use_bias: one bool per layer (default: all True).
        inputs: ``rng -> (batch, in_features)`` float64 inputs, edge values included.
        weight_scale: kernels are N(0, weight_scale²/fan_in), biases N(0, 0.1²).

    float32/float64 comparisons use the derived per-element bounds of
    :func:`dense_error_bounds` (Note [Dense error bounds]); float16/bfloat16 forward values are
    held to Higham's bound for one layer (:meth:`_evaluate_low_precision`).
    """

    family: str = "model"
    dtypes: tuple[str, ...] = ("float32", "float64")
    build: Callable[[str], Any]
    units: tuple[int, ...]
    activations: tuple[str, ...]
    use_bias: tuple[bool, ...] | None = None
    inputs: Callable[[np.random.Generator], np.ndarray]
    weight_scale: float = 1.0

    @property
    def biases(self) -> tuple[bool, ...]:
        return self.use_bias or (True,) * len(self.activations)

    def sample(self, dtype: str) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """Input, canonical weights and cotangent, rounded to ``dtype``."""
        rng = np.random.default_rng(case_seed(self.name))
        x = round_to(self.inputs(rng), dtype)
        weights = []
        layers = zip(self.units[:-1], self.units[1:], self.biases, strict=True)
        for fan_in, units, has_bias in layers:
            weights.append(rng.normal(0.0, self.weight_scale / np.sqrt(fan_in), (fan_in, units)))
            if has_bias:
                weights.append(rng.normal(0.0, 0.1, (units,)))
        weights = [round_to(w, dtype) for w in weights]
        batch = x.shape[0]
        cotangent = round_to(rng.standard_normal((batch, self.units[-1])), dtype)
        return x, weights, cotangent

    def weight_names(self) -> list[str]:
        names = []
        for i, has_bias in enumerate(self.biases):
            names.append(f"{i}/kernel")
            if has_bias:
                names.append(f"{i}/bias")
        return names

    def reference(self, x: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
        return R.mlp(x, weights, self.activations, self.biases)

    def run_backend(
        self, backend: str, x: np.ndarray, weights: list[np.ndarray], cotangent: np.ndarray,
        dtype: str, device: str,
    ) -> tuple[np.ndarray, list[np.ndarray]]:  # fmt: skip
        """Forward value and gradients (input first, then weights in canonical layout)."""
        with use_backend(backend):
            b = backend_module(backend)
            with b.core.device_scope(device):
                net = self.build(dtype)
                xt = b.core.convert_to_tensor(x)
                if isinstance(net, dn.Model):
                    if not net.built:  # a subclassed model is built by its first call
                        net(xt)
                    net.set_weights(weights)
                    params = b.models.trainable_params(net)
                    to_canonical = lambda grads: b.models.canonical_grads(net, grads)  # noqa: E731
                else:  # a lone layer: realise it on this backend with one call, then load
                    net(xt)
                    net.set_weights(weights)
                    params = b.layers.params(net.native)
                    to_canonical = lambda grads: b.layers.canonical_grads(net.native, grads)  # noqa: E731
                out, grads = b.core.vjp(lambda t: net(t), [xt], [0], cotangent, params=params)
                grads = [grads[0], *to_canonical(grads[1:])]
                return _f64(b.core.to_numpy(out)), [_f64(b.core.to_numpy(g)) for g in grads]

    def fd_masks(self, x: np.ndarray, weights: list[np.ndarray]) -> list[np.ndarray]:
        """Where the finite difference of the reference is valid, per gradient (input first).

        A central difference straddling a kink averages the two one-sided slopes, while the
        frameworks take one side. An element is excluded from the *reference* comparison when
        its perturbation can move some pre-activation across a kink: the pre-activation lies
        within 10 steps of the perturbation it sees (a step times the largest input of its row,
        for a kernel perturbation). torch and TensorFlow are still compared.
        """
        layers = R.preactivations(x, weights, self.activations, self.biases)
        near = []
        for (h, z), act in zip(layers, self.activations, strict=True):
            row_scale = np.maximum(1.0, np.max(np.abs(h), axis=1, initial=0.0))[:, None]
            margin = 10 * _FD_STEP * row_scale
            close = np.zeros(z.shape, dtype=bool)
            for point in KINKS.get(act, ()):
                close |= np.abs(z - point) <= margin
            near.append(close)
        rows_any = [n.any(axis=1) for n in near]  # (batch,) per layer
        masks = [np.broadcast_to(~np.any(rows_any, axis=0)[:, None], x.shape).copy()]
        for i, ((h, _), has_bias) in enumerate(zip(layers, self.biases, strict=True)):
            later = (
                np.any(rows_any[i + 1 :], axis=0)
                if i + 1 < len(near)
                else np.zeros(x.shape[0], dtype=bool)
            )
            bad = near[i] | later[:, None]  # (batch, units): outputs whose FD may cross a kink
            masks.append(~(((h != 0).astype(float).T @ bad.astype(float)) > 0))
            if has_bias:
                masks.append(~bad.any(axis=0))
        return masks

    def evaluate(self, dtype: str, device: str) -> list[Check]:
        if dtype in LOW_PRECISION:
            return self._evaluate_low_precision(dtype, device)
        x, weights, cotangent = self.sample(dtype)
        x64, w64, ct64 = _f64(x), [_f64(w) for w in weights], _f64(cotangent)
        expected = _f64(round_to(self.reference(x64, w64), dtype))
        results = self.on_each_backend(
            dtype, device, lambda b: self.run_backend(b, x, weights, cotangent, dtype, device)
        )
        if isinstance(results, Check):
            return [results]
        u = tol.UNIT_ROUNDOFF[dtype]
        bounds = dense_error_bounds(x64, w64, self.activations, self.biases, ct64, u)
        # The float64 reference is itself rounded: its own bound joins the forward comparison
        # (negligible beside float32's; as large as the backends' in float64).
        own = dense_error_bounds(x64, w64, self.activations, self.biases, ct64,
                                 tol.UNIT_ROUNDOFF["float64"])  # fmt: skip
        fans = "/".join(str(k) for k in self.units[:-1])
        reason = (f"derived per element (Note [Dense error bounds]): Higham's γ_K·(|x|·|W|+|b|), "
                  f"K = fan-in+1 ({fans}), through {len(self.activations)} layer(s); rtol = u: "
                  f"the reference rounded to {dtype}")  # fmt: skip
        comparisons = _bounded(results["torch"][0], results["tensorflow"][0], expected,
                               bounds.forward, own.forward, u, reason)  # fmt: skip
        checks = [self.check("forward", dtype, device, status_of(comparisons),
                             comparisons=comparisons,
                             detail=f"bound <= {_worst(bounds.forward)}")]  # fmt: skip

        arrays = {"x": x64, **{f"w{i}": w for i, w in enumerate(w64)}}

        def reference(**kw: np.ndarray) -> np.ndarray:
            return self.reference(kw["x"], [kw[f"w{i}"] for i in range(len(w64))])

        masks = self.fd_masks(x64, w64)
        batch = x64.shape[0]
        grad_reason = (f"derived per element (Note [Dense error bounds]): Higham's γ per sum "
                       f"(batch {batch} for kernel and bias, units for the input) through the "
                       f"backward pass, + the finite difference's own error; rtol = u: the "
                       f"reference rounded to {dtype}")  # fmt: skip
        labels = ["x", *self.weight_names()]
        for i, (key, label) in enumerate(zip(arrays, labels, strict=True)):
            fd = finite_difference(reference, arrays, key, ct64, False)
            gt, gtf = results["torch"][1][i], results["tensorflow"][1][i]
            comps = _bounded(gt, gtf, _f64(round_to(fd.value, dtype)), bounds.grads[i],
                             fd.error, u, grad_reason, mask=masks[i])  # fmt: skip
            detail = "; ".join(p for p in (f"bound <= {_worst(bounds.grads[i])}",
                                           kink_detail(masks[i], fd.error)) if p)  # fmt: skip
            checks.append(self.check(f"grad[{label}]", dtype, device, status_of(comps),
                                     comparisons=comps, detail=detail))  # fmt: skip
        return checks

    def _evaluate_low_precision(self, dtype: str, device: str) -> list[Check]:
        """Forward values of a single Dense layer in float16/bfloat16, against a rigorous bound.

        An element-wise ``assert_close`` bound relative to the output cannot hold for a dot
        product that cancels. The classic forward-error bound does (Higham, *Accuracy and
        Stability of Numerical Algorithms*, §3.1): ``|fl(x·w) - x·w| <= γ_K·|x|·|w|`` with
        ``γ_K = K·u / (1 - K·u)``, ``u`` the unit roundoff (2⁻¹¹ float16, 2⁻⁸ bfloat16) and K the
        inner dimension, whatever the accumulation order. The activation passes it on with its
        Lipschitz constant (≤ 1 for linear, relu, leaky_relu, tanh, softmax — softmax over the
        row's largest error — and 1/4 for sigmoid), and the output is rounded once more (u·|y|).
        This is the worst case: a backend that accumulates in float32 (torch on CPU) sits far
        below it, and the worst err/bound column shows where each one lands. Gradients are not
        checked in half precision.
        """
        if len(self.activations) != 1:
            raise ValueError(f"{self.id}: half-precision rows are defined for one Dense layer")
        x, weights, cotangent = self.sample(dtype)
        x64, w64 = _f64(x), [_f64(w) for w in weights]
        exact = self.reference(x64, w64)
        results = self.on_each_backend(
            dtype, device, lambda b: self.run_backend(b, x, weights, cotangent, dtype, device)
        )
        if isinstance(results, Check):
            return [results]
        u = {"float16": 2.0**-11, "bfloat16": 2.0**-8}[dtype]
        k = x64.shape[-1]
        gamma = k * u / (1.0 - k * u)
        magnitude = np.abs(x64) @ np.abs(w64[0])
        if self.biases[0]:
            magnitude = magnitude + np.abs(w64[1])
        act = self.activations[0]
        pre_error = gamma * magnitude + u * magnitude  # the sum's error and the bias add's
        if act == "softmax":  # each output moves by at most half the row's largest input error
            pre_error = 0.5 * np.max(pre_error, axis=-1, keepdims=True) * np.ones_like(exact)
        lipschitz = {"sigmoid": 0.25}.get(act, 1.0)
        bound = lipschitz * pre_error + u * np.abs(exact)
        base = tol.EXACT.scaled(1.0, f"Higham's dot-product bound γ_K·|x|·|W|, K={k}, u={u:g}")
        comps = three_way(
            results["torch"][0], results["tensorflow"][0], _f64(round_to(exact, dtype)), base,
            extra_atol=bound,
        )  # fmt: skip
        # The two backends may sit on opposite sides of the exact value: twice the bound.
        comps["torch~tensorflow"] = compare(
            results["torch"][0], results["tensorflow"][0], base, extra_atol=2 * bound
        )
        worst = float(np.max(bound))
        return [
            self.check("forward", dtype, device, status_of(comps), comparisons=comps,
                       detail=f"bound <= {worst:.2g} (worst case of a length-{k} sum); "
                       "gradients not checked in half precision"),
        ]  # fmt: skip


# --------------------------------------------------------------------------------------------
# Inputs


def edge_inputs(
    features: int, batch: int = 6, large: float = 1e3
) -> Callable[[np.random.Generator], np.ndarray]:
    """A zero row, a ±``large`` row (saturates sigmoid/tanh/softmax), a row of ±1e-3, and
    standard-normal rows."""

    def make(rng: np.random.Generator) -> np.ndarray:
        x = rng.standard_normal((batch, features))
        x[0] = 0.0
        x[1] = large * np.where(np.arange(features) % 2 == 0, 1.0, -1.0)
        x[2] = 1e-3 * rng.choice([-1.0, 1.0], features)
        return x

    return make


# --------------------------------------------------------------------------------------------
# The seed tutorial's network, three ways: 3 -> 3 (relu) -> 2 (sigmoid) -> 2 (softmax)

TUTORIAL_UNITS = (3, 3, 2, 2)
TUTORIAL_ACTIVATIONS = ("relu", "sigmoid", "softmax")


def _tutorial_layers(dtype: str) -> list[Any]:
    return [
        dn.layers.Dense(u, activation=a, name=f"dense_{i}", dtype=dtype)
        for i, (u, a) in enumerate(zip(TUTORIAL_UNITS[1:], TUTORIAL_ACTIVATIONS, strict=True))
    ]


def tutorial_sequential(dtype: str) -> dn.Model:
    return dn.Sequential([dn.Input(shape=(3,), dtype=dtype, name="input"),
                          *_tutorial_layers(dtype)], name="tutorial")  # fmt: skip


def tutorial_functional(dtype: str) -> dn.Model:
    inputs = dn.Input(shape=(3,), dtype=dtype, name="input")
    x = inputs
    for layer in _tutorial_layers(dtype):
        x = layer(x)
    return dn.Model(inputs=inputs, outputs=x, name="tutorial")


class TutorialModel(dn.Model):
    """The tutorial network as a subclassed model."""

    def __init__(self, dtype: str = "float32"):
        super().__init__(name="tutorial")
        self.hidden, self.middle, self.classifier = _tutorial_layers(dtype)

    def call(self, inputs):
        return self.classifier(self.middle(self.hidden(inputs)))


def deep_mlp(units: tuple[int, ...], activations: tuple[str, ...]) -> Callable[[str], Any]:
    def build(dtype: str) -> dn.Model:
        layers = [dn.layers.Dense(u, activation=a, name=f"dense_{i}", dtype=dtype)
                  for i, (u, a) in enumerate(zip(units[1:], activations, strict=True))]  # fmt: skip
        return dn.Sequential([dn.Input(shape=(units[0],), dtype=dtype), *layers], name="mlp")

    return build


_DEEP_UNITS = (32,) * 9
_DEEP_ACTIVATIONS = ("tanh", "sigmoid") * 3 + ("tanh", "softmax")
_DEEP_RELU = ("relu",) * 7 + ("linear",)

register(
    ModelCase(
        name="tutorial-sequential", build=tutorial_sequential, units=TUTORIAL_UNITS,
        activations=TUTORIAL_ACTIVATIONS, inputs=edge_inputs(3),
    ),
    ModelCase(
        name="tutorial-functional", build=tutorial_functional, units=TUTORIAL_UNITS,
        activations=TUTORIAL_ACTIVATIONS, inputs=edge_inputs(3),
    ),
    ModelCase(
        name="tutorial-subclassed", build=lambda dtype: TutorialModel(dtype),
        units=TUTORIAL_UNITS, activations=TUTORIAL_ACTIVATIONS, inputs=edge_inputs(3),
    ),
    ModelCase(
        name="mlp-8x32-tanh-sigmoid", build=deep_mlp(_DEEP_UNITS, _DEEP_ACTIVATIONS),
        units=_DEEP_UNITS, activations=_DEEP_ACTIVATIONS, inputs=edge_inputs(32, batch=8),
        weight_scale=2.0,
    ),
    ModelCase(
        name="mlp-8x32-relu", build=deep_mlp(_DEEP_UNITS, _DEEP_RELU), units=_DEEP_UNITS,
        activations=_DEEP_RELU, weight_scale=np.sqrt(2.0), inputs=edge_inputs(32, batch=8),
        notes="through 8 unsaturated relu layers the ±1e3 row makes kernel-gradient sums whose "
        "terms (~1e5) cancel to ~10: the derived bound carries the terms' magnitude",
    ),
)  # fmt: skip
