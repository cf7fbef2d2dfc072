"""Model summaries for ``bornc inspect``: I/O, op histogram, parameters, FLOPs.

FLOPs follow the convention of ../shared/models/README.md: 2 x multiply-accumulates for Conv, ConvTranspose,
MatMul, Gemm, LSTM, GRU and RNN, and one FLOP per output element for every other node, main graph only
(subgraph bodies are not counted).
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from .ir.graph import Model
from .ir.types import TensorType
from .ops import registry


def _size(t) -> int:
    return int(np.prod(t.shape)) if isinstance(t, TensorType) and t.is_static else 0


@registry.cost("Conv")
def _conv_flops(node, ins, outs) -> int:
    w = ins[1]
    return 2 * _size(outs[0]) * int(np.prod(w.shape[1:])) if isinstance(w, TensorType) and w.is_static else 0


@registry.cost("ConvTranspose")
def _convtranspose_flops(node, ins, outs) -> int:
    x, w = ins[0], ins[1]
    return 2 * _size(x) * int(np.prod(w.shape[1:])) if isinstance(w, TensorType) and w.is_static else 0


@registry.cost("MatMul")
def _matmul_flops(node, ins, outs) -> int:
    a = ins[0]
    return 2 * _size(outs[0]) * (a.shape[-1] if isinstance(a, TensorType) and a.is_static and a.shape else 1)


@registry.cost("Gemm")
def _gemm_flops(node, ins, outs) -> int:
    a = ins[0]
    if not (isinstance(a, TensorType) and a.is_static):
        return 0
    k = a.shape[0] if node.attrs.get("transA", 0) else a.shape[1]
    return 2 * _size(outs[0]) * k


def _rnn_flops(gates: int):
    def fn(node, ins, outs) -> int:
        x, w, r = ins[0], ins[1], ins[2]
        if not all(isinstance(t, TensorType) and t.is_static for t in (x, w, r)):
            return 0
        seq, batch = (x.shape[1], x.shape[0]) if node.attrs.get("layout", 0) else (x.shape[0], x.shape[1])
        return 2 * seq * batch * (int(np.prod(w.shape)) + int(np.prod(r.shape)))
    return fn


for _op, _g in (("LSTM", 4), ("GRU", 3), ("RNN", 1)):
    registry.cost(_op)(_rnn_flops(_g))


def _fused(core):
    """A Fused* composite: its core's FLOPs plus one per output element per epilogue step."""
    def fn(node, ins, outs) -> int:
        return core(node, ins, outs) + _size(outs[0]) * len(node.attrs.get("epilogue") or [])
    return fn


registry.cost("FusedConv", "bornc")(_fused(_conv_flops))
registry.cost("QConv", "bornc")(_conv_flops)             # integer operations counted as FLOPs are
registry.cost("QMatMul", "bornc")(_matmul_flops)         # (2 x multiply-accumulates), for comparable figures
registry.cost("FusedGemm", "bornc")(_fused(_gemm_flops))
registry.cost("FusedMatMul", "bornc")(_fused(_matmul_flops))


def node_flops(model: Model, node) -> int:
    g = model.graph
    ins = [g.types.get(i) if i else None for i in node.inputs]
    outs = [g.types.get(o) for o in node.outputs if o]
    opdef = registry.get(node.op, node.domain)
    if opdef is not None and opdef.flops is not None:
        return int(opdef.flops(node, ins, outs))
    return sum(_size(t) for t in outs)


def summarize(model: Model) -> dict:
    """Inspection summary: inputs, outputs, op histogram (main graph and subgraphs), parameters and FLOPs."""
    g = model.graph
    hist = Counter(n.op for n in g.nodes)
    sub_hist = Counter(n.op for _, n in g.walk()) - hist
    flops: Counter = Counter()
    for n in g.nodes:
        flops[n.op] += node_flops(model, n)
    params, pbytes = model.param_count()
    return {
        "inputs": [{"name": n, "type": str(g.types[n]), "dtype": getattr(g.types[n], "dtype", None),
                    "shape": list(getattr(g.types[n], "shape", None) or [])} for n in g.inputs],
        "outputs": [{"name": n, "type": str(g.types[n]), "dtype": getattr(g.types[n], "dtype", None),
                     "shape": list(getattr(g.types[n], "shape", None) or [])} for n in g.outputs],
        "opsets": {k or "ai.onnx": v for k, v in model.opsets.items()},
        "nodes": len(g.nodes),
        "op_histogram": dict(hist.most_common()),
        "subgraph_op_histogram": dict(sub_hist.most_common()),
        "parameters": params,
        "parameter_bytes": pbytes,
        "flops_per_op": {k: v for k, v in flops.most_common()},
        "flops": int(sum(flops.values())),
        "static": model.is_static(),
        "unsupported": {},
    }


def summarize_unsupported(proto, missing: dict) -> dict:
    """Partial summary straight from the ONNX proto, for a model that cannot be imported."""
    hist = Counter(n.op_type for n in proto.graph.node)
    inits = {i.name for i in proto.graph.initializer}
    return {"inputs": [{"name": i.name} for i in proto.graph.input if i.name not in inits],
            "outputs": [{"name": o.name} for o in proto.graph.output], "nodes": len(proto.graph.node),
            "op_histogram": dict(hist.most_common()), "unsupported": missing}
