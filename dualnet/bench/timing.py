"""The timing loop: warm-up, block calibration, interleaved adaptive sampling.

Framework-neutral: an :class:`Entrant` is a zero-argument callable plus a ``sync`` callable
that waits for the device. The rules (each stated in ``benchmarks/README.md``):

1. **Warm-up excluded.** The first call is timed on its own and reported as ``first_call_s``
   (it contains tracing/compilation for tf.function, XLA and torch.compile, and lazy
   initialisation in eager mode). Then ``warmup`` more calls, never timed.
2. **Sync before reading the clock.** Every block is ``sync(); t0 = clock(); call() × number;
   sync(); t1 = clock()``. ``sync`` is a no-op on CPU (both frameworks' CPU kernels return
   when done) and a device-wide synchronise on CUDA.
3. **Blocks, not single calls.** ``number`` is calibrated so one block lasts at least
   ``block_s``: the clock read and Python loop overhead (≈0.1 µs) stay far below 1% of it.
   One *sample* is a block's time divided by ``number``. This is what
   ``torch.utils.benchmark.Timer.blocked_autorange`` does.
4. **Interleaved.** Entrants compared with each other (torch vs TF, dualnet vs native) are
   timed in alternating blocks within one process — A B, then B A in the next round (an ABBA
   design, so a linear drift of the machine's speed cancels in each pair of rounds). Ratios are
   computed from the samples of the same round.
5. **Adaptive stop.** Rounds continue until every entrant's median has a 95% CI half-width
   ≤ ``rel_ci`` of the median (and at least ``min_samples`` samples), or the ``budget_s`` is
   spent. Whether the precision was reached is recorded (``converged``).
6. **No garbage collection** inside the timed region (as ``timeit``): collected before, disabled
   during.
7. **A pause between blocks** (``gap_s``, untimed). Both frameworks keep their idle worker
   threads spinning for a while after a parallel region (libgomp, which torch uses, spins up
   to ``GOMP_SPINCOUNT`` = 300 000 pause instructions, a few ms; Eigen's pool in TF spins too).
   Interleaved on the same cores, one framework's spinning threads would steal cycles from the
   next block of the other. The pause lets them fall asleep, so every block starts from the
   same idle machine; within a block each framework runs back to back, as in real use.
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from dualnet.bench.stats import precise_enough
from dualnet.errors import bad_value

Clock = Callable[[], float]
# Even a kernel that overruns its budget gets this many samples (a median of 3 still rejects
# one outlier).
MIN_ROUNDS = 3


def _no_sync() -> None:
    return None


@dataclass(frozen=True, kw_only=True)
class Policy:
    """How long and how precisely to time one measurement.

    Args:
        rel_ci: target relative half-width of the median's 95% CI (0.02 = ±2%).
        min_samples: never stop with fewer samples (6 is the least with a 95% CI).
        max_samples: stop here even if imprecise.
        budget_s: wall-clock budget for the sampling rounds (warm-up not included).
        block_s: minimum duration of one timed block.
        warmup: untimed calls after the first one.
        warmup_s: ...or at least this long, whichever is reached first after ``warmup`` calls.
        gap_s: untimed pause before each block (rule 7).
    """

    rel_ci: float = 0.02
    min_samples: int = 10
    max_samples: int = 2000
    budget_s: float = 1.0
    block_s: float = 2e-3
    warmup: int = 3
    warmup_s: float = 0.02
    gap_s: float = 0.0

    def __post_init__(self) -> None:
        if not (0 < self.rel_ci < 1):
            raise bad_value("rel_ci", self.rel_ci, "a fraction in (0, 1)")
        if not (1 <= self.min_samples <= self.max_samples):
            raise bad_value("min_samples", self.min_samples, "1 <= min_samples <= max_samples")
        for name in ("budget_s", "block_s", "warmup_s", "gap_s"):
            if not getattr(self, name) >= 0:
                raise bad_value(name, getattr(self, name), "a non-negative number of seconds")
        if self.warmup < 0:
            raise bad_value("warmup", self.warmup, "a non-negative count")


@dataclass(kw_only=True)
class Entrant:
    """One contender of a measurement and what it has gathered so far."""

    label: str
    call: Callable[[], Any]
    sync: Callable[[], None] = _no_sync
    # Entered around each block, outside the clock: the entrant's dualnet backend and device
    # scope (dualnet dispatches on the active backend at call time; interleaved entrants of
    # different backends each need theirs).
    scope: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext
    number: int = 1
    first_call_s: float | None = None
    samples: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def time_block(entrant: Entrant, number: int, clock: Clock = time.perf_counter) -> float:
    """Seconds per call over one block of ``number`` calls, synchronised at both ends."""
    call, sync = entrant.call, entrant.sync
    with entrant.scope():
        sync()  # nothing queued from before may leak into this block
        t0 = clock()
        for _ in range(number):
            call()
        sync()  # the device must have finished the block's work before the clock is read
        t1 = clock()
    return (t1 - t0) / number


def prepare(entrant: Entrant, policy: Policy, clock: Clock = time.perf_counter) -> None:
    """First call (timed alone), untimed warm-up, then calibrate ``number``. Errors are recorded
    in ``entrant.error`` rather than raised."""
    try:
        entrant.first_call_s = time_block(entrant, 1, clock)
        start = clock()
        done = 0
        while done < policy.warmup or (clock() - start < policy.warmup_s and done < 1000):
            time_block(entrant, 1, clock)
            done += 1
        # Calibrate: blocks of 1, 2, 4, ... calls until one lasts >= block_s / 8; the fastest
        # per-call time among them (a stall from another process only ever slows a block
        # down) sizes the real block to last >= block_s.
        number, per_call = 1, math.inf
        while number < 10**7:
            seconds = time_block(entrant, number, clock)
            per_call = min(per_call, seconds)
            if seconds * number >= policy.block_s / 8:
                break
            number *= 2
        number = max(1, math.ceil(policy.block_s / max(per_call, 1e-9)))
        entrant.number = number
    except Exception as exc:  # a kernel that fails is data, not a crash
        entrant.error = f"{type(exc).__name__}: {exc}"


def run_interleaved(
    entrants: list[Entrant],
    policy: Policy,
    clock: Clock = time.perf_counter,
    on_round: Callable[[int], None] | None = None,
) -> int:
    """Sample all healthy entrants in alternating order until the stop rule holds.

    Returns the number of rounds. An entrant whose call raises mid-way is marked failed and
    dropped; the others continue.
    """
    live = [e for e in entrants if e.ok]
    rounds = 0
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    start = clock()
    try:
        while live:
            # ABBA: reverse the order every other round so a drift in the machine's speed
            # favours neither entrant.
            order = live if rounds % 2 == 0 else live[::-1]
            for entrant in order:
                if policy.gap_s:
                    time.sleep(policy.gap_s)  # let the previous block's spinning threads idle
                try:
                    entrant.samples.append(time_block(entrant, entrant.number, clock))
                except Exception as exc:
                    entrant.error = f"{type(exc).__name__}: {exc}"
            live = [e for e in live if e.ok]
            rounds += 1
            if on_round is not None:
                on_round(rounds)
            # The budget can cut a slow kernel short, but never below MIN_ROUNDS samples.
            over_budget = clock() - start >= policy.budget_s and rounds >= MIN_ROUNDS
            if rounds >= policy.max_samples or over_budget:
                break
            # Checking precision sorts every sample list: do it at ~10% growth steps only.
            check = rounds >= policy.min_samples and rounds % max(1, rounds // 10) == 0
            if check and all(
                precise_enough(e.samples, policy.rel_ci, policy.min_samples) for e in live
            ):
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    return rounds
