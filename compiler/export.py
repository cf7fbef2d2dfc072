"""IR -> ONNX: ``model.to_onnx(path)`` for imported and traced models, so users can move between tools.

Nodes keep their op types and attributes; constants become initializers; every value's type becomes value_info.
The importer rewrites old operator forms into the newest one (axes as inputs...), so an imported model is written
with an opset new enough for those forms (at least 18 when any was rewritten); Softmax, LogSoftmax and Hardmax of
opsets before 13 (which coerce the input to 2-D) are written as Flatten -> op -> Reshape so their meaning holds.
The result passes ``onnx.checker.check_model``. Models already optimized (bornc composite ops) are refused.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .errors import BorncError
from .ir.graph import Graph, Model, Node
from .ir.types import OptionalType, SequenceType, TensorType

#: opset at which every form the importer writes is valid (ReduceX with an axes input: 18)
CANONICAL_OPSET = 18
_SOFTMAX = {"Softmax", "LogSoftmax", "Hardmax"}
_CANONICALIZED = {"Squeeze", "Unsqueeze", "Split", "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                  "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "Clip", "Pad", "Slice",
                  "TopK", "Dropout", "Resize", "Upsample"}


def _elem(dtype: str) -> int:
    from .ir.types import np_dtype
    if dtype == "string":
        return onnx.TensorProto.STRING
    return helper.np_dtype_to_tensor_dtype(np_dtype(dtype))


def _type_proto(t) -> onnx.TypeProto:
    if isinstance(t, TensorType):
        shape = list(t.shape) if t.shape is not None else None
        return helper.make_tensor_type_proto(_elem(t.dtype), shape)
    if isinstance(t, SequenceType):
        return helper.make_sequence_type_proto(_type_proto(t.elem))
    if isinstance(t, OptionalType):
        return helper.make_optional_type_proto(_type_proto(t.elem))
    raise BorncError(f"cannot write a value of type {t!r} to ONNX")


def _attr(name: str, v):
    if isinstance(v, Graph):
        return helper.make_attribute(name, _graph(v, None))
    if isinstance(v, np.ndarray):
        return helper.make_attribute(name, numpy_helper.from_array(v))
    if isinstance(v, list) and v and all(isinstance(g, Graph) for g in v):
        return helper.make_attribute(name, [_graph(g, None) for g in v])
    if isinstance(v, onnx.TypeProto):
        return helper.make_attribute(name, v)
    if isinstance(v, (np.integer, np.floating)):
        v = v.item()
    if isinstance(v, list):
        v = [x.item() if isinstance(x, (np.integer, np.floating)) else x for x in v]
    return helper.make_attribute(name, v)


def node_proto(n: Node, opset: int | None = None) -> onnx.NodeProto:
    """``n`` as an ONNX NodeProto with its attributes (subgraphs included). Where the op's schema at ``opset``
    declares an attribute FLOAT or FLOATS, integer values are written as floats (the IR keeps Python numbers)."""
    schema_attrs = {}
    try:
        schema_attrs = onnx.defs.get_schema(n.op, opset or onnx.defs.onnx_opset_version(), n.domain or "").attributes
    except Exception:  # noqa: BLE001 - not an ONNX op (bornc or a custom domain): attributes as they are
        pass
    attrs = []
    for k, v in n.attrs.items():
        if v is None:
            continue
        kind = schema_attrs[k].type if k in schema_attrs else None
        if kind == onnx.AttributeProto.FLOAT and isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            v = float(v)
        elif kind == onnx.AttributeProto.FLOATS and isinstance(v, (list, tuple)):
            v = [float(x) for x in v]
        attrs.append(_attr(k, v))
    p = helper.make_node(n.op, list(n.inputs), list(n.outputs), name=n.name, domain=n.domain or "")
    p.attribute.extend(attrs)
    return p


def _graph(g: Graph, softmax_opset: int | None) -> onnx.GraphProto:
    nodes = []
    inits = [numpy_helper.from_array(np.asarray(a), name) for name, a in g.constants.items() if isinstance(a, np.ndarray)]
    for n in g.nodes:
        if n.domain == "bornc":
            raise BorncError(f"node {n.name!r} is a bornc composite ({n.op}): export the model before optimization "
                             "(the imported or traced model, not a compiled one)")
        if softmax_opset is not None and n.op in _SOFTMAX and not n.domain:
            nodes += _softmax_2d(n, g, inits)
            continue
        nodes.append(node_proto(n))
    io = set(g.inputs) | set(g.outputs)
    vinfo = [helper.make_value_info(k, _type_proto(t)) for k, t in g.types.items()
             if k not in io and k not in g.constants and t is not None]
    return helper.make_graph(nodes, g.name or "main", [helper.make_value_info(i, _type_proto(g.types[i])) for i in g.inputs],
                             [helper.make_value_info(o, _type_proto(g.types[o])) for o in g.outputs], inits,
                             value_info=vinfo)


def _softmax_2d(n: Node, g: Graph, inits: list) -> list:
    """An opset < 13 Softmax-family node as Flatten(axis) -> op(axis=1) -> Reshape(original shape)."""
    t = g.types[n.inputs[0]]
    rank = len(t.shape)
    axis = n.attrs.get("axis", 1)
    axis = axis % rank if rank else 0
    flat, soft, shape = f"{n.name}/flat", f"{n.name}/2d", f"{n.name}/shape"
    inits.append(numpy_helper.from_array(np.asarray(t.shape, np.int64), shape))
    return [helper.make_node("Flatten", [n.inputs[0]], [flat], name=f"{n.name}/flatten", axis=axis),
            helper.make_node(n.op, [flat], [soft], name=n.name, axis=1),
            helper.make_node("Reshape", [soft, shape], list(n.outputs), name=f"{n.name}/reshape")]


def to_onnx(model: Model, path: str | Path | None = None) -> onnx.ModelProto:
    """Write ``model`` as an ONNX ModelProto (and to ``path`` when given); returns the proto.

    Raises BorncError for bornc composite ops (optimized models) or values without an ONNX type."""
    opset = model.opsets.get("", model.opsets.get("ai.onnx", 21))
    rewritten = any(n.op in _CANONICALIZED and not n.domain for _, n in model.graph.walk())
    out_opset = max(opset, CANONICAL_OPSET) if rewritten else opset
    softmax = opset if opset < 13 <= out_opset else None
    graph = _graph(model.graph, softmax)
    imports = [helper.make_opsetid("", out_opset)] + [helper.make_opsetid(d, v) for d, v in model.opsets.items()
                                                       if d not in ("", "ai.onnx", "bornc")]
    proto = helper.make_model(graph, opset_imports=imports, producer_name="bornc",
                              ir_version=min(onnx.IR_VERSION, 10))
    for k, v in model.metadata.items():
        proto.metadata_props.add(key=str(k), value=str(v))
    onnx.checker.check_model(proto)
    if path is not None:
        onnx.save(proto, str(path))
    return proto
