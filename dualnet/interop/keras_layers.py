"""Keras layer configs -> dualnet layer arguments: what maps, what is harmless, what is refused.

Every key of a Keras layer's ``get_config()`` is accounted for, so a setting Keras adds in a
later release is refused until someone decides what it means, never dropped unseen:

* **passed on**: the keys dualnet's class of the same name accepts (``units``, ``padding``,
  ``momentum``, ...), converted where the forms differ (initializer and activation configs);
* **harmless, ignored** (:data:`HARMLESS`): settings that change neither the function nor
  training on one device (``use_cudnn``: which kernel runs the same math; a BatchNormalization's
  ``synchronized``: replicas' statistics are pooled only under a multi-device strategy, which
  dualnet does not run; ``renorm_momentum`` / ``renorm_clipping`` when ``renorm`` is off);
* **refused unless neutral** (:data:`NEUTRAL`, regularizers, constraints, dtype policies):
  settings dualnet lacks, accepted only at the value where they do nothing;
* anything else is refused, naming the layer, the setting and its value.

Initializers are carried over where dualnet has the same one (weights are copied, so they only
make the imported model's config faithful: re-initialising it draws from the same
distributions). One dualnet lacks (Keras's ``Identity``, a custom class, ``input_axes`` fans)
leaves dualnet's default for that argument and is logged on the ``dualnet.interop`` logger, as
it cannot change the imported function.

==========================  ==============================  =================================
Keras setting               dualnet                         why
==========================  ==============================  =================================
``*_regularizer``,          refused unless None             adds a loss term in training
``activity_regularizer``
``*_constraint``            refused unless None             projects weights after each update
dtype policy                float32 / float64 only          mixed / quantized policies compute
                                                            in another dtype than they store
``quantization_config``,    refused unless None             another function (int8, float8)
``lora_rank``
BatchNorm ``renorm``        refused unless False            batch renormalization
LayerNorm ``rms_scaling``   refused unless False            use RMSNormalization instead
MHA ``use_gate``,           refused unless False / None     gated / windowed attention
``sliding_window``
Input ``sparse``,           refused unless False            dense tensors only
``ragged``, ``optional``
``seed`` (dropout, noise)   kept where dualnet takes one    dualnet draws its own portable
                                                            masks either way
Rescaling ``scale``,        numbers and lists kept; a       per-channel lists broadcast on
``offset``                  numpy array by its values;      the last axis in dualnet; Keras
                            a list scale refused under      moves the scale to axis -3 when
                            ``image_data_format()`` ==      the global image format is
                            ``"channels_first"``            channels_first
==========================  ==============================  =================================

A float64 Rescaling imports with its operands exact: Keras's own float64 layer rounds Python
floats to float32 first (``tf.cast`` through a float32 tensor, the
``keras-float32-hyperparameters`` record), so the two differ by float32 roundings of the
operands.
"""

from __future__ import annotations

import logging
from typing import Any

from dualnet import activations as _activations
from dualnet import initializers as _initializers
from dualnet.errors import describe
from dualnet.layers import public_classes
from dualnet.layers._checks import check_name

logger = logging.getLogger("dualnet.interop")

# Keras settings that change nothing on one device, ignored whatever their value.
HARMLESS: frozenset[str] = frozenset({"use_cudnn", "synchronized"})
# Settings dualnet lacks, accepted at their neutral value only: key -> (neutral, why refused).
NEUTRAL: dict[str, tuple[Any, str]] = {
    "quantization_config": (None, "a quantized layer computes another function"),
    "lora_rank": (None, "LoRA adds trainable low-rank weights"),
    "lora_alpha": (None, "LoRA adds trainable low-rank weights"),
    "renorm": (False, "batch renormalization; dualnet has plain BatchNormalization"),
    "rms_scaling": (False, "use dualnet's RMSNormalization layer instead"),
    "use_gate": (False, "gated attention is not implemented"),
    "sliding_window": (None, "windowed attention is not implemented"),
    "sparse": (False, "dualnet inputs are dense tensors"),
    "ragged": (False, "dualnet inputs are dense tensors"),
    "optional": (False, "dualnet inputs are always given"),
}
# Settings that only matter when another one is on: key -> (switch, its neutral value).
IGNORED_WHEN: dict[str, tuple[str, Any]] = {
    "renorm_momentum": ("renorm", False),
    "renorm_clipping": ("renorm", False),
}
# The dtype policies dualnet reproduces: a plain float policy (variables = compute dtype).
POLICIES = ("float32", "float64")
# Keras activation names that are dualnet's under another name.
ACTIVATION_ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}
# Layer classes handled outside this table (graph structure, not a layer to build).
STRUCTURAL = ("InputLayer", "Sequential", "Functional")


def supported_classes() -> list[str]:
    """The Keras layer classes :func:`dualnet.from_keras` maps (dualnet's public layers)."""
    return [name for name in public_classes() if name != "InputLayer"]


def dtype_name(policy: Any, where: str, problems: list[str]) -> str | None:
    """A Keras dtype policy (a config dict, a name, or a live ``DTypePolicy``) -> its dtype,
    or a problem when it is not a plain float32/float64 policy."""
    name = policy
    if isinstance(policy, dict):
        cls, config = policy.get("class_name"), policy.get("config", {})
        name = config.get("name") if cls in ("DTypePolicy", "FloatDTypePolicy") else None
        if name is None:
            expected = " or ".join(POLICIES)
            problems.append(f"{where}: dtype policy {cls!r} ({describe(config)}) is not "
                            f"supported; expected a plain {expected} policy.")  # fmt: skip
            return None
    elif policy is not None and not isinstance(policy, str):
        name = getattr(policy, "name", None)
    if name is None:
        return "float32"
    if name not in POLICIES:
        problems.append(f"{where}: dtype policy {name!r} is not supported (mixed and quantized "
                        f"policies compute in another dtype than they store); expected "
                        f"{' or '.join(POLICIES)}.")  # fmt: skip
        return None
    return name


def activation(value: Any, key: str, where: str, problems: list[str]) -> Any:
    """A Keras activation config (a name, or a serialized function) -> dualnet's name."""
    name = value
    if isinstance(value, dict):  # Keras serializes built-ins by name; a dict is custom code
        name = value.get("config") if value.get("class_name") == "function" else None
        if value.get("module") not in ("keras.activations", "keras.src.activations"):
            name = None
    if name is None and value is not None:
        problems.append(f"{where}: {key}={describe(value)} is a custom function; expected one "
                        f"of {', '.join(_activations.NAMES)}.")  # fmt: skip
        return None
    if name is None:
        return None
    name = ACTIVATION_ALIASES.get(name, name)
    if name not in _activations.NAMES:
        problems.append(f"{where}: {key}={name!r} has no dualnet equivalent; expected one of "
                        f"{', '.join(_activations.NAMES)}.")  # fmt: skip
        return None
    return name


def initializer(value: Any, key: str, where: str) -> dict[str, Any] | None:
    """A Keras initializer config -> dualnet's serialized initializer, or None (dualnet's
    default; logged) where dualnet has no equivalent. Weights are copied, so this only keeps
    the imported config faithful."""
    if value is None:
        return None
    if isinstance(value, str):
        value = {"class_name": value, "config": {}}
    cls = value.get("class_name") if isinstance(value, dict) else None
    config = dict(value.get("config") or {}) if isinstance(value, dict) else {}
    # Keras 3.15's fan axes: None is the usual fans (the only form dualnet has).
    unusual = {k: config.pop(k) for k in ("input_axes", "output_axes") if k in config}
    unusual = {k: v for k, v in unusual.items() if v is not None}
    try:
        if unusual:
            raise ValueError(f"fan axes {unusual}")
        if isinstance(config.get("seed"), dict):
            config["seed"] = None  # a SeedGenerator object: dualnet draws its own seed
        return _initializers.serialize(_initializers.get({"class_name": cls, "config": config}))
    except (TypeError, ValueError) as exc:
        logger.info("%s: %s=%s has no dualnet equivalent (%s); dualnet's default is used (the "
                    "weights are copied, so the function is unchanged).", where, key,
                    describe(value), exc)  # fmt: skip
        return None


def _regularizer_or_constraint(key: str) -> str | None:
    if key.endswith("_regularizer"):
        return "a regularizer adds a loss term in training; dualnet has no regularizers"
    if key.endswith("_constraint"):
        return "a constraint projects the weights after each update; dualnet has no constraints"
    return None


def layer_arguments(cls_name: str, config: dict[str, Any], where: str, problems: list[str],
                    accepted: set[str]) -> dict[str, Any]:  # fmt: skip
    """The dualnet constructor arguments for one Keras layer config; problems appended.

    Args:
        cls_name: the Keras (= dualnet) class name.
        config: the Keras layer's ``get_config()``.
        where: ``"layer 'name' (Class)"`` for messages.
        problems: the list every refused setting is appended to.
        accepted: the dualnet constructor's argument names.
    """
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key == "name":
            try:
                out["name"] = check_name(value, where=where)
            except (TypeError, ValueError) as exc:
                problems.append(f"{where}: {exc} Rename the layer in Keras.")
        elif key == "dtype":
            dtype = dtype_name(value, where, problems)
            if dtype is not None:
                out["dtype"] = dtype
        elif key in HARMLESS:
            continue
        elif (why := _regularizer_or_constraint(key)) is not None:
            if value is not None:
                problems.append(f"{where}: {key}={describe(_short(value))} is not supported "
                                f"({why}); remove it or set it to None.")  # fmt: skip
        elif key in NEUTRAL:
            neutral, why = NEUTRAL[key]
            if value != neutral:
                problems.append(f"{where}: {key}={describe(_short(value))} is not supported "
                                f"({why}); expected {neutral!r}.")  # fmt: skip
        elif key in IGNORED_WHEN:
            switch, off = IGNORED_WHEN[key]
            if config.get(switch, off) != off:
                problems.append(f"{where}: {key} is not supported (with {switch}).")
        elif key.endswith("_initializer"):
            init = initializer(value, key, where)
            if init is not None and key in accepted:
                out[key] = init
        elif key in ("activation", "recurrent_activation"):
            name = activation(value, key, where, problems)
            if name is not None:
                out[key] = name
        elif cls_name == "Rescaling" and key in ("scale", "offset"):
            operand = rescaling_operand(value, key, where, problems)
            if operand is not None:
                out[key] = operand
        elif key == "seed":
            if key in accepted and isinstance(value, int):
                out[key] = value  # dualnet draws its own portable masks from it
        elif key in accepted:
            out[key] = value
        else:
            problems.append(f"{where}: setting {key}={describe(_short(value))} has no dualnet "
                            f"equivalent.")  # fmt: skip
    return out


def rescaling_operand(value: Any, key: str, where: str, problems: list[str]) -> Any:
    """A Rescaling ``scale``/``offset`` from Keras's config: a number or a list as it is, a
    serialized numpy array or tuple (``{"class_name": "__numpy__", "config": {"value": ...}}``)
    by its values; a per-channel scale is refused while Keras's global image format is
    channels_first (Keras then broadcasts the scale, not the offset, on axis -3; dualnet both
    on the last axis)."""
    import keras

    if isinstance(value, dict) and value.get("class_name") in ("__numpy__", "__tuple__"):
        value = (value.get("config") or {}).get("value")
    first = keras.config.image_data_format() == "channels_first"
    if key == "scale" and isinstance(value, list | tuple) and first:
        problems.append(f"{where}: scale={describe(value)} per channel under "
                        "keras.config.image_data_format() == 'channels_first' is not supported "
                        "(Keras broadcasts the scale on axis -3 then, dualnet's Rescaling on "
                        "the last axis); expected a number, or the channels_last image "
                        "format.")  # fmt: skip
        return None
    return value


def _short(value: Any) -> Any:
    """A serialized Keras object shown by its class name (``L2(l2=0.01)``)."""
    if isinstance(value, dict) and "class_name" in value:
        config = value.get("config") or {}
        if isinstance(config, dict):
            args = ", ".join(f"{k}={v!r}" for k, v in config.items())
            return _Shown(f"{value['class_name']}({args})")
        return _Shown(f"{value['class_name']}")
    return value


class _Shown(str):
    def __repr__(self) -> str:
        return str(self)
