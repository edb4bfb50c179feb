"""An imported model trains as the original does: a torch module trained by a native
``torch.optim.SGD`` loop and a Keras model trained by its own ``train_on_batch`` against the
model imported *before* training (``dn.from_torch`` / ``dn.from_keras``) and trained with
dualnet's ``train_step`` on either backend, from the same batches, in float64 (so every
difference is a mistake, not rounding: ≤ 1e-12 relative). BatchNormalization runs in training
mode (batch statistics, the running statistics updated with the original framework's momentum
and variance estimator), which is what makes this more than a forward check."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from frameworks import torch as _torch

import dualnet as dn

STEPS = 3
# A power of two: Keras keeps the learning rate in a float32 variable even for a float64
# model, so 0.05 would differ from the float64 rule by 7e-10 relative at every update.
LR = 0.0625


def _close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    # float64 through three training steps, relative to the tensor's scale: 1e-10. Measured
    # worst 1.0e-12 (the torch module on TensorFlow: BatchNorm's training-mode backward cancels,
    # and the two frameworks sum in different orders); a wrong momentum, variance estimator,
    # epsilon or layout moves the weights by 1e-4 or more.
    scale = max(float(np.abs(want).max()), 1e-300)
    err = float(np.abs(got - want).max()) / scale
    assert err <= 1e-10, f"{what}: max |dualnet - original| / max|original| = {err:.2e}"


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_torch_module_trains_the_same_after_import(backend):
    torch = _torch()
    import torch_models

    module = torch_models.resnet18_like(width=8).double()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3, 16, 16))
    y = rng.standard_normal((8, 10))
    model = dn.from_torch(copy.deepcopy(module), torch.as_tensor(x), backend=backend)
    model.compile(optimizer=dn.optimizers.SGD(LR), loss="mse")

    native = module.train()  # torch's own loop: BatchNorm in training mode, SGD, MSELoss
    opt = torch.optim.SGD(native.parameters(), lr=LR)
    for _ in range(STEPS):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(native(torch.as_tensor(x)), torch.as_tensor(y))
        loss.backward()
        opt.step()
        model.train_step(x, y)
    # The trained module imported again gives its weights in dualnet's layout (kernels
    # transposed, BatchNorm running statistics included), by the same layer names.
    trained = dn.from_torch(native.eval(), torch.as_tensor(x), backend="torch")
    assert [w.path.split("/", 1)[1] for w in trained.weights] == [
        w.path.split("/", 1)[1] for w in model.weights]  # fmt: skip
    for info, got, want in zip(model.weights, model.get_weights(), trained.get_weights(),
                               strict=True):  # fmt: skip
        _close(got, want, info.path)


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_keras_model_trains_the_same_after_import(backend):
    _torch()  # torch before TensorFlow in one process
    import keras
    import keras_models

    rng = np.random.default_rng(1)
    with keras_models.floatx("float64"):
        # All of Keras's side inside the block: its loss object is made at the first
        # train_on_batch and computes in floatx (float32 outside it).
        original = keras_models.residual_cnn()
        original.compile(optimizer=keras.optimizers.SGD(LR), loss="mse")
        model = dn.from_keras(original, backend=backend)  # imported before any training
        model.compile(optimizer=dn.optimizers.SGD(LR), loss="mse")
        x = rng.standard_normal((8, *original.input_shape[1:]))
        y = rng.standard_normal((8, *original.output_shape[1:]))
        for _ in range(STEPS):
            original.train_on_batch(x, y)
            model.train_step(x, y)
    want = {w.path: np.asarray(w.numpy()) for w in original.weights}
    for info, got in zip(model.weights, model.get_weights(), strict=True):
        path = info.path.split("/", 1)[1]  # "<layer>/<weight>", Keras's own path
        _close(got, want[path], path)
