"""float64 numpy reference for layers and stacks of layers (same names as the spec)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dualnet.reference import activations as _activations


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def activation(x, name="linear"):
    """The reference activation ``name`` (``None`` is linear)."""
    return getattr(_activations, name or "linear")(_f64(x))


def dense(x, kernel, bias=None, activation_name="linear"):
    """``activation(x @ kernel + bias)`` with ``kernel`` in canonical ``(in, out)`` layout."""
    z = _f64(x) @ _f64(kernel)
    if bias is not None:
        z = z + _f64(bias)
    return activation(z, activation_name)


def mlp(x, weights: Sequence[np.ndarray], activations: Sequence[str], use_bias=None):
    """A stack of Dense layers: ``weights`` in the order of ``model.get_weights()``
    (kernel, bias per layer; kernel only where ``use_bias[i]`` is False)."""
    use_bias = [True] * len(activations) if use_bias is None else list(use_bias)
    h, i = _f64(x), 0
    for act, has_bias in zip(activations, use_bias, strict=True):
        kernel = weights[i]
        bias = weights[i + 1] if has_bias else None
        i += 2 if has_bias else 1
        h = dense(h, kernel, bias, act)
    if i != len(weights):
        raise ValueError(f"mlp: {len(weights)} weights for {len(activations)} layers")
    return h


def preactivations(x, weights: Sequence[np.ndarray], activations: Sequence[str], use_bias=None):
    """Per layer, its input and ``x @ kernel + bias`` before the activation (for kink masks)."""
    use_bias = [True] * len(activations) if use_bias is None else list(use_bias)
    h, i, out = _f64(x), 0, []
    for act, has_bias in zip(activations, use_bias, strict=True):
        z = h @ _f64(weights[i])
        if has_bias:
            z = z + _f64(weights[i + 1])
        i += 2 if has_bias else 1
        out.append((h, z))
        h = activation(z, act)
    return out


# Layer-convention references (``reference(x, weights, **config, training=...)``, see
# :func:`dualnet.reference.layers.for_layer`); ``dense``/``activation`` above are the op-style
# functions the MLP references use.


def dense_layer(x, w, *, activation="linear", use_bias=True, **_):
    """:class:`dualnet.layers.Dense`: ``activation(x @ kernel + bias)``."""
    return dense(x, w["kernel"], w["bias"] if use_bias else None, activation)


def activation_layer(x, w, *, activation="linear", **_):
    """:class:`dualnet.layers.Activation`."""
    return globals()["activation"](x, activation)
