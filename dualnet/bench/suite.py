"""The benchmark definitions: every kernel written once against dualnet's neutral spec.

Groups:

* ``activation``: every activation in :mod:`dualnet.activations` on ``(rows, 256..4096)``
  tensors, from latency-bound (1 Ki elements) to bandwidth-bound (16 Mi elements = 64 MiB in
  float32, twice the 32 MiB L3 of the reference machine).
* ``dense``: :class:`dualnet.layers.Dense` (no activation) from the tutorial's 3→3 layer at batch
  1 to 2048×2048 weights at batch 1024, where the machine's compute peak matters.
* ``loss``: every loss class of :mod:`dualnet.losses` (the cross-entropies both on
  probabilities and on logits) on ``(batch, classes)``.
* ``model``: forward, forward+backward (gradients of every parameter) and one training step
  (``model.train_step``: forward, loss, gradients, finiteness check, SGD update) of the
  tutorial's 3-3-2-2 network and of a 784-512-512-10 MLP, built with ``dn.Sequential``.
* ``overhead``: the same two networks through dualnet and written by hand in plain torch / plain
  Keras with the same weights, timed side by side; the training step against a hand-written
  step (torch: ``loss.backward()`` + ``torch.optim.SGD``; Keras: ``GradientTape`` +
  ``keras.optimizers.SGD``), checked to give the same loss and the same updated weights.
* ``conv``, ``pool``, ``norm`` (:mod:`dualnet.bench.suite_layers`): Conv2D (3×3, 1×1, and 3×3
  channels_first), DepthwiseConv2D, Max/AveragePooling2D, BatchNormalization (inference and
  training mode) and LayerNormalization on image batches, forward and forward+backward.
* ``model`` and ``overhead`` also hold two convolutional networks, a LeNet and a ResNet basic
  block (:mod:`dualnet.bench.suite_cnn`), with idiomatic NCHW torch and ``keras.layers`` twins.
* ``rnn``, ``attention`` (:mod:`dualnet.bench.suite_sequence`): LSTM, GRU and self-attention
  MultiHeadAttention, forward and forward+backward; ``model`` and ``overhead`` also hold a
  Transformer encoder block, and ``overhead`` the three layers against ``nn.LSTM``/``nn.GRU``/
  ``nn.MultiheadAttention`` and ``keras.layers`` twins.

* ``fit`` (:mod:`dualnet.bench.suite_fit`): one epoch of ``model.fit`` (the MLP, the tutorial
  network) against Keras's own ``fit`` and a hand-written torch loop, eager and compiled.

The ``train`` rows time dualnet's eager step (``compile(run_eagerly=True)``); their compiled
rows are recorded as unsupported: compiled training is timed whole, by the ``fit`` group.

Work per call: FLOPs count multiply-adds as 2 and only the matmuls (bias adds and activations
are ignored); bytes count one read of every input element and one write of every output
element, the least any implementation must move.
"""

from __future__ import annotations

import functools
import importlib
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from dualnet import _ops
from dualnet._backend import backend_module
from dualnet.bench.kernels import Kernel, Setup, Unavailable, Unsupported, Workload

# The tutorial network: 3 inputs, Dense(3), Dense(2), Dense(2), sigmoid units (as in the
# classic backpropagation tutorials), one sample per call.
TUTORIAL = {"widths": (3, 3, 2, 2), "activation": "sigmoid", "batch": 1}
MLP = {"widths": (784, 512, 512, 10), "activation": "relu", "batch": 256}


def _require(module: str) -> Any:
    """Import a dualnet module the kernel needs; missing -> :class:`Unavailable`."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise Unavailable(f"{module} is not available: {exc}") from exc


@functools.lru_cache(maxsize=4)
def _normal(shape: tuple[int, ...], seed: int, scale: float = 1.0) -> np.ndarray:
    """Standard-normal float32 input, drawn once per shape and seed and shared by the backends
    (drawing 8 Mi normals takes longer than timing the kernel in --quick). Never modified:
    every backend tensor is a copy (see :func:`_tensor`)."""
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32) * scale


def _tensor(array: np.ndarray, dtype: str) -> Any:
    """A native tensor of the active backend on the current device (created once, untimed)."""
    t = _ops.tensor(array, dtype)
    if _ops.tensor_backend(t) == "torch" and t.device.type == "cpu":
        # torch.as_tensor aliases the numpy buffer (malloc'd, 16-byte aligned); a clone gets
        # torch's own 64-byte-aligned memory, like any tensor torch computes, and TF's copy.
        t = t.clone()
    return t


# ----------------------------------------------------------------------------- activations

ACTIVATION_SHAPES = ((4, 256), (256, 1024), (4096, 4096))
QUICK_ACTIVATION_SHAPES = ((4, 256), (2048, 4096))


def activation_names() -> list[str]:
    """Every activation once (aliases such as ``swish`` = ``silu`` are skipped)."""
    from dualnet import activations

    seen: dict[Any, str] = {}
    for name in activations.NAMES:
        seen.setdefault(activations.get(name), name)
    return list(seen.values())


def _activation_kernel(name: str, shape: tuple[int, int], modes: tuple[str, ...]) -> Kernel:
    def build(setup: Setup) -> Workload:
        from dualnet import activations

        x = _normal(shape, setup.seed, 3.0)  # ±3σ = ±9 spans every kink and saturation
        return Workload(fn=activations.get(name), args=(_tensor(x, setup.dtype),))

    n = shape[0] * shape[1]
    # "linear" is the identity: it returns its input and moves no data, so it times the
    # dispatch overhead alone and gets no GB/s.
    moved = None if name == "linear" else 2 * n
    return Kernel(group="activation", name=name, shape=shape, build=build,
                  elements_moved=moved, modes=modes)  # fmt: skip


# ----------------------------------------------------------------------------- dense

DENSE_SHAPES = ((1, 3, 3), (64, 256, 256), (256, 1024, 1024), (1024, 2048, 2048))
QUICK_DENSE_SHAPES = ((1, 3, 3), (64, 256, 256), (512, 1024, 1024))


def _dense_kernel(batch: int, fin: int, fout: int) -> Kernel:
    def build(setup: Setup) -> Workload:
        layers = _require("dualnet.layers")
        _seed(setup.seed)
        layer = layers.Dense(fout, dtype=setup.dtype)
        x = _tensor(setup.rng().standard_normal((batch, fin), dtype=np.float32), setup.dtype)
        layer(x)  # build and realise on the active backend and device, outside the clock
        return Workload(fn=layer, args=(x,))

    return Kernel(group="dense", name="Dense", shape=(batch, fin, fout), build=build,
                  flops=2 * batch * fin * fout, note="shape = (batch, in, out)")  # fmt: skip


# ----------------------------------------------------------------------------- losses

LOSS_SHAPES = ((32, 10), (4096, 1000))
QUICK_LOSS_SHAPES = ((32, 10), (1024, 1000))
# (kernel name, class name, constructor kwargs, what y_pred holds)
LOSSES: tuple[tuple[str, str, dict[str, Any], str], ...] = (
    ("MeanSquaredError", "MeanSquaredError", {}, "real"),
    ("MeanAbsoluteError", "MeanAbsoluteError", {}, "real"),
    ("Huber", "Huber", {}, "real"),
    ("SmoothL1", "SmoothL1", {}, "real"),
    ("BinaryCrossentropy", "BinaryCrossentropy", {}, "probabilities"),
    ("BinaryCrossentropy(logits)", "BinaryCrossentropy", {"from_logits": True}, "logits"),
    ("CategoricalCrossentropy", "CategoricalCrossentropy", {}, "softmax"),
    ("CategoricalCrossentropy(logits)", "CategoricalCrossentropy", {"from_logits": True},
     "logits"),
    ("SparseCategoricalCrossentropy", "SparseCategoricalCrossentropy", {}, "softmax"),
    ("SparseCategoricalCrossentropy(logits)", "SparseCategoricalCrossentropy",
     {"from_logits": True}, "logits"),
)  # fmt: skip


def _loss_inputs(kind: str, cls: str, shape: tuple[int, int], rng: np.random.Generator):
    batch, classes = shape
    z = rng.standard_normal(shape, dtype=np.float32)
    if kind == "real":
        return rng.standard_normal(shape, dtype=np.float32), z
    labels = rng.integers(0, classes, size=batch)
    if cls == "SparseCategoricalCrossentropy":
        y_true = labels.astype(np.int64)
    elif cls == "CategoricalCrossentropy":
        y_true = np.eye(classes, dtype=np.float32)[labels]
    else:
        y_true = (rng.random(shape) < 0.5).astype(np.float32)
    if kind == "probabilities":
        z = 1 / (1 + np.exp(-z))
    elif kind == "softmax":
        z = np.exp(z - z.max(-1, keepdims=True))
        z /= z.sum(-1, keepdims=True)
    return y_true, z


def _loss_kernel(name: str, cls: str, kwargs: dict[str, Any], kind: str,
                 shape: tuple[int, int], modes: tuple[str, ...]) -> Kernel:  # fmt: skip
    def build(setup: Setup) -> Workload:
        losses = _require("dualnet.losses")
        loss = getattr(losses, cls)(**kwargs)
        y_true, y_pred = _loss_inputs(kind, cls, shape, setup.rng())
        t_dtype = "int64" if y_true.dtype.kind == "i" else setup.dtype
        return Workload(fn=loss, args=(_tensor(y_true, t_dtype), _tensor(y_pred, setup.dtype)))

    n = shape[0] * shape[1]
    if cls == "SparseCategoricalCrossentropy":
        # y_pred read once (n elements of the dtype) and one int64 label per row.
        return Kernel(group="loss", name=name, shape=shape, build=build, elements_moved=n,
                      fixed_bytes=8.0 * shape[0], modes=modes)  # fmt: skip
    # y_true and y_pred, each read once.
    return Kernel(group="loss", name=name, shape=shape, build=build, elements_moved=2 * n,
                  modes=modes)  # fmt: skip


# ----------------------------------------------------------------------------- models


def _seed(seed: int) -> None:
    """Same weights on both backends: dualnet's initializers draw from its global generator."""
    importlib.import_module("dualnet.random").set_random_seed(seed)
    layers = importlib.import_module("dualnet.layers")
    layers.reset_names()


def _dualnet_model(spec: dict[str, Any], dtype: str) -> Any:
    models = _require("dualnet.models")
    layers = _require("dualnet.layers")
    widths = spec["widths"]
    stack = [layers.Dense(w, activation=spec["activation"], dtype=dtype) for w in widths[1:-1]]
    stack.append(layers.Dense(widths[-1], dtype=dtype))  # linear output layer (logits)
    return models.Sequential([models.Input((widths[0],), dtype=dtype), *stack])


def native_parameters(model: Any, backend: str) -> list[Any]:
    """The native trainable parameters of a dualnet model (or layer), in layer order."""
    native = getattr(model, "native", None)
    if native is None:
        raise Unavailable(f"{type(model).__name__} exposes no native object (.native)")
    if backend == "torch":
        return list(native.parameters())
    return list(native.trainable_variables)


def _torch_native(spec: dict[str, Any], weights: Sequence[np.ndarray], setup: Setup) -> Any:
    """The same network written by hand in plain torch (nn.Sequential of nn.Linear)."""
    import torch

    widths = spec["widths"]
    act = {"sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU}[spec["activation"]]
    modules: list[torch.nn.Module] = []
    for i, (fin, fout) in enumerate(itertools.pairwise(widths)):
        modules.append(torch.nn.Linear(fin, fout))
        if i < len(widths) - 2:
            modules.append(act())
    net = torch.nn.Sequential(*modules)
    linears = [m for m in modules if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for lin, kernel, bias in zip(linears, weights[0::2], weights[1::2], strict=True):
            lin.weight.copy_(torch.as_tensor(np.ascontiguousarray(kernel.T)))  # (in,out)->(out,in)
            lin.bias.copy_(torch.as_tensor(bias))
    dtype = backend_module("torch").core.native_dtype(setup.dtype)
    return net.to(device=setup.device, dtype=dtype)


def _keras_native(spec: dict[str, Any], weights: Sequence[np.ndarray], setup: Setup) -> Any:
    """The same network written by hand in plain Keras (keras.Sequential of Dense)."""
    import keras

    widths = spec["widths"]
    stack: list[Any] = [keras.Input((widths[0],), dtype=setup.dtype)]
    for w in widths[1:-1]:
        stack.append(keras.layers.Dense(w, activation=spec["activation"], dtype=setup.dtype))
    stack.append(keras.layers.Dense(widths[-1], dtype=setup.dtype))
    net = keras.Sequential(stack)
    net.set_weights([np.asarray(w, dtype=np.float32) for w in weights])
    return net


def _model_kernel(name: str, spec: dict[str, Any], pass_: str, compare: str) -> Kernel:
    widths, batch = spec["widths"], spec["batch"]

    def build(setup: Setup) -> Workload:
        _seed(setup.seed)
        model = _dualnet_model(spec, setup.dtype)
        x_np = setup.rng().standard_normal((batch, widths[0]), dtype=np.float32)
        x = _tensor(x_np, setup.dtype)
        model(x)  # realise on the active backend/device, outside the clock
        fn, params = model, None
        if setup.impl == "native":
            weights = [w.astype(np.float32) for w in model.get_weights()]
            fn = (_torch_native if setup.backend == "torch" else _keras_native)(
                spec, weights, setup
            )
            _check_same(model(x), fn(x), setup)
            if pass_ == "forward+backward":
                params = (
                    list(fn.parameters()) if setup.backend == "torch"
                    else list(fn.trainable_variables)
                )  # fmt: skip
        elif pass_ == "forward+backward":
            params = native_parameters(model, setup.backend)
        return Workload(fn=fn, args=(x,), params=params)

    pairs = list(itertools.pairwise(widths))
    forward = sum(2 * batch * a * b for a, b in pairs)
    # Backward: weight gradients cost one forward; input gradients one forward less the first
    # layer's (nobody asks for the gradient of the data).
    backward = forward + (forward - 2 * batch * pairs[0][0] * pairs[0][1])
    flops = forward if pass_ == "forward" else forward + backward
    return Kernel(group="model" if compare == "backends" else "overhead", name=name,
                  shape=(batch, *widths), build=build, flops=flops, pass_=pass_,
                  compare=compare, note="shape = (batch, *layer widths)")  # fmt: skip


def _check_same(ours: Any, theirs: Any, setup: Setup, what: str = "output") -> None:
    """The hand-written network must compute what dualnet's does, or the timing compares
    different work."""
    a = np.asarray(_ops.to_numpy(ours), dtype=np.float64)
    b = np.asarray(_ops.to_numpy(theirs), dtype=np.float64)
    tol = 1e-4 if setup.dtype in ("float32", "float64") else 5e-2
    if a.shape != b.shape or not np.allclose(a, b, rtol=tol, atol=tol):
        raise AssertionError(
            f"hand-written {setup.backend} network disagrees with dualnet's ({what}: "
            f"max |diff| {np.max(np.abs(a - b)) if a.shape == b.shape else 'shape'}); "
            "overhead comparison refused"
        )


# ----------------------------------------------------------------------------- training step

# Plain SGD: the same rule in dualnet (Keras 3's SGD), torch.optim.SGD without momentum and
# keras.optimizers.SGD: w <- w - lr * g.
LEARNING_RATE = 0.01
# Per network: the loss (dualnet name), and what the targets are.
# (The convolutional networks of :mod:`dualnet.bench.suite_cnn` classify too.)
TRAIN_LOSS = {"tutorial": "mse", "mlp": "categorical_crossentropy_logits",
              "lenet": "categorical_crossentropy_logits",
              "resnet_block": "categorical_crossentropy_logits",
              "transformer_block": "categorical_crossentropy_logits"}  # fmt: skip


def require_eager_train_step(setup: Setup) -> None:
    """The ``train`` rows time dualnet's eager ``train_step`` (and its hand-written twin):
    compiled modes are refused with the reason (:data:`COMPILED_TRAIN_STEP`)."""
    if setup.mode != "eager":
        raise Unsupported(
            COMPILED_TRAIN_STEP if setup.impl == "dualnet"
            else "no dualnet step to compare with: " + COMPILED_TRAIN_STEP
        )  # fmt: skip


COMPILED_TRAIN_STEP = (
    "this train_step row runs eagerly only (compile(run_eagerly=True)); compiled training "
    "(dualnet's tf.function/XLA/torch.compile step against Keras's fit and a compiled torch "
    "loop) is timed by the fit group"
)


def _train_loss(name: str) -> Any:
    losses = _require("dualnet.losses")
    if TRAIN_LOSS[name] == "mse":
        return losses.MeanSquaredError()
    return losses.CategoricalCrossentropy(from_logits=True)


def _train_data(name: str, spec: dict[str, Any], setup: Setup) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets: real targets in [0, 1) for the tutorial's squared error, one-hot
    labels for the MLP's cross-entropy on logits."""
    widths, batch = spec["widths"], spec["batch"]
    rng = setup.rng()
    x = rng.standard_normal((batch, widths[0]), dtype=np.float32)
    if TRAIN_LOSS[name] == "mse":
        y = rng.random((batch, widths[-1]), dtype=np.float32)
    else:
        y = np.eye(widths[-1], dtype=np.float32)[rng.integers(0, widths[-1], size=batch)]
    return x, y


def _torch_step(net: Any, name: str) -> Any:
    """A hand-written torch training step: forward, loss, ``backward``, ``torch.optim.SGD``."""
    import torch

    opt = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE)
    # MSELoss (mean over every element) = Keras's MSE with sum_over_batch_size; cross_entropy
    # with probability targets, averaged over the batch = CategoricalCrossentropy(logits).
    loss_fn = torch.nn.MSELoss() if TRAIN_LOSS[name] == "mse" else torch.nn.CrossEntropyLoss()

    def step(x: Any, y: Any) -> Any:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def _keras_step(net: Any, name: str) -> Any:
    """A hand-written Keras training step: ``GradientTape`` and ``keras.optimizers.SGD``."""
    import keras
    import tensorflow as tf

    opt = keras.optimizers.SGD(learning_rate=LEARNING_RATE)
    loss_fn = (
        keras.losses.MeanSquaredError() if TRAIN_LOSS[name] == "mse"
        else keras.losses.CategoricalCrossentropy(from_logits=True)
    )  # fmt: skip
    variables = net.trainable_variables

    def step(x: Any, y: Any) -> Any:
        with tf.GradientTape() as tape:
            loss = loss_fn(y, net(x, training=True))
        grads = tape.gradient(loss, variables)
        opt.apply_gradients(zip(grads, variables, strict=True))
        return loss

    return step


def _native_weights(net: Any, backend: str) -> list[np.ndarray]:
    """A hand-written network's weights in dualnet's canonical layout (kernels ``(in, out)``)."""
    if backend == "torch":
        out = []
        for p in net.parameters():
            a = p.detach().cpu().float().numpy()
            out.append(a.T if a.ndim == 2 else a)  # nn.Linear keeps (out, in)
        return out
    return [np.asarray(w, dtype=np.float32) for w in net.get_weights()]


def _train_kernel(name: str, spec: dict[str, Any], compare: str) -> Kernel:
    widths, batch = spec["widths"], spec["batch"]

    def build(setup: Setup) -> Workload:
        require_eager_train_step(setup)
        optimizers = _require("dualnet.optimizers")
        _seed(setup.seed)
        model = _dualnet_model(spec, setup.dtype)
        x_np, y_np = _train_data(name, spec, setup)
        x, y = _tensor(x_np, setup.dtype), _tensor(y_np, setup.dtype)
        model.compile(optimizer=optimizers.SGD(LEARNING_RATE), loss=_train_loss(name),
                      run_eagerly=True)  # fmt: skip
        if setup.impl == "dualnet":
            model.train_step(x, y)  # realise, build the optimizer, outside the clock
            return Workload(fn=model.train_step, args=(x, y), step=True)
        weights = [w.astype(np.float32) for w in model.get_weights()]
        net = (_torch_native if setup.backend == "torch" else _keras_native)(spec, weights, setup)
        step = (_torch_step if setup.backend == "torch" else _keras_step)(net, name)
        # One step of each from the same weights: same loss, same updated weights.
        ours = model.train_step(x, y)["loss"]
        theirs = float(_ops.to_numpy(step(x, y)))
        _check_same(np.array([ours]), np.array([theirs]), setup, what="loss")
        for i, (a, b) in enumerate(zip(model.get_weights(), _native_weights(net, setup.backend),
                                       strict=True)):  # fmt: skip
            _check_same(a, b, setup, what=f"weight {i} after one step")
        return Workload(fn=step, args=(x, y), step=True)

    pairs = list(itertools.pairwise(widths))
    forward = sum(2 * batch * a * b for a, b in pairs)
    # Forward, then weight and input gradients (as forward+backward); the update is
    # element-wise and not counted.
    flops = forward + forward + (forward - 2 * batch * pairs[0][0] * pairs[0][1])
    loss = TRAIN_LOSS[name].replace("categorical_crossentropy_logits", "cross-entropy on logits")
    return Kernel(group="model" if compare == "backends" else "overhead", name=name,
                  shape=(batch, *widths), build=build, flops=flops, pass_="train",
                  compare=compare, note=f"shape = (batch, *layer widths); {loss}, SGD "
                  f"lr={LEARNING_RATE}")  # fmt: skip


# ----------------------------------------------------------------------------- the suite


def kernels(quick: bool = False) -> list[Kernel]:
    """Every kernel of the suite, in group order. ``quick=True``: fewer, smaller shapes, and the
    activations and losses in eager mode only (tracing and XLA-compiling ~60 small kernels would
    take most of the minute ``--quick`` has); Dense and the models keep both modes, and the
    layer and CNN groups contribute a few small kernels (see their modules)."""
    # Imported here: these modules build on this one's helpers.
    from dualnet.bench import suite_cnn, suite_fit, suite_layers, suite_sequence

    out: list[Kernel] = []
    small_modes = ("eager",) if quick else ("eager", "compiled")
    for name in activation_names():
        for shape in QUICK_ACTIVATION_SHAPES if quick else ACTIVATION_SHAPES:
            out.append(_activation_kernel(name, shape, small_modes))
    for b, i, o in QUICK_DENSE_SHAPES if quick else DENSE_SHAPES:
        out.append(_dense_kernel(b, i, o))
    out += suite_layers.kernels(quick)
    sequence = suite_sequence.kernels(quick)
    out += [k for k in sequence if k.group in ("rnn", "attention")]
    for shape in QUICK_LOSS_SHAPES if quick else LOSS_SHAPES:
        out += [_loss_kernel(n, c, kw, kind, shape, small_modes) for n, c, kw, kind in LOSSES]
    cnn = suite_cnn.kernels(quick)
    for compare in ("backends", "overhead"):
        for name, spec in (("tutorial", TUTORIAL), ("mlp", MLP)):
            for pass_ in ("forward", "forward+backward"):
                out.append(_model_kernel(name, spec, pass_, compare))
            out.append(_train_kernel(name, spec, compare))
        group = "model" if compare == "backends" else "overhead"
        out += [k for k in cnn if k.group == group]
        out += [k for k in sequence if k.group == group]
    out += suite_fit.kernels(quick)
    return out
