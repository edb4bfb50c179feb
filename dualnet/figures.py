"""Pictures that make parity and its failures visible (PNG files via matplotlib's Agg backend).

* :func:`activation_curves` — each activation and its derivative as computed by torch and by
  TensorFlow, overlaid, with the largest difference printed on each panel (the curves the
  tutorial draws for sigmoid, tanh, relu and leaky relu).
* :func:`training_curves` — the same network trained on both backends (identical weights and
  batches): the two loss curves overlaid with the float64 reference, and below, on a log axis,
  how far the two backends are apart at every step, in float32 and in float64.
* :func:`gradient_norms` — the norm of every layer's kernel gradient through a deep stack of
  Dense layers, sigmoid versus relu, on both backends: the vanishing-gradient effect.

``dualnet plot {activations,training,gradients} --out DIR`` draws them from the command line.

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


# --------------------------------------------------------------------------------------------
# Training curves

_FLOOR = 1e-18  # where an exact zero difference is drawn on a log axis


def _tutorial_data(samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved classes in 3-D (learnable but not trivially), one-hot targets."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, samples)
    x = rng.standard_normal((samples, 3)) + np.where(labels[:, None] == 1, 0.8, -0.8)
    return x, np.eye(2)[labels]


def _tutorial_model(dtype: str, seed: int):
    from dualnet import layers
    from dualnet.models import Input, Sequential
    from dualnet.random import set_random_seed

    set_random_seed(seed)
    return Sequential([Input(shape=(3,), dtype=dtype, name="input"),
                       layers.Dense(3, activation="relu", dtype=dtype, name="hidden"),
                       layers.Dense(2, activation="sigmoid", dtype=dtype, name="middle"),
                       layers.Dense(2, activation="softmax", dtype=dtype, name="output")],
                      name="tutorial")  # fmt: skip


def training_curves(
    path: str | Path,
    *,
    steps: int = 200,
    batch_size: int = 16,
    samples: int = 64,
    optimizer: str = "adam",
    learning_rate: float = 0.02,
    seed: int = 0,
) -> Path:
    """Train the seed tutorial's network (3 → 3 relu → 2 sigmoid → 2 softmax, categorical
    cross-entropy) on both backends from identical weights on identical mini-batches, and draw

    * top: the loss at every step on torch and TensorFlow (float32) and the float64 reference;
    * bottom (log axis): ``max |w_torch - w_tf|`` per step (a line; exact agreement is drawn at
      1e-18) and ``|loss_torch - loss_tf|`` (dots, steps where the losses differ), in float32
      and in float64.

    Args:
        path: the PNG file to write.
        steps, batch_size, samples: the run (``fit``'s seeded batch order, ``seed``).
        optimizer, learning_rate: a dualnet optimizer name and its learning rate.
        seed: seeds the data, the weights and the batch order.

    Returns:
        The path written.
    """
    from dualnet import losses, optimizers
    from dualnet.parity.locate import compare_training
    from dualnet.reference import training as reference
    from dualnet.training import batch_orders

    for name, value in (("steps", steps), ("batch_size", batch_size), ("samples", samples)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise bad_value(name, value, "a positive int")
    spec = optimizers.get(optimizer)  # unknown names fail before anything is drawn
    spec = type(spec).from_config({**spec.get_config(), "learning_rate": learning_rate})
    x, y = _tutorial_data(samples, seed)
    runs = {}
    for dtype in ("float32", "float64"):
        with use_backend("torch"):
            model = _tutorial_model(dtype, seed)
        xd, yd = x.astype(dtype), y.astype(dtype)
        runs[dtype] = compare_training(model, xd, yd, loss="categorical_crossentropy",
                                       optimizer=spec, steps=steps, batch_size=batch_size,
                                       seed=seed)  # fmt: skip
        if dtype == "float64":
            per_epoch = -(-samples // batch_size)
            orders = batch_orders(samples, batch_size, -(-steps // per_epoch), shuffle=True,
                                  seed=seed)  # fmt: skip
            batches = [o[i : i + batch_size] for o in orders
                       for i in range(0, samples, batch_size)][:steps]  # fmt: skip
            ref_loss, _, _ = reference.train(
                x, y, model.get_weights(), ("relu", "sigmoid", "softmax"),
                losses.serialize(losses.CategoricalCrossentropy()), optimizers.serialize(spec),
                batches,
            )  # fmt: skip

    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8.5, 7.5), sharex=True,
                                      gridspec_kw={"height_ratios": [1.1, 1]})  # fmt: skip
    t = np.arange(1, steps + 1)
    r32 = runs["float32"]
    for b in BACKENDS:
        top.plot(t, r32.losses[b], label=f"{b} (float32)", **_STYLE[b])
    top.plot(t, ref_loss, color="black", lw=0.8, ls=":", label="float64 numpy reference")
    top.set_ylabel("training loss (per batch)")
    top.set_title(f"Tutorial network, {type(spec).__name__}(lr={learning_rate}), batch "
                  f"{batch_size}: torch vs tf.keras from identical weights and batches",
                  fontsize=10)  # fmt: skip
    top.legend(fontsize=8)
    top.grid(alpha=0.3)
    colours = {"float32": "tab:purple", "float64": "tab:green"}
    largest = 0.0
    for dtype, run in runs.items():
        a, b = run.backends
        dloss = np.abs(np.array(run.losses[a]) - np.array(run.losses[b]))
        dw = np.array(run.growth())
        both = np.concatenate([dw, dloss])
        largest = max(largest, float(np.max(both[np.isfinite(both)], initial=0.0)))
        bottom.semilogy(t, np.maximum(dw, _FLOOR), color=colours[dtype], lw=1.8,
                        label=f"max |w_torch - w_tf|, {dtype}")  # fmt: skip
        nonzero = dloss > 0  # exact agreement is common; only the differing steps are dots
        bottom.semilogy(t[nonzero], dloss[nonzero], ls="none", marker=".", ms=4,
                        color=colours[dtype], alpha=0.7,
                        label=f"|loss_torch - loss_tf|, {dtype} (0 not drawn)")  # fmt: skip
    bottom.axhline(_FLOOR, color="0.6", lw=0.8)
    bottom.text(steps, _FLOOR * 2, "identical (0) drawn here ", ha="right", va="bottom",
                fontsize=7, color="0.4")  # fmt: skip
    # The top follows the data: a real divergence must stay in view, however large.
    bottom.set_ylim(_FLOOR / 3, max(1e-3, 3.0 * largest))
    bottom.set_xlabel("training step")
    bottom.set_ylabel("torch vs tf difference (log)")
    bottom.legend(fontsize=8, loc="upper left", ncol=2)
    bottom.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return _save(fig, plt, path)


def _save(fig, plt, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------
# Gradient norms through a deep network


def layer_gradient_norms(activation: str, backend: str, *, depth: int = 10, width: int = 32,
                         samples: int = 64, seed: int = 0) -> np.ndarray:  # fmt: skip
    """The L2 norm of each Dense kernel's gradient (input layer first) for a stack of ``depth``
    Dense layers (``depth - 1`` hidden layers with ``activation``, a linear output), Keras's
    default glorot-uniform initialisation, MSE loss on random data, float32."""
    from dualnet import layers
    from dualnet.models import Input, Sequential
    from dualnet.random import set_random_seed
    from dualnet.training import value_and_gradients

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, width)).astype("float32")
    y = rng.standard_normal((samples, 1)).astype("float32")
    set_random_seed(seed)
    with use_backend(backend):
        stack = [layers.Dense(width, activation=activation, name=f"dense_{i + 1}")
                 for i in range(depth - 1)]  # fmt: skip
        model = Sequential([Input(shape=(width,)), *stack,
                            layers.Dense(1, name=f"dense_{depth}")])  # fmt: skip
        _, grads = value_and_gradients(model, x, y, "mse")
    return np.array([np.linalg.norm(g) for g in grads[0::2]])  # kernels: every other weight


def gradient_norms(
    path: str | Path,
    activations_: Sequence[str] = ("sigmoid", "relu"),
    *,
    depth: int = 10,
    width: int = 32,
    seed: int = 0,
) -> Path:
    """Draw each layer's kernel-gradient norm through ``depth`` Dense layers for each
    activation, on both backends (log axis): sigmoid's derivative is at most 1/4, so the
    gradient shrinks layer by layer towards the input; relu's is 1 where active.

    Returns:
        The path written.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 2:
        raise bad_value("depth", depth, "an int >= 2")
    if not activations_:
        raise bad_value("activations_", activations_, "at least one activation name")
    for name in activations_:
        activations.get(name)  # unknown names fail before anything is computed
    norms = {(a, b): layer_gradient_norms(a, b, depth=depth, width=width, seed=seed)
             for a in activations_ for b in BACKENDS}  # fmt: skip
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.5, 5.2))
    layers_ = np.arange(1, depth + 1)
    colours = ["tab:orange", "tab:green", "tab:purple", "tab:brown"]
    for i, act in enumerate(activations_):
        for b in BACKENDS:
            style = dict(_STYLE[b], color=colours[i % len(colours)])
            ax.semilogy(layers_, norms[(act, b)], marker="o" if b == "torch" else "x",
                        ms=7 if b == "torch" else 6, label=f"{act}, {b}", **style)  # fmt: skip
        diff = float(np.max(np.abs(norms[(act, "torch")] - norms[(act, "tensorflow")])
                            / norms[(act, "torch")]))  # fmt: skip
        ratio = norms[(act, "torch")][0] / norms[(act, "torch")][-2]
        ax.annotate(f"{act}: ‖g(layer 1)‖ / ‖g(layer {depth - 1})‖ = {ratio:.1e}; "
                    f"max rel |torch - tf| = {diff:.1e}",
                    xy=(0.02, 0.67 - 0.07 * i), xycoords="axes fraction", fontsize=8,
                    color=colours[i % len(colours)])  # fmt: skip
    ax.set_xticks(layers_)
    ax.set_xlabel("Dense layer (1 = next to the input)")
    ax.set_ylabel("‖∂loss/∂kernel‖₂ (log)")
    ax.set_title(f"Gradient norm per layer, {depth} Dense layers x {width} units, glorot init, "
                 "MSE: vanishing gradients with sigmoid", fontsize=10)  # fmt: skip
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return _save(fig, plt, path)
