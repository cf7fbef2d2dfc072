"""fuse_matmul_add: MatMul(A, B) followed by Add(bias) becomes Gemm(A, B, bias) when A and B are 2-D and the
bias broadcasts to the (M, N) result along rows only (shape (N,), (1, N) or (M, N)). Gemm computes
A @ B + C (ONNX spec, Gemm with alpha = beta = 1), so the result is the same.
"""
from __future__ import annotations

from ..ir.graph import Model
from ..ir.types import TensorType
from .util import clone, use_counts


def fuse_matmul_add(model: Model) -> Model:
    m = clone(model)
    g = m.graph
    producers = g.producers()
    uses = use_counts(g)
    dead = set()
    for add in g.nodes:
        if add.op != "Add" or len(add.inputs) != 2:
            continue
        for k in (0, 1):
            mm = producers.get(add.inputs[k])
            bias = add.inputs[1 - k]
            if mm is None or mm.op != "MatMul" or uses[mm.outputs[0]] != 1 or mm.outputs[0] in g.outputs:
                continue
            ta, tb, ty = (g.types.get(mm.inputs[0]), g.types.get(mm.inputs[1]), g.types.get(add.outputs[0]))
            tc = g.types.get(bias)
            if not all(isinstance(t, TensorType) and t.is_static for t in (ta, tb, ty, tc)):
                continue
            if len(ta.shape) != 2 or len(tb.shape) != 2 or ty.shape != g.types[mm.outputs[0]].shape:
                continue
            mrows, ncols = ty.shape
            if tc.shape not in ((ncols,), (1, ncols), (mrows, ncols)) or tc.dtype != ta.dtype:
                continue
            add.op, add.attrs, add.inputs = "Gemm", {}, [mm.inputs[0], mm.inputs[1], bias]
            add.name = add.name or mm.name
            dead.add(id(mm))
            g.types.pop(mm.outputs[0], None)
            break
    g.nodes = [n for n in g.nodes if id(n) not in dead]
    return m
