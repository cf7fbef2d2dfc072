"""widen_float16: compute a float16 model's inner tensors in float32 on targets without float16 arithmetic.

A model converted to float16 (onnxruntime.transformers' float16 tool, or an fp16 export) stores every
activation and weight as binary16. On a target that has no float16 arithmetic the C and numpy kernels convert
each operand to float32 and each result back, once per op: the model runs 3x slower than its float32 source.
This pass gives every float16 value inside the graph float32 instead: float16 constants are widened (exactly),
``Cast(to=FLOAT16)`` nodes inside the graph become ``Cast(to=FLOAT)`` (then no-ops, removed by remove_noops),
float16 graph inputs are cast to float32 once at entry and float16 graph outputs cast back once at exit. The
graph's interface (names, dtypes, shapes) is unchanged.

Numerics: every op sees the same inputs as in float16 but keeps float32 intermediates, so the result is at least
as close to the float32 source as the float16 model's is; it can differ from an op-by-op float16 evaluation by
float16 rounding (half an ulp of binary16, 2^-11 relative) per op. This is what onnxruntime's CPU provider does
for the ops it has no float16 kernel for (it inserts Casts around them).

Left as it is: graphs with subgraphs (If/Loop/Scan bodies read outer values by name), and any node whose output
type does not follow its inputs when they are widened (e.g. ConstantOfShape with a float16 value: its output
gets a Cast to float32 after it). Runs only for targets whose backend is C or numpy (``WIDEN_BACKENDS``).
"""
from __future__ import annotations

import numpy as np

from ..errors import BorncError
from ..ir.graph import Model, Node
from ..ir.types import TensorType
from .legalize import infer_node
from .util import FreshNames, clone

WIDEN_BACKENDS = ("c", "python")
_F16, _F32 = "float16", "float32"
_ONNX_FLOAT, _ONNX_FLOAT16 = 1, 10


def _is_f16(t) -> bool:
    return isinstance(t, TensorType) and t.dtype == _F16


def _widened(t: TensorType) -> TensorType:
    return TensorType(_F32, t.shape)


def _cast_after(node: Node, o: str, t: TensorType, to: int, types: dict, fresh: FreshNames) -> Node:
    """Make ``node`` write ``o`` (of type ``t``) under a fresh name and return the Cast(to) that writes ``o``."""
    raw = fresh(o)
    node.outputs = [raw if x == o else x for x in node.outputs]
    types[raw] = t
    return Node("Cast", [raw], [o], {"to": to}, fresh(f"{node.name}_cast"))


def _widen_node(model: Model, node: Node, types: dict, consts: dict, fresh: FreshNames, keep: set) -> list[Node]:
    """``node`` (and any Cast it needs after it) with float32 for its float16 outputs not in ``keep``. Updates
    ``types``; raises BorncError when inference refuses the widened inputs."""
    outs = [o for o in node.outputs if o and _is_f16(types.get(o)) and o not in keep]
    if node.op == "Cast" and not node.domain and node.attrs.get("to") == _ONNX_FLOAT16 and outs:
        node.attrs["to"] = _ONNX_FLOAT
        types[node.outputs[0]] = _widened(types[node.outputs[0]])
        return [node]
    if not outs and not any(i and types.get(i) != model.graph.types.get(i) for i in node.inputs):
        return [node]
    inferred = dict(zip(node.outputs, infer_node(model, node, types, consts)))
    after = []
    for o in node.outputs:
        t, t0 = inferred.get(o), types.get(o)
        if not o or t is None:
            continue
        if isinstance(t, TensorType) and isinstance(t0, TensorType) and t0.is_static:
            t = TensorType(t.dtype, t0.shape)      # the dtype is what changes; keep the shape already known
        if o in outs and _is_f16(t):                # the op makes float16 whatever its inputs: widen after it
            after.append(_cast_after(node, o, t, _ONNX_FLOAT, types, fresh))
            types[o] = _widened(t)
        elif o in keep and _is_f16(t0) and not _is_f16(t):   # a float16 graph output: narrow once at exit
            after.append(_cast_after(node, o, t, _ONNX_FLOAT16, types, fresh))
        else:
            types[o] = t
    return [node] + after


def widen_float16(model: Model, target=None) -> Model:
    """The model with its inner float16 values in float32 (see the module docstring); unchanged without a C or
    numpy target, without float16 values, with subgraphs, or when a widened node fails type inference."""
    backend = getattr(target, "backend", target)
    g0 = model.graph
    if backend not in WIDEN_BACKENDS or any(n.subgraphs() for n in g0.nodes) or \
            not any(_is_f16(t) for t in g0.types.values()):
        return model
    m = clone(model)
    g = m.graph
    fresh = FreshNames(m, "w16")
    types, keep = dict(g.types), set(g.outputs)
    for name, v in list(g.constants.items()):
        if v.dtype == np.float16 and name not in keep:
            g.constants[name] = v.astype(np.float32)
            types[name] = TensorType.of(g.constants[name])
    nodes: list[Node] = []
    for x in g.inputs:                             # one Cast at entry for each float16 input
        if _is_f16(types.get(x)):
            wide = fresh(x)
            types[wide] = _widened(types[x])
            nodes.append(Node("Cast", [x], [wide], {"to": _ONNX_FLOAT}, fresh(f"{x}_widen")))
            for n in g.nodes:
                n.inputs = [wide if i == x else i for i in n.inputs]
    try:
        for n in g.nodes:
            nodes.extend(_widen_node(m, n, types, g.constants, fresh, keep))
    except BorncError:
        return model
    g.nodes, g.types = nodes, types
    return m
