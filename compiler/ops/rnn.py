"""Recurrent layers: LSTM, GRU, RNN (ONNX spec opsets 7-22, ``layout`` since 14).

Gate orders follow the spec: LSTM i, o, f, c; GRU z, r, h. The equations (optional peepholes, clip,
``input_forget``, ``linear_before_reset``, ``sequence_lens`` masking) are computed by ``lstm``/``gru``/``rnn``
in the Python runtime (runtime/python/bornrt.py), shared by the reference interpreter and the python target.
"""
from __future__ import annotations

from ..errors import ShapeError, SpecViolation
from ..pyrt import rt
from .registry import InferCtx, TensorType, register

_RNN_ATTRS = {"activation_alpha": None, "activation_beta": None, "activations": None, "clip": None,
              "direction": "forward", "hidden_size": None, "layout": 0}


def _check_rnn_inputs(ctx: InferCtx, gates: int, dirs, hidden, batch, inp) -> None:
    """Every present input has the shape the spec gives it (ONNX LSTM/GRU/RNN, "Inputs"): W [dirs, gates*H, I],
    R [dirs, gates*H, H], B [dirs, 2*gates*H], sequence_lens [batch], initial_h / initial_c [dirs, batch, H]
    ([batch, dirs, H] with layout 1), P [dirs, 3*H]; dirs is 2 for bidirectional, else 1. Raises ShapeError
    (a kernel would read past a buffer of another shape)."""
    want_dirs = 2 if ctx.attrs.get("direction") == "bidirectional" else 1
    state = (batch, dirs, hidden) if ctx.attrs["layout"] else (dirs, batch, hidden)
    want = {1: (dirs, gates * hidden, inp), 2: (dirs, gates * hidden, hidden), 3: (dirs, 2 * gates * hidden),
            4: (batch,), 5: state, 6: state, 7: (dirs, 3 * hidden)}
    problems = [] if dirs == want_dirs else [f"W has {dirs} directions, the direction attribute says {want_dirs}"]
    for i, shape in want.items():
        got = ctx.shape(i) if i < len(ctx.types) and ctx.has(i) else None
        if got is not None and (len(got) != len(shape) or any(isinstance(a, int) and isinstance(b, int) and a != b
                                                              for a, b in zip(got, shape))):
            problems.append(f"input {i} has shape {list(got)}, the spec wants {list(shape)}")
    if problems:
        raise SpecViolation(f"node {ctx.node.name!r} ({ctx.node.op}): " + "; ".join(problems))


def _rnn_infer(ctx: InferCtx, n_state: int) -> list:
    xs, ws = ctx.shape(0), ctx.shape(1)
    if xs is None or ws is None:
        return [TensorType(ctx.dtype(0), None)] * len(ctx.node.outputs)
    gates = {1: 1, 2: 4, 3: 3}[n_state]
    if len(xs) != 3 or len(ws) != 3:
        raise SpecViolation(f"node {ctx.node.name!r} ({ctx.node.op}): X and W must be 3-D, not {list(xs)} and {list(ws)}")
    dirs, hidden = ws[0], ctx.attrs["hidden_size"] or ws[1] // gates
    seq, batch = (xs[1], xs[0]) if ctx.attrs["layout"] else (xs[0], xs[1])
    _check_rnn_inputs(ctx, gates, dirs, hidden, batch, xs[2])
    y = (batch, seq, dirs, hidden) if ctx.attrs["layout"] else (seq, dirs, batch, hidden)
    yh = (batch, dirs, hidden) if ctx.attrs["layout"] else (dirs, batch, hidden)
    return [TensorType(ctx.dtype(0), y)] + [TensorType(ctx.dtype(0), yh)] * (len(ctx.node.outputs) - 1)


@register("LSTM", attrs={**_RNN_ATTRS, "input_forget": 0}, infer=lambda c: _rnn_infer(c, 2), versions="7-22", outputs=3)
def ref_lstm(ctx, *args):
    return rt.lstm(ctx.attrs, ctx.n_outputs, *args)


@register("GRU", attrs={**_RNN_ATTRS, "linear_before_reset": 0}, infer=lambda c: _rnn_infer(c, 3), versions="7-22", outputs=2)
def ref_gru(ctx, *args):
    return rt.gru(ctx.attrs, ctx.n_outputs, *args)


@register("RNN", attrs=dict(_RNN_ATTRS), infer=lambda c: _rnn_infer(c, 1), versions="7-22", outputs=2)
def ref_rnn(ctx, *args):
    return rt.rnn(ctx.attrs, ctx.n_outputs, *args)
