"""What the harness needs from PyTorch: threads, device sync, compilation, gradients, peaks.

Same function names as :mod:`dualnet.bench._tensorflow` (the backends' file-name convention,
applied inside the bench package). Importing this module imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import torch

from dualnet._backend import backend_module

NAME = "torch"
MODES = ("eager", "compile")
backend_module("torch")  # dualnet's core sets TF32 off; measure with the settings dualnet uses


def set_threads(intra: int, inter: int) -> dict[str, Any]:
    """``torch.set_num_threads`` / ``set_num_interop_threads``; report what took effect.

    torch's inter-op pool can only be sized before its first parallel work; later calls raise
    and the report says so.
    """
    note = []
    torch.set_num_threads(intra)
    try:
        torch.set_num_interop_threads(inter)
    except RuntimeError as exc:
        note.append(f"inter-op not set: {exc}")
    return {
        "intra_op": torch.get_num_threads(),
        "inter_op": torch.get_num_interop_threads(),
        "requested": [intra, inter],
        "note": "; ".join(note),
    }


def versions() -> dict[str, Any]:
    return {
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "torch_mkldnn": torch.backends.mkldnn.is_available(),
    }


def precision() -> dict[str, Any]:
    """TF32 and matmul-precision settings in effect (dualnet's core turns TF32 off)."""
    return {
        "cuda_matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }


def cuda_available() -> bool:
    return torch.cuda.is_available()


def device_name(device: str) -> str | None:
    return torch.cuda.get_device_name(0) if device == "cuda" else None


def supports_dtype(device: str, dtype: str) -> bool:
    if device == "cuda" and dtype == "bfloat16":
        return torch.cuda.is_bf16_supported()
    return True


def sync_fn(device: str) -> Callable[[], None]:
    """CUDA: ``torch.cuda.synchronize`` (waits for every stream of the device; kernels are
    launched asynchronously, so without it the clock would time the launches only). CPU: torch
    kernels run synchronously on the calling thread — nothing to wait for."""
    if device == "cuda":
        return torch.cuda.synchronize
    return lambda: None


def reset_compiled(modes: Collection[str]) -> None:
    """Start a measurement from a clean torch.compile cache; the runner calls it once per
    measurement, before building any of its entrants (never between them).

    Dynamo caches compiled code per *code object* and silently falls back to eager after
    ``recompile_limit`` shapes; every kernel here shares a few code objects, so each
    measurement starts from a clean cache. ``torch._dynamo.reset()`` also discards the code
    of every function compiled so far, so calling it while building the second entrant of a
    measurement (dualnet vs native) would make the first one recompile inside its timed
    samples."""
    if "compile" in modes:
        torch._dynamo.reset()


def _compile(fn: Callable[..., Any], mode: str) -> Callable[..., Any]:
    if mode == "eager":
        return fn
    if mode == "compile":
        # No torch._dynamo.reset() here: it would discard the compiled code of the entrants
        # built before this one in the same measurement (see reset_compiled).
        return torch.compile(fn, dynamic=False)
    raise ValueError(f"invalid mode={mode!r} for torch; expected one of {MODES}")


def build_call(
    fn: Callable[..., Any],
    args: Sequence[Any],
    mode: str,
    params: Sequence[Any] | None = None,
    *,
    step: bool = False,
) -> Callable[[], Any]:
    """A zero-argument callable running ``fn(*args)`` (``params is None``: forward only) or
    forward and the gradients with respect to ``params``; with ``step=True``, ``fn(*args)`` is
    a whole training step and runs as it is (autograd on; compiled whole by torch.compile).

    Forward only runs under ``torch.no_grad()``: Keras records nothing outside a GradientTape,
    and building an autograd graph nobody uses would charge torch for work TF does not do.
    Forward+backward compiles the forward only (AOTAutograd derives the compiled backward) and
    takes ``torch.autograd.grad`` with a fixed all-ones cotangent made here, outside the clock.
    """
    compiled = _compile(fn, mode)
    args = tuple(args)
    if step:
        return lambda: compiled(*args)
    if params is None:

        def forward() -> Any:
            with torch.no_grad():
                return compiled(*args)

        return forward
    params = list(params)
    with torch.no_grad():
        cotangent = torch.ones_like(fn(*args))

    def forward_backward() -> Any:
        out = compiled(*args)
        return torch.autograd.grad(out, params, grad_outputs=cotangent)

    return forward_backward


def matmul_call(n: int, dtype: str, device: str) -> Callable[[], Any]:
    """``a @ b`` for two n×n matrices (for the measured compute peak)."""
    t = backend_module("torch").core.native_dtype(dtype)
    a = torch.randn(n, n, device=device).to(t)
    b = torch.randn(n, n, device=device).to(t)
    return lambda: torch.mm(a, b)


def copy_call(nbytes: int, device: str) -> Callable[[], Any]:
    """``dst.copy_(src)`` on ``nbytes`` buffers (for the measured memory bandwidth)."""
    src = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    return lambda: dst.copy_(src)


def timer_median(call: Callable[[], Any], threads: int, min_run_time: float) -> float:
    """Median per-call time from ``torch.utils.benchmark.Timer.blocked_autorange``."""
    from torch.utils import benchmark

    timer = benchmark.Timer(stmt="call()", globals={"call": call}, num_threads=threads)
    return timer.blocked_autorange(min_run_time=min_run_time).median
