"""Recurrent layers: LSTM, GRU, RNN (ONNX spec opsets 7-22, ``layout`` since 14).

Gate orders follow the spec: LSTM i, o, f, c; GRU z, r, h. Equations are the spec's (with optional peepholes,
clip, ``input_forget`` and ``linear_before_reset``); ``sequence_lens`` masks steps past each batch's length
(outputs zero there, state held).
"""
from __future__ import annotations

import numpy as np

from .elementwise import sigmoid
from .registry import InferCtx, TensorType, register

_ACT = {
    "Sigmoid": lambda x, a, b: sigmoid(x),
    "Tanh": lambda x, a, b: np.tanh(x),
    "Relu": lambda x, a, b: np.maximum(x, 0),
    "Affine": lambda x, a, b: a * x + b,
    "LeakyRelu": lambda x, a, b: np.where(x >= 0, x, a * x),
    "ThresholdedRelu": lambda x, a, b: np.where(x > a, x, 0),
    "ScaledTanh": lambda x, a, b: a * np.tanh(b * x),
    "HardSigmoid": lambda x, a, b: np.clip(a * x + b, 0, 1),
    "Elu": lambda x, a, b: np.where(x >= 0, x, a * (np.exp(x) - 1)),
    "Softsign": lambda x, a, b: x / (1 + np.abs(x)),
    "Softplus": lambda x, a, b: np.log1p(np.exp(x)),
}
_DEFAULT_ALPHA = {"LeakyRelu": 0.01, "ThresholdedRelu": 1.0, "HardSigmoid": 0.2, "Elu": 1.0, "Affine": 1.0, "ScaledTanh": 1.0}
_DEFAULT_BETA = {"HardSigmoid": 0.5, "Affine": 0.0, "ScaledTanh": 1.0}
_RNN_ATTRS = {"activation_alpha": None, "activation_beta": None, "activations": None, "clip": None,
              "direction": "forward", "hidden_size": None, "layout": 0}


def _acts(attrs, defaults, dirs):
    names = attrs["activations"] or defaults * dirs
    al, be = list(attrs["activation_alpha"] or []), list(attrs["activation_beta"] or [])
    out = []
    for k, n in enumerate(names):
        a = al[k] if k < len(al) else _DEFAULT_ALPHA.get(n, 0.0)
        b = be[k] if k < len(be) else _DEFAULT_BETA.get(n, 0.0)
        out.append(lambda x, f=_ACT[n], a=a, b=b: f(x, a, b))
    per = len(defaults)
    return [out[d * per:(d + 1) * per] for d in range(dirs)]


def _rnn_infer(ctx: InferCtx, n_state: int) -> list:
    xs, ws = ctx.shape(0), ctx.shape(1)
    if xs is None or ws is None:
        return [TensorType(ctx.dtype(0), None)] * len(ctx.node.outputs)
    dirs, hidden = ws[0], ctx.attrs["hidden_size"] or ws[1] // {1: 1, 2: 4, 3: 3}[n_state]
    seq, batch = (xs[1], xs[0]) if ctx.attrs["layout"] else (xs[0], xs[1])
    y = (batch, seq, dirs, hidden) if ctx.attrs["layout"] else (seq, dirs, batch, hidden)
    yh = (batch, dirs, hidden) if ctx.attrs["layout"] else (dirs, batch, hidden)
    return [TensorType(ctx.dtype(0), y)] + [TensorType(ctx.dtype(0), yh)] * (len(ctx.node.outputs) - 1)


def _run_directions(x, lens, dirs, direction, step, init_states):
    """Drive ``step(d, x_t, states) -> states`` over time for each direction; returns Y and final states."""
    seq, batch = x.shape[0], x.shape[1]
    ys, finals = [], []
    for d in range(dirs):
        reverse = direction == "reverse" or (direction == "bidirectional" and d == 1)
        states = [s[d] for s in init_states]
        hs = np.zeros((seq, batch, states[0].shape[-1]), dtype=np.float64)
        for k in range(seq):
            t = seq - 1 - k if reverse else k
            new = step(d, x[t], states)
            if lens is not None:
                valid = (t < lens).reshape(-1, 1)
                new = [np.where(valid, n, s) for n, s in zip(new, states)]
                hs[t] = np.where(valid, new[0], 0)
            else:
                hs[t] = new[0]
            states = new
        ys.append(hs)
        finals.append(states)
    y = np.stack(ys, axis=1)                      # (seq, dirs, batch, hidden)
    return y, [np.stack([f[i] for f in finals]) for i in range(len(init_states))]


def _prep(ctx, x, w, init):
    layout = ctx.attrs["layout"]
    if layout:
        x = np.swapaxes(x, 0, 1)
        init = [None if s is None else np.swapaxes(s, 0, 1) for s in init]
    return x.astype(np.float64), init


def _finish(ctx, x_dtype, y, finals):
    if ctx.attrs["layout"]:
        y = np.transpose(y, (2, 0, 1, 3))
        finals = [np.swapaxes(f, 0, 1) for f in finals]
    return tuple([y.astype(x_dtype)] + [f.astype(x_dtype) for f in finals])


@register("LSTM", attrs={**_RNN_ATTRS, "input_forget": 0}, infer=lambda c: _rnn_infer(c, 2), versions="7-22")
def ref_lstm(ctx, x, w, r, b=None, lens=None, h0=None, c0=None, p=None):
    dtype = x.dtype
    x, (h0, c0) = _prep(ctx, x, w, [h0, c0])
    dirs, hidden = w.shape[0], w.shape[1] // 4
    batch = x.shape[1]
    b = np.zeros((dirs, 8 * hidden)) if b is None else b.astype(np.float64)
    p = np.zeros((dirs, 3 * hidden)) if p is None else p.astype(np.float64)
    h0 = np.zeros((dirs, batch, hidden)) if h0 is None else h0.astype(np.float64)
    c0 = np.zeros((dirs, batch, hidden)) if c0 is None else c0.astype(np.float64)
    acts = _acts(ctx.attrs, ["Sigmoid", "Tanh", "Tanh"], dirs)
    clip = ctx.attrs["clip"]
    w64, r64 = w.astype(np.float64), r.astype(np.float64)

    def step(d, xt, states):
        h, c = states
        gates = xt @ w64[d].T + h @ r64[d].T + b[d, :4 * hidden] + b[d, 4 * hidden:]
        if clip is not None:
            gates = np.clip(gates, -clip, clip)
        gi, go, gf, gc = np.split(gates, 4, axis=1)
        pi, po, pf = np.split(p[d], 3)
        f_, g_, h_ = acts[d]
        i = f_(gi + pi * c)
        f = 1 - i if ctx.attrs["input_forget"] else f_(gf + pf * c)
        cn = f * c + i * g_(gc)
        o = f_(go + po * cn)
        return [o * h_(cn), cn]

    y, (hn, cn) = _run_directions(x, lens, dirs, ctx.attrs["direction"], step, [h0, c0])
    return _finish(ctx, dtype, y, [hn, cn])[:ctx.n_outputs]


@register("GRU", attrs={**_RNN_ATTRS, "linear_before_reset": 0}, infer=lambda c: _rnn_infer(c, 3), versions="7-22")
def ref_gru(ctx, x, w, r, b=None, lens=None, h0=None):
    dtype = x.dtype
    x, (h0,) = _prep(ctx, x, w, [h0])
    dirs, hidden = w.shape[0], w.shape[1] // 3
    batch = x.shape[1]
    b = np.zeros((dirs, 6 * hidden)) if b is None else b.astype(np.float64)
    h0 = np.zeros((dirs, batch, hidden)) if h0 is None else h0.astype(np.float64)
    acts = _acts(ctx.attrs, ["Sigmoid", "Tanh"], dirs)
    w64, r64 = w.astype(np.float64), r.astype(np.float64)
    lbr = ctx.attrs["linear_before_reset"]

    def step(d, xt, states):
        (h,) = states
        wz, wr, wh = np.split(w64[d], 3)
        rz, rr, rh = np.split(r64[d], 3)
        wbz, wbr, wbh, rbz, rbr, rbh = np.split(b[d], 6)
        f_, g_ = acts[d]
        z = f_(xt @ wz.T + h @ rz.T + wbz + rbz)
        rg = f_(xt @ wr.T + h @ rr.T + wbr + rbr)
        if lbr:
            hh = g_(xt @ wh.T + rg * (h @ rh.T + rbh) + wbh)
        else:
            hh = g_(xt @ wh.T + (rg * h) @ rh.T + rbh + wbh)
        return [(1 - z) * hh + z * h]

    y, (hn,) = _run_directions(x, lens, dirs, ctx.attrs["direction"], step, [h0])
    return _finish(ctx, dtype, y, [hn])[:ctx.n_outputs]


@register("RNN", attrs=dict(_RNN_ATTRS), infer=lambda c: _rnn_infer(c, 1), versions="7-22")
def ref_rnn(ctx, x, w, r, b=None, lens=None, h0=None):
    dtype = x.dtype
    x, (h0,) = _prep(ctx, x, w, [h0])
    dirs, hidden = w.shape[0], w.shape[1]
    batch = x.shape[1]
    b = np.zeros((dirs, 2 * hidden)) if b is None else b.astype(np.float64)
    h0 = np.zeros((dirs, batch, hidden)) if h0 is None else h0.astype(np.float64)
    acts = _acts(ctx.attrs, ["Tanh"], dirs)
    w64, r64 = w.astype(np.float64), r.astype(np.float64)

    def step(d, xt, states):
        (h,) = states
        return [acts[d][0](xt @ w64[d].T + h @ r64[d].T + b[d, :hidden] + b[d, hidden:])]

    y, (hn,) = _run_directions(x, lens, dirs, ctx.attrs["direction"], step, [h0])
    return _finish(ctx, dtype, y, [hn])[:ctx.n_outputs]
