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


def embedding(x, w, *, input_dim, mask_zero=False, **_):
    """:class:`dualnet.layers.Embedding`: ``embeddings[ids]`` (ids checked as the layer does)."""
    ids = np.asarray(x)
    if ids.dtype.kind == "f" and not np.all(np.isfinite(ids) & (ids == np.floor(ids))):
        raise ValueError(f"embedding: fractional or non-finite ids {ids}")
    ids = ids.astype(np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= input_dim):
        raise ValueError(f"embedding: ids outside [0, {input_dim}): {ids}")
    return _f64(w["embeddings"])[ids]


def embedding_mask(x, mask=None, *, mask_zero=False, **_):
    """The output mask: ``ids != 0`` with ``mask_zero`` (the incoming mask ignored), else none."""
    return np.asarray(x) != 0 if mask_zero else None


def masking(x, w=None, *, mask_value=0.0, **_):
    """:class:`dualnet.layers.Masking`: ``x`` at steps with a feature != ``mask_value``, else 0.

    ``x`` arrives rounded to the layer's dtype and ``mask_value`` is compared in that dtype:
    the caller passes it rounded (the parity cases use values exactly representable)."""
    x = _f64(x)
    keep = masking_mask(x, mask_value=mask_value)
    return np.where(keep[..., None], x, 0.0)


def masking_mask(x, mask=None, *, mask_value=0.0, **_):
    """The output mask: ``any(x != mask_value, axis=-1)`` (the incoming mask ignored)."""
    return np.any(_f64(x) != mask_value, axis=-1)
