"""float64 numpy reference of every layer, one module per group (the spec's groups), one plain
function per layer named like it (``conv2d`` for ``Conv2D``).

Each layer function takes the input (a list for merging layers), the weights as a dict of
canonical (Keras-layout) arrays, and the layer's config as keywords (``layer.get_config()``
without ``name``/``dtype``, plus ``training``); it returns the output, or ``(output, state)``
where ``state`` holds the updated non-trainable weights (BatchNormalization's moving statistics).
"""

from dualnet.reference.layers import (
    activations,
    convolutional,
    core,
    merging,
    normalization,
    pooling,
    regularization,
    reshaping,
)
from dualnet.reference.layers.core import activation, dense, mlp, preactivations

__all__ = [
    "activation", "activations", "convolutional", "core", "dense", "merging", "mlp",
    "normalization", "pooling", "preactivations", "regularization", "reshaping",
]  # fmt: skip
