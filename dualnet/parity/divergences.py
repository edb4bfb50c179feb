"""Known places where a framework's own op departs from the documented math, as data.

Like array-api-compat's ``*-xfails.txt``, each record names the native API, the dtype, the
symptom and what dualnet does about it, plus a *probe*: a tiny computation with the native op
that returns the size of its error against exact math. ``tests/test_divergences.py`` asserts
every probe still exceeds its threshold, so when a framework release fixes one, the test says
so and the workaround can go. ``dualnet parity`` prints the table with the measured errors.

These are numerical defects or convention splits of the *native* ops; dualnet's backends work
around each one (see the comment at the workaround), so the parity catalogue passes — except
where the record's ``dualnet`` field says it is only documented.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from dualnet._backend import backend_module


@dataclass(frozen=True, kw_only=True)
class Divergence:
    """One native-op departure from the documented math.

    Attributes:
        id: a short stable name.
        framework: "torch" or "tensorflow".
        api: the native function.
        dtype: where it shows.
        symptom: what goes wrong, with the size measured when the record was written.
        dualnet: what dualnet's backend does instead.
        probe: returns the native error now (imports the framework).
        threshold: the divergence is present while ``probe() > threshold``.
        machine_dependent: seen on some processors only (e.g. AVX-512 kernels).
    """

    id: str
    framework: str
    api: str
    dtype: str
    symptom: str
    dualnet: str
    probe: Callable[[], float]
    threshold: float
    machine_dependent: bool = False  # present on some CPUs only (the test then skips if absent)


def _tf():
    backend_module("tensorflow")  # imports torch first when installed, then TF with our settings
    import tensorflow as tf

    return tf


def _torch():
    backend_module("torch")
    import torch

    return torch


def _probe_tf_leaky_relu() -> float:
    tf = _tf()
    x = tf.constant([-1e4], tf.float64)
    return abs(float(tf.nn.leaky_relu(x, alpha=0.2).numpy()[0]) - (-2000.0))


def _probe_tf_gelu(approximate: bool) -> Callable[[], float]:
    def probe() -> float:
        tf = _tf()
        x = -1.5
        if approximate:
            c = math.sqrt(2.0 / math.pi)
            exact = 0.5 * x * (1.0 + math.tanh(c * (x + 0.044715 * x**3)))
        else:
            exact = 0.5 * x * math.erfc(-x / math.sqrt(2.0))
        got = float(tf.nn.gelu(tf.constant([x], tf.float64), approximate=approximate).numpy()[0])
        return abs(got - exact)

    return probe


def _probe_tf_selu_grad() -> float:
    tf = _tf()
    x = tf.constant([0.0], tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.nn.selu(x)
    left = 1.0507009873554805 * 1.6732632423543772  # λ·α, the left derivative
    return abs(float(tape.gradient(y, x).numpy()[0]) - left)


def _probe_tf_gelu_tanh_half_grad() -> float:
    tf = _tf()
    x = tf.constant([1000.0], tf.float16)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.nn.gelu(x, approximate=True)
    g = float(tape.gradient(y, x).numpy()[0])
    return math.inf if not math.isfinite(g) else abs(g - 1.0)


def _probe_torch_hardsigmoid_grad() -> float:
    torch = _torch()
    x = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    torch.nn.functional.hardsigmoid(x).sum().backward()
    return abs(float(x.grad[0]) - 1.0 / 6.0)


def _probe_torch_softplus() -> float:
    torch = _torch()
    x = 20.5
    exact = x + math.log1p(math.exp(-x))
    return abs(
        float(torch.nn.functional.softplus(torch.tensor([x], dtype=torch.float64))[0]) - exact
    )


def _probe_torch_gelu_tail() -> float:
    torch = _torch()
    x = -8.0
    exact = 0.5 * x * math.erfc(-x / math.sqrt(2.0))
    got = float(torch.nn.functional.gelu(torch.tensor([x], dtype=torch.float64))[0])
    return abs(got - exact) / abs(exact)  # relative: the absolute error is ~1e-16


def _probe_tf_softmax_xent_grad() -> float:
    tf = _tf()
    logits = tf.constant([[0.1, 1.1, 0.6]], tf.float64)
    target = tf.constant([[0.0, 0.0, 0.5]], tf.float64)  # does not sum to 1
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = tf.nn.softmax_cross_entropy_with_logits(labels=target, logits=logits)
    p = tf.nn.softmax(logits)
    true = tf.reduce_sum(target) * p - target  # d/dx of -Σ t·log softmax(x)
    return float(tf.reduce_max(tf.abs(tape.gradient(loss, logits) - true)))


def _probe_keras_logits_attribute() -> float:
    _tf()
    import keras

    z = keras.ops.convert_to_tensor([[20.0]])
    y_true = keras.ops.convert_to_tensor([[0.0]])
    from_activation = keras.activations.sigmoid(z)  # carries _keras_logits
    plain = keras.ops.convert_to_tensor(keras.ops.convert_to_numpy(from_activation))
    a = float(keras.losses.binary_crossentropy(y_true, from_activation)[0])
    b = float(keras.losses.binary_crossentropy(y_true, plain)[0])
    return abs(a - b)  # same numbers in, different loss out


def _probe_keras_float32_hyperparameters() -> float:
    _tf()
    import keras

    return abs(float(keras.ops.cast(0.9, "float64")) - 0.9)


def _probe_torch_sqrt_rounding() -> float:
    torch = _torch()
    import numpy as np

    x = np.random.default_rng(0).uniform(0.5, 2.0, 100_000).astype(np.float32)
    got = torch.sqrt(torch.from_numpy(x)).numpy()
    return float(np.mean(got != np.sqrt(x)))  # numpy's sqrt is IEEE correctly rounded


def _probe_tf_matmul_inf_minus_inf() -> float:
    tf = _tf()
    a = tf.constant([[1e30, 1e30]], tf.float32)
    b = tf.constant([[1e30], [-1e30]], tf.float32)  # products +inf and -inf: IEEE sum is NaN
    got = float(tf.matmul(a, b).numpy()[0, 0])
    return 0.0 if math.isnan(got) else math.inf


def _probe_tf_resize_bilinear_float64() -> float:
    import numpy as np

    from dualnet.reference.layers import reshaping

    tf = _tf()
    x = np.random.default_rng(0).normal(size=(1, 3, 3, 1))
    got = tf.image.resize(tf.constant(x, tf.float64), (9, 9), method="bilinear")  # float32 out
    exact = reshaping.up_sampling2d(x, size=(3, 3), interpolation="bilinear")
    return float(np.max(np.abs(np.asarray(got, np.float64) - exact)))


def _probe_keras_layernorm_mixed_axes() -> float:
    import keras
    import numpy as np

    from dualnet.reference.layers import normalization

    _tf()
    rng = np.random.default_rng(0)
    x, gamma = rng.normal(size=(2, 3, 4)), rng.normal(size=(3, 4))
    layer = keras.layers.LayerNormalization(axis=[-1, 1], dtype="float64")
    layer.build(x.shape)
    layer.gamma.assign(gamma.T)  # Keras makes gamma (C, H) for axes [-1, 1]
    exact = normalization.layer_normalization(x, {"gamma": gamma, "beta": np.zeros((3, 4))},
                                              axis=[1, 2])  # fmt: skip
    return float(np.max(np.abs(np.asarray(layer(x)) - exact)))


def _probe_keras_unitnorm_float16() -> float:
    import keras
    import numpy as np

    _tf()
    got = keras.layers.UnitNormalization(dtype="float16")(np.array([[300.0, 0.0]], np.float16))
    return float(np.max(np.abs(np.asarray(got, np.float64) - np.array([[1.0, 0.0]]))))


def _probe_tf_avg_pool_float16() -> float:
    import numpy as np

    tf = _tf()
    x = np.random.default_rng(0).normal(size=(1, 9, 9, 4)).astype(np.float16)
    got = tf.nn.avg_pool2d(tf.constant(x), 3, 3, "VALID").numpy().astype(np.float64)
    rounded = x.astype(np.float64).reshape(1, 3, 3, 3, 3, 4).mean(axis=(2, 4))
    rounded = rounded.astype(np.float16)  # the exact mean, rounded once
    ulp = np.spacing(np.abs(rounded)).astype(np.float64)
    return float(np.max(np.abs(got - rounded.astype(np.float64)) / ulp))  # in ulps


def _probe_keras_relu_float64_max_value() -> float:
    import keras
    import numpy as np

    _tf()
    got = keras.layers.ReLU(max_value=1.1, dtype="float64")(np.array([2.0]))
    return abs(float(np.asarray(got)[0]) - 1.1)


KNOWN: tuple[Divergence, ...] = (
    Divergence(
        id="tf-leaky_relu-float64-slope", framework="tensorflow",
        api="tf.nn.leaky_relu / keras.activations.leaky_relu", dtype="float64",
        symptom="`alpha` is a 32-bit float attribute: slope 0.2 becomes 0.20000000298; "
        "-2000.0000298 instead of -2000 at x=-1e4",
        dualnet="where(x > 0, x, slope·x) with the slope as a constant of x's dtype",
        probe=_probe_tf_leaky_relu, threshold=1e-9,
    ),
    Divergence(
        id="tf-gelu-float64-constants", framework="tensorflow",
        api="tf.nn.gelu(approximate=False) / keras.activations.gelu", dtype="float64",
        symptom="math_ops.cast(0.7071067811865476, float64) goes through a float32 tensor: "
        "1/√2 rounded to float32, error ≈5e-9 at x=-1.5",
        dualnet="0.5·x·erfc(-x/√2) with the constant made in x's dtype",
        probe=_probe_tf_gelu(False), threshold=1e-12,
    ),
    Divergence(
        id="tf-gelu-tanh-float64-constants", framework="tensorflow",
        api="tf.nn.gelu(approximate=True)", dtype="float64",
        symptom="0.044715 cast through float32: error ≈9e-10 at x=-1.5",
        dualnet="the tanh formula with constants made in x's dtype",
        probe=_probe_tf_gelu(True), threshold=1e-12,
    ),
    Divergence(
        id="tf-gelu-tanh-float16-grad-nan", framework="tensorflow",
        api="tf.nn.gelu(approximate=True) gradient", dtype="float16",
        symptom="x³ overflows float16 for |x| > 40 and 3x² for |x| > 148; at x=1000 the gradient "
        "is 0·inf = NaN (torch: 1.0)",
        dualnet="half-precision activations are computed in float32 and rounded once, as "
        "torch's CPU kernels do",
        probe=_probe_tf_gelu_tanh_half_grad, threshold=1e-2,
    ),
    Divergence(
        id="tf-selu-grad-at-zero", framework="tensorflow", api="tf.nn.selu gradient",
        dtype="all", symptom="derivative at exactly 0 is λ (right side); torch gives λ·α "
        "(left side, the side relu and leaky_relu take in both frameworks)",
        dualnet="λ·α on both backends (where(x > 0, …) picks the left branch at 0)",
        probe=_probe_tf_selu_grad, threshold=1e-3,
    ),
    Divergence(
        id="torch-hardsigmoid-float64-grad", framework="torch",
        api="torch.nn.functional.hardsigmoid backward", dtype="float64",
        symptom="the slope 1/6 is a float32 constant: relative error 3e-8 in the gradient",
        dualnet="relu6(x + 3) / 6 in x's dtype",
        probe=_probe_torch_hardsigmoid_grad, threshold=1e-13,
    ),
    Divergence(
        id="torch-softplus-threshold", framework="torch",
        api="torch.nn.functional.softplus", dtype="all",
        symptom="returns x itself above threshold=20: error log1p(e^-x) ≤ 2.1e-9",
        dualnet="logaddexp(x, 0): exact, derivative σ(x) everywhere (as Keras)",
        probe=_probe_torch_softplus, threshold=1e-12,
    ),
    Divergence(
        id="torch-gelu-left-tail", framework="torch",
        api="torch.nn.functional.gelu(approximate='none')", dtype="float32, float64",
        symptom="0.5·x·(1 + erf(x/√2)) cancels for x < -3: relative error 2% at x=-8, 100% "
        "beyond (absolute ≈ 2e-16)",
        dualnet="0.5·x·erfc(-x/√2), as tf.nn.gelu computes",
        probe=_probe_torch_gelu_tail, threshold=1e-3,
    ),
    Divergence(
        id="tf-softmax-xent-unnormalised-targets-grad", framework="tensorflow",
        api="tf.nn.softmax_cross_entropy_with_logits gradient", dtype="all",
        symptom="the gradient is softmax(x) - t, right only when the targets sum to 1: for "
        "t=[0, 0, 0.5] it is off by up to 0.33",
        dualnet="-Σ t·log_softmax(x) written out (autodiff gives Σt·softmax(x) - t)",
        probe=_probe_tf_softmax_xent_grad, threshold=1e-3,
    ),
    Divergence(
        id="keras-logits-attribute", framework="tensorflow",
        api="keras.losses.*crossentropy on outputs of keras.activations.sigmoid/softmax",
        dtype="all", symptom="Keras uses the logits cached on the tensor (_keras_logits) "
        "instead of the probabilities: σ(20) vs target 0 costs 20.0, the same numbers from "
        "numpy cost 16.1 (clipped)",
        dualnet="cross-entropies written with tf ops: the loss depends on the values only",
        probe=_probe_keras_logits_attribute, threshold=1e-3,
    ),
    Divergence(
        id="keras-float32-hyperparameters", framework="tensorflow",
        api="keras.optimizers (learning rate, momentum, betas); keras.ops.cast(python float)",
        dtype="float64", symptom="Python floats become float32 first: cast(0.9, 'float64') "
        "is 0.8999999761581421, so float64 training uses float32-rounded hyper-parameters",
        dualnet="hyper-parameters stay Python floats (float64) and are rounded once to the "
        "weights' dtype",
        probe=_probe_keras_float32_hyperparameters, threshold=1e-9,
    ),
    Divergence(
        id="torch-sqrt-not-correctly-rounded", framework="torch",
        api="torch.sqrt (vectorised CPU kernel)", dtype="float32",
        symptom="on AVX-512 CPUs about 17% of float32 results are 1 ulp off the correctly "
        "rounded value (TF and numpy are exact)",
        dualnet="optimizers take float32 square roots through float64, which rounds exactly",
        probe=_probe_torch_sqrt_rounding, threshold=0.0, machine_dependent=True,
    ),
    Divergence(
        id="tf-matmul-inf-minus-inf", framework="tensorflow",
        api="tf.matmul (oneDNN CPU kernel)", dtype="float32",
        symptom="a dot product whose terms overflow to +inf and -inf returns inf; IEEE (numpy, "
        "torch) gives NaN",
        dualnet="documented, not worked around: an overflowing network stops with "
        "NonFiniteError on torch and may keep going on TensorFlow",
        probe=_probe_tf_matmul_inf_minus_inf, threshold=0.0, machine_dependent=True,
    ),
    Divergence(
        id="tf-resize-bilinear-float64", framework="tensorflow",
        api="tf.image.resize(method='bilinear')", dtype="float64",
        symptom="returns float32 for float64 input (2e-7 from the float64 interpolation)",
        dualnet="UpSampling2D's bilinear float64 path interpolates with float64 ops",
        probe=_probe_tf_resize_bilinear_float64, threshold=1e-12,
    ),
    Divergence(
        id="keras-layernorm-mixed-sign-axes", framework="tensorflow",
        api="keras.layers.LayerNormalization(axis=[-1, 1])", dtype="all",
        symptom="gamma is made (C, H) and broadcast in the wrong order (2.7 off with a random "
        "gamma)",
        dualnet="LayerNormalization hands Keras resolved, sorted axes",
        probe=_probe_keras_layernorm_mixed_axes, threshold=1e-3,
    ),
    Divergence(
        id="keras-unitnorm-float16-overflow", framework="tensorflow",
        api="keras.layers.UnitNormalization", dtype="float16",
        symptom="the squared norm overflows: [300, 0] normalises to [0, 0]",
        dualnet="half precision computed in float32 and rounded once",
        probe=_probe_keras_unitnorm_float16, threshold=0.5,
    ),
    Divergence(
        id="tf-avg-pool-float16", framework="tensorflow", api="tf.nn.avg_pool2d (CPU)",
        dtype="float16",
        symptom="sums in float16: ulps away from the mean rounded once (3 ulps on 3x3 windows)",
        dualnet="average pooling in half precision computed in float32 and rounded once",
        probe=_probe_tf_avg_pool_float16, threshold=0.5, machine_dependent=True,
    ),
    Divergence(
        id="keras-relu-float64-max-value", framework="tensorflow",
        api="keras.layers.ReLU(max_value=...)", dtype="float64",
        symptom="max_value (and a lone slope) rounded to float32: 1.1 becomes 1.1000000238",
        dualnet="ReLU/LeakyReLU/PReLU written with tf.where, constants in x's dtype",
        probe=_probe_keras_relu_float64_max_value, threshold=1e-12,
    ),
)  # fmt: skip


def measure() -> list[tuple[Divergence, float | str]]:
    """Run every probe; a probe that raises reports the error text instead of a number."""
    out: list[tuple[Divergence, float | str]] = []
    for d in KNOWN:
        try:
            out.append((d, d.probe()))
        except Exception as exc:  # a missing framework or API: shown in the table, not fatal
            out.append((d, f"{type(exc).__name__}: {exc}"))
    return out
