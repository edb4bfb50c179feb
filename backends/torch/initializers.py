"""Native initializers on PyTorch: ``torch.nn.init``, seeded with ``torch.Generator``.

Used only by ``native=True`` initializers (portable ones never reach a backend). Arguments
arrive validated and resolved by :mod:`dualnet.initializers`; shapes are in dualnet's canonical
(Keras) layout and every function returns a numpy array of ``dtype``.

The initializer runs on a tensor in **torch's** layout, so that torch's own fan computation is
what runs: a canonical kernel ``(*spatial, in, out)`` is torch's ``(out, in, *spatial)``
weight. The tensor is created in that layout, initialised, and permuted back.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from dualnet.backends.torch import core

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _to_torch_layout(shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The torch weight shape for a canonical ``shape``, and the permutation that maps back.

    ``(*spatial, in, out)`` → ``(out, in, *spatial)``; shapes of fewer than 2 dims are kept.
    """
    n = len(shape)
    if n < 2:
        return shape, tuple(range(n))
    perm = (n - 1, n - 2, *range(n - 2))  # canonical axes in torch order
    back = tuple(int(i) for i in np.argsort(perm))  # torch axes in canonical order
    return tuple(shape[i] for i in perm), back


def _run(
    fill: Callable[[torch.Tensor, torch.Generator], object],
    shape: tuple[int, ...],
    dtype: str,
    seed: int | None,
    *,
    compute_dtype: str | None = None,
) -> np.ndarray:
    """Create a torch-layout tensor, ``fill`` it in place, return it in canonical layout."""
    torch_shape, back = _to_torch_layout(shape)
    native = core.native_dtype(compute_dtype or dtype)
    tensor = torch.empty(torch_shape, dtype=native)  # on core.device_scope's device
    gen = torch.Generator(device=tensor.device)
    if seed is not None:
        gen.manual_seed(seed)
    with torch.no_grad():
        fill(tensor, gen)
    out = tensor.permute(back) if len(shape) >= 2 else tensor
    return core.to_numpy(out.to(core.native_dtype(dtype)).contiguous())


def random_normal(shape, dtype, seed, *, mean, stddev):
    return _run(
        lambda t, g: torch.nn.init.normal_(t, mean, stddev, generator=g), shape, dtype, seed
    )


def random_uniform(shape, dtype, seed, *, minval, maxval):
    return _run(
        lambda t, g: torch.nn.init.uniform_(t, minval, maxval, generator=g), shape, dtype, seed
    )


def truncated_normal(shape, dtype, seed, *, mean, stddev):
    # torch's defaults a=-2, b=2 are *absolute*; Keras cuts at mean ± 2·stddev. Pass the Keras
    # bounds so torch's own sampler draws the distribution the spec names.
    a, b = mean - 2.0 * stddev, mean + 2.0 * stddev
    if stddev == 0:  # torch divides by std; the distribution is the point mass at mean
        return constant(shape, dtype, value=mean)
    return _run(
        lambda t, g: torch.nn.init.trunc_normal_(t, mean, stddev, a, b, generator=g),
        shape, dtype, seed,
    )  # fmt: skip


def constant(shape, dtype, *, value):
    limit = torch.finfo(core.native_dtype(dtype)).max
    if math.isfinite(value) and abs(value) > limit:
        # torch's fill_ raises "value cannot be converted to type c10::Half without overflow";
        # Keras (and dualnet's portable mode) round to ±inf. Say so in dualnet's words.
        raise ValueError(
            f"Constant native on torch: invalid value={value!r} for {dtype}; torch.nn.init."
            f"constant_ refuses values beyond ±{limit:g} (portable mode gives ±inf, as Keras)."
        )
    if value == 0.0:
        fill = lambda t, g: torch.nn.init.zeros_(t)  # noqa: E731
    elif value == 1.0:
        fill = lambda t, g: torch.nn.init.ones_(t)  # noqa: E731
    else:
        fill = lambda t, g: torch.nn.init.constant_(t, value)  # noqa: E731
    return _run(fill, shape, dtype, None)


def _kaiming_args(scale: float) -> dict[str, object] | None:
    """``kaiming_*`` arguments whose gain² equals ``scale``, or None if there are none."""
    if scale == 2.0:
        return {"nonlinearity": "relu"}  # gain √2 (He)
    if scale == 1.0:
        return {"nonlinearity": "linear"}  # gain 1 (LeCun)
    if scale < 2.0:
        # leaky_relu's gain² is 2/(1 + a²): a = sqrt(2/scale - 1). scale = 1/3 gives a = √5,
        # nn.Linear's default (torch's "Standard").
        return {"nonlinearity": "leaky_relu", "a": math.sqrt(2.0 / scale - 1.0)}
    return None  # gains above √2 are not expressible through kaiming_*'s nonlinearity


def variance_scaling(shape, dtype, seed, *, scale, mode, distribution, fans):
    uniform = distribution == "uniform"
    # torch has no truncated variance-scaling initializer: its normal counterparts
    # (kaiming_normal_, xavier_normal_) are untruncated, so both normals map to N(0, scale/n).
    kaiming_args = _kaiming_args(scale)
    if fans is None and len(shape) >= 2:
        if mode == "fan_avg":
            gain = math.sqrt(scale)  # xavier: std = gain·sqrt(2/(fan_in + fan_out))
            fn = torch.nn.init.xavier_uniform_ if uniform else torch.nn.init.xavier_normal_
            return _run(lambda t, g: fn(t, gain=gain, generator=g), shape, dtype, seed)
        if kaiming_args is not None:
            fn = torch.nn.init.kaiming_uniform_ if uniform else torch.nn.init.kaiming_normal_
            return _run(
                lambda t, g: fn(t, mode=mode, generator=g, **kaiming_args), shape, dtype, seed
            )
    # The same formula, std = sqrt(scale/fan) (torch divides by fan, not max(1, fan)), drawn
    # with torch's uniform_/normal_: for biases (torch's nn.Linear does exactly this with the
    # weight's fan_in), explicit fans, and scales kaiming_* cannot express.
    if fans is None:
        from dualnet.initializers import compute_fans

        fans = compute_fans(shape)
    fan_in, fan_out = fans
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
    std = math.sqrt(scale / fan) if fan > 0 else 0.0  # nn.Linear: bound 0 when fan_in == 0
    if uniform:
        bound = math.sqrt(3.0) * std
        return _run(
            lambda t, g: torch.nn.init.uniform_(t, -bound, bound, generator=g), shape, dtype, seed
        )
    return _run(lambda t, g: torch.nn.init.normal_(t, 0.0, std, generator=g), shape, dtype, seed)


def orthogonal(shape, dtype, seed, *, gain):
    # torch's CPU QR (geqrf) has no float16/bfloat16 kernel: draw in float32 and round once.
    low = core.native_dtype(dtype) in _LOW_PRECISION
    return _run(
        lambda t, g: torch.nn.init.orthogonal_(t, gain=gain, generator=g),
        shape, dtype, seed, compute_dtype="float32" if low else None,
    )  # fmt: skip
