"""Benchmark kernels: what is timed, described once, built on either backend.

A :class:`Kernel` is a frozen description (group, name, shape, work per call) plus a ``build``
function. ``build(setup)`` runs with ``setup.backend`` active and inside that backend's
``device_scope(setup.device)``; it creates its inputs **once, on the device** (outside every
timed region) and returns a :class:`Workload`: a function of native tensors, its arguments and,
for forward+backward, the parameters to differentiate. The runner turns the workload into a
zero-argument call for each mode (eager, torch.compile, tf.function, XLA).

The same ``build`` serves both backends: it goes through dualnet's neutral spec
(``dn.activations``, ``dn.layers``, ``dn.losses``, ``dn`` models). Overhead kernels
(``compare="overhead"``) are built twice per backend, ``setup.impl = "dualnet"`` and
``"native"`` (the same network written by hand in plain torch / plain Keras).

A builder signals that it cannot run with :class:`Unavailable` (a dualnet module it needs does
not exist yet) or :class:`Unsupported` (the backend, device or dtype cannot do it); any other
exception is a failure. All three are recorded, and the run goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from dualnet.errors import bad_value

GROUPS = ("activation", "dense", "conv", "pool", "norm", "rnn", "attention", "loss", "model",
          "overhead", "fit")  # fmt: skip
# "train": one full optimizer step (forward, loss, backward, finiteness check, update);
# "epoch": one epoch of a training loop (model.fit: every batch's step).
PASSES = ("forward", "forward+backward", "train", "epoch")


class Unavailable(Exception):
    """The kernel needs a part of dualnet (or of a framework) that is not there."""


class Unsupported(Exception):
    """The backend/device/dtype combination cannot run this kernel."""


@dataclass(frozen=True, kw_only=True)
class Setup:
    """Where and how one workload is built."""

    backend: str
    device: str = "cpu"
    dtype: str = "float32"
    impl: Literal["dualnet", "native"] = "dualnet"
    seed: int = 0
    # The framework mode the workload will run in ("eager", "compile", "function", "xla"): a
    # builder raises Unsupported when its workload cannot run in it.
    mode: str = "eager"

    def rng(self) -> np.random.Generator:
        """A fresh generator: the same inputs for every backend and implementation."""
        return np.random.default_rng(self.seed)


@dataclass(frozen=True, kw_only=True)
class Workload:
    """``fn(*args)`` is timed. With ``params`` (not None) the pass is forward+backward:
    gradients of ``fn``'s output with respect to ``params``. With ``step=True`` ``fn(*args)``
    is a whole training step (it updates the weights): it is called as it is, with autograd
    on, and compiled as one function in the compiled modes. With ``self_compiled=True``
    ``fn(*args)`` already runs in ``setup.mode`` (a ``fit`` that compiles its own steps) and is
    called as it is in every mode."""

    fn: Callable[..., Any]
    args: Sequence[Any]
    params: Sequence[Any] | None = None
    step: bool = False
    self_compiled: bool = False

    def __post_init__(self) -> None:
        if self.step and self.params is not None:
            raise bad_value("params", "a list", "None for a training step (step=True)")


@dataclass(frozen=True, kw_only=True)
class Kernel:
    """One benchmark, defined once for both backends.

    Args:
        group: one of :data:`GROUPS`.
        name: the kernel's name within the group ("relu", "Dense", "mse", "tutorial").
        shape: the input shape shown in tables (Dense: ``(batch, in, out)``).
        build: ``Setup -> Workload`` (see the module docstring).
        flops: floating-point operations per call (2 per multiply-add), for GFLOP/s; None when
            the kernel is not compute-like.
        elements_moved: elements read plus written per call at minimum (one read and one write
            per element for an element-wise op), for GB/s; None when compute-like.
        fixed_bytes: bytes moved on top of ``elements_moved × itemsize`` whatever the dtype
            (integer labels: 8 bytes each for int64).
        pass_: "forward", "forward+backward" or "train" (one optimizer step).
        compare: "backends" (torch vs tf) or "overhead" (dualnet vs native, per backend).
        modes: the mode groups ("eager", "compiled") this kernel is timed in (``--quick``
            times most kernels in eager mode only).
        dtypes: dtypes this kernel makes sense in (None: any float dtype).
    """

    group: str
    name: str
    shape: tuple[int, ...]
    build: Callable[[Setup], Workload]
    flops: float | None = None
    elements_moved: float | None = None
    fixed_bytes: float = 0.0
    pass_: str = "forward"
    compare: Literal["backends", "overhead"] = "backends"
    modes: tuple[str, ...] = ("eager", "compiled")
    dtypes: tuple[str, ...] | None = None
    note: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise bad_value("group", self.group, f"one of {', '.join(GROUPS)}")
        if self.pass_ not in PASSES:
            raise bad_value("pass_", self.pass_, f"one of {', '.join(PASSES)}")
        if self.compare not in ("backends", "overhead"):
            raise bad_value("compare", self.compare, "'backends' or 'overhead'")
        if not self.shape or any(not isinstance(d, int) or d < 1 for d in self.shape):
            raise bad_value("shape", self.shape, "a non-empty tuple of positive ints")

    @property
    def id(self) -> str:
        """Readable id for ``-k`` selection: ``activation/relu[1024x1024]/forward``."""
        return f"{self.group}/{self.name}[{'x'.join(map(str, self.shape))}]/{self.pass_}"
