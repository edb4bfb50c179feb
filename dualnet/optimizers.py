"""Optimizers: one documented update rule each, applied identically on both backends.

Every optimizer is a frozen, validated spec of hyper-parameters. Its update rule is written
once, here, with Python operators on native tensors and a handful of backend primitives
(``backends/<name>/optimizers.py``), the way Keras writes ``update_step`` over
``keras.ops``. The two backends therefore run the same sequence of IEEE operations; scalar
coefficients (learning rate, bias corrections, ``1 - β``) are computed in Python float64 and
rounded once to the weight dtype.

The rules are Keras 3's (dualnet's API is Keras-shaped). Where torch.optim computes something
else, an option reproduces it, and :func:`from_torch_defaults` / :func:`from_keras_defaults`
build the optimizer that reproduces ``torch.optim.X(...)`` / ``keras.optimizers.X(...)`` with
that framework's own defaults and argument names.

Order of one update (``apply``), ``t = iterations + 1``, ``lr = learning_rate(iterations)``:

1. gradient clipping (at most one of): ``clipvalue``: ``g ← clip(g, -c, c)``;
   ``clipnorm`` (per variable): ``g ← g·c / max(‖g‖₂, c)``; ``global_clipnorm`` (all
   variables together): ``g ← g · c / max(N, c)`` with ``N = √Σᵢ‖gᵢ‖²``.
2. weight decay (``weight_decay`` = wd, skipped when None or 0):
   ``"decoupled"`` (Keras, every optimizer; torch AdamW): ``w ← w - w·(lr·wd)``;
   ``"l2"`` (torch SGD/Adam/Adagrad/RMSprop): ``g ← g + w·wd``.
3. the optimizer's rule (see each class).

Defaults where the frameworks disagree (dualnet = Keras 3 everywhere):

==========  ====================  =======================  =====================
optimizer   parameter             Keras 3 (= dualnet)      torch.optim
==========  ====================  =======================  =====================
SGD         learning_rate         0.01                     1e-3
SGD         momentum buffer       ``v = m·v - lr·g``       ``b = m·b + g``, ``w -= lr·b``
                                                           (``momentum_form="torch"``)
SGD         dampening             (none)                   0 (torch form only)
Adagrad     learning_rate         0.001                    0.01
Adagrad     initial accumulator   0.1                      0
Adagrad     epsilon               1e-7, inside the √       1e-10, outside the √
Adagrad     lr_decay              (schedule)               0: ``lr/(1+(t-1)·d)``
RMSprop     learning_rate         0.001                    0.01
RMSprop     rho / alpha           0.9                      0.99
RMSprop     epsilon               1e-7, inside the √       1e-8, outside the √
RMSprop     momentum buffer       ``m = μ·m + lr·g/d``     ``b = μ·b + g/d``, ``w -= lr·b``
Adam(W)     epsilon               1e-7, added to √v        1e-8, added to √v̂
                                  (``"sqrt_v"``)           (``"sqrt_v_hat"``)
AdamW       weight_decay          0.004                    0.01
all         weight_decay          decoupled                L2 in the gradient (AdamW:
                                                           decoupled)
all         clipping              clipnorm/clipvalue/      none in the optimizer
                                  global_clipnorm          (``clip_grad_norm_``)
==========  ====================  =======================  =====================

Interface for a training loop::

    opt = dn.optimizers.get("adam")        # or dn.optimizers.Adam(1e-3, amsgrad=True)
    opt.build(params)                      # native variables: torch tensors / tf.Variable
    opt.apply(grads, params)               # one update, in place; a None gradient skips
    opt.iterations                         # updates applied so far (int)
    opt.current_learning_rate              # lr for the next update (float)
    opt.state()                            # {slot name: [numpy array per param]}
    opt.set_state(state, iterations=...)   # the inverse (for checkpoints)

``apply`` runs eagerly (it reads the Python-side iteration count): compute gradients inside a
``tf.function`` if you like, but call ``apply`` outside it. It applies the rule once per compute
dtype to all the variables together (on torch each operator is one ``torch._foreach_*`` call:
Note [Multi-tensor updates] in ``backends/torch/optimizers.py``). A compiled training step
(:mod:`dualnet.training_steps`) runs the same rule inside the traced function instead, with the
step-dependent scalars of :meth:`Optimizer._coefficients` (learning rate, bias corrections:
Python float64, computed on the host) passed in as a float64 tensor and rounded once to each
variable's dtype there, as a Python float is when it meets a tensor. State arrays are returned
in the layout of each native variable (torch stores a Dense kernel as ``(out, in)``); the
elementwise rules and the global norm do not depend on layout, and mapping state to a canonical
layout is the model layer's job.
"""

from __future__ import annotations

import math
from dataclasses import KW_ONLY, dataclass
from typing import Any, ClassVar

from dualnet import schedules
from dualnet.errors import bad_type, bad_value, check_real, unknown_name
from dualnet.optimizer_base import MOMENTUM_FORMS, Optimizer, _bool, _choice, _set
from dualnet.schedules import Schedule

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "Optimizer",
    "RMSprop",
    "deserialize",
    "from_keras_defaults",
    "from_torch_defaults",
    "get",
    "schedules",
    "serialize",
]


# ------------------------------------------------------------------------------ optimizers
@dataclass(frozen=True)
class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    ``momentum_form="keras"`` (default; the buffer holds a velocity already scaled by lr)::

        momentum == 0:  w ← w - lr·g
        v ← m·v - lr·g
        w ← w + v                       (nesterov: w ← w + m·v - lr·g, with the new v)

    ``momentum_form="torch"`` (torch.optim.SGD; the buffer holds gradients, lr applied last)::

        b ← g at t = 1, else b ← m·b + (1 - dampening)·g
        w ← w - lr·b                    (nesterov: w ← w - lr·(g + m·b))

    The two are equal while lr is constant (``v = -lr·b``) and differ once a schedule changes
    lr: Keras's velocity remembers old learning rates, torch's buffer does not.

    Args:
        learning_rate: default 0.01 (Keras; torch's default is 1e-3).
        momentum: in [0, 1].
        nesterov: Nesterov momentum (requires momentum > 0, as torch does).
        momentum_form: ``"keras"`` or ``"torch"``.
        dampening: torch's dampening in [0, 1]; only with ``momentum_form="torch"``.
    """

    learning_rate: float | Schedule = 0.01
    _: KW_ONLY
    momentum: float = 0.0
    nesterov: bool = False
    momentum_form: str = "keras"
    dampening: float = 0.0

    name: ClassVar[str] = "sgd"

    def __post_init__(self) -> None:
        super().__post_init__()
        w = "SGD"
        _set(
            self,
            "momentum",
            check_real("momentum", where=w, value=self.momentum, low=0.0, high=1.0),
        )
        _bool(w, "nesterov", self.nesterov)
        _choice(w, "momentum_form", self.momentum_form, MOMENTUM_FORMS)
        _set(
            self,
            "dampening",
            check_real("dampening", where=w, value=self.dampening, low=0.0, high=1.0),
        )
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise bad_value(
                "nesterov",
                True,
                f"momentum > 0 and dampening == 0 (got momentum="
                f"{self.momentum}, dampening={self.dampening})",
                where=w,
            )
        if self.dampening != 0 and self.momentum_form != "torch":
            raise bad_value("dampening", self.dampening, "0 unless momentum_form='torch'", where=w)

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum",) if self.momentum > 0 else ()

    def _coefficients(self, iterations: int) -> dict[str, Any]:
        k = super()._coefficients(iterations)
        if self.momentum > 0 and self.momentum_form == "torch":
            k["first"] = iterations == 0  # t = 1: torch's buffer starts as the gradient
        return k

    def _update(self, B, g, w, s, k):
        m, lr = self.momentum, k["lr"]
        if m == 0:
            return w - g * lr, {}
        if self.momentum_form == "keras":
            v = s["momentum"] * m - g * lr
            if self.nesterov:
                return w + (v * m - g * lr), {"momentum": v}
            return w + v, {"momentum": v}
        # torch: the first update copies g into the buffer (no dampening on it).
        b = B.select(k["first"], g, s["momentum"] * m + g * (1.0 - self.dampening))
        u = g + b * m if self.nesterov else b
        return w - u * lr, {"momentum": b}


@dataclass(frozen=True)
class Adagrad(Optimizer):
    """Adagrad: per-element learning rates from the sum of squared gradients.

    ::

        a ← a + g²                                   (a starts at initial_accumulator_value)
        w ← w - lr·g / √(a + ε)      epsilon_placement="inside_sqrt"  (Keras)
        w ← w - lr·g / (√a + ε)      epsilon_placement="outside_sqrt" (torch)

    Args:
        learning_rate: default 0.001 (Keras; torch 0.01).
        initial_accumulator_value: >= 0; default 0.1 (Keras; torch 0).
        epsilon: >= 0; default 1e-7 (Keras; torch 1e-10).
        epsilon_placement: ``"inside_sqrt"`` or ``"outside_sqrt"``.
    """

    learning_rate: float | Schedule = 0.001
    _: KW_ONLY
    initial_accumulator_value: float = 0.1
    epsilon: float = 1e-7
    epsilon_placement: str = "inside_sqrt"

    name: ClassVar[str] = "adagrad"

    def __post_init__(self) -> None:
        super().__post_init__()
        w = "Adagrad"
        _set(
            self,
            "initial_accumulator_value",
            check_real(
                "initial_accumulator_value", where=w, value=self.initial_accumulator_value, low=0.0
            ),
        )
        _set(self, "epsilon", check_real("epsilon", where=w, value=self.epsilon, low=0.0))
        _choice(w, "epsilon_placement", self.epsilon_placement, ("inside_sqrt", "outside_sqrt"))

    def slot_names(self) -> tuple[str, ...]:
        return ("accumulator",)

    def _slot_initial_value(self, slot: str) -> float:
        return self.initial_accumulator_value

    def _update(self, B, g, w, s, k):
        lr = k["lr"]
        a = s["accumulator"] + g * g
        if self.epsilon_placement == "inside_sqrt":
            denominator = B.sqrt(a + self.epsilon)  # Keras: ε under the root
        else:
            denominator = B.sqrt(a) + self.epsilon  # torch: ε added to the root
        return w - g * lr / denominator, {"accumulator": a}


@dataclass(frozen=True)
class RMSprop(Optimizer):
    """RMSprop, optionally centered and with momentum.

    ::

        v ← ρ·v + (1 - ρ)·g²
        centered:  ḡ ← ρ·ḡ + (1 - ρ)·g;  s = v - ḡ²     else s = v
        d = √(s + ε)   epsilon_placement="inside_sqrt"  (Keras)
        d = √s + ε     epsilon_placement="outside_sqrt" (torch)
        momentum_form="keras":  no momentum: w ← w - lr·g/d
                                else m ← μ·m + lr·g/d;  w ← w - m
        momentum_form="torch":  no momentum: w ← w - lr·(g/d)
                                else b ← μ·b + g/d;     w ← w - lr·b

    Args:
        learning_rate: default 0.001 (Keras; torch 0.01).
        rho: decay in [0, 1); default 0.9 (Keras; torch's ``alpha`` 0.99).
        momentum: in [0, 1].
        epsilon: >= 0; default 1e-7 (Keras; torch 1e-8).
        centered: divide by the estimated variance instead of the second moment.
        epsilon_placement: ``"inside_sqrt"`` or ``"outside_sqrt"``.
        momentum_form: ``"keras"`` or ``"torch"`` (equal while lr is constant).
    """

    learning_rate: float | Schedule = 0.001
    _: KW_ONLY
    rho: float = 0.9
    momentum: float = 0.0
    epsilon: float = 1e-7
    centered: bool = False
    epsilon_placement: str = "inside_sqrt"
    momentum_form: str = "keras"

    name: ClassVar[str] = "rmsprop"

    def __post_init__(self) -> None:
        super().__post_init__()
        w = "RMSprop"
        _set(
            self,
            "rho",
            check_real("rho", where=w, value=self.rho, low=0.0, high=1.0, high_open=True),
        )
        _set(
            self,
            "momentum",
            check_real("momentum", where=w, value=self.momentum, low=0.0, high=1.0),
        )
        _set(self, "epsilon", check_real("epsilon", where=w, value=self.epsilon, low=0.0))
        _bool(w, "centered", self.centered)
        _choice(w, "epsilon_placement", self.epsilon_placement, ("inside_sqrt", "outside_sqrt"))
        _choice(w, "momentum_form", self.momentum_form, MOMENTUM_FORMS)

    def slot_names(self) -> tuple[str, ...]:
        names = ("velocity",)
        if self.momentum > 0:
            names += ("momentum",)
        if self.centered:
            names += ("average_gradient",)
        return names

    def _update(self, B, g, w, s, k):
        rho, lr = self.rho, k["lr"]
        new = {"velocity": s["velocity"] * rho + g * g * (1.0 - rho)}
        spread = new["velocity"]
        if self.centered:
            new["average_gradient"] = s["average_gradient"] * rho + g * (1.0 - rho)
            # v - ḡ² >= 0 in exact arithmetic; rounding can make it slightly negative when the
            # gradient is nearly constant (then √ gives NaN without ε inside, as in both
            # frameworks).
            spread = spread - new["average_gradient"] * new["average_gradient"]
        if self.epsilon_placement == "inside_sqrt":
            denominator = B.sqrt(spread + self.epsilon)  # Keras: ε under the root
        else:
            denominator = B.sqrt(spread) + self.epsilon  # torch: ε added to the root
        if self.momentum_form == "keras":
            increment = g * lr / denominator  # lr inside the buffer
            if self.momentum > 0:
                new["momentum"] = s["momentum"] * self.momentum + increment
                return w - new["momentum"], new
            return w - increment, new
        increment = g / denominator  # torch: lr applied after the buffer
        if self.momentum > 0:
            new["momentum"] = s["momentum"] * self.momentum + increment
            return w - new["momentum"] * lr, new
        return w - increment * lr, new


@dataclass(frozen=True)
class Adam(Optimizer):
    """Adam, optionally AMSGrad.

    ::

        m ← m + (1 - β₁)·(g - m)
        v ← v + (1 - β₂)·(g² - v)
        amsgrad:  v̄ ← max(v̄, v) and v̄ replaces v below
        epsilon_placement="sqrt_v" (Keras):
            w ← w - α_t·m / (√v + ε),      α_t = lr·√(1 - β₂ᵗ) / (1 - β₁ᵗ)
        epsilon_placement="sqrt_v_hat" (torch):
            w ← w - (lr / (1 - β₁ᵗ))·m / (√v / √(1 - β₂ᵗ) + ε)

    The Keras form equals the torch form with ε replaced by ``ε/√(1 - β₂ᵗ)``, so with the
    same ε Keras's effective ε is larger early in training (×31.6 at t = 1 for β₂ = 0.999).

    Args:
        learning_rate: default 0.001 (both).
        beta_1, beta_2: in [0, 1); defaults 0.9, 0.999 (both).
        epsilon: >= 0; default 1e-7 (Keras; torch 1e-8).
        amsgrad: use the running maximum of v.
        epsilon_placement: ``"sqrt_v"`` or ``"sqrt_v_hat"``.
    """

    learning_rate: float | Schedule = 0.001
    _: KW_ONLY
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7
    amsgrad: bool = False
    epsilon_placement: str = "sqrt_v"

    name: ClassVar[str] = "adam"

    def __post_init__(self) -> None:
        super().__post_init__()
        w = type(self).__name__
        for k in ("beta_1", "beta_2"):
            _set(
                self,
                k,
                check_real(k, where=w, value=getattr(self, k), low=0.0, high=1.0, high_open=True),
            )
        _set(self, "epsilon", check_real("epsilon", where=w, value=self.epsilon, low=0.0))
        _bool(w, "amsgrad", self.amsgrad)
        _choice(w, "epsilon_placement", self.epsilon_placement, ("sqrt_v", "sqrt_v_hat"))

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum", "velocity") + (("velocity_hat",) if self.amsgrad else ())

    def _coefficients(self, iterations: int) -> dict[str, Any]:
        k = super()._coefficients(iterations)
        t = iterations + 1
        correction_1 = 1.0 - self.beta_1**t  # Python float64 bias corrections, rounded once
        correction_2 = 1.0 - self.beta_2**t  # in the products of the rule
        if self.epsilon_placement == "sqrt_v":
            k["alpha"] = k["lr"] * math.sqrt(correction_2) / correction_1
        else:
            k["lr_c1"] = k["lr"] / correction_1
            k["sqrt_c2"] = math.sqrt(correction_2)
        return k

    def _update(self, B, g, w, s, k):
        b1, b2 = self.beta_1, self.beta_2
        new = {
            "momentum": s["momentum"] + (g - s["momentum"]) * (1.0 - b1),
            "velocity": s["velocity"] + (g * g - s["velocity"]) * (1.0 - b2),
        }
        v = new["velocity"]
        if self.amsgrad:
            new["velocity_hat"] = v = B.maximum(s["velocity_hat"], v)
        if self.epsilon_placement == "sqrt_v":
            # Keras: ε is added to √v *before* the √(1-β₂ᵗ) correction folded into alpha.
            return w - new["momentum"] * k["alpha"] / (B.sqrt(v) + self.epsilon), new
        # torch: ε is added to the bias-corrected √v̂ = √v / √(1-β₂ᵗ).
        denominator = B.sqrt(v) / k["sqrt_c2"] + self.epsilon
        return w - new["momentum"] * k["lr_c1"] / denominator, new


@dataclass(frozen=True)
class AdamW(Adam):
    """Adam with decoupled weight decay (``w ← w - w·lr·wd`` before the Adam step).

    The same rule as ``Adam(weight_decay=..., weight_decay_mode="decoupled")``; the default
    ``weight_decay`` is 0.004 (Keras; torch's AdamW uses 0.01).
    """

    _: KW_ONLY
    weight_decay: float | None = 0.004

    name: ClassVar[str] = "adamw"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.weight_decay is None:
            raise bad_value("weight_decay", None, "a float >= 0 (AdamW)", where="AdamW")
        if self.weight_decay_mode != "decoupled":
            raise bad_value(
                "weight_decay_mode",
                self.weight_decay_mode,
                "'decoupled' (AdamW; use Adam(weight_decay_mode='l2') for L2)",
                where="AdamW",
            )


# ------------------------------------------------------------------------------ registry
_REGISTRY: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adagrad": Adagrad,
    "rmsprop": RMSprop,
    "adam": Adam,
    "adamw": AdamW,
}
NAMES: tuple[str, ...] = tuple(_REGISTRY)


def _lookup(name: Any) -> type[Optimizer]:
    if not isinstance(name, str) or name.lower() not in _REGISTRY:
        raise unknown_name("optimizer", name, list(_REGISTRY))
    return _REGISTRY[name.lower()]


def get(identifier: str | Optimizer | dict[str, Any]) -> Optimizer:
    """A name (``"adam"``, case-insensitive) gives a new optimizer with dualnet's defaults; an
    optimizer is returned as is; a dict is :func:`deserialize`-d."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        return _lookup(identifier)()
    raise bad_type("optimizer", identifier, "a name such as 'adam', an Optimizer or a dict")


def serialize(optimizer: Optimizer) -> dict[str, Any]:
    """``{"class_name": "Adam", "config": {...}}``."""
    if not isinstance(optimizer, Optimizer):
        raise bad_type("optimizer", optimizer, "a dualnet Optimizer")
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config: dict[str, Any]) -> Optimizer:
    if not isinstance(config, dict) or "class_name" not in config:
        raise bad_type("config", config, "a dict with 'class_name' and 'config'")
    return _lookup(config["class_name"]).from_config(config.get("config", {}))


# ---------------------------------------------------------------- framework-default presets
# torch.optim argument -> (dualnet argument, torch default). Values are translated below.
_TORCH: dict[str, dict[str, Any]] = {
    "sgd": {"lr": 1e-3, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False},
    "adagrad": {
        "lr": 1e-2,
        "lr_decay": 0.0,
        "weight_decay": 0.0,
        "initial_accumulator_value": 0.0,
        "eps": 1e-10,
    },
    "rmsprop": {
        "lr": 1e-2,
        "alpha": 0.99,
        "eps": 1e-8,
        "weight_decay": 0.0,
        "momentum": 0.0,
        "centered": False,
    },
    "adam": {
        "lr": 1e-3,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.0,
        "amsgrad": False,
        "decoupled_weight_decay": False,
    },
    "adamw": {
        "lr": 1e-3,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 1e-2,
        "amsgrad": False,
    },
}


def from_torch_defaults(name: str, **torch_kwargs: Any) -> Optimizer:
    """The dualnet optimizer that applies what ``torch.optim.<Name>(params, **torch_kwargs)``
    applies, with torch's defaults for everything not given.

    Arguments use torch's names (``lr``, ``betas``, ``eps``, ``alpha``, ``lr_decay``...). The
    mapping: ``lr → learning_rate`` (Adagrad's ``lr_decay = d`` becomes
    ``InverseTimeDecay(lr, 1, d)``); ``weight_decay`` is L2 (``weight_decay_mode="l2"``) except
    for AdamW and ``Adam(decoupled_weight_decay=True)``; SGD and RMSprop use
    ``momentum_form="torch"``; Adagrad and RMSprop ``epsilon_placement="outside_sqrt"``; Adam and
    AdamW ``epsilon_placement="sqrt_v_hat"``. torch-only switches (maximize, foreach, fused,
    capturable, differentiable) are not supported.
    """
    key = _lookup(name).name
    defaults = _TORCH[key]
    unknown = sorted(set(torch_kwargs) - set(defaults))
    if unknown:
        raise bad_value(
            unknown[0],
            torch_kwargs[unknown[0]],
            f"one of torch.optim.{_lookup(name).__name__}'s supported arguments: "
            f"{', '.join(defaults)}",
            where="from_torch_defaults",
        )
    a = {**defaults, **torch_kwargs}
    wd = a["weight_decay"]
    wd = None if isinstance(wd, int | float) and not isinstance(wd, bool) and wd == 0 else wd
    lr = a["lr"]
    if key == "sgd":
        return SGD(
            lr,
            momentum=a["momentum"],
            nesterov=a["nesterov"],
            dampening=a["dampening"],
            momentum_form="torch",
            weight_decay=wd,
            weight_decay_mode="l2",
        )
    if key == "adagrad":
        decay = a["lr_decay"]
        if decay != 0:
            lr = schedules.InverseTimeDecay(lr, 1, decay)  # lr / (1 + (t-1)·lr_decay)
        return Adagrad(
            lr,
            initial_accumulator_value=a["initial_accumulator_value"],
            epsilon=a["eps"],
            epsilon_placement="outside_sqrt",
            weight_decay=wd,
            weight_decay_mode="l2",
        )
    if key == "rmsprop":
        return RMSprop(
            lr,
            rho=a["alpha"],
            epsilon=a["eps"],
            momentum=a["momentum"],
            centered=a["centered"],
            epsilon_placement="outside_sqrt",
            momentum_form="torch",
            weight_decay=wd,
            weight_decay_mode="l2",
        )
    betas = a["betas"]
    if not isinstance(betas, tuple | list) or len(betas) != 2:
        raise bad_value("betas", betas, "a pair (beta_1, beta_2)", where="from_torch_defaults")
    common = dict(
        beta_1=betas[0],
        beta_2=betas[1],
        epsilon=a["eps"],
        amsgrad=a["amsgrad"],
        epsilon_placement="sqrt_v_hat",
    )
    if key == "adamw":
        return AdamW(lr, weight_decay=0.0 if wd is None else wd, **common)
    mode = "decoupled" if a["decoupled_weight_decay"] else "l2"
    return Adam(lr, weight_decay=wd, weight_decay_mode=mode, **common)


_KERAS_ONLY = (
    "use_ema",
    "ema_momentum",
    "ema_overwrite_frequency",
    "loss_scale_factor",
    "gradient_accumulation_steps",
    "name",
)


def from_keras_defaults(name: str, **keras_kwargs: Any) -> Optimizer:
    """The dualnet optimizer that applies what ``keras.optimizers.<Name>(**keras_kwargs)``
    applies. dualnet's defaults and argument names *are* Keras 3's, so this is
    ``type(name)(**keras_kwargs)``, refusing the Keras options dualnet does not implement
    (EMA, loss scaling, gradient accumulation) and dualnet's own non-Keras options."""
    cls = _lookup(name)
    keras_args = {"learning_rate", "weight_decay", "clipnorm", "clipvalue", "global_clipnorm"}
    keras_args |= {
        SGD: {"momentum", "nesterov"},
        Adagrad: {"initial_accumulator_value", "epsilon"},
        RMSprop: {"rho", "momentum", "epsilon", "centered"},
        Adam: {"beta_1", "beta_2", "epsilon", "amsgrad"},
        AdamW: {"beta_1", "beta_2", "epsilon", "amsgrad"},
    }[cls]
    for k, v in keras_kwargs.items():
        if k not in keras_args:
            raise bad_value(
                k,
                v,
                f"one of keras.optimizers.{cls.__name__}'s arguments that dualnet "
                f"implements: {', '.join(sorted(keras_args))}",
                where="from_keras_defaults",
            )
    if cls is SGD and keras_kwargs.get("nesterov") and not keras_kwargs.get("momentum", 0.0):
        # Keras accepts nesterov=True with momentum 0 and applies plain SGD (its Nesterov step
        # is w += m·v - lr·g with v = m·v - lr·g, which is w -= lr·g at m = 0); dualnet's SGD
        # refuses that combination as meaningless, so the converter gives what Keras applies.
        keras_kwargs = {**keras_kwargs, "nesterov": False}
    return cls(**keras_kwargs)
