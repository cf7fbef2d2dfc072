"""The operator registry: one :class:`OpDef` per (domain, op type).

Each entry holds the attribute schema with defaults, ``infer`` (output types from input types, attributes and
any constant input values), ``reference`` (the numpy kernel the reference interpreter runs) and per-backend
lowerings that backends attach later with :func:`lowering`. Semantics follow the ONNX operator spec
(https://onnx.ai/onnx/operators/); each entry says which opset versions it handles in ``versions``. The
importer rewrites older versions' attribute forms into the newest form (see ``frontend/onnx_canon.py``), so a
kernel sees one form, and reads ``ctx.opset`` only where semantics (not just spelling) changed.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import ShapeError, SpecViolation
from ..ir.types import OptionalType, SequenceType, TensorType, type_of_value, np_dtype

log = logging.getLogger(__name__)


#: Properties a registry entry may carry (``OpDef.props``). Passes and backends ask the entry (:func:`has`)
#: instead of keeping lists of op names, so adding an op touches its entry and one lowering per backend.
PROPS = {
    "float_only": "defined for floating-point inputs only (the spec's T holds float types)",
    "int_only": "defined for integer inputs only (bitwise ops)",
    "bool_output": "comparison, logic or classification: the output is bool",
    "program": "elementwise and keeps the input dtype: may join a fused elementwise program (FusedElementwise, "
               "fused epilogues); implies inplace",
    "inplace": "elementwise: the output may take over an input's buffer of the same size and dtype (liveness)",
    "lut": "elementwise in one varying input: an int8 lookup table may absorb it (quantize/int8.py)",
    "view": "the output is the input's bytes under another shape: no kernel, liveness lets them share a buffer",
    "storage": "only moves or converts bytes: accepts the storage-only dtypes (int4, float8...)",
}


@dataclass
class OpDef:
    """A registered operator. ``value_inputs``: input indices whose *values* decide output shapes or act as
    parameters (Reshape's shape, Trilu's k, CumSum's axis): static-shape backends need them constant;
    ``dynamic``: output shape depends on input data (NonZero); ``stateful``: never constant-fold
    (random ops); ``props``: names from :data:`PROPS`; ``outputs``: how many outputs a call makes by default
    (the Python API; None: the call says); ``lowering_props``: per backend, properties of its lowering (C:
    ``half``, the lowering handles float16/bfloat16)."""

    name: str
    domain: str
    reference: Callable
    infer: Callable | None
    attrs: dict[str, Any]
    versions: str
    value_inputs: tuple[int, ...] = ()
    dynamic: bool = False
    stateful: bool = False
    lowerings: dict[str, Callable] = field(default_factory=dict)
    flops: Callable | None = None
    #: ``fn(node: onnx.NodeProto, opset, in_types) -> onnx.FunctionProto | None``: a body in other ops, used by
    #: legalization when the ONNX spec gives the op no function body (see :func:`decomposition`).
    decompose: Callable | None = None
    props: frozenset = frozenset()
    outputs: int | None = 1
    lowering_props: dict[str, frozenset] = field(default_factory=dict)


REGISTRY: dict[tuple[str, str], OpDef] = {}


def _norm_domain(domain: str) -> str:
    return "" if domain in ("", "ai.onnx") else domain


def register(name: str, *, attrs: dict | None = None, infer: Callable | None = None, versions: str = "",
             domain: str = "", value_inputs: tuple[int, ...] = (), dynamic: bool = False, stateful: bool = False,
             props: tuple[str, ...] = (), outputs: int | None = 1):
    """Decorator that registers a reference kernel ``fn(ctx, *inputs) -> array | tuple`` under ``name``.
    ``props``: names from :data:`PROPS` (RuntimeError for an unknown one)."""
    unknown = set(props) - set(PROPS)
    if unknown:
        raise RuntimeError(f"op {name}: unknown properties {sorted(unknown)}")

    def deco(fn):
        key = (_norm_domain(domain), name)
        if key in REGISTRY:
            raise RuntimeError(f"op {name} registered twice")
        REGISTRY[key] = OpDef(name, key[0], fn, infer, dict(attrs or {}), versions, value_inputs, dynamic, stateful,
                              props=frozenset(props), outputs=outputs)
        return fn
    return deco


def has(op: str, prop: str, domain: str = "") -> bool:
    """True when the registry entry of ``op`` carries property ``prop`` (False for unregistered ops)."""
    d = REGISTRY.get((_norm_domain(domain), op))
    return d is not None and prop in d.props


def lowering_has(backend: str, op: str, prop: str, domain: str = "") -> bool:
    """True when ``backend``'s lowering of ``op`` was registered with property ``prop``."""
    d = REGISTRY.get((_norm_domain(domain), op))
    return d is not None and prop in d.lowering_props.get(backend, ())


def lowering(backend: str, name: str, domain: str = "", props: tuple[str, ...] = ()):
    """Decorator that attaches a backend lowering to an existing registry entry; ``props`` are properties of this
    lowering (:func:`lowering_has`; C: ``half``)."""
    def deco(fn):
        d = get(name, domain)
        d.lowerings[backend] = fn
        if props:
            d.lowering_props[backend] = d.lowering_props.get(backend, frozenset()) | frozenset(props)
        return fn
    return deco


def decomposition(name: str, domain: str = "", values: bool = False):
    """Decorator attaching a decomposition ``fn(node_proto, opset, in_types) -> FunctionProto | None`` to a
    registry entry: the ops that replace it on a target without a lowering for it (``passes/legalize.py``).
    With ``values``, ``fn`` also takes the constant values of the inputs (None where not constant)."""
    def deco(fn):
        fn.takes_values = values
        get(name, domain).decompose = fn
        return fn
    return deco


def cost(name: str, domain: str = ""):
    """Decorator attaching a FLOP count ``fn(node, in_types, out_types) -> int`` to a registry entry."""
    def deco(fn):
        get(name, domain).flops = fn
        return fn
    return deco


def get(name: str, domain: str = "") -> OpDef | None:
    return REGISTRY.get((_norm_domain(domain), name))


class KernelCtx:
    """What a reference kernel sees besides its inputs: attributes with defaults filled, the opset version of
    its domain, the node (for names in errors), the number of outputs asked for, and ``run_graph`` to execute a
    subgraph (If/Loop/Scan) with the interpreter."""

    __slots__ = ("node", "attrs", "opset", "n_outputs", "run_graph")

    def __init__(self, node, attrs, opset, run_graph=None):
        self.node, self.attrs, self.opset, self.run_graph = node, attrs, opset, run_graph
        self.n_outputs = len(node.outputs)


class InferCtx:
    """What ``infer`` sees: input types (None for omitted inputs), constant input values where known
    (``consts[i]`` is an ndarray or None), attributes with defaults, opset, the node, and the types of values
    in enclosing scopes (for subgraphs)."""

    def __init__(self, node, attrs, opset, types, consts, scope_types=None, infer_graph=None):
        self.node, self.attrs, self.opset = node, attrs, opset
        self.types, self.consts = types, consts
        self.scope_types = scope_types or {}
        self.infer_graph = infer_graph

    def shape(self, i: int) -> tuple | None:
        t = self.types[i] if i < len(self.types) else None
        return t.shape if isinstance(t, TensorType) else None

    def dtype(self, i: int) -> str | None:
        t = self.types[i] if i < len(self.types) else None
        return t.dtype if isinstance(t, TensorType) else None

    def const(self, i: int):
        return self.consts[i] if i < len(self.consts) else None

    def has(self, i: int) -> bool:
        return i < len(self.node.inputs) and bool(self.node.inputs[i])


def attrs_with_defaults(opdef: OpDef, node) -> dict:
    a = dict(opdef.attrs)
    a.update(node.attrs)
    return a


# ----------------------------------------------------------------------------------------------------------
# infer helpers shared by many entries
# ----------------------------------------------------------------------------------------------------------

def broadcast_shapes(*shapes, node=None) -> tuple | None:
    """Multidirectional (numpy-style) broadcast of shapes (ONNX spec, docs/Broadcasting.md)."""
    if any(s is None for s in shapes):
        return None
    rank = max(len(s) for s in shapes)
    out = []
    for k in range(rank):
        dims = {s[len(s) - rank + k] for s in shapes if len(s) - rank + k >= 0}
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            name = f" in node {node.name!r} ({node.op})" if node is not None else ""
            raise SpecViolation(f"shapes {' and '.join(str(tuple(s)) for s in shapes)} do not broadcast{name}")
        if known:
            out.append(known.pop())
        elif None in dims:
            out.append(None)
        else:
            out.append(1)
    return tuple(out)


def same_as_input(ctx: InferCtx) -> list:
    """Every output has the type of input 0 (unary elementwise ops)."""
    return [ctx.types[0]] * len(ctx.node.outputs)


def broadcast_infer(ctx: InferCtx) -> list:
    """Output dtype of input 0, shape the broadcast of all inputs."""
    shapes = [ctx.shape(i) for i in range(len(ctx.types)) if ctx.types[i] is not None]
    return [TensorType(ctx.dtype(0), broadcast_shapes(*shapes, node=ctx.node))]


def broadcast_bool_infer(ctx: InferCtx) -> list:
    """Comparison ops: bool output, broadcast shape."""
    return [TensorType("bool", broadcast_infer(ctx)[0].shape)]


class _OuterValues(dict):
    """Outer-scope values a subgraph reads while its op is evaluated for inference: constants where known, else
    zeros of their types."""

    def __init__(self, scope):
        super().__init__()
        self.scope = scope

    def __missing__(self, name):
        got = self.scope.get(name) if self.scope is not None else None
        if got is None:
            raise KeyError(name)
        t, c = got
        if c is not None:
            return c
        if not isinstance(t, TensorType) or not t.is_static:
            raise KeyError(name)
        from .. import limits
        limits.check_type(t, f"outer value {name!r}")
        return np.zeros(t.shape, dtype=np_dtype(t.dtype))


def _subgraph_runner(ctx: InferCtx):
    """``run_graph(graph, feeds)`` for a KernelCtx: the interpreter over the feeds and the outer scope."""
    from collections import ChainMap

    from ..interpreter import run_graph
    opsets = {ctx.node.domain or "": ctx.opset, "": ctx.opset} if not ctx.node.domain else {ctx.node.domain: ctx.opset}
    outer = _OuterValues(ctx.scope_types)

    def run(g, feeds):
        return run_graph(g, ChainMap(dict(feeds), outer), opsets)
    return run


def infer_by_evaluation(opdef: OpDef, ctx: InferCtx) -> list:
    """Inference for entries without ``infer``: run the reference kernel on zeros of the input shapes (constants
    where known) and read the output types. Outputs are unknown (shape None, dtype of input 0) when a
    value-deciding input is not constant or an input shape is not static; data-dependent ops get unknown dims.
    Raises ShapeError naming the node when the kernel fails on them (no quiet fallback to an unknown type); only
    for control flow (Scan without ``infer``), whose body may read outer values not known yet, the types are
    then left unknown (the body's declared types, where given, fill them in at import)."""
    from .. import limits
    unknown = [TensorType(ctx.dtype(0) or "float32", None) for _ in ctx.node.outputs]
    args = []
    for i, t in enumerate(ctx.types):
        if not ctx.has(i):
            args.append(None)
        elif ctx.consts[i] is not None:
            args.append(ctx.consts[i])
        elif i in opdef.value_inputs or not getattr(t, "is_static", False):
            return unknown
        elif isinstance(t, TensorType):
            limits.check_type(t, f"node {ctx.node.name!r} ({ctx.node.op}) input {i}")
            args.append(np.zeros(t.shape, dtype=np_dtype(t.dtype)) if t.dtype != "string" else np.full(t.shape, "", dtype=object))
        else:
            return unknown
    kctx = KernelCtx(ctx.node, ctx.attrs, ctx.opset, _subgraph_runner(ctx) if ctx.node.subgraphs() else None)
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = opdef.reference(kctx, *args)
    except SpecViolation:                # the kernel's own spec check: never covered by declared types
        raise
    except Exception as ex:  # noqa: BLE001 - any failure: the node's attributes or shapes do not fit the op
        if ctx.node.subgraphs():         # a body on dummy data may need outer values not known yet: left unknown
            log.debug("infer by evaluation failed for %s", ctx.node.name, exc_info=True)
            return unknown
        raise ShapeError(f"node {ctx.node.name!r} ({ctx.node.op}): cannot infer its output types: running its kernel "
                         f"on inputs {[str(t) for t in ctx.types]} failed: {type(ex).__name__}: {str(ex)[:200]}") from None
    res = res if isinstance(res, tuple) else (res,)
    out = [type_of_value(np.asarray(r) if isinstance(r, np.generic) else r) for r in res[:len(ctx.node.outputs)]]
    for k, t in enumerate(out):
        limits.check_type(t, f"node {ctx.node.name!r} ({ctx.node.op}) output {k}")
    if opdef.dynamic:
        out = [TensorType(t.dtype, (None,) * len(t.shape)) if isinstance(t, TensorType) else t for t in out]
    return out


def infer_types(opdef: OpDef, ctx: InferCtx) -> list:
    if opdef.infer is not None:
        return list(opdef.infer(ctx))
    return infer_by_evaluation(opdef, ctx)


__all__ = ["OpDef", "REGISTRY", "PROPS", "register", "has", "lowering", "lowering_has", "get", "KernelCtx", "InferCtx", "broadcast_shapes",
           "same_as_input", "decomposition", "broadcast_infer", "broadcast_bool_infer", "infer_types", "attrs_with_defaults",
           "SequenceType", "OptionalType", "TensorType"]
