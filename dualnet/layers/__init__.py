"""Layers: one definition, realised on either backend with the same weights.

Grouped as Keras groups them, one module (or package) per group, every public class re-exported
here (``dn.layers.Conv2D``): core, convolutional, pooling, normalization, regularization,
reshaping, merging, activations (the activation *layers*; the functions are
:mod:`dualnet.activations`), recurrent, attention, preprocessing. :func:`public_classes` lists them.

See :mod:`dualnet.layers.base` for how a layer is built and realised, and ``dualnet/README.md``
for adding one.
"""

from __future__ import annotations

from typing import Any

from dualnet.errors import bad_type, bad_value, describe
from dualnet.layers import (
    activations,
    attention,
    convolutional,
    core,
    merging,
    normalization,
    pooling,
    preprocessing,
    recurrent,
    regularization,
    reshaping,
)
from dualnet.layers.activations import *  # noqa: F403
from dualnet.layers.attention import *  # noqa: F403
from dualnet.layers.base import (
    Layer,
    SymbolicTensor,
    WeightInfo,
    WeightSpec,
    check_name,
    format_shape,
    reset_names,
    snake_case,
    tracing,
    unique_name,
    validate_weight_list,
)
from dualnet.layers.base import Node as Node
from dualnet.layers.convolutional import *  # noqa: F403
from dualnet.layers.core import *  # noqa: F403
from dualnet.layers.merging import *  # noqa: F403
from dualnet.layers.normalization import *  # noqa: F403
from dualnet.layers.pooling import *  # noqa: F403
from dualnet.layers.preprocessing import *  # noqa: F403
from dualnet.layers.recurrent import *  # noqa: F403
from dualnet.layers.regularization import *  # noqa: F403
from dualnet.layers.reshaping import *  # noqa: F403

GROUPS = (core, convolutional, pooling, normalization, regularization, reshaping, merging,
          activations, recurrent, attention, preprocessing)  # fmt: skip


def public_classes() -> dict[str, type[Layer]]:
    """Every public layer class, by name, in group order (what ``get`` can rebuild and what
    both backends must implement)."""
    return {
        name: obj
        for group in GROUPS
        for name in group.__all__
        if isinstance(obj := getattr(group, name), type) and issubclass(obj, Layer)
    }


__all__ = [
    "GROUPS", "Layer", "SymbolicTensor", "WeightInfo", "WeightSpec", "check_name",
    "format_shape", "get", "public_classes", "reset_names", "serialize", "snake_case", "tracing",
    "unique_name", "validate_weight_list",
    *(name for group in GROUPS for name in group.__all__),
]  # fmt: skip


def serialize(layer: Layer) -> dict[str, Any]:
    """``{"class_name": "Dense", "config": {...}}``."""
    if not isinstance(layer, Layer):
        raise bad_type("layer", layer, "a dualnet layer")
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def get(config: dict[str, Any], custom_objects: dict[str, type] | None = None) -> Layer:
    """Rebuild a layer from :func:`serialize`'s output."""
    if not isinstance(config, dict) or not {"class_name", "config"} <= set(config):
        raise bad_value("config", config, "a dict {'class_name': str, 'config': dict}")
    classes = {**public_classes(), **(custom_objects or {})}
    cls = classes.get(config["class_name"])
    if cls is None:
        raise ValueError(
            f"Unknown layer class {describe(config['class_name'])}; expected one of: "
            f"{', '.join(sorted(classes))} (pass custom_objects for your own layers)."
        )
    return cls.from_config(dict(config["config"]))
