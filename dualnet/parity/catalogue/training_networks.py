"""Training parity of convolutional networks (Note [Network training cases]): a LeNet-style CNN,
a functional residual block with BatchNormalization in training mode, and a CNN with Dropout,
each trained 100 steps by ``model.train_step`` on both backends from the same weights and
batches, with the loss, the moving statistics and the first gradient of every run checked
against the float64 reference."""

from __future__ import annotations

import dualnet as dn
from dualnet import layers as L
from dualnet import optimizers as O
from dualnet.parity import tolerance as tol
from dualnet.parity.cases import register
from dualnet.parity.network_training import NetworkTrainingCase


def lenet(dtype: str) -> dn.Model:
    """Conv-Pool-Conv-Pool-Flatten-Dense on 28×28×1 (LeNet-5's layout, one Dense head)."""
    return dn.Sequential([
        dn.Input((28, 28, 1), dtype=dtype),
        L.Conv2D(4, 5, activation="relu", dtype=dtype, name="conv1"),
        L.MaxPooling2D(2, dtype=dtype, name="pool1"),
        L.Conv2D(6, 5, activation="relu", dtype=dtype, name="conv2"),
        L.MaxPooling2D(2, dtype=dtype, name="pool2"),
        L.Flatten(dtype=dtype, name="flatten"),
        L.Dense(10, dtype=dtype, name="logits"),
    ], name="lenet")  # fmt: skip


def residual(dtype: str) -> dn.Model:
    """Conv-BN-ReLU-Conv-BN + Add + ReLU (a ResNet basic block), pooled to logits."""
    inputs = dn.Input((8, 8, 4), dtype=dtype, name="image")
    h = L.Conv2D(4, 3, padding="same", use_bias=False, dtype=dtype, name="conv1")(inputs)
    h = L.BatchNormalization(dtype=dtype, name="bn1")(h)
    h = L.ReLU(dtype=dtype, name="relu1")(h)
    h = L.Conv2D(4, 3, padding="same", use_bias=False, dtype=dtype, name="conv2")(h)
    h = L.BatchNormalization(dtype=dtype, name="bn2")(h)
    h = L.Add(dtype=dtype, name="add")([inputs, h])
    h = L.ReLU(dtype=dtype, name="relu2")(h)
    h = L.GlobalAveragePooling2D(dtype=dtype, name="pool")(h)
    return dn.Model(inputs, L.Dense(3, dtype=dtype, name="logits")(h), name="residual")


def dropout_cnn(dtype: str) -> dn.Model:
    """Conv-ReLU-Dropout-Flatten-Dense: dropout masks from dualnet's portable generator."""
    return dn.Sequential([
        dn.Input((10, 10, 2), dtype=dtype),
        L.Conv2D(4, 3, strides=2, padding="same", activation="relu", dtype=dtype, name="conv"),
        L.Dropout(0.3, seed=11, dtype=dtype, name="dropout"),
        L.Flatten(dtype=dtype, name="flatten"),
        L.Dense(3, dtype=dtype, name="logits"),
    ], name="dropout_cnn")  # fmt: skip


# Growth of the torch-vs-TensorFlow drift over the 100 updates, measured per case
# (tol.Growth.measured: twice the largest err/one-step bound of the loss, state and weights
# rows, float32 and float64, CPU, one thread, TensorFlow's compiled step; 2026-12-01).
MEASURED = {
    "lenet-28x28-sgd-momentum": 0.00175,
    "residual-bn-adam": 0.0159,
    "dropout-cnn-adam": 0.00142,
}
GROWTH = {name: tol.Growth.measured(ratio, 100, name) for name, ratio in MEASURED.items()}


register(
    NetworkTrainingCase(
        name="lenet-28x28-sgd-momentum", growth=GROWTH["lenet-28x28-sgd-momentum"],
        build=lenet, input_shape=(28, 28, 1), classes=10,
        optimizer=O.SGD(0.01, momentum=0.9), reduction=150,
        notes="K = 5·5·6 taps of conv2; lr 0.01 (at 0.05 the momentum dynamics are chaotic: a "
        "1e-9 difference on step 1 grew to 700x the one-step bound by step 100)",
    ),
    NetworkTrainingCase(
        name="residual-bn-adam", growth=GROWTH["residual-bn-adam"],
        build=residual, input_shape=(8, 8, 4), classes=3,
        optimizer=O.Adam(0.01), reduction=64,
        notes="BatchNormalization in training mode; moving statistics checked every step",
    ),
    NetworkTrainingCase(
        name="dropout-cnn-adam", growth=GROWTH["dropout-cnn-adam"],
        build=dropout_cnn, input_shape=(10, 10, 2), classes=3,
        optimizer=O.Adam(0.01), reduction=100,
        notes="Dropout(0.3): the same portable masks on both backends and in the reference",
    ),
)  # fmt: skip
