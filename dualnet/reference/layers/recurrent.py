"""float64 references of the recurrent layers: one numpy loop over the steps per layer, each
cell written gate by gate from its formula (Keras's ``implementation=1`` form, which is also
where the per-gate dropout masks apply).

The dropout masks come from the neutral function that defines them
(:func:`dualnet.layers.recurrent.base_rnn.dropout_masks`); ``call`` is the index of the
training call (0 for a fresh layer). ``mask`` is the input's ``(batch, timesteps)`` boolean
mask, ``initial_state`` a state array or a list of them.
"""

from __future__ import annotations

import numpy as np

from dualnet.layers.recurrent.base_rnn import dropout_masks
from dualnet.reference import activations as _activations


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def _act(name):
    """The reference activation (config value: a registry name)."""
    if callable(name):
        raise NotImplementedError("the reference takes built-in activation names only")
    return getattr(_activations, name or "linear")


def _states(initial_state, batch, units, count):
    if initial_state is None:
        return [np.zeros((batch, units)) for _ in range(count)]
    states = initial_state if isinstance(initial_state, list | tuple) else [initial_state]
    return [_f64(s) for s in states]


def _masks(x, units, gates, *, dropout, recurrent_dropout, seed, training, call):
    """Per gate, the input and recurrent dropout factors (ones when not applied)."""
    batch, _, features = x.shape
    ones_in, ones_rec = [np.ones((batch, features))] * gates, [np.ones((batch, units))] * gates
    if not training:
        return ones_in, ones_rec
    count = gates if recurrent_dropout > 0.0 else 1
    din, drec = dropout_masks(seed, call, batch, features, units, count, dropout,
                              recurrent_dropout)  # fmt: skip
    # count == 1: the one mask is shared by every gate.
    din_g = ones_in if din is None else [din[g % count] for g in range(gates)]
    drec_g = ones_rec if drec is None else [drec[g % count] for g in range(gates)]
    return din_g, drec_g


def _run(step, x, states, *, units, mask, go_backwards, zero_output_for_mask,
         return_sequences, return_state):  # fmt: skip
    """The loop shared by the layers: ``step(x_t, states) -> (output, new states)``."""
    x = _f64(x)
    batch, steps, _ = x.shape
    order = range(steps - 1, -1, -1) if go_backwards else range(steps)
    previous = np.zeros((batch, units))
    outputs = []
    for t in order:
        out, new = step(x[:, t], states)
        if mask is not None:
            keep = np.asarray(mask, bool)[:, t][:, None]
            # A masked step: the states carried over; the output repeats the previous one
            # (zeros before any valid step) or is zeros.
            new = [np.where(keep, n, s) for n, s in zip(new, states, strict=True)]
            out = np.where(keep, out, 0.0 if zero_output_for_mask else previous)
        states, previous = new, out
        outputs.append(out)
    y = np.stack(outputs, axis=1) if return_sequences else outputs[-1]
    return [y, *states] if return_state else y


def _split(a, gates, units):
    return [a[..., g * units : (g + 1) * units] for g in range(gates)]


def simple_rnn(x, w, *, units, activation="tanh", use_bias=True, dropout=0.0,
               recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
               go_backwards=False, zero_output_for_mask=False, training=False, call=0,
               mask=None, initial_state=None, **_):  # fmt: skip
    """``h_t = φ((x_t·m_x)·kernel + bias + (h_{t-1}·m_h)·recurrent_kernel)``."""
    x = _f64(x)
    phi = _act(activation)
    kernel, rec = _f64(w["kernel"]), _f64(w["recurrent_kernel"])
    bias = _f64(w["bias"]) if use_bias else np.zeros(units)
    din, drec = _masks(x, units, 1, dropout=dropout, recurrent_dropout=recurrent_dropout,
                       seed=seed, training=training, call=call)  # fmt: skip

    def step(xt, states):
        h = phi((xt * din[0]) @ kernel + bias + (states[0] * drec[0]) @ rec)
        return h, [h]

    return _run(step, x, _states(initial_state, x.shape[0], units, 1), units=units, mask=mask,
                go_backwards=go_backwards, zero_output_for_mask=zero_output_for_mask,
                return_sequences=return_sequences, return_state=return_state)  # fmt: skip


def lstm(x, w, *, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
         dropout=0.0, recurrent_dropout=0.0, seed=None, return_sequences=False,
         return_state=False, go_backwards=False, zero_output_for_mask=False, training=False,
         call=0, mask=None, initial_state=None, **_):  # fmt: skip
    """Gates i, f, c, o: ``c_t = σ(z_f)·c + σ(z_i)·φ(z_c)``, ``h_t = σ(z_o)·φ(c_t)`` with
    ``z_g = (x·m_x[g])·W_g + b_g + (h·m_h[g])·U_g``."""
    x = _f64(x)
    phi, sigma = _act(activation), _act(recurrent_activation)
    kernels = _split(_f64(w["kernel"]), 4, units)
    recs = _split(_f64(w["recurrent_kernel"]), 4, units)
    biases = _split(_f64(w["bias"]) if use_bias else np.zeros(4 * units), 4, units)
    din, drec = _masks(x, units, 4, dropout=dropout, recurrent_dropout=recurrent_dropout,
                       seed=seed, training=training, call=call)  # fmt: skip

    def step(xt, states):
        h, c = states
        zi, zf, zc, zo = ((xt * din[g]) @ kernels[g] + biases[g] + (h * drec[g]) @ recs[g]
                          for g in range(4))  # fmt: skip
        c_new = sigma(zf) * c + sigma(zi) * phi(zc)
        h_new = sigma(zo) * phi(c_new)
        return h_new, [h_new, c_new]

    return _run(step, x, _states(initial_state, x.shape[0], units, 2), units=units, mask=mask,
                go_backwards=go_backwards, zero_output_for_mask=zero_output_for_mask,
                return_sequences=return_sequences, return_state=return_state)  # fmt: skip


def gru(x, w, *, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
        reset_after=True, dropout=0.0, recurrent_dropout=0.0, seed=None,
        return_sequences=False, return_state=False, go_backwards=False,
        zero_output_for_mask=False, training=False, call=0, mask=None, initial_state=None,
        **_):  # fmt: skip
    """Gates z, r, h; ``h_t = z·h + (1 - z)·ĥ`` with ``ĥ = φ(x_h + r·(h·U_h + b_hh))``
    (``reset_after``) or ``φ(x_h + (r·h)·U_h)`` (before)."""
    x = _f64(x)
    phi, sigma = _act(activation), _act(recurrent_activation)
    kernels = _split(_f64(w["kernel"]), 3, units)
    recs = _split(_f64(w["recurrent_kernel"]), 3, units)
    if not use_bias:
        b_in, b_rec = np.zeros(3 * units), np.zeros(3 * units)
    elif reset_after:
        b_in, b_rec = _f64(w["bias"])  # rows: input, recurrent
    else:
        b_in, b_rec = _f64(w["bias"]), np.zeros(3 * units)
    b_in, b_rec = _split(b_in, 3, units), _split(b_rec, 3, units)
    din, drec = _masks(x, units, 3, dropout=dropout, recurrent_dropout=recurrent_dropout,
                       seed=seed, training=training, call=call)  # fmt: skip

    def step(xt, states):
        (h,) = states
        xz, xr, xh = ((xt * din[g]) @ kernels[g] + b_in[g] for g in range(3))
        hz, hr, hh = (h * drec[g] for g in range(3))
        z = sigma(xz + hz @ recs[0] + b_rec[0])
        r = sigma(xr + hr @ recs[1] + b_rec[1])
        if reset_after:
            candidate = phi(xh + r * (hh @ recs[2] + b_rec[2]))
        else:
            candidate = phi(xh + (r * hh) @ recs[2])
        h_new = z * h + (1.0 - z) * candidate
        return h_new, [h_new]

    return _run(step, x, _states(initial_state, x.shape[0], units, 1), units=units, mask=mask,
                go_backwards=go_backwards, zero_output_for_mask=zero_output_for_mask,
                return_sequences=return_sequences, return_state=return_state)  # fmt: skip


_LAYERS = {"SimpleRNN": simple_rnn, "LSTM": lstm, "GRU": gru}


def bidirectional(x, w, *, layer, merge_mode="concat", backward_layer, training=False,
                  call=0, mask=None, initial_state=None, **_):  # fmt: skip
    """The forward and backward layers (configs ``layer``, ``backward_layer``, as
    ``serialize`` gives them) on the same input, the backward output re-reversed with
    ``return_sequences``, merged by ``merge_mode``."""
    results = []
    states = list(initial_state) if initial_state is not None else None
    for spec in (layer, backward_layer):
        config = {k: v for k, v in spec["config"].items() if k not in ("name", "dtype")}
        prefix = f"{spec['config']['name']}/"
        weights = {k.removeprefix(prefix): v for k, v in w.items() if k.startswith(prefix)}
        count = 2 if spec["class_name"] == "LSTM" else 1
        own = None
        if states is not None:
            own, states = states[:count], states[count:]
        fn = _LAYERS[spec["class_name"]]
        out = fn(x, weights, **config, training=training, call=call, mask=mask, initial_state=own)
        results.append(out if config["return_state"] else [out])
    (y, *fw_states), (y_rev, *bw_states) = results
    if layer["config"]["return_sequences"]:
        y_rev = y_rev[:, ::-1]
    merged = {"concat": lambda: np.concatenate([y, y_rev], axis=-1), "sum": lambda: y + y_rev,
              "mul": lambda: y * y_rev, "ave": lambda: (y + y_rev) / 2.0,
              None: lambda: [y, y_rev]}[merge_mode]()  # fmt: skip
    if not layer["config"]["return_state"]:
        return merged
    head = merged if merge_mode is None else [merged]
    return [*head, *fw_states, *bw_states]


def _output_mask(mask, return_sequences):
    return mask if (mask is not None and return_sequences) else None


def simple_rnn_mask(x, mask, *, return_sequences=False, return_state=False, **_):
    """The output mask: the input's with ``return_sequences``, else None (None per state)."""
    out = _output_mask(mask, return_sequences)
    return [out, None] if return_state else out


def gru_mask(x, mask, *, return_sequences=False, return_state=False, **_):
    out = _output_mask(mask, return_sequences)
    return [out, None] if return_state else out


def lstm_mask(x, mask, *, return_sequences=False, return_state=False, **_):
    out = _output_mask(mask, return_sequences)
    return [out, None, None] if return_state else out


def bidirectional_mask(x, mask, *, layer, merge_mode="concat", backward_layer, **_):
    config = layer["config"]
    out = _output_mask(mask, config["return_sequences"])
    head = [out, out] if merge_mode is None else [out]
    if not config["return_state"]:
        return head if merge_mode is None else out
    states = (2 if layer["class_name"] == "LSTM" else 1) + (
        2 if backward_layer["class_name"] == "LSTM" else 1
    )
    return [*head, *([None] * states)]
