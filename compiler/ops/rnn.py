"""Recurrent layers: LSTM, GRU, RNN (ONNX spec opsets 7-22, ``layout`` since 14).

Gate orders follow the spec: LSTM i, o, f, c; GRU z, r, h. The equations (optional peepholes, clip,
``input_forget``, ``linear_before_reset``, ``sequence_lens`` masking) are computed by ``lstm``/``gru``/``rnn``
in the Python runtime (runtime/python/bornrt.py), shared by the reference interpreter and the python target.
"""
from __future__ import annotations

from ..pyrt import rt
from .registry import InferCtx, TensorType, register

_RNN_ATTRS = {"activation_alpha": None, "activation_beta": None, "activations": None, "clip": None,
              "direction": "forward", "hidden_size": None, "layout": 0}


def _rnn_infer(ctx: InferCtx, n_state: int) -> list:
    xs, ws = ctx.shape(0), ctx.shape(1)
    if xs is None or ws is None:
        return [TensorType(ctx.dtype(0), None)] * len(ctx.node.outputs)
    dirs, hidden = ws[0], ctx.attrs["hidden_size"] or ws[1] // {1: 1, 2: 4, 3: 3}[n_state]
    seq, batch = (xs[1], xs[0]) if ctx.attrs["layout"] else (xs[0], xs[1])
    y = (batch, seq, dirs, hidden) if ctx.attrs["layout"] else (seq, dirs, batch, hidden)
    yh = (batch, dirs, hidden) if ctx.attrs["layout"] else (dirs, batch, hidden)
    return [TensorType(ctx.dtype(0), y)] + [TensorType(ctx.dtype(0), yh)] * (len(ctx.node.outputs) - 1)


@register("LSTM", attrs={**_RNN_ATTRS, "input_forget": 0}, infer=lambda c: _rnn_infer(c, 2), versions="7-22")
def ref_lstm(ctx, *args):
    return rt.lstm(ctx.attrs, ctx.n_outputs, *args)


@register("GRU", attrs={**_RNN_ATTRS, "linear_before_reset": 0}, infer=lambda c: _rnn_infer(c, 3), versions="7-22")
def ref_gru(ctx, *args):
    return rt.gru(ctx.attrs, ctx.n_outputs, *args)


@register("RNN", attrs=dict(_RNN_ATTRS), infer=lambda c: _rnn_infer(c, 1), versions="7-22")
def ref_rnn(ctx, *args):
    return rt.rnn(ctx.attrs, ctx.n_outputs, *args)
