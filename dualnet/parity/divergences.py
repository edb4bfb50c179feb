"""Known places where a framework's own op departs from the documented math, as data.

Like array-api-compat's ``*-xfails.txt``, each record names the native API, the dtype, the
symptom and what dualnet does about it, plus a *probe*: a tiny computation with the native op
that returns the size of its error against exact math. ``tests/test_divergences.py`` asserts
every probe still exceeds its threshold, so when a framework release fixes one, the test says
so and the workaround can go. ``dualnet parity`` prints the table with the measured errors.

A native op that *refuses* a configuration dualnet supports (a CPU kernel TensorFlow lacks) is
recorded the same way: its probe returns ``inf`` while the op raises and 0.0 once it runs.

These are numerical defects or convention splits of the *native* ops; dualnet's backends work
around each one (see the comment at the workaround), so the parity catalogue passes — except
where the record's ``dualnet`` field says it is only documented.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dualnet.parity import divergences_sequences
from dualnet.parity._frameworks import tf as _tf
from dualnet.parity._frameworks import torch as _torch


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


def _tf_cpu_refuses(run: Callable[[Any, Any], Any], shape: tuple[int, ...],
                    dtypes: tuple[str, ...]) -> Callable[[], float]:  # fmt: skip
    """A probe for a CPU kernel TensorFlow lacks: ``math.inf`` while ``run(tf, x)`` or its
    gradient raises on the CPU for ``x = ones(shape)`` in every one of ``dtypes``, 0.0 once one
    of them runs (so a partial fix shows too)."""

    def probe() -> float:
        tf = _tf()
        for dtype in dtypes:
            with tf.device("/CPU:0"):
                x = tf.ones(shape, dtype)
                try:
                    with tf.GradientTape() as tape:
                        tape.watch(x)
                        y = run(tf, x)
                    tape.gradient(y, x)
                except tf.errors.OpError:  # no kernel, or a kernel that refuses the arguments
                    continue
            return 0.0
        return math.inf

    return probe


def _probe_tf_pool_5d_data_format_none() -> float:
    tf = _tf()
    x = tf.ones((1, 2, 2, 2, 1), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.nn.max_pool(x, 2, 2, "VALID")  # data_format=None, the default
    try:
        tape.gradient(y, x)
    except AttributeError:  # MaxPool3DGrad decodes the op's data_format attribute: None
        return math.inf
    return 0.0


def _probe_torch_avg_pool3d_half() -> float:
    torch = _torch()
    for dtype in (torch.float16, torch.bfloat16):
        try:
            torch.nn.functional.avg_pool3d(torch.ones((1, 1, 2, 2, 2), dtype=dtype), 2)
        except (NotImplementedError, RuntimeError):  # "... not implemented for 'Half'"
            continue
        return 0.0
    return math.inf


def _probe_keras_rmsnorm_non_trailing_axis() -> float:
    import keras
    import numpy as np

    from dualnet.reference.layers import normalization

    _tf()
    rng = np.random.default_rng(0)
    x, scale = rng.normal(size=(2, 3, 3)), rng.normal(size=(3,))  # axis 1 and the last: size 3
    layer = keras.layers.RMSNormalization(axis=1, dtype="float64")
    layer.build(x.shape)
    layer.scale.assign(scale)
    exact = normalization.rms_normalization(x, {"scale": scale}, axis=1)
    return float(np.max(np.abs(np.asarray(layer(x)) - exact)))


def _probe_tf_denormals_are_zero() -> float:
    """TensorFlow's CPU kernels run with denormals-are-zero / flush-to-zero: relu's derivative
    at the smallest positive float32 subnormal is 1 in the math and on torch, 0 on TF."""
    tf = _tf()
    x = tf.constant([1.4e-45], tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.nn.relu(x)
    return abs(float(tape.gradient(y, x).numpy()[0]) - 1.0)


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
        api="keras.optimizers (learning rate, momentum, betas); keras.ops.cast(python float); "
        "keras.layers.Rescaling (scale, offset)",
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
    Divergence(
        id="tf-conv-nchw-cpu", framework="tensorflow",
        api="tf.nn.conv2d(data_format='NCHW') and Keras's channels_first Conv*D (CPU)",
        dtype="float16, float64 (every dtype without oneDNN)",
        symptom="UnimplementedError: the Conv2D op currently only supports the NHWC tensor "
        "format on the CPU",
        dualnet="convolutions transpose channels_first data to channels-last around the op, "
        "on every device (backends/tensorflow/layers/convolutional.py, _Conv.call)",
        probe=_tf_cpu_refuses(lambda tf, x: tf.nn.conv2d(
            x, tf.ones((3, 3, 4, 2), x.dtype), 1, "SAME", data_format="NCHW"),
            (1, 4, 5, 6), ("float64",)),
        threshold=1.0,
    ),
    Divergence(
        id="tf-grouped-conv-grad-cpu", framework="tensorflow",
        api="tf.nn.convolution gradient, groups > 1 (CPU)",
        dtype="float16, float64 (every dtype without oneDNN)",
        symptom="InvalidArgumentError from Conv2DBackpropInput: gradients for grouped "
        "convolutions are not supported on CPU (the forward pass runs)",
        dualnet="each group convolved on its own where the CPU kernel refuses "
        "(backends/tensorflow/layers/convolutional.py, _convolution)",
        probe=_tf_cpu_refuses(lambda tf, x: tf.nn.conv2d(x, tf.ones((3, 3, 2, 4), x.dtype), 1,
                                                         "SAME"),
                              (1, 4, 5, 4), ("float64",)),
        threshold=1.0,
    ),
    Divergence(
        id="tf-grouped-conv3d-cpu", framework="tensorflow",
        api="tf.nn.convolution 3-D, groups > 1 (CPU Conv3D)", dtype="all",
        symptom="InvalidArgumentError from the forward kernel: input and filter must have the "
        "same depth (Keras's Conv3D(groups=2) cannot run on the CPU)",
        dualnet="each group convolved on its own where the CPU kernel refuses "
        "(backends/tensorflow/layers/convolutional.py, _convolution)",
        probe=_tf_cpu_refuses(lambda tf, x: tf.nn.convolution(x, tf.ones((1, 1, 1, 2, 4),
                                                                         x.dtype)),
                              (1, 2, 2, 2, 4), ("float16", "bfloat16", "float32", "float64")),
        threshold=1.0,
    ),
    Divergence(
        id="tf-dilated-conv-transpose-cpu", framework="tensorflow",
        api="tf.nn.conv_transpose(dilations > 1) / Keras Conv*DTranspose (CPU)",
        dtype="float16, float64 (every dtype without oneDNN)",
        symptom="InvalidArgumentError: current CPU implementations do not yet support dilation "
        "rates larger than 1",
        dualnet="dilation implies stride 1: an ordinary convolution with the kernel flipped, "
        "where the CPU kernel refuses (backends/tensorflow/layers/convolutional.py, "
        "ConvTranspose._dilated)",
        probe=_tf_cpu_refuses(lambda tf, x: tf.nn.conv2d_transpose(
            x, tf.ones((3, 3, 2, 4), x.dtype), (1, 8, 9, 2), 1, "VALID", dilations=2),
            (1, 4, 5, 4), ("float64",)),
        threshold=1.0,
    ),
    Divergence(
        id="tf-depthwise-unequal-strides-cpu", framework="tensorflow",
        api="tf.nn.depthwise_conv2d, strides (1, sh, sw, 1) with sh != sw (CPU)",
        dtype="float16, float64 (every dtype without oneDNN)",
        symptom="InvalidArgumentError: the current implementation only supports equal length "
        "strides in the row and column dimensions",
        dualnet="stride 1 on the explicitly padded input, every s-th row and column kept, where "
        "the CPU kernel refuses (backends/tensorflow/layers/convolutional.py, _depthwise)",
        probe=_tf_cpu_refuses(lambda tf, x: tf.nn.depthwise_conv2d(
            x, tf.ones((3, 3, 4, 1), x.dtype), (1, 1, 2, 1), "SAME"),
            (1, 4, 5, 4), ("float64",)),
        threshold=1.0,
    ),
    Divergence(
        id="tf-max-pool3d-float16-float64-cpu", framework="tensorflow",
        api="tf.nn.max_pool3d / Keras MaxPooling3D (CPU)", dtype="float16, float64",
        symptom="no CPU kernel: NotFoundError for float16, InvalidArgumentError (double is not "
        "an allowed type) for float64",
        dualnet="float16 (and bfloat16) pooled in float32, where a max is exact; float64 as a "
        "2-D pool over (H, W) then a pool over D (backends/tensorflow/layers/pooling.py)",
        probe=_tf_cpu_refuses(lambda tf, x: tf.nn.max_pool3d(x, 2, 2, "VALID"),
                              (1, 2, 2, 2, 1), ("float16", "float64")),
        threshold=1.0,
    ),
    Divergence(
        id="tf-avg-pool3d-float16-float64-cpu", framework="tensorflow",
        api="tf.nn.avg_pool3d / Keras AveragePooling3D (CPU)", dtype="float16, float64",
        symptom="no CPU kernel: NotFoundError (could not find device for node AvgPool3D)",
        dualnet="half precision averaged in float32 and rounded once (dualnet's rule anyway); "
        "float64 as a 2-D pool over (H, W) then a pool over D "
        "(backends/tensorflow/layers/pooling.py)",
        probe=_tf_cpu_refuses(lambda tf, x: tf.nn.avg_pool3d(x, 2, 2, "VALID"),
                              (1, 2, 2, 2, 1), ("float16", "float64")),
        threshold=1.0,
    ),
    Divergence(
        id="tf-pool-5d-data-format-none-grad", framework="tensorflow",
        api="tf.nn.max_pool / tf.nn.avg_pool on 5-D inputs with data_format=None (gradient)",
        dtype="all",
        symptom="the forward pass runs, the gradient raises AttributeError: 'NoneType' object "
        "has no attribute 'decode' (MaxPool3DGrad reads the missing data_format)",
        dualnet="data_format spelled out ('NDHWC') in every pooling call "
        "(backends/tensorflow/layers/pooling.py, _CHANNELS_LAST)",
        probe=_probe_tf_pool_5d_data_format_none, threshold=1.0,
    ),
    Divergence(
        id="torch-avg-pool3d-half-cpu", framework="torch",
        api="torch.nn.functional.avg_pool3d (CPU)", dtype="float16, bfloat16",
        symptom="NotImplementedError: avg_pool3d_out_frame not implemented for 'Half' / "
        "'BFloat16' (avg_pool1d/2d and max_pool3d have half kernels)",
        dualnet="half-precision average pooling runs in float32 and rounds once, dualnet's rule "
        "anyway (backends/torch/layers/pooling.py, AveragePooling.forward)",
        probe=_probe_torch_avg_pool3d_half, threshold=1.0,
    ),
    Divergence(
        id="keras-rmsnorm-non-trailing-axis", framework="tensorflow",
        api="keras.layers.RMSNormalization(axis=...) other than the last", dtype="all",
        symptom="the (C,) scale multiplies without being broadcast over its axis: it lands on "
        "the last axis (2.0 off on a (2, 3, 3) input, axis=1) or raises for other shapes",
        dualnet="a custom layer reshapes the scale to broadcast over its axes "
        "(backends/tensorflow/layers/normalization.py, RMSNormalization)",
        probe=_probe_keras_rmsnorm_non_trailing_axis, threshold=1e-3,
    ),
    Divergence(
        id="tf-denormals-are-zero", framework="tensorflow",
        api="every CPU kernel (denormals-are-zero, flush-to-zero)", dtype="float32, float64",
        symptom="a subnormal input is read as 0: relu's gradient at 1.4e-45 is 0 (torch and the "
        "math: 1), and every function that jumps at 0 alike; values differ by less than the "
        "smallest normal number, inside every tolerance; categorical cross-entropy of "
        "probabilities [2.7e-40, 2.7e-40] is NaN (torch: log 2). Found by the property search",
        dualnet="documented, not worked around (TensorFlow's thread pools set the flags; changing "
        "them would change every other op); the property search draws no float32/float64 "
        "subnormals for functions with a jump at 0",
        probe=_probe_tf_denormals_are_zero, threshold=0.0,
    ),
)  # fmt: skip


# The sequence layers' records live in their own module (plain dicts; see its docstring).
KNOWN = (*KNOWN, *(Divergence(**record) for record in divergences_sequences.RECORDS))


def measure() -> list[tuple[Divergence, float | str]]:
    """Run every probe; a probe that raises reports the error text instead of a number."""
    out: list[tuple[Divergence, float | str]] = []
    for d in KNOWN:
        try:
            out.append((d, d.probe()))
        except Exception as exc:  # a missing framework or API: shown in the table, not fatal
            out.append((d, f"{type(exc).__name__}: {exc}"))
    return out
