"""Weight initializers: one definition, the same weights on both backends.

An initializer is a frozen, validated spec object; calling it returns a **numpy** array::

    init = dn.initializers.GlorotUniform(seed=0)
    w = init((64, 32), "float32")                 # (fan_in, fan_out) = (64, 32)
    b = dn.initializers.Standard()((32,), fans=(64, 32))   # torch's nn.Linear bias

Shapes are in dualnet's canonical (Keras) layout: a Dense kernel is ``(in, out)``, a conv
kernel is ``(*spatial, in, out)``.

Two modes
---------
* **Portable** (``native=False``, the default). Samples come from numpy's ``PCG64``
  (:func:`dualnet.random.generator`), are computed in float64 and rounded once to ``dtype``.
  The result is bit-identical whichever backend is active (no framework is even imported), and
  the float32 array is exactly the float64 array rounded. The distributions are Keras 3's.
* **Native** (``native=True``). The *active* backend's own initializer runs: ``torch.nn.init``
  on torch, ``keras.initializers`` on TensorFlow, seeded with this object's seed. Use it to see
  what each framework would have given you; the two disagree by design (below).

Seeds
-----
Keras 3 semantics: an initializer with a seed returns the **same array on every call**.
``seed=None`` draws a seed from dualnet's global generator (:func:`dualnet.random.draw_seed`)
**at construction** and stores it in ``self.seed`` (and so in :meth:`get_config`). Hence::

    dn.set_random_seed(0)
    model = build()        # every initializer created here draws its seed in order

gives the same weights on every run and on both backends. One initializer object shared by two
layers gives both the same weights (as in Keras): create one per layer. Zeros, Ones and
Constant are deterministic; they accept ``seed`` and ignore it (no seed is drawn).

Where torch and Keras disagree
------------------------------
* **he/glorot/lecun normal.** Keras (dualnet portable): truncated at ±2σ' with
  σ' = σ/0.8796, so the std *after* truncation is σ. torch ``kaiming_normal_`` /
  ``xavier_normal_``: untruncated N(0, σ²) (same std, much longer tails).
* **truncated_normal.** Keras: cut at mean ± 2·stddev and resampled. torch ``trunc_normal_``
  cuts at *absolute* a=-2, b=2 by default; native mode passes a, b = mean ∓ 2·stddev.
* **fans.** Keras: rf = prod(shape[:-2]), fan_in = shape[-2]·rf, fan_out = shape[-1]·rf.
  torch, on its (out, in, *spatial) weight: size(1)·rf, size(0)·rf (the same numbers); torch
  refuses fewer than 2 dimensions. Keras divides by ``max(1, fan)``, torch by ``fan``.
* **orthogonal.** Keras: rows = prod(shape[:-1]), cols = shape[-1]. torch: rows = size(0),
  cols = the rest (the same orthogonality on the transposed flattening).
* **Dense defaults.** Keras: kernel glorot_uniform, bias zeros. torch: weight and bias
  U(±1/√fan_in) (:class:`Standard` here).

dualnet's defaults follow Keras; :class:`Standard` reproduces torch's ``nn.Linear``/``ConvNd``
default (``kaiming_uniform_(a=√5)`` = U(±1/√fan_in)), for the weight and, with
``fans=(fan_in, fan_out)`` of the weight, for the bias (``Standard.uses_layer_fans``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from dualnet import _ops
from dualnet.dtypes import FLOAT_DTYPES, FLOATX, numpy_dtype, standardize
from dualnet.errors import bad_type, bad_value, check_real, unknown_name
from dualnet.random import check_seed, draw_seed, generator

__all__ = [
    "NAMES", "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Initializer",
    "LecunNormal", "LecunUniform", "Ones", "Orthogonal", "RandomNormal",
    "RandomUniform", "Standard", "TruncatedNormal", "VarianceScaling", "Zeros",
    "compute_fans", "get", "serialize",
]  # fmt: skip

# The standard deviation of a standard normal truncated to [-2, 2]:
# sqrt(1 - 4·φ(2)/(2Φ(2) - 1)). Keras divides σ by it so the *truncated* samples have std σ.
TRUNCATION_STD = 0.87962566103423978
# Truncated normals are cut at this many standard deviations (of the untruncated normal).
TRUNCATION_BOUND = 2.0
MODES: tuple[str, ...] = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS: tuple[str, ...] = ("truncated_normal", "untruncated_normal", "uniform")


# --------------------------------------------------------------------------------------------
# Validation helpers


def _shape(shape: Any, where: str) -> tuple[int, ...]:
    """A tuple of non-negative ints (an int ``n`` means ``(n,)``)."""
    if isinstance(shape, int | np.integer) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, Sequence) or isinstance(shape, str):
        raise bad_type("shape", shape, "a tuple of non-negative ints", where=where)
    dims = []
    for d in shape:
        if isinstance(d, bool) or not isinstance(d, int | np.integer):
            raise bad_type("shape", tuple(shape), "a tuple of non-negative ints", where=where)
        if d < 0:
            raise bad_value("shape", tuple(shape), "a tuple of non-negative ints", where=where)
        dims.append(int(d))
    return tuple(dims)


def _fans(fans: Any, where: str) -> tuple[int, int] | None:
    if fans is None:
        return None
    ok = (
        isinstance(fans, Sequence)
        and len(fans) == 2
        and all(isinstance(f, int | np.integer) and not isinstance(f, bool) for f in fans)
    )
    if not ok:
        raise bad_type("fans", fans, "None or a pair of ints (fan_in, fan_out)", where=where)
    if any(f < 0 for f in fans):
        raise bad_value("fans", fans, "a pair of non-negative ints (fan_in, fan_out)", where=where)
    return int(fans[0]), int(fans[1])


def compute_fans(shape: Sequence[int]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight shape in Keras's (canonical) layout.

    ``rf = prod(shape[:-2])`` (the receptive field of a conv kernel ``(*spatial, in, out)``);
    ``fan_in = shape[-2]·rf``, ``fan_out = shape[-1]·rf``. A 1-D shape ``(n,)`` has both fans
    ``n``; a scalar has both 1. torch computes the same numbers on its ``(out, in, *spatial)``
    layout (``size(1)·rf``, ``size(0)·rf``) but refuses shapes of fewer than 2 dimensions.

    Args:
        shape: a tuple of non-negative ints.

    Returns:
        ``(fan_in, fan_out)`` as Python ints.
    """
    shape = _shape(shape, "compute_fans")
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])  # 1 for a 2-D kernel
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def _truncated_standard_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal samples with every |z| > 2 redrawn until none is left (Keras/TF's rule).

    Each round redraws ≈4.6% of what is left, so a handful of rounds suffices; the order of the
    draws is fixed, so the result is a deterministic function of the generator's state.
    """
    z = rng.standard_normal(shape)
    outside = np.abs(z) > TRUNCATION_BOUND  # the bounds themselves are kept, as in TF
    while outside.any():
        z[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(z) > TRUNCATION_BOUND
    return z


# --------------------------------------------------------------------------------------------
# The spec objects


@dataclass(frozen=True)
class Initializer:
    """Base class: validated, frozen, returns numpy arrays (see the module docstring).

    Attributes:
        seed: a non-negative int, or None to draw one from dualnet's global generator at
            construction (stored, so every call returns the same array).
        native: False (default) for dualnet's portable sampler; True to run the active
            backend's own initializer (``torch.nn.init`` / ``keras.initializers``).
    """

    # True only for initializers whose bias uses the *layer's* fans (torch's nn.Linear bias).
    uses_layer_fans: ClassVar[bool] = False
    # Whether the initializer is random (draws a seed when given None).
    random: ClassVar[bool] = True

    _: KW_ONLY
    seed: int | None = None
    native: bool = False

    def __post_init__(self) -> None:
        where = type(self).__name__
        seed = check_seed(self.seed)
        if not isinstance(self.native, bool):
            raise bad_type("native", self.native, "a bool", where=where)
        self._validate(where)
        # Only after every check passed: a failed construction must not advance the global
        # generator (nothing half-changed after an error).
        if seed is None and self.random:
            seed = draw_seed()
        object.__setattr__(self, "seed", seed)

    def _validate(self, where: str) -> None:
        """Subclasses check their own fields here."""
        # A body besides the docstring: tf.function's AutoGraph cannot convert an empty one.
        return None

    def __call__(
        self, shape: Sequence[int], dtype: Any = "float32", *, fans: tuple[int, int] | None = None
    ) -> np.ndarray:
        """Generate an array.

        Args:
            shape: the weight shape in canonical (Keras) layout.
            dtype: one of float16, bfloat16, float32, float64 (default float32; None means
                float32, Keras's floatx).
            fans: ``(fan_in, fan_out)`` overriding those computed from ``shape`` (used by
                fan-based initializers only; a layer passes them for a torch-style bias).

        Returns:
            A numpy array of ``shape`` and ``dtype`` (bfloat16 as ``ml_dtypes.bfloat16``).
        """
        where = type(self).__name__
        shape = _shape(shape, where)
        dtype = standardize(
            FLOATX if dtype is None else dtype, allowed=FLOAT_DTYPES, where=type(self).__name__
        )
        fans = _fans(fans, where)
        self._check_shape(shape, where)
        target = numpy_dtype(dtype)
        if math.prod(shape) == 0:
            return np.zeros(shape, dtype=target)  # nothing to draw (torch warns, Keras returns)
        if self.native:
            out = np.asarray(self._native(_ops.backend().initializers, shape, dtype, fans))
            if out.shape != shape or out.dtype != target:  # a backend bug, never user error
                raise AssertionError(f"{where} native: got {out.shape} {out.dtype}")
            return out
        values = self._portable(shape, fans)
        with np.errstate(over="ignore"):  # a huge constant becomes inf in float16: correct
            # One rounding from float64: the float32 result is the float64 one, rounded.
            return np.asarray(values, dtype=np.float64).astype(target)

    def _check_shape(self, shape: tuple[int, ...], where: str) -> None:
        """Subclasses refuse shapes they cannot fill (Orthogonal needs 2-D)."""
        # A body besides the docstring: tf.function's AutoGraph cannot convert an empty one.
        return None

    def _portable(self, shape: tuple[int, ...], fans: tuple[int, int] | None) -> np.ndarray:
        raise NotImplementedError

    def _native(self, backend: Any, shape: tuple[int, ...], dtype: str, fans) -> Any:
        raise NotImplementedError

    def _rng(self) -> np.random.Generator:
        # A fresh generator from the stored seed: the same array on every call (Keras 3).
        return generator(self.seed)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (the drawn seed included), JSON-serialisable."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Initializer:
        """Rebuild an initializer from :meth:`get_config`'s output."""
        if not isinstance(config, dict):
            raise bad_type("config", config, "a dict from get_config()", where=cls.__name__)
        return cls(**config)


@dataclass(frozen=True)
class RandomNormal(Initializer):
    """Normal samples, ``x ~ N(mean, stddev²)`` (untruncated). Same defaults in Keras.

    torch: ``nn.init.normal_`` defaults to N(0, 1); Keras and dualnet to N(0, 0.05²).

    Args:
        mean: the mean.
        stddev: the standard deviation, >= 0.
    """

    mean: float = 0.0
    stddev: float = 0.05

    def _validate(self, where: str) -> None:
        object.__setattr__(self, "mean", check_real("mean", self.mean, where))
        object.__setattr__(self, "stddev", check_real("stddev", self.stddev, where))
        if self.stddev < 0:
            raise bad_value("stddev", self.stddev, "a number >= 0", where=where)

    def _portable(self, shape, fans):
        return self.mean + self.stddev * self._rng().standard_normal(shape)

    def _native(self, backend, shape, dtype, fans):
        return backend.random_normal(shape, dtype, self.seed, mean=self.mean, stddev=self.stddev)


@dataclass(frozen=True)
class RandomUniform(Initializer):
    """Uniform samples, ``x ~ U[minval, maxval)``. Same defaults in Keras.

    torch: ``nn.init.uniform_`` defaults to U(0, 1); Keras and dualnet to U(-0.05, 0.05).
    After rounding to a low-precision dtype a sample may equal ``maxval``.

    Args:
        minval: the lower bound.
        maxval: the upper bound, >= minval.
    """

    minval: float = -0.05
    maxval: float = 0.05

    def _validate(self, where: str) -> None:
        object.__setattr__(self, "minval", check_real("minval", self.minval, where))
        object.__setattr__(self, "maxval", check_real("maxval", self.maxval, where))
        if self.minval > self.maxval:
            raise bad_value(
                "minval", self.minval, f"a number <= maxval={self.maxval!r}", where=where
            )

    def _portable(self, shape, fans):
        return self._rng().uniform(self.minval, self.maxval, size=shape)

    def _native(self, backend, shape, dtype, fans):
        return backend.random_uniform(
            shape, dtype, self.seed, minval=self.minval, maxval=self.maxval
        )


@dataclass(frozen=True)
class TruncatedNormal(Initializer):
    """Normal samples ``N(mean, stddev²)`` with values beyond ``mean ± 2·stddev`` redrawn.

    This is Keras's definition (the std of the result is ``0.8796·stddev``). torch's
    ``trunc_normal_(mean, std, a=-2, b=2)`` cuts at *absolute* bounds, so for a small std it is
    effectively untruncated; in native mode on torch dualnet passes ``a, b = mean ∓ 2·stddev``
    so that torch's own sampler draws this same distribution.

    Args:
        mean: the mean.
        stddev: the standard deviation of the normal *before* truncation, >= 0.
    """

    mean: float = 0.0
    stddev: float = 0.05

    def _validate(self, where: str) -> None:
        object.__setattr__(self, "mean", check_real("mean", self.mean, where))
        object.__setattr__(self, "stddev", check_real("stddev", self.stddev, where))
        if self.stddev < 0:
            raise bad_value("stddev", self.stddev, "a number >= 0", where=where)

    def _portable(self, shape, fans):
        return self.mean + self.stddev * _truncated_standard_normal(self._rng(), shape)

    def _native(self, backend, shape, dtype, fans):
        return backend.truncated_normal(shape, dtype, self.seed, mean=self.mean, stddev=self.stddev)


@dataclass(frozen=True)
class Constant(Initializer):
    """Every element equals ``value`` (default 0.0). ``seed`` is accepted and ignored.

    Args:
        value: a finite real number.
    """

    random: ClassVar[bool] = False
    value: float = 0.0

    def _validate(self, where: str) -> None:
        object.__setattr__(self, "value", check_real("value", self.value, where))

    def _portable(self, shape, fans):
        return np.full(shape, self.value)

    def _native(self, backend, shape, dtype, fans):
        return backend.constant(shape, dtype, value=self.value)


@dataclass(frozen=True)
class Zeros(Initializer):
    """All zeros (Keras's default bias). ``seed`` is accepted and ignored."""

    random: ClassVar[bool] = False

    def _portable(self, shape, fans):
        return np.zeros(shape)

    def _native(self, backend, shape, dtype, fans):
        return backend.constant(shape, dtype, value=0.0)


@dataclass(frozen=True)
class Ones(Initializer):
    """All ones. ``seed`` is accepted and ignored."""

    random: ClassVar[bool] = False

    def _portable(self, shape, fans):
        return np.ones(shape)

    def _native(self, backend, shape, dtype, fans):
        return backend.constant(shape, dtype, value=1.0)


@dataclass(frozen=True)
class VarianceScaling(Initializer):
    """Samples whose variance is ``scale / n``, with ``n`` set by ``mode`` (Keras's definition).

    ``n = max(1, fan_in)``, ``max(1, fan_out)`` or ``max(1, (fan_in + fan_out)/2)``
    (:func:`compute_fans`, or the ``fans`` passed to the call). Then

    * ``"truncated_normal"``: N(0, σ'²) truncated at ±2σ', ``σ' = sqrt(scale/n) / 0.8796…``,
      so the std *after* truncation is ``sqrt(scale/n)``;
    * ``"untruncated_normal"``: N(0, scale/n);
    * ``"uniform"``: U(-l, l), ``l = sqrt(3·scale/n)``.

    As in Keras, ``distribution="normal"`` is accepted and means ``"truncated_normal"``.

    Native mode on torch (which has no VarianceScaling): ``fan_avg`` →
    ``xavier_uniform_``/``xavier_normal_(gain=√scale)``; ``fan_in``/``fan_out`` →
    ``kaiming_uniform_``/``kaiming_normal_`` with ``nonlinearity="relu"`` for scale 2,
    ``"linear"`` for scale 1, else ``leaky_relu`` with ``a = sqrt(2/scale - 1)`` (its gain² is
    ``scale``; ``a = √5`` for :class:`Standard`). torch's normal counterparts are
    **untruncated**, so both normal distributions map to N(0, scale/n) there. Shapes of fewer
    than 2 dimensions, explicit ``fans`` and ``scale > 2`` use the same formula with
    ``nn.init.uniform_``/``normal_`` and the fans dualnet computed (torch refuses < 2-D).

    Args:
        scale: positive scaling factor.
        mode: one of ``"fan_in"``, ``"fan_out"``, ``"fan_avg"``.
        distribution: one of ``"truncated_normal"``, ``"untruncated_normal"``, ``"uniform"``.
    """

    scale: float = 1.0
    mode: str = "fan_in"
    distribution: str = "truncated_normal"

    def _validate(self, where: str) -> None:
        scale = check_real("scale", self.scale, where)
        if scale <= 0:
            raise bad_value("scale", self.scale, "a number > 0", where=where)
        if self.mode not in MODES:
            raise bad_value("mode", self.mode, f"one of {', '.join(MODES)}", where=where)
        distribution = self.distribution
        if distribution == "normal":  # Keras's legacy alias
            distribution = "truncated_normal"
        if distribution not in DISTRIBUTIONS:
            raise bad_value(
                "distribution", self.distribution,
                f"one of {', '.join(DISTRIBUTIONS)} (or 'normal' = truncated_normal)",
                where=where,
            )  # fmt: skip
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "distribution", distribution)

    def variance(self, shape: Sequence[int], fans: tuple[int, int] | None = None) -> float:
        """``scale / n``: the variance of the samples for ``shape`` (or the given fans)."""
        fan_in, fan_out = compute_fans(shape) if fans is None else fans
        if self.mode == "fan_in":
            n = max(1.0, fan_in)
        elif self.mode == "fan_out":
            n = max(1.0, fan_out)
        else:
            n = max(1.0, (fan_in + fan_out) / 2.0)
        return self.scale / n

    def _portable(self, shape, fans):
        variance = self.variance(shape, fans)
        rng = self._rng()
        if self.distribution == "truncated_normal":
            # σ' = σ / 0.8796: the truncation at ±2σ' shrinks the std back to σ.
            stddev = math.sqrt(variance) / TRUNCATION_STD
            return stddev * _truncated_standard_normal(rng, shape)
        if self.distribution == "untruncated_normal":
            return math.sqrt(variance) * rng.standard_normal(shape)
        limit = math.sqrt(3.0 * variance)  # U(-l, l) has variance l²/3
        return rng.uniform(-limit, limit, size=shape)

    def _native(self, backend, shape, dtype, fans):
        return backend.variance_scaling(
            shape, dtype, self.seed, scale=self.scale, mode=self.mode,
            distribution=self.distribution, fans=fans,
        )  # fmt: skip


def _fixed(value: Any) -> Any:
    """A field fixed by a VarianceScaling preset: not a constructor argument (as in Keras)."""
    return field(default=value, init=False)


@dataclass(frozen=True)
class GlorotUniform(VarianceScaling):
    """Glorot/Xavier uniform: U(±sqrt(6/(fan_in + fan_out))) (Keras's Dense kernel default).

    = ``VarianceScaling(1.0, "fan_avg", "uniform")``; torch: ``xavier_uniform_`` (same).
    """

    scale: float = _fixed(1.0)
    mode: str = _fixed("fan_avg")
    distribution: str = _fixed("uniform")


@dataclass(frozen=True)
class GlorotNormal(VarianceScaling):
    """Glorot/Xavier normal, std sqrt(2/(fan_in + fan_out)), truncated at ±2σ' (Keras).

    = ``VarianceScaling(1.0, "fan_avg", "truncated_normal")``; torch's ``xavier_normal_`` is
    untruncated N(0, 2/(fan_in + fan_out)).
    """

    scale: float = _fixed(1.0)
    mode: str = _fixed("fan_avg")
    distribution: str = _fixed("truncated_normal")


@dataclass(frozen=True)
class HeUniform(VarianceScaling):
    """He/Kaiming uniform: U(±sqrt(6/fan_in)).

    = ``VarianceScaling(2.0, "fan_in", "uniform")``; torch: ``kaiming_uniform_(nonlinearity=
    "relu")`` (same; torch's own *default* nonlinearity is leaky_relu with a=0, also gain √2).
    """

    scale: float = _fixed(2.0)
    mode: str = _fixed("fan_in")
    distribution: str = _fixed("uniform")


@dataclass(frozen=True)
class HeNormal(VarianceScaling):
    """He/Kaiming normal, std sqrt(2/fan_in), truncated at ±2σ' (Keras).

    = ``VarianceScaling(2.0, "fan_in", "truncated_normal")``; torch's ``kaiming_normal_`` is
    untruncated N(0, 2/fan_in): same std, longer tails (max|x| ≈ 4.2σ in 65536 samples, where
    Keras's never exceeds 2/0.8796 ≈ 2.27σ).
    """

    scale: float = _fixed(2.0)
    mode: str = _fixed("fan_in")
    distribution: str = _fixed("truncated_normal")


@dataclass(frozen=True)
class LecunUniform(VarianceScaling):
    """LeCun uniform: U(±sqrt(3/fan_in)).

    = ``VarianceScaling(1.0, "fan_in", "uniform")``; torch: ``kaiming_uniform_(nonlinearity=
    "linear")`` (same).
    """

    scale: float = _fixed(1.0)
    mode: str = _fixed("fan_in")
    distribution: str = _fixed("uniform")


@dataclass(frozen=True)
class LecunNormal(VarianceScaling):
    """LeCun normal, std sqrt(1/fan_in), truncated at ±2σ' (Keras; the SELU initializer).

    = ``VarianceScaling(1.0, "fan_in", "truncated_normal")``; torch:
    ``kaiming_normal_(nonlinearity="linear")``, untruncated.
    """

    scale: float = _fixed(1.0)
    mode: str = _fixed("fan_in")
    distribution: str = _fixed("truncated_normal")


@dataclass(frozen=True)
class Standard(VarianceScaling):
    """torch's default for ``nn.Linear``/``nn.ConvNd``: U(±1/sqrt(fan_in)).

    torch writes it ``kaiming_uniform_(a=√5)`` (gain² = 2/(1+5) = 1/3, bound = √3·gain/√fan_in
    = 1/√fan_in); here it is ``VarianceScaling(1/3, "fan_in", "uniform")`` (limit
    sqrt(3·(1/3)/fan_in)). For the *bias*, torch uses the **weight's** fan_in, so
    ``uses_layer_fans`` is True: a layer calls ``Standard()((units,), fans=(fan_in, fan_out))``.
    Keras has no such initializer; native mode on TensorFlow runs the equivalent
    ``keras.initializers.VarianceScaling(1/3, "fan_in", "uniform")``.
    """

    uses_layer_fans: ClassVar[bool] = True
    scale: float = _fixed(1.0 / 3.0)
    mode: str = _fixed("fan_in")
    distribution: str = _fixed("uniform")


@dataclass(frozen=True)
class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix times ``gain`` (Keras's construction).

    The shape is flattened to ``rows = prod(shape[:-1])`` by ``cols = shape[-1]``. A normal
    ``(max(rows, cols), min(rows, cols))`` matrix is QR-factorised, each column of Q multiplied
    by the sign of R's diagonal (which makes Q Haar-distributed), transposed when rows < cols,
    reshaped and scaled: the columns (rows, if fewer) are orthonormal up to ``gain``, so
    ``Wᵀ·W = gain²·I`` on the flattened matrix. torch's ``orthogonal_`` flattens its
    ``(out, in, *spatial)`` weight to ``size(0)`` rows instead; native mode on torch applies it
    to the torch-layout tensor, which gives the same orthogonality property on the canonical
    flattening. Neither framework's CPU QR runs in bfloat16 (torch not in float16 either):
    native mode draws those in float32 and rounds.

    Args:
        gain: multiplicative factor (a finite real number).
    """

    gain: float = 1.0

    def _validate(self, where: str) -> None:
        object.__setattr__(self, "gain", check_real("gain", self.gain, where))

    def _check_shape(self, shape, where):
        if len(shape) < 2:
            raise bad_value("shape", shape, "at least 2 dimensions (rows, cols)", where=where)

    def _portable(self, shape, fans):
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = self._rng().standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)  # reduced QR: q is (max, min) with orthonormal columns
        # Keras multiplies by sign(diag(r)); a zero diagonal has probability 0, and mapping it
        # to +1 instead of 0 keeps Q orthogonal even then.
        q = q * np.where(np.diag(r) < 0, -1.0, 1.0)
        if rows < cols:
            q = q.T
        return np.ascontiguousarray(self.gain * q.reshape(shape))  # C order, as every other

    def _native(self, backend, shape, dtype, fans):
        return backend.orthogonal(shape, dtype, self.seed, gain=self.gain)


# --------------------------------------------------------------------------------------------
# Registry

_REGISTRY: dict[str, type[Initializer]] = {
    "random_normal": RandomNormal, "random_uniform": RandomUniform,
    "truncated_normal": TruncatedNormal, "zeros": Zeros, "ones": Ones, "constant": Constant,
    "variance_scaling": VarianceScaling, "lecun_normal": LecunNormal,
    "lecun_uniform": LecunUniform, "glorot_normal": GlorotNormal,
    "glorot_uniform": GlorotUniform, "he_normal": HeNormal, "he_uniform": HeUniform,
    "orthogonal": Orthogonal, "standard": Standard,
}  # fmt: skip
NAMES: tuple[str, ...] = tuple(_REGISTRY)
_BY_CLASS_NAME: dict[str, type[Initializer]] = {c.__name__: c for c in _REGISTRY.values()}


def _lookup(name: str) -> type[Initializer]:
    cls = _REGISTRY.get(name) or _BY_CLASS_NAME.get(name)
    if cls is None:
        raise unknown_name("initializer", name, list(_REGISTRY))
    return cls


def get(identifier: Any) -> Initializer | None:
    """Resolve an initializer.

    Args:
        identifier: a Keras name (``"glorot_uniform"``, ``"standard"``) or class name
            (``"GlorotUniform"``): a new instance with default arguments (drawing its seed now);
            an :class:`Initializer` (returned as is); an Initializer class (instantiated); a
            dict from :func:`serialize`; or None (returned, as Keras does).

    Raises:
        ValueError: unknown name, or a dict without ``class_name``/``config``.
        TypeError: anything else.
    """
    if identifier is None or isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        return _lookup(identifier)()
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if isinstance(identifier, dict):
        if set(identifier) != {"class_name", "config"} or not isinstance(
            identifier["class_name"], str
        ):
            raise bad_value("initializer", identifier, "a dict {'class_name': str, 'config': dict}")
        return _lookup(identifier["class_name"]).from_config(identifier["config"])
    raise bad_type(
        "initializer", identifier,
        "a name such as 'glorot_uniform', an Initializer, a serialize() dict, or None",
    )  # fmt: skip


def serialize(initializer: Initializer) -> dict[str, Any]:
    """``{"class_name": "GlorotUniform", "config": {...}}``, the inverse of :func:`get`."""
    if not isinstance(initializer, Initializer):
        raise bad_type("initializer", initializer, "an Initializer")
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}
