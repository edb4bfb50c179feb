"""float64 reference for the initializers: the distribution each one should sample from.

Random weights cannot be compared element by element with an oracle, so the reference states
the *formula-level facts* instead (fans, bounds, standard deviations, truncation) as a
:class:`Distribution`, plus the moments needed to test samples against it
(:func:`sample_z_scores`). Functions are named like the spec (``he_normal``), take the weight
shape in canonical (Keras) layout and an optional ``fans=(fan_in, fan_out)`` override, and
import neither framework nor :mod:`dualnet.initializers`. :func:`native` describes what each
framework's *own* initializer draws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Keras's TruncatedNormal and truncated VarianceScaling cut at ±2 standard deviations.
TRUNCATION = 2.0


def _phi(x: float) -> float:
    """Standard normal density."""
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def truncated_moments(c: float = TRUNCATION) -> tuple[float, float]:
    """Variance and 4th moment of a standard normal truncated to [-c, c].

    With ``Z = P(|z| ≤ c) = erf(c/√2)``, integrating by parts gives
    ``E[z²] = 1 - 2cφ(c)/Z`` and ``E[z⁴] = 3 - 2φ(c)(c³ + 3c)/Z``.
    """
    mass = math.erf(c / math.sqrt(2.0))
    var = 1.0 - 2.0 * c * _phi(c) / mass
    m4 = 3.0 - 2.0 * _phi(c) * (c**3 + 3.0 * c) / mass
    return var, m4


def truncation_std(c: float = TRUNCATION) -> float:
    """Std of a standard normal truncated to [-c, c]; Keras hard-codes 0.87962566103423978."""
    return math.sqrt(truncated_moments(c)[0])


@dataclass(frozen=True)
class Distribution:
    """A scalar distribution that every element of a weight is drawn from (independently).

    Attributes:
        kind: ``"normal"``, ``"truncated_normal"``, ``"uniform"``, ``"constant"`` or
            ``"orthogonal"`` (not element-wise: see ``gain``).
        loc: the mean (the value, for a constant).
        sigma: std of the normal *before* truncation (normal kinds only).
        low, high: the support (uniform bounds, truncation points); ±inf if unbounded.
        gain: for ``"orthogonal"``, ``WᵀW = gain²·I`` on the canonical flattening.
        note: how the numbers were derived (shown in parity reports).
    """

    kind: str
    loc: float = 0.0
    sigma: float = 0.0
    low: float = -math.inf
    high: float = math.inf
    gain: float = 1.0
    note: str = ""

    def std(self) -> float:
        if self.kind == "normal":
            return self.sigma
        if self.kind == "truncated_normal":
            return self.sigma * truncation_std((self.high - self.loc) / self.sigma)
        if self.kind == "uniform":
            return (self.high - self.low) / math.sqrt(12.0)
        return 0.0

    def fourth_central_moment(self) -> float:
        if self.kind == "normal":
            return 3.0 * self.sigma**4
        if self.kind == "truncated_normal":
            return truncated_moments((self.high - self.loc) / self.sigma)[1] * self.sigma**4
        if self.kind == "uniform":
            return (self.high - self.low) ** 4 / 80.0  # width⁴/80
        return 0.0

    def describe(self) -> str:
        if self.kind == "normal":
            return f"N({self.loc:.4g}, {self.sigma:.4g}²)"
        if self.kind == "truncated_normal":
            return (
                f"N({self.loc:.4g}, {self.sigma:.4g}²) cut to [{self.low:.4g}, {self.high:.4g}] "
                f"(std {self.std():.4g})"
            )
        if self.kind == "uniform":
            return f"U({self.low:.4g}, {self.high:.4g}) (std {self.std():.4g})"
        if self.kind == "constant":
            return f"constant {self.loc:.4g}"
        return f"orthogonal, gain {self.gain:.4g}"


# --------------------------------------------------------------------------------------------
# Fans


def compute_fans(shape: Sequence[int]) -> tuple[int, int]:
    """Keras's fans: rf = prod(shape[:-2]), (shape[-2]·rf, shape[-1]·rf); 1-D (n, n); 0-D (1, 1)."""
    shape = tuple(shape)
    if not shape:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    rf = int(np.prod(shape[:-2], dtype=np.int64))
    return shape[-2] * rf, shape[-1] * rf


def torch_layout(shape: Sequence[int]) -> tuple[int, ...]:
    """Canonical ``(*spatial, in, out)`` → torch's ``(out, in, *spatial)``."""
    shape = tuple(shape)
    return shape if len(shape) < 2 else (shape[-1], shape[-2], *shape[:-2])


def torch_fans(torch_shape: Sequence[int]) -> tuple[int, int]:
    """torch's ``_calculate_fan_in_and_fan_out``: (size(1)·rf, size(0)·rf), rf = prod(size[2:])."""
    torch_shape = tuple(torch_shape)
    if len(torch_shape) < 2:
        raise ValueError("torch computes no fans for fewer than 2 dimensions")
    rf = int(np.prod(torch_shape[2:], dtype=np.int64))
    return torch_shape[1] * rf, torch_shape[0] * rf


# --------------------------------------------------------------------------------------------
# dualnet's portable distributions (= Keras 3's)


def random_normal(shape=(), fans=None, *, mean=0.0, stddev=0.05) -> Distribution:
    return Distribution("normal", loc=mean, sigma=stddev)


def random_uniform(shape=(), fans=None, *, minval=-0.05, maxval=0.05) -> Distribution:
    return Distribution("uniform", loc=(minval + maxval) / 2.0, low=minval, high=maxval)


def truncated_normal(shape=(), fans=None, *, mean=0.0, stddev=0.05) -> Distribution:
    if stddev == 0:
        return Distribution("constant", loc=mean)
    return Distribution(
        "truncated_normal", loc=mean, sigma=stddev,
        low=mean - TRUNCATION * stddev, high=mean + TRUNCATION * stddev,
    )  # fmt: skip


def constant(shape=(), fans=None, *, value=0.0) -> Distribution:
    return Distribution("constant", loc=value)


def zeros(shape=(), fans=None) -> Distribution:
    return constant(value=0.0)


def ones(shape=(), fans=None) -> Distribution:
    return constant(value=1.0)


def _n(mode: str, fans: tuple[int, int], *, floor: float | None = 1.0) -> float:
    fan_in, fan_out = fans
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
    return n if floor is None else max(floor, n)


def variance_scaling(
    shape, fans=None, *, scale=1.0, mode="fan_in", distribution="truncated_normal"
) -> Distribution:
    """Keras: variance ``scale/n``; a truncated normal is cut at ±2σ' with σ' = σ/0.8796."""
    fans = compute_fans(shape) if fans is None else tuple(fans)
    n = _n(mode, fans)
    target = math.sqrt(scale / n)  # the std the samples must have
    note = f"fans {fans}, {mode} n={n:g}, target std sqrt({scale:g}/n)={target:.5g}"
    if distribution == "uniform":
        limit = math.sqrt(3.0) * target  # U(-l, l) has std l/√3
        return Distribution("uniform", low=-limit, high=limit, note=note)
    if distribution == "untruncated_normal":
        return Distribution("normal", sigma=target, note=note)
    # Independently derived, not Keras's constant: σ' such that the truncated std is `target`.
    sigma = target / truncation_std()
    return Distribution(
        "truncated_normal", sigma=sigma, low=-TRUNCATION * sigma, high=TRUNCATION * sigma,
        note=note,
    )  # fmt: skip


def glorot_uniform(shape, fans=None) -> Distribution:
    """U(±sqrt(6/(fan_in + fan_out))) (Keras docs)."""
    fan_in, fan_out = compute_fans(shape) if fans is None else fans
    limit = math.sqrt(6.0 / max(1.0, fan_in + fan_out))
    return Distribution("uniform", low=-limit, high=limit, note=f"fans {(fan_in, fan_out)}")


def glorot_normal(shape, fans=None) -> Distribution:
    return variance_scaling(shape, fans, scale=1.0, mode="fan_avg")


def he_uniform(shape, fans=None) -> Distribution:
    """U(±sqrt(6/fan_in)) (Keras docs)."""
    fan_in = (compute_fans(shape) if fans is None else fans)[0]
    limit = math.sqrt(6.0 / max(1, fan_in))
    return Distribution("uniform", low=-limit, high=limit, note=f"fan_in {fan_in}")


def he_normal(shape, fans=None) -> Distribution:
    """Truncated normal with std sqrt(2/fan_in) after truncation (Keras docs)."""
    return variance_scaling(shape, fans, scale=2.0, mode="fan_in")


def lecun_uniform(shape, fans=None) -> Distribution:
    """U(±sqrt(3/fan_in)) (Keras docs)."""
    fan_in = (compute_fans(shape) if fans is None else fans)[0]
    limit = math.sqrt(3.0 / max(1, fan_in))
    return Distribution("uniform", low=-limit, high=limit, note=f"fan_in {fan_in}")


def lecun_normal(shape, fans=None) -> Distribution:
    return variance_scaling(shape, fans, scale=1.0, mode="fan_in")


def standard(shape, fans=None) -> Distribution:
    """torch's nn.Linear default: U(±1/sqrt(fan_in)) (fans = the weight's, for a bias)."""
    fan_in = (compute_fans(shape) if fans is None else fans)[0]
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return Distribution("uniform", low=-bound, high=bound, note=f"fan_in {fan_in}")


def orthogonal(shape, fans=None, *, gain=1.0) -> Distribution:
    return Distribution("orthogonal", gain=gain)


def gram(x: np.ndarray) -> np.ndarray:
    """``WᵀW`` (``WWᵀ`` when rows < cols) of ``x`` flattened to (prod(shape[:-1]), shape[-1])."""
    w = np.asarray(x, dtype=np.float64).reshape(-1, np.shape(x)[-1])
    return w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T


# --------------------------------------------------------------------------------------------
# What each framework's own initializer draws (dualnet's native mode)

_VS_PRESETS = {
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "standard": (1.0 / 3.0, "fan_in", "uniform"),
}


def native(framework: str, name: str, shape, fans=None, **params) -> Distribution:
    """The distribution of ``framework``'s own initializer for the spec entry ``name``.

    * ``"tensorflow"``: Keras 3 is dualnet's definition, so the spec's own distribution.
    * ``"torch"``: variance-scaling initializers use torch's fans on its ``(out, in, *spatial)``
      layout (or, below 2-D or with explicit fans, the fans given), divide by ``fan`` without
      Keras's ``max(1, ·)``, and their normals (``kaiming_normal_``, ``xavier_normal_``) are
      **untruncated** N(0, scale/fan). Everything else matches the spec (dualnet passes
      ``trunc_normal_`` the Keras bounds mean ∓ 2·stddev).
    """
    spec = globals()[name]
    if framework == "tensorflow" or (name not in _VS_PRESETS and name != "variance_scaling"):
        return spec(shape, fans, **params)
    if framework != "torch":
        raise ValueError(f"unknown framework {framework!r}")
    if name == "variance_scaling":
        scale = params.get("scale", 1.0)  # variance_scaling's defaults
        mode = params.get("mode", "fan_in")
        distribution = params.get("distribution", "truncated_normal")
    else:
        scale, mode, distribution = _VS_PRESETS[name]
    if fans is None:
        shape = tuple(shape)
        fans = torch_fans(torch_layout(shape)) if len(shape) >= 2 else compute_fans(shape)
    n = _n(mode, fans, floor=None)
    std = math.sqrt(scale / n)
    note = f"torch fans {tuple(fans)}, {mode} n={n:g}, std sqrt({scale:.4g}/n)={std:.5g}"
    if distribution == "uniform":
        bound = math.sqrt(3.0) * std
        return Distribution("uniform", low=-bound, high=bound, note=note)
    return Distribution("normal", sigma=std, note=note + ", untruncated")


# --------------------------------------------------------------------------------------------
# Testing samples against a distribution


def sample_z_scores(x: np.ndarray, dist: Distribution) -> tuple[float, float]:
    """How many standard errors the sample mean and the sample std are from ``dist``'s.

    The standard error of the mean is ``σ/√n``; that of the std, by the delta method,
    ``sqrt((μ₄ - σ⁴)/n) / (2σ)`` with μ₄ the 4th central moment. Both assume independent
    elements, which holds for every element-wise initializer (not for orthogonal matrices).
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    n = x.size
    sd = dist.std()
    if n < 2 or sd == 0:
        raise ValueError("z-scores need at least 2 samples of a non-degenerate distribution")
    se_mean = sd / math.sqrt(n)
    se_std = math.sqrt((dist.fourth_central_moment() - sd**4) / n) / (2.0 * sd)
    return (float(x.mean()) - dist.loc) / se_mean, (float(x.std()) - sd) / se_std
