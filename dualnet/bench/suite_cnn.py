"""Convolutional network kernels, in the ``model`` (torch vs TensorFlow) and ``overhead`` (dualnet
vs the same network written by hand) groups.

Networks (channels-last input, as dualnet and Keras take it):

* ``lenet``: LeNet-5 style, ``Conv2D(6, 5, relu) - MaxPooling2D(2) - Conv2D(16, 5, relu) -
  MaxPooling2D(2) - Flatten - Dense(10)`` on 28×28×1 images, batch 64 (``dn.Sequential``).
* ``resnet_block``: one ResNet basic block, ``Conv2D(16, 3, same, no bias) - BatchNormalization
  - ReLU - Conv2D(16, 3, same, no bias) - BatchNormalization``, plus the input (``Add``), ReLU,
  then ``GlobalAveragePooling2D - Dense(10)``, on 32×32×16 images, batch 32 (functional
  ``dn.Model``).

Passes: ``forward`` runs inference (``model(x)``: BatchNormalization uses its moving
statistics); ``forward+backward`` runs in training mode (``model(x, training=True)``: batch
statistics, as in training) and takes the gradients of every trainable weight; ``train`` is one
``model.train_step`` (cross-entropy on logits, SGD) — eager only, as for the dense networks
(:data:`dualnet.bench.suite.COMPILED_TRAIN_STEP`).

The hand-written twins of the overhead group:

* torch: idiomatic NCHW modules (``nn.Conv2d``, ``nn.MaxPool2d``, ``nn.BatchNorm2d``,
  ``nn.AdaptiveAvgPool2d``, ``nn.Linear``; the basic block written as torchvision writes it, with
  in-place ReLU and ``out += identity``), fed an NCHW copy of the same input made outside the
  clock. dualnet's weights are converted from the canonical (Keras) layout: convolution kernels
  ``(kh, kw, in, out)`` -> ``(out, in, kh, kw)``; the Dense after Flatten gets its kernel rows
  permuted, because Flatten walks ``(h, w, c)`` in channels-last order and ``(c, h, w)`` in NCHW.
  BatchNorm2d is configured as Keras's layer: ``eps=1e-3`` (torch's default is 1e-5) and
  ``momentum=0.01`` (torch's momentum weighs the new batch, Keras's 0.99 the old statistics).
* Keras: the same layers from ``keras.layers`` (canonical layout: the weights load as they are).

Before timing, each twin must compute what dualnet computes, or the row is refused
(``suite._check_same``): the same output in the pass's mode (the BatchNormalization moving
statistics are first set to random values, so that an inference-mode mismatch of gamma, beta,
mean, variance or epsilon shows); for ``train``, the same loss and the same trainable weights
after one step from the same weights. The moving statistics after a training step are not
compared: torch updates the moving variance with the unbiased batch variance, Keras (and
dualnet) with the biased one, so they differ by a factor ``n/(n-1)`` in the update however the
twin is configured; the outputs of a training-mode call do not depend on them.

FLOPs count the convolutions and the Dense matmuls (2 per multiply-add) and nothing else
(bias, BatchNormalization, ReLU, pooling, the residual add: element-wise work, < 1% of the
total here). Backward: the weight gradients cost one forward, the input gradients one forward
less the first layer's (nobody asks for the gradient of the data); the update is not counted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dualnet import _ops
from dualnet._backend import backend_module
from dualnet.bench import suite
from dualnet.bench.kernels import Kernel, Setup, Unavailable, Workload
from dualnet.errors import bad_value

# Keras's BatchNormalization defaults (dualnet's too); the torch twin is configured to match.
BN_MOMENTUM = 0.99  # Keras: new = momentum·old + (1 - momentum)·batch
BN_EPSILON = 1e-3


@dataclass(frozen=True)
class CNN:
    """A benchmark network: the architecture (``name``: ``"lenet"`` or ``"resnet_block"``),
    input ``(H, W, C)``, batch, classes, and its matmul-like layers as ``(rows per sample,
    reduction, columns)`` (a convolution: ``Ho·Wo``, ``kh·kw·Cin``, ``Cout``; a Dense: ``1``,
    ``in``, ``out``), in order, for the FLOP count (the tests check it against the built
    model)."""

    name: str
    input: tuple[int, int, int]
    batch: int
    classes: int
    matmuls: tuple[tuple[int, int, int], ...]

    def __post_init__(self) -> None:
        if self.name not in ("lenet", "resnet_block"):
            raise bad_value("name", self.name, "'lenet' or 'resnet_block'")

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.batch, *self.input)

    def flops(self, pass_: str) -> int:
        forward = sum(2 * self.batch * m * k * n for m, k, n in self.matmuls)
        if pass_ == "forward":
            return forward
        m, k, n = self.matmuls[0]
        # Weight gradients (one forward) + input gradients (one forward less the first layer's).
        return forward + forward + (forward - 2 * self.batch * m * k * n)


LENET = CNN("lenet", (28, 28, 1), 64, 10,
            ((24 * 24, 5 * 5 * 1, 6), (8 * 8, 5 * 5 * 6, 16), (1, 4 * 4 * 16, 10)))  # fmt: skip
RESNET_BLOCK = CNN("resnet_block", (32, 32, 16), 32, 10,
                   ((32 * 32, 3 * 3 * 16, 16), (32 * 32, 3 * 3 * 16, 16), (1, 16, 10)))  # fmt: skip
NETWORKS = (LENET, RESNET_BLOCK)


def _layers() -> Any:
    layers = suite._require("dualnet.layers")
    needed = ("Conv2D", "MaxPooling2D", "Flatten", "BatchNormalization", "ReLU", "Add",
              "GlobalAveragePooling2D")  # fmt: skip
    missing = [n for n in needed if not hasattr(layers, n)]
    if missing:
        raise Unavailable(f"dn.layers lacks {', '.join(missing)}")
    return layers


def dualnet_model(spec: CNN, dtype: str) -> Any:
    """The network in dualnet (Sequential for LeNet, functional for the residual block)."""
    models = suite._require("dualnet.models")
    L = _layers()
    if spec.name == "lenet":
        return models.Sequential([
            models.Input(spec.input, dtype=dtype),
            L.Conv2D(6, 5, activation="relu", dtype=dtype),
            L.MaxPooling2D(2, dtype=dtype),
            L.Conv2D(16, 5, activation="relu", dtype=dtype),
            L.MaxPooling2D(2, dtype=dtype),
            L.Flatten(dtype=dtype),
            L.Dense(spec.classes, dtype=dtype),
        ])  # fmt: skip
    c = spec.input[-1]
    inputs = models.Input(spec.input, dtype=dtype)
    y = L.Conv2D(c, 3, padding="same", use_bias=False, dtype=dtype)(inputs)
    y = L.BatchNormalization(dtype=dtype)(y)
    y = L.ReLU(dtype=dtype)(y)
    y = L.Conv2D(c, 3, padding="same", use_bias=False, dtype=dtype)(y)
    y = L.BatchNormalization(dtype=dtype)(y)
    y = L.ReLU(dtype=dtype)(L.Add(dtype=dtype)([y, inputs]))
    y = L.GlobalAveragePooling2D(dtype=dtype)(y)
    return models.Model(inputs, L.Dense(spec.classes, dtype=dtype)(y))


def _randomise_statistics(model: Any, rng: np.random.Generator) -> None:
    """Random gamma, beta and moving statistics for every BatchNormalization (Keras's order):
    at their initial values (1, 0, 0, 1) a twin that swapped them, or ignored them, would
    compute the same inference output and pass the check."""
    bn = _layers().BatchNormalization
    for layer in model.layers:
        if isinstance(layer, bn):
            gamma, beta, mean, var = (w.shape for w in layer.get_weights())
            layer.set_weights([rng.uniform(0.5, 1.5, gamma), rng.normal(0, 0.2, beta),
                               rng.normal(0, 0.2, mean), rng.uniform(0.5, 1.5, var)])  # fmt: skip


def _build_dualnet(spec: CNN, setup: Setup) -> tuple[Any, np.ndarray]:
    """The seeded dualnet network (realised on the active backend) and its numpy input."""
    suite._seed(setup.seed)
    model = dualnet_model(spec, setup.dtype)
    _randomise_statistics(model, np.random.default_rng([setup.seed, 1]))
    x = suite._normal(spec.shape, setup.seed)
    model(suite._tensor(x, setup.dtype))  # realise on the active backend/device, untimed
    return model, x


# ----------------------------------------------------------------------------- torch twins


def _conv_to_torch(k: np.ndarray) -> np.ndarray:
    return k.transpose(3, 2, 0, 1)  # (kh, kw, in, out) -> (out, in, kh, kw)


def _conv_from_torch(w: np.ndarray) -> np.ndarray:
    return w.transpose(2, 3, 1, 0)


def _dense_to_torch(k: np.ndarray) -> np.ndarray:
    return k.T  # (in, out) -> nn.Linear's (out, in)


def _dense_from_torch(w: np.ndarray) -> np.ndarray:
    return w.T


def _flatten_dense_to_torch(k: np.ndarray, hwc: tuple[int, int, int]) -> np.ndarray:
    """The Dense after Flatten: its rows follow the channels-last flatten order ``(h, w, c)``;
    nn.Linear after an NCHW flatten sees ``(c, h, w)``: permute the rows, then transpose."""
    h, w, c = hwc
    return k.reshape(h, w, c, -1).transpose(3, 2, 0, 1).reshape(k.shape[1], c * h * w)


def _flatten_dense_from_torch(weight: np.ndarray, hwc: tuple[int, int, int]) -> np.ndarray:
    h, w, c = hwc
    return weight.reshape(-1, c, h, w).transpose(2, 3, 1, 0).reshape(h * w * c, -1)


def _same(a: np.ndarray) -> np.ndarray:
    return a


@dataclass
class TorchTwin:
    """A hand-written torch network and how each of its tensors maps to dualnet's weights:
    ``slots[i] = (tensor, to_torch, from_torch)`` for the i-th canonical weight."""

    net: Any
    slots: list[tuple[Any, Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]]

    def load(self, weights: Sequence[np.ndarray]) -> None:
        import torch

        if len(weights) != len(self.slots):
            raise AssertionError(f"{len(weights)} weights for {len(self.slots)} torch tensors")
        with torch.no_grad():
            for (tensor, to_torch, _), w in zip(self.slots, weights, strict=True):
                value = np.ascontiguousarray(to_torch(np.asarray(w, dtype=np.float32)))
                if tuple(tensor.shape) != value.shape:
                    raise AssertionError(f"torch tensor {tuple(tensor.shape)} <- {value.shape}")
                tensor.copy_(torch.as_tensor(value))

    def canonical_weights(self) -> list[np.ndarray]:
        return [from_torch(t.detach().cpu().float().numpy()) for t, _, from_torch in self.slots]


def _lenet_flatten_input(spec: CNN) -> tuple[int, int, int]:
    """LeNet's Flatten input ``(h, w, c)``: two (5×5 valid convolution, 2×2 pooling) stages."""
    h, w, _ = spec.input
    return ((h - 4) // 2 - 4) // 2, ((w - 4) // 2 - 4) // 2, 16


def _torch_lenet(spec: CNN) -> TorchTwin:
    from torch import nn

    hwc = _lenet_flatten_input(spec)  # channels last, as dualnet flattens
    conv1, conv2 = nn.Conv2d(spec.input[-1], 6, 5), nn.Conv2d(6, 16, 5)
    fc = nn.Linear(hwc[0] * hwc[1] * hwc[2], spec.classes)
    net = nn.Sequential(conv1, nn.ReLU(), nn.MaxPool2d(2), conv2, nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), fc)  # fmt: skip
    slots = [
        (conv1.weight, _conv_to_torch, _conv_from_torch), (conv1.bias, _same, _same),
        (conv2.weight, _conv_to_torch, _conv_from_torch), (conv2.bias, _same, _same),
        # Looked up at call time, so a test can replace the permutation and see the row refused.
        (fc.weight, lambda k: _flatten_dense_to_torch(k, hwc),
         lambda w: _flatten_dense_from_torch(w, hwc)),
        (fc.bias, _same, _same),
    ]  # fmt: skip
    return TorchTwin(net, slots)


def _torch_resnet_block(spec: CNN) -> TorchTwin:
    import torch
    from torch import nn

    c = spec.input[-1]

    def bn() -> Any:
        # Keras's conventions: eps 1e-3 (torch: 1e-5); torch's momentum weighs the batch, so
        # Keras's 0.99 is torch's 0.01. torch still updates running_var with the unbiased batch
        # variance (Keras: biased), so the moving statistics drift apart after a training call;
        # outputs in training mode use the batch statistics and stay equal.
        return nn.BatchNorm2d(c, eps=BN_EPSILON, momentum=1 - BN_MOMENTUM)

    class BasicBlockNet(nn.Module):
        """torchvision's BasicBlock (identity shortcut), then global average pooling and a
        linear classifier, as a torch user writes it."""

        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)  # 3×3, stride 1: 'same'
            self.bn1 = bn()
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn2 = bn()
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(c, spec.classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += x
            out = self.relu(out)
            return self.fc(torch.flatten(self.avgpool(out), 1))

    net = BasicBlockNet()
    slots: list[Any] = []
    for conv, norm in ((net.conv1, net.bn1), (net.conv2, net.bn2)):
        slots.append((conv.weight, _conv_to_torch, _conv_from_torch))
        # Keras's order: gamma, beta, moving_mean, moving_variance.
        slots += [(t, _same, _same) for t in (norm.weight, norm.bias, norm.running_mean,
                                              norm.running_var)]  # fmt: skip
    slots += [(net.fc.weight, _dense_to_torch, _dense_from_torch), (net.fc.bias, _same, _same)]
    return TorchTwin(net, slots)


def torch_twin(spec: CNN, weights: Sequence[np.ndarray], setup: Setup) -> TorchTwin:
    """The hand-written torch network with dualnet's weights, on the device and dtype."""
    twin = (_torch_lenet if spec.name == "lenet" else _torch_resnet_block)(spec)
    twin.load(weights)
    dtype = backend_module("torch").core.native_dtype(setup.dtype)
    twin.net.to(device=setup.device, dtype=dtype)  # in place: the slots keep pointing at it
    return twin


def _nchw(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


# ----------------------------------------------------------------------------- Keras twins


def keras_twin(spec: CNN, weights: Sequence[np.ndarray], setup: Setup) -> Any:
    """The same network from ``keras.layers`` (canonical layout: weights load as they are)."""
    import keras

    dt = setup.dtype
    inputs = keras.Input(spec.input, dtype=dt)
    if spec.name == "lenet":
        y = keras.layers.Conv2D(6, 5, activation="relu", dtype=dt)(inputs)
        y = keras.layers.MaxPooling2D(2, dtype=dt)(y)
        y = keras.layers.Conv2D(16, 5, activation="relu", dtype=dt)(y)
        y = keras.layers.MaxPooling2D(2, dtype=dt)(y)
        y = keras.layers.Flatten(dtype=dt)(y)
    else:
        c = spec.input[-1]

        def bn() -> Any:
            return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                                                   dtype=dt)  # fmt: skip

        y = keras.layers.Conv2D(c, 3, padding="same", use_bias=False, dtype=dt)(inputs)
        y = keras.layers.ReLU(dtype=dt)(bn()(y))
        y = bn()(keras.layers.Conv2D(c, 3, padding="same", use_bias=False, dtype=dt)(y))
        y = keras.layers.ReLU(dtype=dt)(keras.layers.Add(dtype=dt)([y, inputs]))
        y = keras.layers.GlobalAveragePooling2D(dtype=dt)(y)
    net = keras.Model(inputs, keras.layers.Dense(spec.classes, dtype=dt)(y))
    net.set_weights([np.asarray(w, dtype=np.float32) for w in weights])
    return net


def _trainable(net: Any, backend: str) -> list[Any]:
    return list(net.parameters()) if backend == "torch" else list(net.trainable_variables)


# ----------------------------------------------------------------------------- kernels


def _training_call(fn: Any) -> Callable[[Any], Any]:
    """``fn(x, training=True)`` as a one-argument function (the workload's signature)."""

    def call(x: Any) -> Any:
        return fn(x, training=True)

    return call


def _model_kernel(spec: CNN, pass_: str, compare: str, modes=("eager", "compiled")) -> Kernel:
    training = pass_ == "forward+backward"

    def build(setup: Setup) -> Workload:
        model, x_np = _build_dualnet(spec, setup)
        x = suite._tensor(x_np, setup.dtype)
        fn = _training_call(model) if training else model
        if setup.impl == "dualnet":
            params = suite.native_parameters(model, setup.backend) if training else None
            return Workload(fn=fn, args=(x,), params=params)
        weights = model.get_weights()
        if setup.backend == "torch":
            net = torch_twin(spec, weights, setup).net
            net.train(training)  # BatchNorm2d: batch statistics in training, moving otherwise
            native_fn, native_x = net, suite._tensor(_nchw(x_np), setup.dtype)
        else:
            net = keras_twin(spec, weights, setup)
            native_fn = _training_call(net) if training else net
            native_x = x
        suite._check_same(fn(x), native_fn(native_x), setup)
        params = _trainable(net, setup.backend) if training else None
        return Workload(fn=native_fn, args=(native_x,), params=params)

    mode = "training mode" if training else "inference"
    return Kernel(group="model" if compare == "backends" else "overhead", name=spec.name,
                  shape=spec.shape, build=build, flops=spec.flops(pass_), pass_=pass_,
                  compare=compare, modes=modes,
                  note=f"shape = (batch, H, W, C) input; {mode}")  # fmt: skip


def _train_data(spec: CNN, setup: Setup) -> tuple[np.ndarray, np.ndarray]:
    """The input and one-hot labels (cross-entropy on logits)."""
    x = suite._normal(spec.shape, setup.seed)
    labels = np.random.default_rng([setup.seed, 2]).integers(0, spec.classes, size=spec.batch)
    return x, np.eye(spec.classes, dtype=np.float32)[labels]


def _train_kernel(spec: CNN, compare: str) -> Kernel:
    def build(setup: Setup) -> Workload:
        suite.require_eager_train_step(setup)
        optimizers = suite._require("dualnet.optimizers")
        model, _ = _build_dualnet(spec, setup)
        x_np, y_np = _train_data(spec, setup)
        x, y = suite._tensor(x_np, setup.dtype), suite._tensor(y_np, setup.dtype)
        model.compile(optimizer=optimizers.SGD(suite.LEARNING_RATE),
                      loss=suite._train_loss(spec.name), run_eagerly=True)  # fmt: skip
        if setup.impl == "dualnet":
            model.train_step(x, y)  # build the optimizer, outside the clock
            return Workload(fn=model.train_step, args=(x, y), step=True)
        weights = model.get_weights()
        if setup.backend == "torch":
            twin = torch_twin(spec, weights, setup)
            net = twin.net.train()
            step = suite._torch_step(net, spec.name)
            native_x = suite._tensor(_nchw(x_np), setup.dtype)
            native_weights = twin.canonical_weights
        else:
            net = keras_twin(spec, weights, setup)
            step = suite._keras_step(net, spec.name)
            native_x = x

            def native_weights() -> list[np.ndarray]:
                return [np.asarray(w, dtype=np.float32) for w in net.get_weights()]

        # The training-mode outputs first: a finer test than the loss (a BatchNormalization
        # epsilon of 1e-5 instead of 1e-3 moves the loss by less than the tolerance, the outputs
        # by more). It only moves the moving statistics, which the step does not read.
        native_out = net(native_x, training=True) if setup.backend != "torch" else net(native_x)
        suite._check_same(model(x, training=True), native_out, setup, what="training output")
        # One step of each from the same weights: the same loss and trainable weights (the
        # moving statistics are not compared; see the module docstring).
        ours = model.train_step(x, y)["loss"]
        theirs = float(_ops.to_numpy(step(native_x, y)))
        suite._check_same(np.array([ours]), np.array([theirs]), setup, what="loss")
        after = native_weights()
        for i, (info, a, b) in enumerate(zip(model.weights, model.get_weights(), after,
                                             strict=True)):  # fmt: skip
            if info.trainable:
                suite._check_same(a, b, setup, what=f"weight {i} ({info.path}) after one step")
        return Workload(fn=step, args=(native_x, y), step=True)

    return Kernel(group="model" if compare == "backends" else "overhead", name=spec.name,
                  shape=spec.shape, build=build, flops=spec.flops("train"), pass_="train",
                  compare=compare, note="shape = (batch, H, W, C) input; cross-entropy on "
                  f"logits, SGD lr={suite.LEARNING_RATE}")  # fmt: skip


def kernels(quick: bool = False) -> list[Kernel]:
    """The CNN kernels. ``quick=True``: LeNet's forward (torch vs TF, both modes) and the residual
    block's training step against the hand-written ones (eager) only."""
    if quick:
        return [_model_kernel(LENET, "forward", "backends"),
                _train_kernel(RESNET_BLOCK, "overhead")]  # fmt: skip
    out: list[Kernel] = []
    for compare in ("backends", "overhead"):
        for spec in NETWORKS:
            out += [_model_kernel(spec, p, compare) for p in ("forward", "forward+backward")]
            out.append(_train_kernel(spec, compare))
    return out
