"""Resource limits on what the compiler computes from an untrusted model, checked before anything is allocated.

A model file of a few hundred bytes can ask for a tensor of gigabytes (ConstantOfShape to [750, 1000, 1000]).
Wherever bornc evaluates a kernel at compile time (type probes, constant folding, calibration, the reference
interpreter) or densifies a sparse initializer, the sizes are known first, from the inferred type or from the ONNX
spec's own shape inference (``onnx.shape_inference.infer_node_outputs``, C++), and checked here against
``max_constant_bytes`` (default 1 GiB; ``--max-constant-bytes`` on the CLI, :func:`max_bytes` in Python).

Errors: :class:`bornc.errors.LimitError` (one line, exit 2 from the CLI), naming the node or tensor, the shape and
the bytes asked for.
"""
from __future__ import annotations

import contextlib
import logging

import numpy as np

from .errors import LimitError

log = logging.getLogger(__name__)

#: the largest tensor (bytes) bornc evaluates or allocates at compile time
DEFAULT_MAX_CONSTANT_BYTES = 1 << 30
_limit = DEFAULT_MAX_CONSTANT_BYTES


def max_constant_bytes() -> int:
    """The limit now in force (bytes)."""
    return _limit


#: the largest limit accepted (256 TiB): sizes in bytes stay far inside int64, which shapes are multiplied in
MAX_LIMIT = 1 << 48


def set_max_constant_bytes(n: int) -> None:
    """Set the limit (bytes, 0 < n <= MAX_LIMIT) for this process. Raises ValueError otherwise."""
    global _limit
    if not 0 < int(n) <= MAX_LIMIT:
        raise ValueError(f"max constant bytes must be between 1 and {MAX_LIMIT}, not {n}")
    _limit = int(n)


@contextlib.contextmanager
def max_bytes(n: int):
    """``with max_bytes(n):`` the limit is n bytes inside the block."""
    old = _limit
    set_max_constant_bytes(n)
    try:
        yield
    finally:
        set_max_constant_bytes(old)


def _itemsize(dtype) -> int:
    from .ir.types import np_dtype
    if dtype in ("string", object) or dtype is None:
        return 8
    try:
        return np.dtype(dtype).itemsize if not isinstance(dtype, str) else np_dtype(dtype).itemsize
    except Exception:  # noqa: BLE001 - an unknown dtype name: counted as 8 bytes per element
        return 8


def check_shape(shape, dtype, what: str) -> None:
    """Raise LimitError when a dense tensor of ``shape`` (ints; None and symbolic dims are skipped) and ``dtype`` (a bornc dtype
    name or numpy dtype) exceeds the limit, or has a negative dim. ``what`` names the tensor or node."""
    dims = [d for d in shape if isinstance(d, (int, np.integer))]         # symbolic dims (names) are skipped
    if any(int(d) < 0 for d in dims):
        raise LimitError(f"{what}: negative dimension in shape {list(shape)}")
    nbytes = _itemsize(dtype)
    for d in dims:                      # Python ints: no overflow
        nbytes *= int(d)
    if nbytes > _limit:
        raise LimitError(f"{what}: a tensor of shape {list(shape)} needs {nbytes:,} bytes, above the limit of "
                         f"{_limit:,} bytes (raise it with --max-constant-bytes)")


def check_type(t, what: str) -> None:
    """check_shape for a TensorType (other types and unknown shapes pass)."""
    shape = getattr(t, "shape", None)
    if shape is not None and hasattr(t, "dtype"):
        check_shape(shape, t.dtype, what)


def check_graph(graph) -> None:
    """Every value of ``graph`` (a bornc Graph) whose type is known, subgraphs included, is within the limit."""
    for name, t in graph.types.items():
        check_type(t, f"value {name!r}")
    for n in graph.nodes:
        for sub in n.subgraphs():
            check_graph(sub)


def spec_infer(proto, in_types: list, consts: list, opset: int) -> dict:
    """The ONNX spec's own type and shape inference (``onnx.shape_inference.infer_node_outputs``, C++) of one
    ONNX-domain NodeProto at ``opset``, on bornc types ``in_types`` and constant values ``consts`` (arrays or None,
    small ones passed for data propagation). Returns {output name: (numpy dtype or None, shape with None for unknown
    dims, or None)}; empty when the spec cannot say (no schema at this opset, subgraphs, inputs it cannot type).
    Raises ShapeError with the spec's message when its inference rejects the node."""
    import onnx
    from onnx import numpy_helper, shape_inference

    from .errors import ShapeError
    from .export import _type_proto
    if proto.domain not in ("", "ai.onnx") or any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                                                   for a in proto.attribute):
        return {}
    try:
        schema = onnx.defs.get_schema(proto.op_type, max(opset, 1), "")
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
    import onnx

    from .ir.types import OptionalType, SequenceType, TensorType, name_to_onnx_elem
    if isinstance(t, TensorType):
        try:
            return f"tensor({onnx.TensorProto.DataType.Name(name_to_onnx_elem(t.dtype)).lower()})"
        except Exception:  # noqa: BLE001
            return None
    if isinstance(t, (SequenceType, OptionalType)) and t.elem is not None:
        inner = _type_str(t.elem)
        return inner and (f"seq({inner})" if isinstance(t, SequenceType) else f"optional({inner})")
    return None


def _check_type_constraints(schema, proto, in_types: list) -> None:
    """The schema's type constraints on the inputs (what onnx.checker verifies): each input's type is one the
    constraint allows, and inputs sharing a type parameter (Concat's T, Add's T) share one type. Inputs of unknown
    shape are left out (their dtype may be a guess of bornc's inference). Raises ShapeError."""
    from .errors import ShapeError
    from .ir.types import TensorType
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


def spec_output_types(node, in_types: list, consts: list, opset: int) -> dict:
    """:func:`spec_infer` for a bornc Node (written as an ONNX NodeProto); empty for other domains and on any
    failure of the spec's inference (callers that must refuse what the spec rejects use :func:`spec_infer`)."""
    if node.domain or node.subgraphs():
        return {}
    from .errors import ShapeError
    from .export import node_proto
    try:
        return spec_infer(node_proto(node, opset), in_types, consts, opset)
    except ShapeError:
        return {}
    except Exception:  # noqa: BLE001 - attributes the NodeProto writer cannot express
        return {}


def check_node_outputs(node, in_types: list, consts: list, opset: int) -> None:
    """Before a kernel of ``node`` is run on ``consts`` of ``in_types``: the output shapes from the ONNX spec's
    shape inference (:func:`spec_output_types`) are within the limit. Nodes the spec's inference cannot type pass
    (their outputs are checked after inference)."""
    for name, (dtype, shape) in spec_output_types(node, in_types, consts, opset).items():
        if shape is not None:
            check_shape(shape, dtype if dtype is not None else np.float32, f"node {node.name!r} ({node.op}) output {name!r}")
