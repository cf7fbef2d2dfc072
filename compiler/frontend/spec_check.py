"""The ONNX spec's own type and shape inference as a check on untrusted models, one node at a time.

bornc's inference types what it can run; the spec's (``onnx.shape_inference.infer_node_outputs``, the C++ the
checker uses) also knows the constraints each op puts on its inputs: Gemm's inner dims, BatchNormalization's
ranks, the type parameters Concat's inputs share. The importer runs :func:`spec_infer` on every ONNX-domain node
before anything else, refuses what it rejects, checks the output sizes it gives against :mod:`bornc.limits`, and
compares a model's declared output dtypes with it.
"""
from __future__ import annotations

import contextlib
import logging

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from ..errors import ShapeError
from ..export import _type_proto
from ..ir.types import OptionalType, SequenceType, TensorType, name_to_onnx_elem

log = logging.getLogger(__name__)


def spec_infer(proto, in_types: list, consts: list, opset: int) -> dict:
    """The ONNX spec's own type and shape inference (``onnx.shape_inference.infer_node_outputs``, C++) of one
    ONNX-domain NodeProto at ``opset``, on bornc types ``in_types`` and constant values ``consts`` (arrays or None,
    small ones passed for data propagation). Returns {output name: (numpy dtype or None, shape with None for unknown
    dims, or None)}; empty when the spec cannot say (no schema at this opset, subgraphs, inputs it cannot type).
    Raises ShapeError with the spec's message when its inference rejects the node."""
    if proto.domain not in ("", "ai.onnx"):
        return {}
    try:
        schema = onnx.defs.get_schema(proto.op_type, max(opset, 1), "")
    except Exception:  # noqa: BLE001 - no schema at this opset
        return {}
    _check_attribute_types(schema, proto)
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in proto.attribute):
        return {}
    try:
        types, data = {}, {}
        for k, (name, t, c) in enumerate(zip(proto.input, in_types, consts)):
            if name and t is not None:
                if proto.op_type == "Range" and getattr(t, "shape", None) == (1,):
                    t = type(t)(t.dtype, ())     # one-element vectors as the scalars they stand for (onnxruntime
                    c = None if c is None else np.asarray(c).reshape(())        # and the reference take them)
                types[name] = _type_proto(t)
                if c is not None and isinstance(c, np.ndarray) and c.dtype != object and c.size <= 1 << 16:
                    data[name] = numpy_helper.from_array(c)
    except Exception:  # noqa: BLE001 - no schema at this opset, or a type the spec has no proto for
        return {}
    _check_type_constraints(schema, proto, in_types)
    try:
        outs = shape_inference.infer_node_outputs(schema, proto, types, data,
                                                  opset_imports=[onnx.helper.make_opsetid("", opset)])
    except shape_inference.InferenceError as ex:
        raise ShapeError(" ".join(str(ex).split())[:300]) from None
    except Exception:  # noqa: BLE001 - the spec's inference has no answer here: bornc's own inference decides
        log.debug("spec shape inference failed for %s", proto.name, exc_info=True)
        return {}
    res = {}
    for name, tp in outs.items():
        if tp.WhichOneof("value") != "tensor_type":
            continue
        tt = tp.tensor_type
        dtype = None
        if tt.elem_type:
            with contextlib.suppress(Exception):
                dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
        shape = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim] if tt.HasField("shape") else None
        res[name] = (dtype, shape)
    return res


def _type_str(t) -> str | None:
    """The schema spelling of a bornc type: tensor(float), seq(tensor(int64)), optional(...); None if unknown."""
    if isinstance(t, TensorType):
        try:
            return f"tensor({onnx.TensorProto.DataType.Name(name_to_onnx_elem(t.dtype)).lower()})"
        except Exception:  # noqa: BLE001
            return None
    if isinstance(t, (SequenceType, OptionalType)) and t.elem is not None:
        inner = _type_str(t.elem)
        return inner and (f"seq({inner})" if isinstance(t, SequenceType) else f"optional({inner})")
    return None


def _check_attribute_types(schema, proto) -> None:
    """Every attribute the schema requires is there (Concat's axis), and every attribute it declares has the
    schema's type (Conv's group an INT, not an empty GRAPHS list: the rest of bornc reads attributes by their spec
    types). Raises ShapeError."""
    names = onnx.AttributeProto.AttributeType.Name
    have = {a.name for a in proto.attribute}
    missing = [n for n, a in schema.attributes.items() if a.required and n not in have]
    if missing:
        raise ShapeError(f"required attribute(s) {', '.join(repr(n) for n in missing)} missing")
    for a in proto.attribute:
        want = schema.attributes.get(a.name)
        if want is not None and want.type != onnx.AttributeProto.UNDEFINED and a.type != want.type:
            raise ShapeError(f"attribute {a.name!r} is {names(a.type)}, the op takes {names(want.type)}")


def _check_type_constraints(schema, proto, in_types: list) -> None:
    """The schema's type constraints on the inputs (what onnx.checker verifies): each input's type is one the
    constraint allows, and inputs sharing a type parameter (Concat's T, Add's T) share one type. Inputs of unknown
    shape are left out (their dtype may be a guess of bornc's inference). Raises ShapeError."""
    allowed = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}
    bound: dict = {}
    for k, (name, t) in enumerate(zip(proto.input, in_types)):
        if not name or t is None or not schema.inputs or (isinstance(t, TensorType) and t.shape is None):
            continue
        p = schema.inputs[min(k, len(schema.inputs) - 1)]
        ts, got = p.type_str, _type_str(t)
        if ts not in allowed or got is None:
            continue
        if allowed[ts] and got not in allowed[ts]:
            raise ShapeError(f"input {k} ({p.name}) is {got}, which the op does not take")
        if p.is_homogeneous and bound.setdefault(ts, (got, k))[0] != got:
            raise ShapeError(f"inputs {bound[ts][1]} and {k} must have one type ({ts}), not {bound[ts][0]} and {got}")


__all__ = ["spec_infer"]
