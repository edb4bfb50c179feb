"""Parity cases for the initializers: bit-identity of portable weights, and distributions.

Random weights have no element-wise oracle, so an :class:`InitializerCase` checks them against
the *distribution* the float64 reference describes (:mod:`dualnet.reference.initializers`):

* ``portable/roundtrip``: the portable draw (numpy, identical by construction) loaded into each
  framework and read back must be **bit-identical** to the draw (``tolerance.EXACT``). This is a
  round trip of the implementation's own draw, not a reference comparison: its comparisons are
  keyed ``torch~draw`` and ``tensorflow~draw`` (the draw's *distribution* is what the
  ``stats``/``support`` rows hold against the reference). Constants get ``portable/values``
  and ``native/values`` rows against the reference value.
* ``portable/stats`` and ``native/stats``: the sample mean and std, in standard errors away from
  the reference distribution's, must be within ±6 (|z| > 6 has probability ≈ 2e-9 per statistic,
  so the check can fail but essentially never flakes; the seeds are fixed anyway). The standard
  error of the std comes from the distribution's 4th moment (delta method), so it is exact for
  uniform and truncated normals too.
* ``portable/support`` and ``native/support``: no sample outside the support (uniform bounds,
  truncation at ±2σ'); the bound carries the dtype's rounding (``tolerance.default``).
* ``portable/gram``, ``native/gram`` (orthogonal): ``WᵀW = gain²·I`` on the canonical flattening.

Native rows compare each framework with the reference's description of *that framework's* own
initializer (torch's ``kaiming_normal_`` is untruncated, Keras's ``HeNormal`` is truncated);
their detail records how the two frameworks' samples differ.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

import dualnet as dn
from dualnet import initializers as I
from dualnet._backend import BACKENDS, backend_module, use_backend
from dualnet.parity import tolerance as tol
from dualnet.parity.cases import (
    Case,
    Check,
    case_seed,
    register,
    round_to,
    status_of,
)
from dualnet.parity.compare import compare
from dualnet.reference import initializers as R

Z_BOUND = 6.0
Z_TOLERANCE = tol.Tolerance(
    rtol=0.0,
    atol=Z_BOUND,
    reason="|z| <= 6 standard errors: P(|z| > 6) ~ 2e-9 per statistic under the reference",
)
_NATIVE_NAME = {
    "torch": {
        "random_normal": "normal_", "random_uniform": "uniform_",
        "truncated_normal": "trunc_normal_(a, b = mean -/+ 2 std)", "zeros": "zeros_",
        "ones": "ones_", "constant": "constant_", "variance_scaling": "kaiming_*/xavier_*",
        "lecun_normal": "kaiming_normal_(linear)", "lecun_uniform": "kaiming_uniform_(linear)",
        "glorot_normal": "xavier_normal_", "glorot_uniform": "xavier_uniform_",
        "he_normal": "kaiming_normal_(relu)", "he_uniform": "kaiming_uniform_(relu)",
        "orthogonal": "orthogonal_", "standard": "kaiming_uniform_(a=sqrt 5)",
    },
}  # fmt: skip


def _gram_tolerance(
    dtype: str, gain: float, shape: tuple[int, ...], *, keras_half_qr: bool = False
) -> tol.Tolerance:
    # Off-diagonal entries of WᵀW are 0, so a relative bound alone would demand exact zeros;
    # rounding an exactly orthogonal W to the dtype perturbs them by ~ε·gain²/√rows < ε·gain².
    rtol = tol.default(dtype).rtol
    if keras_half_qr:
        # keras.initializers.Orthogonal draws the normal matrix and runs QR *in float16* (TF
        # has a half QR kernel; torch has none, so dualnet's torch path computes in float32).
        # A length-n QR accumulates ~√n·ε of rounding (observed ≈5e-3 for n = 256), and even
        # the smallest shapes were measured 4-8 float16 rounding units off (the property search:
        # orthogonal-2x3-half): max(√n, 8) units.
        n = max(math.prod(shape[:-1]), shape[-1])
        units = max(math.sqrt(n), 8.0)
        return tol.default(dtype).loosened(
            atol=units * rtol * gain**2,
            reason=f"Keras computes Orthogonal's QR in float16: max(sqrt(n), 8) x rtol x gain², "
            f"n={n}",
        )  # fmt: skip
    return tol.default(dtype).loosened(
        atol=rtol * gain**2,
        reason="WᵀW vs gain²·I: absolute bound = the dtype's rtol x gain² (zero off-diagonal)",
    )


@dataclass(frozen=True, kw_only=True)
class InitializerCase(Case):
    """One initializer on one shape, in portable and native mode.

    Attributes:
        initializer: registry name (``"he_normal"``); also the reference function's name.
        params: constructor arguments besides ``seed``/``native``.
        shape: canonical (Keras-layout) weight shape.
        fans: optional ``(fan_in, fan_out)`` passed to the call (a torch-style bias).
    """

    family: str = "initializer"
    initializer: str
    params: Mapping[str, Any] = field(default_factory=dict)
    shape: tuple[int, ...]
    fans: tuple[int, int] | None = None

    def make(self, *, native: bool) -> I.Initializer:
        config = {**self.params, "seed": case_seed(self.name), "native": native}
        return I.get({"class_name": self.initializer, "config": config})

    def reference(self, framework: str | None = None) -> R.Distribution:
        if framework is None:
            return getattr(R, self.initializer)(self.shape, self.fans, **self.params)
        return R.native(framework, self.initializer, self.shape, self.fans, **self.params)

    def evaluate(self, dtype: str, device: str) -> list[Check]:
        portable: dict[str, np.ndarray] = {}
        native: dict[str, np.ndarray] = {}
        failure: dict[str, Check] = {}
        for backend in BACKENDS:
            with use_backend(backend):
                for mode, out in (("portable", portable), ("native", native)):
                    if mode in failure:
                        continue
                    try:
                        with backend_module(backend).core.device_scope(device):
                            init = self.make(native=mode == "native")
                            out[backend] = init(self.shape, dtype, fans=self.fans)
                    except Exception as exc:  # reported as a row, never swallowed
                        failure[mode] = self.raised(backend, mode, dtype, device, exc)
                        continue
                    stale = self.stale(backend, mode, dtype, device)
                    if stale is not None:
                        failure[mode] = stale

        checks: list[Check] = list(failure.values())
        if "portable" not in failure:
            checks.append(self._loaded_values(dtype, device))
            spec = self.reference()
            checks += self._distribution_checks(
                "portable", dtype, device, portable, dict.fromkeys(BACKENDS, spec)
            )
        if "native" not in failure:
            refs = {b: self.reference(b) for b in BACKENDS}
            checks += self._distribution_checks("native", dtype, device, native, refs)
        return checks

    def _loaded_values(self, dtype: str, device: str) -> Check:
        """The portable draw, loaded into each framework and read back in canonical layout.

        The draw itself is numpy, identical by construction; what can differ is what each
        backend *stores*: a 2-D shape goes through a Dense kernel (torch keeps it transposed,
        as nn.Linear does), any other shape through the backend's tensor conversion. Both must
        return the numpy draw bit for bit. A round trip, not a reference comparison: the
        comparisons are ``torch~draw``, ``tensorflow~draw`` and ``torch~tensorflow``.
        """
        draw = self.make(native=False)(self.shape, dtype, fans=self.fans)
        loaded: dict[str, np.ndarray] = {}
        for backend in BACKENDS:
            with use_backend(backend), backend_module(backend).core.device_scope(device):
                core = backend_module(backend).core
                if len(self.shape) == 2 and self.fans is None:
                    layer = dn.layers.Dense(self.shape[1], use_bias=False, dtype=dtype,
                                            kernel_initializer=self.make(native=False))  # fmt: skip
                    layer(np.zeros((1, self.shape[0]), dtype=np.float32))  # builds the weights
                    loaded[backend] = layer.get_weights()[0]
                else:
                    loaded[backend] = core.to_numpy(core.convert_to_tensor(draw, dtype))
        comps = {
            "torch~tensorflow": compare(loaded["torch"], loaded["tensorflow"], tol.EXACT),
            **{f"{b}~draw": compare(loaded[b], draw, tol.EXACT) for b in BACKENDS},
        }
        how = "a Dense kernel" if len(self.shape) == 2 and self.fans is None else "a tensor"
        return self.check("portable/roundtrip", dtype, device, status_of(comps),
                          comparisons=comps, detail=f"round trip, not a reference comparison: "
                          f"the numpy PCG64 draw loaded into {how} on each backend and read back "
                          "bit-identical")  # fmt: skip

    def _distribution_checks(
        self, mode: str, dtype: str, device: str, arrays: Mapping[str, np.ndarray],
        refs: Mapping[str, R.Distribution],
    ) -> list[Check]:  # fmt: skip
        kind = refs["torch"].kind
        if kind == "constant":
            comps = {
                f"{b}~ref": compare(arrays[b], round_to(np.full(self.shape, refs[b].loc), dtype),
                                    tol.default(dtype))
                for b in BACKENDS
            }  # fmt: skip
            detail = f"{refs['torch'].describe()}"
            return [self.check(f"{mode}/values", dtype, device, status_of(comps), comparisons=comps,
                               detail=detail)]  # fmt: skip
        if kind == "orthogonal":
            gain = refs["torch"].gain
            comps = {}
            for b in BACKENDS:
                g = R.gram(arrays[b])
                bound = _gram_tolerance(
                    dtype,
                    gain,
                    self.shape,
                    keras_half_qr=(mode == "native" and b == "tensorflow" and dtype == "float16"),
                )
                comps[f"{b}~ref"] = compare(g, gain**2 * np.eye(len(g)), bound)
            detail = self._native_detail(arrays, refs) if mode == "native" else ""
            detail = f"WᵀW = {gain:g}²·I, flattened to {_flat(self.shape)}. {detail}"
            return [self.check(f"{mode}/gram", dtype, device, status_of(comps), comparisons=comps,
                               detail=detail)]  # fmt: skip

        stats, support = {}, {}
        for b in BACKENDS:
            x = np.asarray(arrays[b], dtype=np.float64)
            stats[f"{b}~ref"] = compare(
                np.array(R.sample_z_scores(x, refs[b])), np.zeros(2), Z_TOLERANCE
            )
            support[f"{b}~ref"] = compare(
                x, np.clip(x, refs[b].low, refs[b].high), tol.default(dtype)
            )
        if mode == "native":
            detail = self._native_detail(arrays, refs)
        else:
            note = f" [{refs['torch'].note}]" if refs["torch"].note else ""
            detail = f"{refs['torch'].describe()}{note}; " + _summary(
                arrays["torch"], refs["torch"]
            )
        return [
            self.check(f"{mode}/stats", dtype, device, status_of(stats), comparisons=stats,
                       detail=f"z = (sample mean, sample std) in standard errors. {detail}"),
            self.check(f"{mode}/support", dtype, device, status_of(support), comparisons=support,
                       detail=f"support {_support(refs['torch'])} (torch), "
                              f"{_support(refs['tensorflow'])} (keras)"),
        ]  # fmt: skip

    def _native_detail(self, arrays, refs) -> str:
        torch_fn = _NATIVE_NAME["torch"][self.initializer]
        parts = [
            f"torch {torch_fn}: {refs['torch'].describe()}, "
            f"{_summary(arrays['torch'], refs['torch'])}",
            f"keras {self.initializer}: {refs['tensorflow'].describe()}, "
            f"{_summary(arrays['tensorflow'], refs['tensorflow'])}",
        ]  # fmt: skip
        t, k = (np.asarray(arrays[b], dtype=np.float64) for b in BACKENDS)
        if t.size > 1 and replace(refs["torch"], note="") != replace(refs["tensorflow"], note=""):
            parts.append(
                f"DIFFERS: std torch/keras {t.std() / max(k.std(), 1e-300):.4g}, "
                f"max|x| torch {np.abs(t).max():.4g} vs keras {np.abs(k).max():.4g}"
            )
        return " | ".join(parts)


def _flat(shape: tuple[int, ...]) -> str:
    return f"({math.prod(shape[:-1])}, {shape[-1]})"


def _summary(x: np.ndarray, dist: R.Distribution) -> str:
    x = np.asarray(x, dtype=np.float64)
    if dist.kind == "orthogonal" or x.size < 2:
        return f"max|x| {np.abs(x).max():.4g}"
    spread = dist.std() or 1.0
    worst = float(np.abs(x - dist.loc).max())
    return (
        f"sample std {x.std():.5g} (expected {dist.std():.5g}), "
        f"max|x-mean| {worst:.4g} = {worst / spread:.3g} std"
    )


def _support(dist: R.Distribution) -> str:
    return f"[{dist.low:.4g}, {dist.high:.4g}]"


def _shape_id(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) or "scalar"


def _case(initializer: str, shape: tuple[int, ...], *, params=None, fans=None, suffix="", notes="",
          unsupported=None):  # fmt: skip
    params = dict(params or {})
    name = f"{initializer}{suffix}-{_shape_id(shape)}"
    if fans is not None:
        name += f"-fans{fans[0]}x{fans[1]}"
    return InitializerCase(name=name, initializer=initializer, params=params, shape=shape,
                           fans=fans, notes=notes, unsupported=unsupported or {})  # fmt: skip


_BIG = (256, 256)  # 65536 samples: cheap, and a tight statistical test
_KERNEL = (64, 32)
_CONV = (3, 3, 8, 16)
_BIAS = (64,)
_ELEMENTWISE = (
    "random_normal", "random_uniform", "truncated_normal", "variance_scaling", "lecun_normal",
    "lecun_uniform", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "standard",
)  # fmt: skip
_CASES = [_case(n, s) for n in _ELEMENTWISE for s in (_BIG, _KERNEL, _CONV, _BIAS)]
_CASES += [_case(n, s) for n in ("zeros", "ones", "constant") for s in (_KERNEL, _BIAS)]
_CASES += [_case("orthogonal", s) for s in (_BIG, (64, 256), _KERNEL, _CONV)]
_CASES += [
    _case("standard", (32,), fans=(64, 32), notes="torch nn.Linear bias: the weight's fan_in"),
    _case("standard", (256, 256), fans=(16, 4), notes="explicit fans override the shape's"),
    _case("he_normal", (256, 256), fans=(16, 4), notes="explicit fans override the shape's"),
    _case("random_normal", _BIG, params={"mean": 1.0, "stddev": 2.0}, suffix="-m1s2"),
    _case("random_uniform", _BIG, params={"minval": -3.0, "maxval": 1.0}, suffix="-m3p1"),
    _case("truncated_normal", _BIG, params={"mean": 0.5, "stddev": 1.0}, suffix="-m0.5s1",
          notes="torch's default a=-2, b=2 would cut at 2.5σ below and 1.5σ above"),
    _case("variance_scaling", _BIG, suffix="-fan_out-untrunc-0.5",
          params={"scale": 0.5, "mode": "fan_out", "distribution": "untruncated_normal"}),
    _case("variance_scaling", (64, 16), suffix="-fan_avg-uniform-3",
          params={"scale": 3.0, "mode": "fan_avg", "distribution": "uniform"}),
    _case("variance_scaling", _CONV, suffix="-fan_out-trunc-3",
          params={"scale": 3.0, "mode": "fan_out", "distribution": "truncated_normal"},
          notes="scale > 2: torch has no kaiming nonlinearity for it (normal_ fallback)"),
    _case("constant", _KERNEL, params={"value": 0.3}, suffix="-0.3"),
    _case("constant", _BIAS, params={"value": -1e5}, suffix="-big",
          notes="-1e5 overflows float16 to -inf in all three",
          unsupported={("torch", "native", "float16"): "torch.nn.init.constant_ refuses values "
                       "beyond float16's range (portable mode gives -inf, as Keras)"}),
    _case("orthogonal", (16, 64), params={"gain": 2.0}, suffix="-gain2"),
]  # fmt: skip
register(*_CASES)
