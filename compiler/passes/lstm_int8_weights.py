"""lstm_int8_weights: the C backend's LSTM reads weight-only int8 weights directly (see the function)."""
from __future__ import annotations

import numpy as np

from ..ir.graph import Model
from ..ir.types import TensorType
from .util import clone, use_counts


def lstm_int8_weights(model: Model, target=None) -> Model:
    """For C targets (nothing changes for others): LSTM nodes whose W and R come from a DequantizeLinear of int8 constants (weight-only int8) read the int8
    weights directly, stored k-major ([D, I, 4H], [D, H, 4H]) so the gate rows vectorize, and scaled per gate row
    after the sums (attributes ``_w_scale`` / ``_r_scale``): a quarter of the weight bytes per step and no
    dequantized copy per inference. The result equals the float LSTM on the
    dequantized weights up to float rounding (the scale is applied to each row's sum instead of each weight)."""
    if getattr(target, "backend", target) != "c":
        return model
    g = model.graph
    prod = g.producers()
    uses = use_counts(g)

    def int8_source(v):
        p = prod.get(v)
        if p is None or p.op != "DequantizeLinear" or p.domain or uses[v] != 1 or len(p.inputs) > 2 and p.inputs[2]:
            return None
        q, s = g.constants.get(p.inputs[0]), g.constants.get(p.inputs[1])
        if q is None or s is None or q.dtype != np.int8 or q.ndim != 3 or s.dtype != np.float32:
            return None
        if s.size == 1:
            s = np.full(q.shape[0] * q.shape[1], float(s.reshape(-1)[0]), np.float32)
        elif s.ndim == 1 and p.attrs.get("axis", 1) in (1, -2) and s.size == q.shape[1] and q.shape[0] == 1:
            s = s.astype(np.float32)
        else:
            return None
        return p, p.inputs[0], s

    fused = {}
    for n in g.nodes:
        if n.op == "LSTM" and not n.domain and len(n.inputs) > 2:
            w, r = int8_source(n.inputs[1]), int8_source(n.inputs[2])
            if w is not None and r is not None:
                fused[id(n)] = (w, r)
    if not fused:
        return model
    m = clone(model)
    drop = set()
    for old, new in zip(model.graph.nodes, m.graph.nodes):
        if id(old) in fused:
            (pw, qw, sw), (pr, qr, sr) = fused[id(old)]
            names = []
            for q in (qw, qr):                  # k-major copies: the gate rows are then contiguous per input k
                t = np.ascontiguousarray(np.swapaxes(m.graph.constants[q], 1, 2))
                names.append(q + "_kmajor")
                m.graph.constants[names[-1]] = t
                m.graph.types[names[-1]] = TensorType.of(t)
            new.inputs = [new.inputs[0], *names] + new.inputs[3:]
            new.attrs = {**new.attrs, "_w_scale": [float(v) for v in sw], "_r_scale": [float(v) for v in sr]}
            drop.update({pw.name, pr.name})
    m.graph.nodes = [n for n in m.graph.nodes if n.name not in drop]
    return m
