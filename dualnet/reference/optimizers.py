"""float64 numpy reference of every optimizer update rule and learning-rate schedule.

Plain functions named like the spec (:mod:`dualnet.optimizers`, :mod:`dualnet.schedules`),
written from the documented math and nothing else: they read an optimizer's hyper-parameters
from ``get_config()`` and never call a dualnet backend.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _f64(x) -> np.ndarray:
    return np.array(x, dtype=np.float64)  # a copy: the reference never mutates its inputs


# ---------------------------------------------------------------------------- schedules
def exponential_decay(step, initial_learning_rate, decay_steps, decay_rate, staircase=False):
    p = step / decay_steps
    return initial_learning_rate * decay_rate ** (math.floor(p) if staircase else p)


def inverse_time_decay(step, initial_learning_rate, decay_steps, decay_rate, staircase=False):
    p = step / decay_steps
    return initial_learning_rate / (1.0 + decay_rate * (math.floor(p) if staircase else p))


def piecewise_constant_decay(step, boundaries, values):
    for i, b in enumerate(boundaries):
        if step <= b:
            return values[i]
    return values[-1]


def cosine_decay(step, initial_learning_rate, decay_steps, alpha=0.0, warmup_target=None,
                 warmup_steps=0):  # fmt: skip
    def decay(s, peak):
        s = min(s, decay_steps)
        return peak * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * s / decay_steps)) + alpha)

    if warmup_target is None:
        return decay(step, initial_learning_rate)
    if step < warmup_steps:
        return initial_learning_rate + (warmup_target - initial_learning_rate) * step / warmup_steps
    return decay(step - warmup_steps, warmup_target)


def step_decay(step, initial_learning_rate, step_size, gamma=0.1):
    return initial_learning_rate * gamma ** (step // step_size)


_SCHEDULES = {
    "ExponentialDecay": exponential_decay,
    "InverseTimeDecay": inverse_time_decay,
    "PiecewiseConstantDecay": piecewise_constant_decay,
    "CosineDecay": cosine_decay,
    "StepDecay": step_decay,
}


def learning_rate(lr: float | dict[str, Any], step: int) -> float:
    """A float, or a serialized schedule ``{"class_name", "config"}``, at ``step``."""
    if isinstance(lr, dict):
        return float(_SCHEDULES[lr["class_name"]](step, **lr["config"]))
    return float(lr)


# ----------------------------------------------------------------------------- pre-steps
def clip_gradients(grads, clipnorm=None, clipvalue=None, global_clipnorm=None):
    grads = [_f64(g) for g in grads]
    if clipvalue is not None:
        return [np.clip(g, -clipvalue, clipvalue) for g in grads]
    if clipnorm is not None:
        return [g * clipnorm / max(np.sqrt(np.sum(g * g)), clipnorm) for g in grads]
    if global_clipnorm is not None:
        norm = np.sqrt(sum(np.sum(g * g) for g in grads))
        return [g * global_clipnorm / max(norm, global_clipnorm) for g in grads]
    return grads


# ----------------------------------------------------------------------------- the rules
def sgd(w, g, s, *, t, lr, momentum, nesterov, momentum_form, dampening):
    if momentum == 0:
        return w - lr * g, {}
    if momentum_form == "keras":
        v = momentum * s["momentum"] - lr * g
        return (w + momentum * v - lr * g if nesterov else w + v), {"momentum": v}
    b = g.copy() if t == 1 else momentum * s["momentum"] + (1 - dampening) * g
    return w - lr * (g + momentum * b if nesterov else b), {"momentum": b}


def adagrad(w, g, s, *, t, lr, epsilon, epsilon_placement, initial_accumulator_value):
    a = s["accumulator"] + g**2
    d = np.sqrt(a + epsilon) if epsilon_placement == "inside_sqrt" else np.sqrt(a) + epsilon
    return w - lr * g / d, {"accumulator": a}


def rmsprop(w, g, s, *, t, lr, rho, momentum, epsilon, centered, epsilon_placement,
            momentum_form):  # fmt: skip
    new = {"velocity": rho * s["velocity"] + (1 - rho) * g**2}
    spread = new["velocity"]
    if centered:
        new["average_gradient"] = rho * s["average_gradient"] + (1 - rho) * g
        spread = spread - new["average_gradient"] ** 2
    if epsilon_placement == "inside_sqrt":
        d = np.sqrt(spread + epsilon)
    else:
        d = np.sqrt(spread) + epsilon
    if momentum == 0:
        return w - lr * g / d, new
    if momentum_form == "keras":  # lr inside the buffer
        new["momentum"] = momentum * s["momentum"] + lr * g / d
        return w - new["momentum"], new
    new["momentum"] = momentum * s["momentum"] + g / d  # torch: lr applied to the buffer
    return w - lr * new["momentum"], new


def adam(w, g, s, *, t, lr, beta_1, beta_2, epsilon, amsgrad, epsilon_placement):
    m = beta_1 * s["momentum"] + (1 - beta_1) * g
    v = beta_2 * s["velocity"] + (1 - beta_2) * g**2
    new = {"momentum": m, "velocity": v}
    if amsgrad:
        new["velocity_hat"] = v = np.maximum(s["velocity_hat"], v)
    m_hat = m / (1 - beta_1**t)
    v_hat = v / (1 - beta_2**t)
    # "sqrt_v": ε added to √v before the bias correction is the same as √v̂ + ε/√(1-β₂ᵗ).
    eps = epsilon / np.sqrt(1 - beta_2**t) if epsilon_placement == "sqrt_v" else epsilon
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), new


adamw = adam

_RULES = {"SGD": sgd, "Adagrad": adagrad, "RMSprop": rmsprop, "Adam": adam, "AdamW": adamw}
_BASE = ("learning_rate", "weight_decay", "weight_decay_mode", "clipnorm", "clipvalue",
         "global_clipnorm")  # fmt: skip


def initial_state(class_name: str, config: dict[str, Any], params) -> dict[str, list]:
    """Zero (Adagrad: ``initial_accumulator_value``) slots, named as in the spec."""
    if class_name == "SGD":
        names = ["momentum"] if config["momentum"] > 0 else []
    elif class_name == "Adagrad":
        names = ["accumulator"]
    elif class_name == "RMSprop":
        names = ["velocity"] + (["momentum"] if config["momentum"] > 0 else [])
        names += ["average_gradient"] if config["centered"] else []
    else:  # Adam, AdamW
        names = ["momentum", "velocity"] + (["velocity_hat"] if config["amsgrad"] else [])
    fill = config.get("initial_accumulator_value", 0.0)
    return {k: [np.full(np.shape(p), fill, dtype=np.float64) for p in params] for k in names}


def step(class_name: str, config: dict[str, Any], params, grads, state, iterations: int):
    """One update of every parameter; returns ``(new params, new state)`` (inputs unchanged).

    ``config`` is ``optimizer.get_config()``; ``iterations`` the updates already applied.
    """
    t = iterations + 1
    lr = learning_rate(config["learning_rate"], iterations)
    grads = clip_gradients(grads, config["clipnorm"], config["clipvalue"],
                           config["global_clipnorm"])  # fmt: skip
    hyper = {k: v for k, v in config.items() if k not in _BASE}
    wd = config["weight_decay"] or 0.0
    new_params, new_state = [], {k: [] for k in state}
    for i, (w, g) in enumerate(zip(params, grads, strict=True)):
        w = _f64(w)
        if config["weight_decay_mode"] == "decoupled":
            w = w - lr * wd * w
        else:
            g = g + wd * w
        slots = {k: _f64(v[i]) for k, v in state.items()}
        w, slots = _RULES[class_name](w, g, slots, t=t, lr=lr, **hyper)
        new_params.append(w)
        for k in new_state:
            new_state[k].append(slots[k])
    return new_params, new_state
