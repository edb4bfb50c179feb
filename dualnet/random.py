"""dualnet's global random state, used by initializers that are given no ``seed``.

Randomness is numpy's ``PCG64`` generator, so the same seed gives bit-identical weights on both
backends (the framework RNGs differ and are never used for portable initialisation).
"""

from __future__ import annotations

import numpy as np

from dualnet.errors import bad_type, bad_value

_generator = np.random.default_rng()


def check_seed(seed: object, *, argument: str = "seed") -> int | None:
    """Validate a seed: None or a non-negative int."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise bad_type(argument, seed, "None or a non-negative int")
    if seed < 0:
        raise bad_value(argument, seed, "None or a non-negative int")
    return int(seed)


def set_random_seed(seed: int) -> None:
    """Seed dualnet's global generator, from which unseeded initializers draw their seeds."""
    global _generator
    seed = check_seed(seed)
    if seed is None:
        raise bad_value("seed", seed, "a non-negative int")
    _generator = np.random.default_rng(seed)


def generator(seed: int | None = None) -> np.random.Generator:
    """A generator for ``seed``; with None, dualnet's global one (advanced by each draw)."""
    return _generator if seed is None else np.random.default_rng(check_seed(seed))


def draw_seed() -> int:
    """A fresh seed from the global generator (for objects created without a seed)."""
    return int(_generator.integers(0, 2**31 - 1))
