"""The ``fit`` group: one epoch of training through ``model.fit`` against each framework's own
loop, per backend, eager and compiled (Note [Compiled training] in
:mod:`dualnet.training_steps`).

Kernels (float32, inputs as numpy arrays in host memory, Adam(1e-3), one epoch per call):

* ``fit/mlp``: the 784-512-512-10 relu MLP of the ``model`` group, 8192 samples in batches of
  128 (64 steps), categorical cross-entropy on logits.
* ``fit/tutorial``: the tutorial's 3-3-2-2 sigmoid network, 256 samples in batches of 1 (256
  steps: the per-step cost of the loop), mean squared error.

Entrants (``compare="overhead"``: dualnet against the native loop on the same backend, in the
same mode; every entrant compiles its own steps, so the harness calls the epoch as it is):

* ``dualnet``: ``model.fit(x, y, batch_size, epochs=1, verbose=0)`` with the Adam rule of the
  native twin (Keras's on TensorFlow, ``from_torch_defaults("adam", eps=1e-7)`` on torch),
  compiled as the mode asks: eager ``compile(run_eagerly=True)`` (torch's default);
  ``function`` TensorFlow's default (``tf.function``); ``xla`` and torch's ``compile``:
  ``jit_compile=True``.
* native TensorFlow: Keras's own ``model.fit`` with the same options (``run_eagerly=True`` /
  ``jit_compile``), ``keras.optimizers.Adam(1e-3)`` (epsilon 1e-7, dualnet's default too).
* native torch: the loop a torch user writes, on tensors already on the device: per epoch a
  ``torch.randperm`` order; per batch ``zero_grad``, forward, ``CrossEntropyLoss`` /
  ``MSELoss``, ``backward``, ``torch.optim.Adam(lr=1e-3, eps=1e-7)``, the loss summed on the
  device and read once per epoch; compiled: the step under ``torch.compile``.

Both loops shuffle every epoch (dualnet from its seeded numpy generator, Keras from TensorFlow's,
torch from its own). Before timing, a native entrant must do dualnet's work: from the same
weights, one step on the first batch gives the loss and the updated weights of a one-step
dualnet ``fit`` (``suite._check_same``).

FLOPs: the matmuls of forward and backward per sample (as the ``train`` rows) times the
samples; the update, the loss and the finiteness check are not counted.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from dualnet.bench import suite
from dualnet.bench.kernels import Kernel, Setup, Workload

LEARNING_RATE = 1e-3
EPSILON = 1e-7  # Keras's Adam epsilon (dualnet's default), given to torch.optim.Adam too


@dataclass(frozen=True)
class FitSpec:
    """One network trained for an epoch: the layer widths and activation (as
    :data:`dualnet.bench.suite.MLP`), the samples, the batch and the loss."""

    name: str
    widths: tuple[int, ...]
    activation: str
    samples: int
    batch: int
    loss: str  # "cce_logits" or "mse"

    @property
    def steps(self) -> int:
        return -(-self.samples // self.batch)

    def flops(self) -> int:
        """Forward and backward matmuls per sample (no input gradient for the first layer)."""
        pairs = list(itertools.pairwise(self.widths))
        forward = sum(2 * a * b for a, b in pairs)
        return self.samples * (3 * forward - 2 * pairs[0][0] * pairs[0][1])


MLP = FitSpec("mlp", (784, 512, 512, 10), "relu", 8192, 128, "cce_logits")
TUTORIAL = FitSpec("tutorial", (3, 3, 2, 2), "sigmoid", 256, 1, "mse")
QUICK_MLP = FitSpec("mlp", (784, 512, 512, 10), "relu", 1024, 128, "cce_logits")


def compile_options(setup: Setup) -> dict[str, Any]:
    """dualnet's ``compile`` arguments for the harness's mode (Note [Compiled training])."""
    return {
        "eager": {"run_eagerly": True},
        "function": {"jit_compile": False},
        "xla": {"jit_compile": True},
        "compile": {"jit_compile": True},
    }[setup.mode]


def _data(spec: FitSpec, setup: Setup) -> tuple[np.ndarray, np.ndarray]:
    rng = setup.rng()
    x = rng.standard_normal((spec.samples, spec.widths[0]), dtype=np.float32)
    if spec.loss == "mse":
        return x, rng.random((spec.samples, spec.widths[-1]), dtype=np.float32)
    return x, np.eye(spec.widths[-1], dtype=np.float32)[rng.integers(0, spec.widths[-1],
                                                                      spec.samples)]  # fmt: skip


def _dualnet(spec: FitSpec, setup: Setup, options: dict[str, Any]) -> Any:
    """The network through dualnet (suite's builder: the same seeded weights on both
    backends), compiled with Adam and the spec's loss."""
    optimizers = suite._require("dualnet.optimizers")
    losses = suite._require("dualnet.losses")
    suite._seed(setup.seed)
    model = suite._dualnet_model({"widths": spec.widths, "activation": spec.activation},
                                 setup.dtype)  # fmt: skip
    loss = (losses.MeanSquaredError() if spec.loss == "mse"
            else losses.CategoricalCrossentropy(from_logits=True))  # fmt: skip
    # The rule of the native twin: Keras's Adam on TensorFlow, torch.optim.Adam's on torch (ε
    # added to the bias-corrected root: with ε = 1e-7 and gradients near 1e-6, the two first
    # updates differ by half the learning rate).
    optimizer = (optimizers.from_torch_defaults("adam", lr=LEARNING_RATE, eps=EPSILON)
                 if setup.backend == "torch" else optimizers.Adam(LEARNING_RATE))  # fmt: skip
    model.compile(optimizer=optimizer, loss=loss, **options)
    return model


def _keras(spec: FitSpec, weights: list[np.ndarray], setup: Setup) -> Any:
    import keras

    net = suite._keras_native({"widths": spec.widths, "activation": spec.activation}, weights,
                              setup)  # fmt: skip
    loss = (keras.losses.MeanSquaredError() if spec.loss == "mse"
            else keras.losses.CategoricalCrossentropy(from_logits=True))  # fmt: skip
    net.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss=loss,
                run_eagerly=setup.mode == "eager", jit_compile=setup.mode == "xla")  # fmt: skip
    return net


def _torch_loop(
    spec: FitSpec, weights: list[np.ndarray], setup: Setup, x: np.ndarray, y: np.ndarray
) -> tuple[Any, Callable[[], float], Callable[[Any, Any], Any]]:
    """The hand-written loop: ``(net, epoch, step)``; ``epoch()`` returns the mean loss."""
    import torch

    net = suite._torch_native({"widths": spec.widths, "activation": spec.activation}, weights,
                              setup)  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE, eps=EPSILON)
    # CrossEntropyLoss with probability targets (mean over the batch) = Keras's categorical
    # cross-entropy on logits; MSELoss (mean over every element) = Keras's MSE.
    loss_fn = torch.nn.MSELoss() if spec.loss == "mse" else torch.nn.CrossEntropyLoss()

    def step(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(xb), yb)
        loss.backward()
        opt.step()
        return loss.detach()

    if setup.mode == "compile":
        step = torch.compile(step, dynamic=False)
    xt = torch.as_tensor(x, device=setup.device)
    yt = torch.as_tensor(y, device=setup.device)
    generator = torch.Generator().manual_seed(setup.seed)

    def epoch() -> float:
        order = torch.randperm(spec.samples, generator=generator).to(setup.device)
        total = torch.zeros((), device=setup.device)
        for start in range(0, spec.samples, spec.batch):
            idx = order[start : start + spec.batch]
            total = total + step(xt[idx], yt[idx]) * len(idx)
        return float(total) / spec.samples  # one read per epoch

    return net, epoch, step


def _check_first_step(spec: FitSpec, setup: Setup, x: np.ndarray, y: np.ndarray,
                      native_step: Callable[[], float], native: Any) -> None:  # fmt: skip
    """One eager dualnet step on the first batch from the same weights: the native entrant's
    step must give its loss and updated weights, or the row is refused."""
    model = _dualnet(spec, setup, {"run_eagerly": True})
    history = model.fit(x[: spec.batch], y[: spec.batch], batch_size=spec.batch, epochs=1,
                        shuffle=False, verbose=0)  # fmt: skip
    theirs = native_step()
    suite._check_same(np.array(history.history["loss"]), np.array([theirs]), setup, "loss")
    for i, (a, b) in enumerate(zip(model.get_weights(), suite._native_weights(native,
                                                                             setup.backend),
                                   strict=True)):  # fmt: skip
        suite._check_same(a, b, setup, what=f"weight {i} after one step")


def _fit_kernel(spec: FitSpec) -> Kernel:
    def build(setup: Setup) -> Workload:
        x, y = _data(spec, setup)
        if setup.impl == "dualnet":
            model = _dualnet(spec, setup, compile_options(setup))

            def fit() -> Any:
                return model.fit(x, y, batch_size=spec.batch, epochs=1, verbose=0,
                                 seed=setup.seed)  # fmt: skip

            return Workload(fn=fit, args=(), step=True, self_compiled=True)
        reference = _dualnet(spec, setup, {"run_eagerly": True})
        weights = [w.astype(np.float32) for w in reference.get_weights()]
        if setup.backend == "torch":
            import torch

            net, epoch, step = _torch_loop(spec, weights, setup, x, y)
            xb = torch.as_tensor(x[: spec.batch], device=setup.device)
            yb = torch.as_tensor(y[: spec.batch], device=setup.device)
            _check_first_step(spec, setup, x, y, lambda: float(step(xb, yb)), net)
            return Workload(fn=epoch, args=(), step=True, self_compiled=True)
        net = _keras(spec, weights, setup)

        def first_step() -> float:
            history = net.fit(x[: spec.batch], y[: spec.batch], batch_size=spec.batch,
                              epochs=1, shuffle=False, verbose=0)  # fmt: skip
            return float(history.history["loss"][0])

        _check_first_step(spec, setup, x, y, first_step, net)

        def fit() -> Any:
            return net.fit(x, y, batch_size=spec.batch, epochs=1, verbose=0, shuffle=True)

        return Workload(fn=fit, args=(), step=True, self_compiled=True)

    loss = "cross-entropy on logits" if spec.loss == "cce_logits" else "MSE"
    return Kernel(group="fit", name=spec.name, shape=(spec.samples, spec.batch, *spec.widths),
                  build=build, flops=spec.flops(), pass_="epoch", compare="overhead",
                  dtypes=("float32",), note=f"shape = (samples, batch, *layer widths); {loss}, "
                  f"Adam lr={LEARNING_RATE}, {spec.steps} steps per epoch")  # fmt: skip


def kernels(quick: bool = False) -> list[Kernel]:
    """The ``fit`` group (``--quick``: the MLP on 1024 samples, the tutorial as it is)."""
    return [_fit_kernel(QUICK_MLP if quick else MLP), _fit_kernel(TUTORIAL)]
