"""Training parity for networks of any layers (CNNs, residual blocks, dropout): 100 updates on
both backends from the same weights and batches, every step anchored to the float64 reference.

Note [Network training cases]
-----------------------------
The MLP cases of the training family (``catalogue/training.py``) run a float64 numpy reference
of the whole trajectory, with analytic backpropagation written for Dense layers. For networks of
convolutions, pooling, normalization and dropout, dualnet's reference has forwards for every
layer but no backward pass, so a :class:`NetworkTrainingCase` anchors the trajectory differently,
and checks more at each step:

* ``loss``: each backend's loss at every step against the reference loss *evaluated on that
  backend's own weights before the step* (the layer references composed by
  :func:`dualnet.reference.layers.model_forward`, training mode, the same batch and dropout
  masks), and torch against TensorFlow;
* ``state``: the non-trainable weights after every step (BatchNormalization's moving
  statistics) against the reference update from the weights before it, and across backends;
* ``grad1``: the gradient of the first step against a float64 central finite difference of the
  reference loss, on a fixed random sample of coordinates of every trainable weight;
* ``weights``: the weights after the last update, torch against TensorFlow, with the growth of
  ``max|w_torch - w_tf|`` after 1, 10, 50 and 100 updates in the detail.

So every forward pass of the 100 steps is checked against the reference, and the updates are
checked against it at step 1 and across frameworks throughout.

Tolerance: the one-step checks use the assert_close default × √K with K the longest sum in the
network (``reduction``: a convolution's taps × channels, a Dense fan-in, the batch); the
cross-backend trajectory checks multiply that by the case's ``growth``, the factor measured for
it over its 100 updates (twice the largest err/one-step bound seen, at least 1: the one policy
for growth over steps, :func:`dualnet.parity.tolerance.for_steps`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import dualnet as dn
from dualnet import losses as L
from dualnet import optimizers as O
from dualnet import training
from dualnet._backend import BACKENDS, backend_module, use_backend
from dualnet.parity import tolerance as tol
from dualnet.parity.cases import Case, Check, case_seed, flat, round_to, status_of, three_way
from dualnet.parity.compare import compare
from dualnet.reference import layers as RL
from dualnet.reference import losses as RLoss

GROWTH_AT = (1, 10, 50, 100)
_FD_STEP = float(np.cbrt(np.finfo(np.float64).eps))


def _f64(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


@dataclass(frozen=True, kw_only=True)
class NetworkTrainingCase(Case):
    """One network trained by ``model.train_step`` on both backends (Note [Network training
    cases]); categorical cross-entropy on logits.

    Attributes:
        build: ``dtype -> model`` (Sequential or functional, built at construction).
        input_shape: one sample's shape.
        classes: the number of classes (the model outputs logits).
        optimizer: the optimizer spec (a fresh copy per run).
        samples, batch_size, steps: the data and the schedule (batches as ``fit`` draws them).
        reduction: the longest sum in the network, for the tolerance.
        grad_coords: coordinates sampled per trainable weight for the ``grad1`` check.
        data: ``(rng, samples) -> (x, y)`` for other data than standard-normal inputs and
            one-hot classes (padded id sequences and per-timestep labels); ``y`` holds integer
            labels when ``sparse``.
        sparse: integer labels and ``SparseCategoricalCrossentropy(from_logits=True)``.
        growth: how far the two trajectories may drift apart over ``steps`` updates, measured
            for this case (:class:`~dualnet.parity.tolerance.Growth`).
    """

    family: str = "training"
    dtypes: tuple[str, ...] = ("float32", "float64")
    build: Callable[[str], Any]
    input_shape: tuple[int, ...]
    classes: int
    optimizer: O.Optimizer
    samples: int = 32
    batch_size: int = 8
    steps: int = 100
    reduction: int = 1
    grad_coords: int = 6
    data: Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]] | None = None
    sparse: bool = False
    growth: tol.Growth

    # -- data ---------------------------------------------------------------------------------
    def sample(self, dtype: str) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], Any]:
        """Inputs, one-hot targets, initial canonical weights (the model's own initializers,
        seeded) and a float64 copy of the model for the reference, all framework-free."""
        rng = np.random.default_rng(case_seed(self.name))
        if self.data is not None:
            x, y = self.data(rng, self.samples)
        else:
            x = rng.standard_normal((self.samples, *self.input_shape))
            y = np.eye(self.classes)[rng.integers(0, self.classes, self.samples)]
        with use_backend("torch"):
            dn.set_random_seed(case_seed(self.name) % 2**31)
            model = self.build("float64")
            weights = model.get_weights()
        return (round_to(x, dtype), round_to(y, dtype), [round_to(w, dtype) for w in weights],
                model)  # fmt: skip

    def batches(self) -> list[np.ndarray]:
        per_epoch = -(-self.samples // self.batch_size)
        epochs = -(-self.steps // per_epoch)
        orders = training.batch_orders(self.samples, self.batch_size, epochs, shuffle=True,
                                       seed=case_seed(self.name))  # fmt: skip
        out = [o[i : i + self.batch_size] for o in orders
               for i in range(0, self.samples, self.batch_size)]  # fmt: skip
        return out[: self.steps]

    def _loss(self) -> L.Loss:
        if self.sparse:
            return L.SparseCategoricalCrossentropy(from_logits=True)
        return L.CategoricalCrossentropy(from_logits=True)

    def reference_loss(self, model: Any, x: np.ndarray, y: np.ndarray, weights: list[np.ndarray],
                       call: int = 0) -> tuple[float, list[np.ndarray]]:  # fmt: skip
        """The float64 loss of training call ``call`` (its dropout masks) and the weights
        after it; with a mask on the output, the mean over the valid steps (Note [Masks])."""
        logits, after, mask = RL.model_forward(model, x, weights, training=True, call=call,
                                               with_mask=True)  # fmt: skip
        if self.sparse:
            values = RLoss.sparse_categorical_crossentropy(y, logits, from_logits=True)
        else:
            values = RLoss.categorical_crossentropy(y, logits, from_logits=True)
        if mask is None:
            return float(np.mean(values)), after
        valid = np.broadcast_to(np.asarray(mask, bool), values.shape)
        return float(np.sum(values[valid]) / max(int(valid.sum()), 1)), after

    # -- runs ---------------------------------------------------------------------------------
    def _fresh(self, backend: str, dtype: str, weights: list[np.ndarray]) -> Any:
        model = self.build(dtype)
        model.set_weights(weights)
        optimizer = type(self.optimizer).from_config(self.optimizer.get_config())
        model.compile(optimizer=optimizer, loss=self._loss())
        return model

    def run_backend(self, backend: str, x, y, weights, dtype: str, device: str) -> dict[str, Any]:
        with use_backend(backend), backend_module(backend).core.device_scope(device):
            probe = self._fresh(backend, dtype, weights)  # its own dropout call counter
            first = self.batches()[0]
            _, grads = training.value_and_gradients(probe, x[first], y[first], self._loss())
            model = self._fresh(backend, dtype, weights)
            losses, before, after = [], [], []
            for idx in self.batches():
                before.append(model.get_weights())
                losses.append(model.train_step(x[idx], y[idx])["loss"])
                after.append(model.get_weights())
        return {"grads": grads, "loss": np.array(losses), "before": before, "after": after}

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate(self, dtype: str, device: str) -> list[Check]:
        x, y, weights, ref_model = self.sample(dtype)
        runs = self.on_each_backend(
            dtype, device, lambda b: self.run_backend(b, x, y, weights, dtype, device),
            check="loss",
        )  # fmt: skip
        if isinstance(runs, Check):
            return [runs]
        x64 = _f64(x) if x.dtype.kind == "f" else x
        y64 = _f64(y) if y.dtype.kind == "f" else y
        one = tol.for_reduction(dtype, self.reduction)
        long = tol.grown(one, self.growth)
        frozen = [not w.trainable for w in ref_model.weights]
        checks: list[Check] = []

        # Every step's forward (and moving-statistics update) against the reference, evaluated
        # on each backend's own weights before that step.
        ref_loss: dict[str, np.ndarray] = {}
        ref_state: dict[str, np.ndarray] = {}
        for b in BACKENDS:
            values, states = [], []
            for k, (idx, w) in enumerate(zip(self.batches(), runs[b]["before"], strict=True)):
                value, new = self.reference_loss(ref_model, x64[idx], y64[idx], w, call=k)
                values.append(value)
                states.append(flat(n for n, f in zip(new, frozen, strict=True) if f))
            ref_loss[b], ref_state[b] = np.array(values), np.concatenate(states)

        def row(check: str, got: dict[str, np.ndarray], expected: dict[str, np.ndarray] | None,
                cross: tol.Tolerance, detail: str = "") -> None:  # fmt: skip
            comps = {"torch~tensorflow": compare(got["torch"], got["tensorflow"], cross)}
            if expected is not None:
                for b in BACKENDS:
                    comps[f"{b}~ref"] = compare(got[b], expected[b], one)
            checks.append(self.check(check, dtype, device, status_of(comps), comparisons=comps,
                                     detail=detail))  # fmt: skip

        row("loss", {b: runs[b]["loss"] for b in BACKENDS}, ref_loss, long,
            "every step: reference loss on the backend's weights before the step")  # fmt: skip
        if any(frozen):
            state = {b: np.concatenate([flat(n for n, f in zip(a, frozen, strict=True) if f)
                                        for a in runs[b]["after"]]) for b in BACKENDS}  # fmt: skip
            row("state", state, ref_state, long,
                "moving statistics after every step vs the reference update")  # fmt: skip
        checks.append(self._grad1(ref_model, x64, y64, weights, runs, dtype, device, one))
        growth = {k: float(np.max(np.abs(flat(runs["torch"]["after"][k - 1])
                                         - flat(runs["tensorflow"]["after"][k - 1]))))
                  for k in GROWTH_AT if k <= self.steps}  # fmt: skip
        detail = "max|w_torch-w_tf| after " + ", ".join(f"{k}: {v:.1e}" for k, v in growth.items())
        row("weights", {b: flat(runs[b]["after"][-1]) for b in BACKENDS}, None, long, detail)
        return checks

    def _grad1(
        self, model: Any, x: np.ndarray, y: np.ndarray, weights: list[np.ndarray],
        runs: dict[str, Any], dtype: str, device: str, bound: tol.Tolerance,
    ) -> Check:  # fmt: skip
        """First-step gradients on sampled coordinates against a central finite difference of
        the float64 reference loss (its own error estimated from two step sizes)."""
        idx = self.batches()[0]
        w64 = [_f64(w) for w in weights]
        trainable = [i for i, info in enumerate(model.weights) if info.trainable]
        rng = np.random.default_rng(case_seed(self.name) + 7)
        picks = [(i, rng.integers(0, w64[i].size, min(self.grad_coords, w64[i].size)))
                 for i in trainable]  # fmt: skip

        def loss_at(i: int, j: int, delta: float) -> float:
            ws = [w.copy() for w in w64]
            ws[i].reshape(-1)[j] += delta
            return self.reference_loss(model, x[idx], y[idx], ws)[0]

        fd, err, got = [], [], {b: [] for b in BACKENDS}
        for k, (i, coords) in enumerate(picks):
            for j in coords:
                d1 = (loss_at(i, j, _FD_STEP) - loss_at(i, j, -_FD_STEP)) / (2 * _FD_STEP)
                h = _FD_STEP / 2
                d2 = (loss_at(i, j, h) - loss_at(i, j, -h)) / (2 * h)
                fd.append(d2)
                err.append(2 * abs(d2 - d1) + 16 * np.finfo(float).eps / h)
                for b in BACKENDS:
                    got[b].append(float(np.asarray(runs[b]["grads"][k]).reshape(-1)[j]))
        expected = np.array(fd)
        want = _f64(round_to(expected, dtype))
        comps = three_way(np.array(got["torch"]), np.array(got["tensorflow"]), want, bound,
                          extra_atol=np.array(err))  # fmt: skip
        return self.check(
            "grad1",
            dtype,
            device,
            status_of(comps),
            comparisons=comps,
            detail=f"{len(fd)} sampled coordinates vs finite differences",
        )
