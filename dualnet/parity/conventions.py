"""Where torch's defaults and Keras's split for layers, as data, each with a probe.

:mod:`dualnet.parity.divergences` lists native ops that depart from the *math*; this module lists
*conventions*: both frameworks compute what they document, but their defaults document different
things, with no error and the same shapes. dualnet follows Keras on both backends (its API is
Keras's) and keeps torch's convention one argument away. Each record's probe runs torch's
default on a tiny input and returns how far it lands from the rule dualnet documents (the
float64 reference), so

* ``dualnet parity`` prints how much each split is worth, measured now;
* ``tests/test_conventions.py`` asserts every split is still there: the parity case built to
  expose it (``case``) would fail a backend that followed torch's default, and the day torch
  changes a default, the test says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dualnet.parity import conventions_sequences
from dualnet.parity._frameworks import rng as _rng
from dualnet.parity._frameworks import torch as _torch
from dualnet.reference.layers import convolutional as RC
from dualnet.reference.layers import normalization as RN
from dualnet.reference.layers import pooling as RP
from dualnet.reference.layers import reshaping as RR


@dataclass(frozen=True, kw_only=True)
class Convention:
    """One torch/Keras split for a layer.

    Attributes:
        id: a short stable name.
        what: the behaviour.
        keras, torch: each framework's default.
        dualnet: what dualnet does, and how to get torch's behaviour.
        case: the parity case(s) built to expose it (``family/name``).
        probe: ``max |torch default - documented rule|`` on a tiny input (imports torch).
        threshold: the split is present while ``probe() > threshold``.
    """

    id: str
    what: str
    keras: str
    torch: str
    dualnet: str
    case: str
    probe: Callable[[], float]
    threshold: float


def _nchw(torch, x: np.ndarray):
    return torch.as_tensor(np.moveaxis(x, -1, 1).copy())


def _probe_conv_same_stride() -> float:
    torch = _torch()
    x, kernel = _rng().normal(size=(1, 8, 8, 2)), _rng().normal(size=(3, 3, 2, 3))
    rule = RC.conv2d(x, kernel, strides=2, padding="same")
    weight = torch.as_tensor(kernel.transpose(3, 2, 0, 1).copy())
    # The integer padding that gives the right output size pads both sides.
    native = torch.nn.functional.conv2d(_nchw(torch, x), weight, stride=2, padding=1)
    return float(np.max(np.abs(np.moveaxis(native.numpy(), 1, -1) - rule)))


def _probe_conv_transpose_same() -> float:
    torch = _torch()
    x, kernel = _rng().normal(size=(1, 4, 4, 2)), _rng().normal(size=(3, 3, 3, 2))
    rule = RC.conv2d_transpose(x, kernel, strides=2, padding="same")
    weight = torch.as_tensor(kernel.transpose(3, 2, 0, 1).copy())  # (in, out, kh, kw)
    native = torch.nn.functional.conv_transpose2d(_nchw(torch, x), weight, stride=2, padding=1,
                                                  output_padding=1)  # fmt: skip
    return float(np.max(np.abs(np.moveaxis(native.numpy(), 1, -1) - rule)))


def _probe_average_pooling_divisor() -> float:
    torch = _torch()
    x = _rng().normal(size=(1, 5, 5, 2)) + 3.0
    rule = RP.average_pooling2d(x, pool_size=3, strides=2, padding="same")
    native = torch.nn.functional.avg_pool2d(_nchw(torch, x), 3, 2, padding=1)  # symmetric here
    return float(np.max(np.abs(np.moveaxis(native.numpy(), 1, -1) - rule)))


def _probe_batch_norm_moving_variance() -> float:
    torch = _torch()
    x = _rng().normal(size=(8, 3))
    weights = {"gamma": np.ones(3), "beta": np.zeros(3), "moving_mean": np.zeros(3),
               "moving_variance": np.ones(3)}  # fmt: skip
    _, state = RN.batch_normalization(x, weights, training=True)
    bn = torch.nn.BatchNorm1d(3, dtype=torch.float64)  # torch's defaults, training mode
    bn(torch.as_tensor(x))
    return float(np.max(np.abs(bn.running_var.detach().numpy() - state["moving_variance"])))


def _probe_batch_norm_epsilon() -> float:
    torch = _torch()
    x = 1e-2 * _rng().normal(size=(8, 3))  # a small variance makes ε matter
    weights = {"gamma": np.ones(3), "beta": np.zeros(3), "moving_mean": np.zeros(3),
               "moving_variance": np.ones(3)}  # fmt: skip
    rule, _ = RN.batch_normalization(x, weights, training=True)
    native = torch.nn.BatchNorm1d(3, dtype=torch.float64)(torch.as_tensor(x))
    return float(np.max(np.abs(native.detach().numpy() - rule)))


def _probe_layer_norm_epsilon() -> float:
    torch = _torch()
    x = 1e-2 * _rng().normal(size=(2, 6))
    weights = {"gamma": np.ones(6), "beta": np.zeros(6)}
    rule = RN.layer_normalization(x, weights)
    native = torch.nn.functional.layer_norm(torch.as_tensor(x), (6,))  # eps=1e-5
    return float(np.max(np.abs(native.numpy() - rule)))


def _probe_flatten_order() -> float:
    torch = _torch()
    x = _rng().normal(size=(1, 2, 3, 4))  # NHWC
    rule = RR.flatten(x)
    native = torch.flatten(_nchw(torch, x), 1)  # what a torch model flattens: C, H, W order
    return float(np.max(np.abs(native.numpy() - rule)))


def _probe_prelu_init() -> float:
    torch = _torch()
    return abs(float(torch.nn.PReLU().weight.detach()[0]) - 0.0)  # Keras initialises α to 0


def _probe_leaky_relu_layer() -> float:
    torch = _torch()
    return abs(float(torch.nn.LeakyReLU().negative_slope) - 0.3)


def _probe_maximum_tie_gradient() -> float:
    torch = _torch()
    a = torch.ones(1, dtype=torch.float64, requires_grad=True)
    b = torch.ones(1, dtype=torch.float64, requires_grad=True)
    torch.maximum(a, b).sum().backward()
    return abs(float(a.grad[0]) - 1.0)  # Keras: all of it to the first input


KNOWN: tuple[Convention, ...] = (
    Convention(
        id="conv-same-stride", what="`same` padding with stride > 1 (or an even kernel)",
        keras="TensorFlow's rule: total pad split with the extra pixel at the end",
        torch="padding='same' refuses strides; an int pads both sides",
        dualnet="TensorFlow's rule for 'same' on both; torch's symmetric padding with padding=p",
        case="layer/conv2d-same-stride2-even", probe=_probe_conv_same_stride, threshold=0.1,
    ),
    Convention(
        id="conv-transpose-same", what="Conv2DTranspose `same`, k=3, s=2",
        keras="keeps full[0:2n]", torch="padding=1, output_padding=1 keeps full[1:2n+1]",
        dualnet="TensorFlow's window, cropped explicitly on torch",
        case="layer/conv2d-transpose-same-k3-s2", probe=_probe_conv_transpose_same,
        threshold=0.1,
    ),
    Convention(
        id="average-pooling-divisor", what="average pooling over padding",
        keras="divides by the real elements", torch="count_include_pad=True counts the padding",
        dualnet="Keras's divisor for 'same'; torch's with padding=p and count_include_pad",
        case="layer/average-pooling2d-same-symmetric", probe=_probe_average_pooling_divisor,
        threshold=0.1,
    ),
    Convention(
        id="batch-norm-moving-variance", what="BatchNormalization moving statistics",
        keras="momentum 0.99: m·old + (1-m)·batch, biased batch variance",
        torch="momentum 0.1 the other way, unbiased batch variance",
        dualnet="Keras's (BatchNormalization.torch_defaults() for torch's)",
        case="layer/batchnorm-train-rank2-batch8",
        probe=_probe_batch_norm_moving_variance, threshold=1e-3,
    ),
    Convention(
        id="batch-norm-epsilon", what="BatchNormalization ε", keras="1e-3", torch="1e-5",
        dualnet="1e-3 (epsilon=)", case="layer/batchnorm-train-tiny-variance",
        probe=_probe_batch_norm_epsilon, threshold=1e-3,
    ),
    Convention(
        id="layer-norm-epsilon", what="LayerNormalization/GroupNormalization ε", keras="1e-3",
        torch="1e-5", dualnet="1e-3 (epsilon=)",
        case="layer/layernorm-small-variance-no-center",
        probe=_probe_layer_norm_epsilon, threshold=1e-3,
    ),
    Convention(
        id="flatten-order", what="Flatten after a convolution", keras="H, W, C order",
        torch="C, H, W order (NCHW)", dualnet="Keras's; a ported Dense kernel's rows permute",
        case="layer/flatten-after-conv", probe=_probe_flatten_order, threshold=0.1,
    ),
    Convention(
        id="prelu-init", what="PReLU α", keras="per element, initialised to 0",
        torch="one α (or per channel), 0.25", dualnet="Keras's (shared_axes, alpha_initializer)",
        case="layer/prelu-per-element", probe=_probe_prelu_init, threshold=0.1,
    ),
    Convention(
        id="leaky-relu-layer-slope", what="LeakyReLU layer slope", keras="0.3", torch="0.01",
        dualnet="0.3 (negative_slope=)", case="layer/leaky-relu-default",
        probe=_probe_leaky_relu_layer, threshold=0.1,
    ),
    Convention(
        id="maximum-tie-gradient", what="Maximum/Minimum gradient at a tie",
        keras="all to the first input", torch="half to each", dualnet="Keras's",
        case="layer/maximum-ties", probe=_probe_maximum_tie_gradient, threshold=0.1,
    ),
)  # fmt: skip


# The sequence layers' records live in their own module (plain dicts; see its docstring).
KNOWN = (*KNOWN, *(Convention(**record) for record in conventions_sequences.RECORDS))


def measure() -> list[tuple[Convention, float | str]]:
    """Run every probe; a probe that raises reports the error text instead of a number."""
    out: list[tuple[Convention, float | str]] = []
    for c in KNOWN:
        try:
            out.append((c, c.probe()))
        except Exception as exc:  # a missing framework: shown in the table, not fatal
            out.append((c, f"{type(exc).__name__}: {exc}"))
    return out
