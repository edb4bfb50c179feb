"""Pictures that make parity and its failures visible (PNG files via matplotlib's Agg backend).

* :func:`activation_curves` — each activation and its derivative as computed by torch and by
  TensorFlow, overlaid, with the largest difference printed on each panel (the curves the
  tutorial draws for sigmoid, tanh, relu and leaky relu).

matplotlib is imported inside each function, so ``import dualnet`` stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dualnet import activations
from dualnet._backend import BACKENDS, backend_module, use_backend
from dualnet.errors import bad_value

_STYLE = {"torch": {"color": "tab:red", "ls": "-", "lw": 2.5, "alpha": 0.6},
          "tensorflow": {"color": "tab:blue", "ls": "--", "lw": 1.5, "alpha": 1.0}}  # fmt: skip


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)  # no display needed; harmless if a backend is already set
    import matplotlib.pyplot as plt

    return plt


def activation_values(name: str, x: np.ndarray, backend: str, dtype: str = "float64"):
    """``(f(x), f'(x))`` of activation ``name`` on ``backend``, as float64 numpy arrays.

    The derivative is the vector-Jacobian product with a cotangent of ones, which for an
    element-wise function is f'(x) element by element.
    """
    fn = activations.get(name)
    with use_backend(backend):
        core = backend_module(backend).core
        xt = core.convert_to_tensor(np.asarray(x), dtype)
        out, (grad,) = core.vjp(fn, [xt], [0], np.ones(np.shape(x)))
        return (
            np.asarray(core.to_numpy(out), dtype=np.float64),
            np.asarray(core.to_numpy(grad), dtype=np.float64),
        )


def activation_curves(
    path: str | Path,
    names: Sequence[str] = ("sigmoid", "tanh", "relu", "leaky_relu"),
    *,
    x_range: tuple[float, float] = (-6.0, 6.0),
    points: int = 601,
    dtype: str = "float32",
) -> Path:
    """Write a grid of panels: each activation (top) and its derivative (bottom), both backends.

    Args:
        path: the PNG file to write.
        names: activation names (``dn.activations.NAMES``); element-wise ones only.
        x_range: the x interval drawn.
        points: samples across ``x_range``.
        dtype: the dtype the backends compute in.

    Returns:
        The path written.
    """
    if not names:
        raise bad_value("names", names, "at least one activation name")
    for name in names:
        activations.get(name)  # unknown names fail here, before anything is drawn
        if name in ("softmax", "log_softmax"):
            raise bad_value("names", name, "an element-wise activation (not softmax)")
    lo, hi = x_range
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise bad_value("x_range", x_range, "(low, high) with low < high, both finite")
    plt = _pyplot()
    x = np.linspace(lo, hi, points)
    fig, axes = plt.subplots(2, len(names), figsize=(3.6 * len(names), 6.4), squeeze=False)
    for col, name in enumerate(names):
        results = {b: activation_values(name, x, b, dtype) for b in BACKENDS}
        for row, (label, idx) in enumerate((("f(x)", 0), ("f'(x)", 1))):
            ax = axes[row][col]
            for b in BACKENDS:
                ax.plot(x, results[b][idx], label=b, **_STYLE[b])
            diff = float(np.max(np.abs(results["torch"][idx] - results["tensorflow"][idx])))
            ax.set_title(f"{name} {label}\nmax |torch - tf| = {diff:.1e}", fontsize=9)
            ax.axhline(0, color="0.8", lw=0.8, zorder=0)
            ax.axvline(0, color="0.8", lw=0.8, zorder=0)
            ax.grid(alpha=0.3)
        axes[0][col].legend(fontsize=8, loc="upper left")
    fig.suptitle(f"Activations and derivatives, torch vs tf.keras ({dtype})")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
