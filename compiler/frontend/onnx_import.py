"""ONNX importer: ModelProto -> IR Model with static types.

Steps: read the file safely (external data must resolve inside the model's folder); bind symbolic input dims
(``input_shapes``) and turn chosen scalar inputs into constants (``bind``); list every unsupported op in one
error; then walk the nodes in order, rewriting old op versions (``onnx_canon``), inferring output types with
the registry, folding nodes whose inputs are all constant and whose result is small (this folds the
Shape/Gather/Concat/Range subgraphs that feed Reshape, Expand and Resize), and inlining an ``If`` whose
condition became constant. The verifier runs on the result.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .. import limits
from ..errors import BorncError, ModelImportError, ShapeError, SpecViolation, UnsupportedOpError
from ..interpreter import run_node
from ..ir.graph import Graph, Model, Node
from ..ir.types import OptionalType, SequenceType, TensorType, name_to_onnx_elem, onnx_elem_to_name, type_of_value
from ..ir.verify import verify
from ..ops import registry
from .external_data import check_names, inline_external_data
from .onnx_canon import canonicalize
from .spec_check import spec_infer

log = logging.getLogger(__name__)

#: Results up to this many elements are folded to constants at import (shape subgraphs, small tables).
FOLD_MAX_ELEMENTS = 1 << 16
#: Ops whose result depends only on the input's type: folded whenever that type is static.
_SHAPE_OF = {"Shape", "Size"}


# ------------------------------------------------------------------------------------------------ file reading
def read_model_proto(path: str | os.PathLike) -> tuple[onnx.ModelProto, str]:
    """Read an ONNX file and its external data. Returns (proto, sha256 of the file).

    Raises ModelImportError for a missing, unreadable or malformed file, or an unsafe external data path."""
    path = Path(path)
    if not path.is_file():
        raise ModelImportError(f"model file {str(path)!r} not found")
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    try:
        proto = onnx.load_model_from_string(data)
    except Exception as ex:  # noqa: BLE001 - protobuf raises several types
        raise ModelImportError(f"{str(path)!r} is not a valid ONNX model: {type(ex).__name__}: {str(ex)[:200]}") from None
    if not proto.graph.node and not proto.graph.output:
        raise ModelImportError(f"{str(path)!r} holds no graph (is it an ONNX model?)")
    inline_external_data(proto, path.parent)
    return proto, sha


# ------------------------------------------------------------------------------------------------ types
def type_from_proto(tp: onnx.TypeProto, where: str) -> object:
    """IR type of an ONNX TypeProto; symbolic or missing dims become None."""
    kind = tp.WhichOneof("value")
    if kind == "tensor_type":
        tt = tp.tensor_type
        try:
            dtype = onnx_elem_to_name(tt.elem_type)
        except KeyError:
            raise ModelImportError(f"{where}: unsupported element type {tt.elem_type}") from None
        if not tt.HasField("shape"):
            return TensorType(dtype, None)
        dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value >= 0 else (d.dim_param or None) for d in tt.shape.dim)
        return TensorType(dtype, dims)
    if kind == "sequence_type":
        return SequenceType(type_from_proto(tp.sequence_type.elem_type, where))
    if kind == "optional_type":
        return OptionalType(type_from_proto(tp.optional_type.elem_type, where))
    if kind is None:
        return None
    raise ModelImportError(f"{where}: unsupported value kind {kind}")


def _static(t) -> object:
    """Replace symbolic (string) dims by None, also inside sequence and optional types."""
    if isinstance(t, TensorType) and t.shape is not None:
        return TensorType(t.dtype, tuple(d if isinstance(d, int) else None for d in t.shape))
    if isinstance(t, SequenceType):
        return SequenceType(_static(t.elem))
    if isinstance(t, OptionalType):
        return OptionalType(_static(t.elem))
    return t


def _attr_value(a: onnx.AttributeProto, importer, scope, hints=None) -> object:
    if a.ref_attr_name:
        raise ModelImportError(f"attribute {a.name!r} refers to {a.ref_attr_name!r}, but it is not inside a function")
    if a.type == onnx.AttributeProto.GRAPH:
        return importer.subgraph(a.g, scope, hints)
    if a.type == onnx.AttributeProto.GRAPHS:
        return [importer.subgraph(g, scope) for g in a.graphs]
    if a.type == onnx.AttributeProto.TENSOR:
        return numpy_helper.to_array(a.t)
    if a.type == onnx.AttributeProto.SPARSE_TENSOR:
        return _sparse_to_dense(a.sparse_tensor)
    if a.type == onnx.AttributeProto.TENSORS:
        return [numpy_helper.to_array(t) for t in a.tensors]
    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [s.decode("utf-8", errors="replace") for s in v]
    return list(v) if isinstance(v, (list, tuple)) else v


def _sparse_to_dense(sp: onnx.SparseTensorProto) -> np.ndarray:
    """A SparseTensorProto (ONNX IR spec, "Sparse tensors") as a dense array. Indices are either [NNZ] linear
    positions or [NNZ, rank] coordinates; both are checked to lie inside ``dims`` and to number NNZ, and the dense
    size is checked against the limit of :mod:`bornc.limits` before it is allocated. Raises ModelImportError."""
    dims = tuple(int(d) for d in sp.dims)
    what = f"sparse tensor {sp.values.name!r}"
    limits.check_shape(dims, onnx.helper.tensor_dtype_to_np_dtype(sp.values.data_type) if sp.values.data_type else np.float32, what)
    try:
        vals = numpy_helper.to_array(sp.values).ravel()
        idx = numpy_helper.to_array(sp.indices).astype(np.int64)
    except Exception as ex:  # noqa: BLE001 - malformed values or indices: one line
        raise ModelImportError(f"{what}: unreadable values or indices: {ex}") from None
    size = int(np.prod(dims, dtype=np.int64))
    if idx.ndim == 2 and idx.shape[1:] == (len(dims),) and len(dims):
        if idx.size and (idx.min() < 0 or (idx >= np.array(dims)).any()):
            raise ModelImportError(f"{what}: an index lies outside its dims {list(dims)}")
        idx = np.ravel_multi_index(idx.T, dims) if idx.size else idx.reshape(-1)
    elif idx.ndim == 1:
        if idx.size and (idx.min() < 0 or idx.max() >= size):
            raise ModelImportError(f"{what}: an index lies outside its {size} elements")
    else:
        raise ModelImportError(f"{what}: indices of shape {list(idx.shape)} fit neither [NNZ] nor [NNZ, {len(dims)}]")
    if idx.shape[0] != vals.size:
        raise ModelImportError(f"{what}: {vals.size} values but {idx.shape[0]} indices")
    out = np.zeros(size, dtype=vals.dtype)
    out[idx.ravel()] = vals
    return out.reshape(dims)


def _constant_node_value(n: onnx.NodeProto) -> np.ndarray:
    a = n.attribute[0]
    kind = a.name
    v = helper.get_attribute_value(a)
    if kind == "value":
        return numpy_helper.to_array(v)
    if kind == "sparse_value":
        return _sparse_to_dense(v)
    if kind == "value_float":
        return np.array(v, dtype=np.float32)
    if kind == "value_floats":
        return np.array(v, dtype=np.float32)
    if kind == "value_int":
        return np.array(v, dtype=np.int64)
    if kind == "value_ints":
        return np.array(v, dtype=np.int64)
    if kind == "value_string":
        return np.array(v.decode("utf-8"), dtype=object)
    if kind == "value_strings":
        return np.array([s.decode("utf-8") for s in v], dtype=object)
    raise ModelImportError(f"Constant node {n.name!r}: unsupported attribute {kind!r}")


# ------------------------------------------------------------------------------------------------ importer
def function_body(n: onnx.NodeProto, opset: int, in_types: list, values: list | None = None,
                  spec: bool = True) -> onnx.FunctionProto | None:
    """What node ``n`` is made of: the spec's function body (:func:`schema_function`; skipped when ``spec`` is
    False), else the decomposition registered on the op's registry entry (given ``values``, the inputs' constant
    values, where it asks for them), else None."""
    body = schema_function(n, opset, in_types) if spec else None
    if body is None or not len(body.node):
        opdef = registry.get(n.op_type, n.domain)
        fn = opdef.decompose if opdef is not None else None
        try:
            if fn is None:
                body = None
            elif getattr(fn, "takes_values", False):
                body = fn(n, opset, in_types, values or [None] * len(in_types))
            else:
                body = fn(n, opset, in_types)
        except Exception:  # noqa: BLE001 - a decomposition that cannot handle this node: no body, reported later
            return None
    return body


def schema_function(n: onnx.NodeProto, opset: int, in_types: list) -> onnx.FunctionProto | None:
    """The ONNX spec's function body of node ``n`` at ``opset`` (plain or context dependent), or None."""
    try:
        schema = onnx.defs.get_schema(n.op_type, opset, n.domain)
    except Exception:  # noqa: BLE001 - unknown op or version
        return None
    try:
        if schema.has_function:
            body = schema.get_function_with_opset_version(opset) if hasattr(schema, "get_function_with_opset_version") else None
            body = body or schema.function_body
            if isinstance(body, bytes):
                f = onnx.FunctionProto()
                f.ParseFromString(body)
                body = f
            return body
        if schema.has_context_dependent_function:
            # onnx's C++ builder crashes on untyped inputs: only ask when every present input is a typed tensor
            # of known shape (an omitted optional input is passed as an empty TypeProto, which it accepts)
            present = [t for t, i in zip(in_types, n.input) if i]
            if not present or any(not isinstance(t, TensorType) or t.shape is None for t in present):
                return None
            tps = []
            for t, i in zip(in_types, n.input):
                if not i:
                    tps.append(onnx.TypeProto().SerializeToString())
                    continue
                tp = helper.make_tensor_type_proto(name_to_onnx_elem(t.dtype), list(t.shape) if t.shape is not None else None)
                tps.append(tp.SerializeToString())
            f = onnx.FunctionProto()
            f.ParseFromString(schema.get_context_dependent_function(n.SerializeToString(), tps))
            return f
    except Exception:  # noqa: BLE001 - no body for these inputs
        return None
    return None


def _uses_default_domain(proto: onnx.ModelProto) -> bool:
    """True when a node of the model (its graph, subgraphs or functions) is of the ai.onnx domain: such a model
    must import an ai.onnx opset (one of only ai.onnx.ml or training ops need not)."""
    def graphs(g):
        yield g
        for n in g.node:
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    yield from graphs(a.g)
                for sub in a.graphs:
                    yield from graphs(sub)
    nodes = [n for g in graphs(proto.graph) for n in g.node] + [n for f in proto.functions for n in f.node]
    return any(n.domain in ("", "ai.onnx") for n in nodes)


class _Importer:
    def __init__(self, proto: onnx.ModelProto, expand=None):
        self.proto = proto
        self.expand = expand
        self.opsets = {("" if o.domain in ("", "ai.onnx") else o.domain): o.version for o in proto.opset_import}
        newest = onnx.defs.onnx_opset_version()
        if ("" in self.opsets or _uses_default_domain(proto)) and not 1 <= self.opsets.get("", 0) <= newest:
            raise ModelImportError(f"the model imports ai.onnx opset {self.opsets.get('', 'none')}; this onnx release "
                                   f"knows opsets 1 to {newest}")
        self.counter = 0
        self.functions = {(f.domain, f.name): f for f in proto.functions}

    def fresh(self, hint: str) -> str:
        self.counter += 1
        return f"{hint}__bornc{self.counter}"

    def opset_of(self, n: onnx.NodeProto) -> int:
        """The opset the model imports for ``n``'s domain (1 when it imports none)."""
        return self.opsets.get("" if n.domain in ("", "ai.onnx") else n.domain, 1)

    def has_spec_function(self, n: onnx.NodeProto) -> bool:
        """True when the ONNX spec defines ``n``'s op, at the model's opset, by a function body (plain or
        context dependent)."""
        try:
            schema = onnx.defs.get_schema(n.op_type, self.opset_of(n), n.domain)
        except Exception:  # noqa: BLE001 - unknown op or version
            return False
        return bool(schema.has_function or schema.has_context_dependent_function)

    # -- unsupported ops, all at once
    def unsupported(self, g: onnx.GraphProto, acc: dict) -> dict:
        for i, n in enumerate(g.node):
            if n.op_type != "Constant" and registry.get(n.op_type, n.domain) is None \
                    and (n.domain, n.op_type) not in self.functions and not self.has_spec_function(n):
                acc.setdefault(_label(n), []).append(n.name or f"#{i}")
            for a in n.attribute:
                for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                    self.unsupported(sub, acc)
        return acc

    def subgraph(self, gp: onnx.GraphProto, scope, hints=None) -> Graph:
        """Import a subgraph; ``hints`` are types for its inputs taken from the parent node (Loop/Scan),
        used where the subgraph leaves an input's type out."""
        inputs = [i.name for i in gp.input]
        types = {}
        for k, i in enumerate(gp.input):
            t = _static(type_from_proto(i.type, f"subgraph {gp.name!r} input {i.name!r}"))
            if hints and k < len(hints) and hints[k] is not None and (t is None or (isinstance(t, TensorType) and t.shape is None)):
                t = hints[k]
            types[i.name] = t
        g = Graph(gp.name or "body", inputs, [], [], {}, types)
        self.fill(g, gp, scope)
        return g

    def fill(self, g: Graph, gp: onnx.GraphProto, scope) -> None:
        """Import ``gp``'s initializers and nodes into ``g``. ``scope`` maps outer value names to
        (type, constant or None)."""
        declared = {v.name: _static(type_from_proto(v.type, f"value {v.name!r}")) for v in list(gp.value_info) + list(gp.output)}
        _unique([i.name for i in gp.input], "graph input", gp.name)
        _unique([o.name for o in gp.output], "graph output", gp.name)
        _unique([t.name for t in gp.initializer] + [t.values.name for t in gp.sparse_initializer], "initializer", gp.name)
        for init in gp.initializer:
            g.constants[init.name] = numpy_helper.to_array(init)
        for init in gp.sparse_initializer:
            g.constants[init.values.name] = _sparse_to_dense(init)
        for name, arr in g.constants.items():
            g.types[name] = type_of_value(arr)
        g.inputs = [i for i in g.inputs if i not in g.constants]
        for i in _topological_order(gp.node):
            self.node(g, gp.node[i], i, scope, declared)
        g.outputs = [o.name for o in gp.output]
        for o in g.outputs:
            if o not in g.types:
                if o in scope:
                    g.types[o] = scope[o][0]
                else:
                    raise ModelImportError(f"graph output {o!r} is never produced")
            t, d = g.types[o], declared.get(o)
            if isinstance(t, TensorType) and t.shape is None and isinstance(d, TensorType):
                g.types[o] = d

    def lookup(self, g: Graph, scope, name: str):
        if name in g.types:
            return g.types[name], g.constants.get(name)
        if name in scope:
            return scope[name]
        raise ModelImportError(f"value {name!r} is used before it is defined (graph {g.name!r})")

    def node(self, g: Graph, n: onnx.NodeProto, index: int, scope, declared) -> None:
        name = n.name or f"{n.op_type}_{index}"
        for o in n.output:
            if o and (o in g.types or list(n.output).count(o) > 1):
                raise ModelImportError(f"node {name!r} ({n.op_type}): its output {o!r} is already defined "
                                       f"(ONNX assigns every value once)")
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
            arr = _constant_node_value(n)
            g.constants[n.output[0]] = arr
            g.types[n.output[0]] = type_of_value(arr)
            return
        _check_arity(n, self.opsets.get("" if n.domain in ("", "ai.onnx") else n.domain, 1), name)
        spec = self.spec(g, scope, n, name)
        if (n.domain, n.op_type) in self.functions and registry.get(n.op_type, n.domain) is None:
            return self.inline_function(g, n, index, scope, declared, self.functions[(n.domain, n.op_type)])
        if registry.get(n.op_type, n.domain) is None and self.has_spec_function(n):
            # an op bornc has no entry for (ai.onnx.preview.FlexAttention...): its spec body, built for these
            # input types (a context-dependent body inlines its score_mod/prob_mod graphs itself)
            in_types = [self.lookup(g, scope, i)[0] if i else None for i in n.input]
            body = schema_function(n, self.opset_of(n), in_types)
            if body is None or not len(body.node):
                raise UnsupportedOpError({f"{_label(n)} (its ONNX function body needs typed, static inputs)": [name]})
            lacking = sorted({_label(b) for b in body.node if b.op_type != "Constant"
                              and registry.get(b.op_type, b.domain) is None})
            if lacking:
                raise UnsupportedOpError({f"{_label(n)} (its ONNX function body uses {', '.join(lacking)})": [name]})
            return self.inline_function(g, n, index, scope, declared, body)
        if self.expand is not None and self.expand(n.op_type, n.domain):
            looked = [self.lookup(g, scope, i) if i else (None, None) for i in n.input]
            body = function_body(n, self.opsets.get("" if n.domain in ("", "ai.onnx") else n.domain, 1),
                                 [t for t, _ in looked], [c for _, c in looked])
            has_subgraphs = body is not None and any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                                                     for fn in body.node for a in fn.attribute)
            if body is not None and len(body.node) and not has_subgraphs:
                return self.inline_function(g, n, index, scope, declared, body)
        inner_scope = _Scope(g, scope)
        hints = _body_hints(n, [self.lookup(g, scope, i)[0] if i else None for i in n.input])
        attributes = list(n.attribute)
        if n.op_type == "If" and n.domain in ("", "ai.onnx") and n.input and n.input[0]:
            cond = self.lookup(g, scope, n.input[0])[1]
            if cond is not None:          # only the branch taken is imported (the other may not fit these shapes)
                taken = "then_branch" if bool(np.asarray(cond).ravel()[0]) else "else_branch"
                attributes = [a for a in attributes if a.name == taken]
        node = Node(n.op_type, list(n.input), list(n.output),
                    {a.name: _attr_value(a, self, inner_scope, hints) for a in attributes}, name,
                    "" if n.domain in ("", "ai.onnx") else n.domain)

        def const(arr):
            cname = self.fresh(f"{name}_const")
            g.constants[cname] = np.asarray(arr)
            g.types[cname] = type_of_value(np.asarray(arr))
            return cname

        node = canonicalize(node, self.opsets.get(node.domain, 1), const)
        opdef = registry.get(node.op, node.domain)
        looked = [self.lookup(g, scope, i) if i else (None, None) for i in node.inputs]
        in_types = [t for t, _ in looked]
        consts = [c for _, c in looked]
        if node.op == "If" and consts and consts[0] is not None:
            return self.inline_if(g, node, bool(np.asarray(consts[0]).ravel()[0]))
        present = [t for t, i in zip(in_types, node.inputs) if i]
        if node.op == "OptionalHasElement" and not node.domain and (not present or isinstance(present[0], TensorType)):
            g.constants[node.outputs[0]] = np.array(bool(present))     # no input: empty; a tensor: present
            g.types[node.outputs[0]] = type_of_value(g.constants[node.outputs[0]])
            return
        if node.op == "OptionalGetElement" and not node.domain and present and isinstance(present[0], TensorType):
            node = Node("Identity", node.inputs[:1], node.outputs, {}, node.name)   # a tensor is its own element
            opdef = registry.get("Identity")
        if node.op == "CastLike" and not node.domain and len(in_types) > 1 and isinstance(in_types[1], TensorType):
            # the second input gives only its type: a Cast, which folds when the first input is a constant
            node = Node("Cast", node.inputs[:1], node.outputs, {"to": name_to_onnx_elem(in_types[1].dtype),
                        **{k: v for k, v in node.attrs.items() if k == "saturate"}}, node.name)
            opdef, in_types, consts = registry.get("Cast"), in_types[:1], consts[:1]
        attrs = registry.attrs_with_defaults(opdef, node)
        opset = self.opsets.get(node.domain, 1)
        if node.op in _SHAPE_OF and node.domain == "" and getattr(in_types[0], "is_static", False):
            dt = np.dtype(in_types[0].dtype) if in_types[0].dtype != "string" else object
            consts = [np.broadcast_to(np.zeros((), dt), in_types[0].shape)] + consts[1:]    # no memory: its shape only
        out_types = self.infer(g, scope, declared, node, attrs, opset, in_types, consts, spec)
        for o, t in zip(node.outputs, out_types):
            limits.check_type(t, f"node {name!r} ({node.op}) output {o!r}")
        if self.foldable(opdef, node, consts, out_types):
            outs = run_node(node, [c if i else None for c, i in zip(consts, node.inputs)], self.opsets)
            if all(isinstance(o, np.ndarray) and o.size <= FOLD_MAX_ELEMENTS for o in outs):
                for o, v in zip(node.outputs, outs):
                    if o:
                        g.constants[o] = v
                        g.types[o] = type_of_value(v)
                return
        for k, o in enumerate(node.outputs):
            if not o:
                continue
            t = out_types[k] if k < len(out_types) else None
            d = declared.get(o)
            if (t is None or (isinstance(t, TensorType) and t.shape is None)) and d is not None:
                t = _declared(node, o, d, in_types, spec)   # a kernel probe could not run
            if t is None:
                raise ShapeError(f"node {name!r} ({node.op}): no type inferred for its output {o!r}")
            limits.check_type(t, f"node {name!r} ({node.op}) output {o!r}")     # declared types too
            g.types[o] = t
        g.nodes.append(node)

    def spec(self, g: Graph, scope, n: onnx.NodeProto, name: str) -> dict:
        """The ONNX spec's inference of ``n`` (:func:`spec_infer`), once per node: what it rejects (types, ranks,
        dims that contradict) is refused here, and the output sizes it gives are checked against the limit
        before any kernel of the node runs."""
        if n.domain not in ("", "ai.onnx"):
            return {}
        looked = [self.lookup(g, scope, i) if i else (None, None) for i in n.input]
        try:
            spec = spec_infer(n, [t for t, _ in looked], [c for _, c in looked], self.opsets.get("", 1))
        except ShapeError as ex:
            raise ShapeError(f"node {name!r} ({n.op_type}): the ONNX spec's type and shape inference rejects "
                             f"it: {ex}") from None
        for o, (dtype, shape) in spec.items():
            if shape is not None:
                limits.check_shape(shape, dtype if dtype is not None else np.float32, f"node {name!r} ({n.op_type}) output {o!r}")
        return spec

    @staticmethod
    def infer(g, scope, declared, node: Node, attrs, opset, in_types, consts, spec: dict) -> list:
        """The output types of ``node`` from its registry entry; where inference fails with a ShapeError, the
        model's own declared static types (value_info) if every output has one."""
        ctx = registry.InferCtx(node, attrs, opset, in_types, consts, _Scope(g, scope))
        try:
            return registry.infer_types(registry.get(node.op, node.domain), ctx)
        except SpecViolation:
            raise
        except ShapeError:
            outs = [o for o in node.outputs if o]
            if not outs or not all(isinstance(declared.get(o), TensorType) and declared[o].is_static for o in outs):
                raise
            log.debug("node %s: types from the model's value_info (inference failed)", node.name, exc_info=True)
            return [_declared(node, o, declared.get(o), in_types, spec) if o else None for o in node.outputs]
        except BorncError:
            raise
        except Exception as ex:  # noqa: BLE001
            raise ShapeError(f"node {node.name!r} ({node.op}): cannot infer output types from inputs "
                             f"{[str(t) for t in in_types]}: {type(ex).__name__}: {ex}") from None

    @staticmethod
    def foldable(opdef, node: Node, consts, out_types) -> bool:
        """All inputs constant and small, the op deterministic, and every output known small from its type."""
        if opdef.stateful or node.subgraphs():         # random ops; control flow (If, Loop, Scan, SequenceMap)
            return False
        if not opdef.dynamic and not all(isinstance(t, TensorType) and t.is_static and t.size <= FOLD_MAX_ELEMENTS
                                         for o, t in zip(node.outputs, out_types) if o):
            return False
        present = [c for c, i in zip(consts, node.inputs) if i]
        if node.op == "DequantizeLinear" and present and present[0] is not None and present[0].size > 1:
            return False        # quantized weights stay integer until the optimizer folds their layer (fold_qdq)
        limit = FOLD_MAX_ELEMENTS if node.op not in _SHAPE_OF else float("inf")
        return bool(present) and all(c is not None and isinstance(c, np.ndarray) and c.size <= limit for c in present)

    def inline_if(self, g: Graph, node: Node, cond: bool) -> None:
        """Replace an If with a constant condition by the chosen branch's nodes."""
        branch: Graph = node.attrs["then_branch" if cond else "else_branch"]
        g.constants.update(branch.constants)
        g.types.update(branch.types)
        g.nodes.extend(branch.nodes)
        for out, bout in zip(node.outputs, branch.outputs):
            if bout in g.constants:
                g.constants[out] = g.constants[bout]
                g.types[out] = g.types[bout]
            else:
                g.nodes.append(Node("Identity", [bout], [out], {}, f"{node.name}/{out}"))
                g.types[out] = g.types[bout]

    def inline_function(self, g, n, index, scope, declared, f: onnx.FunctionProto) -> None:
        """Expand a call to a function (model-local, or the spec's body of an op) into its nodes, renaming values."""
        rename = dict(zip(f.input, n.input))
        rename.update(zip(f.output, n.output))
        attrs = {a.name: a for a in f.attribute_proto}      # defaults: the function's, then the op schema's
        try:
            schema = onnx.defs.get_schema(n.op_type, domain=n.domain or "")
            attrs.update({k: a.default_value for k, a in schema.attributes.items()
                          if a.default_value.type != onnx.AttributeProto.UNDEFINED})
        except Exception:  # noqa: BLE001 - not a schema op (a model-local function): no schema defaults
            pass
        attrs.update({a.name: a for a in n.attribute})
        prefix = self.fresh(n.name or n.op_type)
        outer_opsets = dict(self.opsets)         # the body's nodes are written against the body's opsets
        for o in f.opset_import:
            self.opsets["" if o.domain in ("", "ai.onnx") else o.domain] = o.version
        try:
            self._inline_nodes(g, f, index, scope, declared, rename, attrs, prefix)
        finally:
            self.opsets = outer_opsets

    def _inline_nodes(self, g, f, index, scope, declared, rename, attrs, prefix) -> None:
        for k, fn in enumerate(f.node):
            new = onnx.NodeProto()
            new.CopyFrom(fn)
            new.name = f"{prefix}/{fn.name or k}"
            new.ClearField("input")
            new.ClearField("output")
            new.input.extend([rename.get(i, f"{prefix}/{i}") if i else "" for i in fn.input])
            new.output.extend([rename.get(o, f"{prefix}/{o}") for o in fn.output])
            new.ClearField("attribute")
            for a in fn.attribute:
                if a.ref_attr_name:
                    if a.ref_attr_name in attrs:
                        b = onnx.AttributeProto()
                        b.CopyFrom(attrs[a.ref_attr_name])
                        b.name = a.name
                        new.attribute.append(b)
                elif a.type == onnx.AttributeProto.GRAPH:      # a body's subgraph reads the body's values
                    b = onnx.AttributeProto()
                    b.CopyFrom(a)
                    _rename_free(b.g, lambda v: rename.get(v, f"{prefix}/{v}"), set())
                    new.attribute.append(b)
                else:
                    new.attribute.append(a)
            self.node(g, new, index, scope, declared)


def _rename_free(gp: onnx.GraphProto, rename, outer_defined: set) -> None:
    """Rename, in place, the values subgraph ``gp`` (and its own subgraphs) reads from enclosing scopes:
    those it does not define itself (inputs, initializers, node outputs)."""
    defined = set(outer_defined) | {i.name for i in gp.input} | {t.name for t in gp.initializer}
    defined |= {o for n in gp.node for o in n.output}
    for n in gp.node:
        for k, i in enumerate(n.input):
            if i and i not in defined:
                n.input[k] = rename(i)
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                _rename_free(a.g, rename, defined)
    for o in gp.output:
        if o.name not in defined:
            o.name = rename(o.name)


def _label(n: onnx.NodeProto) -> str:
    """The op's name as error messages give it: ``Conv``, or ``domain.Op`` outside ai.onnx."""
    return n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"


def _check_arity(n: onnx.NodeProto, opset: int, name: str) -> None:
    """ModelImportError when an ONNX-domain node has fewer or more inputs or outputs than its schema at ``opset``
    allows, or leaves a required input or output empty (a kernel would read a buffer that is not there)."""
    if n.domain not in ("", "ai.onnx"):
        return
    try:
        schema = onnx.defs.get_schema(n.op_type, opset, "")
    except Exception:  # noqa: BLE001 - not an ONNX op at this opset: the registry decides (UnsupportedOpError)
        return
    Single = onnx.defs.OpSchema.FormalParameterOption.Single
    for what, given, params, lo, hi in (("input", list(n.input), schema.inputs, schema.min_input, schema.max_input),
                                        ("output", list(n.output), schema.outputs, schema.min_output, schema.max_output)):
        while given and not given[-1]:
            given.pop()                       # trailing empty names: omitted optional ones
        if not lo <= len(given) <= hi:
            raise ModelImportError(f"node {name!r} ({n.op_type}): {len(given)} {what}s, the op takes {lo} to {hi}")
        for k, p in enumerate(params):
            if p.option == Single and (k >= len(given) or not given[k]):
                raise ModelImportError(f"node {name!r} ({n.op_type}): required {what} {k} ({p.name}) is missing")


def _declared(node: Node, o: str, d, in_types, spec: dict):
    """The model's declared type ``d`` for output ``o`` of ``node``, used where bornc's inference gives no shape;
    ShapeError when the ONNX spec's inference (``spec``, from :meth:`_Importer.spec`) gives that output another
    dtype (a declaration cannot change what a kernel writes)."""
    if not isinstance(d, TensorType):
        return d
    if not all(isinstance(t, TensorType) and t.shape is not None for t in in_types if t is not None):
        return d      # an input of unknown shape may carry a guessed dtype too: nothing firm to compare with
    dtype = spec.get(o, (None, None))[0]
    if dtype is not None and d.dtype != "string":
        from ..ir.types import np_dtype
        if np.dtype(dtype) != np_dtype(d.dtype):
            raise ShapeError(f"node {node.name!r} ({node.op}): output {o!r} is declared {d.dtype}, "
                             f"but the op gives {np.dtype(dtype).name}")
    return d


def _unique(names: list[str], what: str, graph: str) -> None:
    """ModelImportError when a name repeats (duplicate graph outputs would leave the second one unwritten)."""
    seen = set()
    for n in names:
        if n in seen:
            raise ModelImportError(f"{what} {n!r} is listed twice in graph {graph!r}")
        seen.add(n)


def _body_hints(n: onnx.NodeProto, in_types: list) -> list | None:
    """Types of a Loop or Scan body's inputs, derived from the node's inputs."""
    if n.op_type == "Loop":
        return [TensorType("int64", ()), TensorType("bool", ())] + in_types[2:]
    if n.op_type == "Scan":
        m = next((a.i for a in n.attribute if a.name == "num_scan_inputs"), 1)
        states, scans = in_types[:len(in_types) - m], in_types[len(in_types) - m:]
        return states + [TensorType(t.dtype, None if t.shape is None else tuple(t.shape[1:])) if isinstance(t, TensorType) else None
                         for t in scans]
    return None


class _Scope(dict):
    """Read-only view of the names visible to a subgraph: this graph's values, then the outer scope."""

    def __init__(self, g: Graph, outer):
        super().__init__()
        self.g, self.outer = g, outer

    def __contains__(self, name):
        return name in self.g.types or name in self.outer

    def __getitem__(self, name):
        if name in self.g.types:
            return self.g.types[name], self.g.constants.get(name)
        return self.outer[name]

    def get(self, name, default=None):
        return self[name] if name in self else default


def _used_names(g: Graph, acc: set) -> set:
    for n in g.nodes:
        acc.update(i for i in n.inputs if i)
        for sub in n.subgraphs():
            _used_names(sub, acc)
            acc.update(sub.outputs)
    acc.update(g.outputs)
    return acc


def _drop_unused_constants(g: Graph) -> None:
    """Remove constants no node, subgraph or output reads (left behind by folding and If inlining)."""
    used = _used_names(g, set())
    for name in [c for c in g.constants if c not in used]:
        del g.constants[name]
        g.types.pop(name, None)


def _container_shapes(name: str, t, given):
    """The type of a sequence or optional input whose structure ``--input-shape`` fixes: a sequence gets its
    element types (``given``: a list of shapes, one per element, from ``NAME[k]=d0,d1``); an optional tensor given
    a shape is that tensor (present); an optional sequence, a sequence as above. ShapeError when the given ranks
    do not fit the declared element type."""
    inner = t.elem if isinstance(t, OptionalType) else t
    if isinstance(inner, TensorType):
        if given and not isinstance(given[0], (int, np.integer)):
            raise ShapeError(f"input {name!r} is an optional tensor; give its shape as --input-shape {name}=d0,d1,...")
        return _shaped(name, inner, tuple(int(d) for d in given))
    if not isinstance(inner, SequenceType) or not isinstance(inner.elem, TensorType):
        raise ShapeError(f"input {name!r} of type {t}: --input-shape cannot fix its structure")
    if len(given) > limits.MAX_SEQUENCE_LENGTH:
        raise ShapeError(f"input {name!r}: a sequence of {len(given)} elements; at most {limits.MAX_SEQUENCE_LENGTH}")
    elems = tuple(_shaped(f"{name}[{k}]", inner.elem, tuple(int(d) for d in s)) for k, s in enumerate(given))
    seq = SequenceType(inner.elem, elems)
    return OptionalType(seq) if isinstance(t, OptionalType) else seq


def _shaped(name: str, t: TensorType, shape: tuple) -> TensorType:
    if t.shape is not None and (len(t.shape) != len(shape) or any(isinstance(d, int) and d != s for d, s in zip(t.shape, shape))):
        raise ShapeError(f"input {name!r} has shape {list(t.shape)}; --input-shape gave {list(shape)}")
    limits.check_shape(shape, t.dtype, f"input {name!r}")
    return TensorType(t.dtype, shape)


def _parse_bound_inputs(proto, input_shapes, bind):
    input_shapes = dict(input_shapes or {})
    bind = dict(bind or {})
    inits = {i.name for i in proto.graph.initializer}
    names = [i.name for i in proto.graph.input if i.name not in inits]
    for k in list(input_shapes) + list(bind):
        if k not in names:
            raise ShapeError(f"no model input named {k!r}; inputs are {', '.join(map(repr, names))}")
    return input_shapes, bind


def from_proto(proto: onnx.ModelProto, sha256: str = "", input_shapes: dict | None = None,
               bind: dict | None = None) -> Model:
    """Import an in-memory ModelProto. See :func:`load_onnx` for the arguments and errors. Every op is imported
    as it is (model-local functions are inlined); ops a target cannot lower are rewritten by legalization.
    A malformed field that onnx or numpy cannot decode (a tensor whose data does not match its dims, a reference
    attribute outside a function, nesting too deep) is a ModelImportError naming the Python error."""
    try:
        return _from_proto(proto, sha256, input_shapes, bind)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, RecursionError) as ex:
        log.debug("import failed", exc_info=True)
        raise ModelImportError(f"malformed model: {type(ex).__name__}: {str(ex)[:300]}") from None
    except MemoryError:
        raise ModelImportError("malformed model: importing it ran out of memory") from None


def _from_proto(proto: onnx.ModelProto, sha256: str, input_shapes: dict | None, bind: dict | None) -> Model:
    check_names(proto)
    inline_external_data(proto, None)        # read_model_proto has inlined a file's; none may be left
    input_shapes, bind = _parse_bound_inputs(proto, input_shapes, bind)
    imp = _Importer(proto)
    missing = imp.unsupported(proto.graph, {})
    if missing:
        raise UnsupportedOpError(missing)
    gp = proto.graph
    inits = {i.name for i in gp.initializer}
    g = Graph(gp.name or "main", [], [], [], {}, {})
    for vi in gp.input:
        if vi.name in inits:
            continue
        t = type_from_proto(vi.type, f"input {vi.name!r}")
        if vi.name in bind:
            arr = np.asarray(bind[vi.name], dtype=np.dtype(t.dtype) if isinstance(t, TensorType) and t.dtype != "string" else None)
            if isinstance(t, TensorType) and t.shape is not None and len(t.shape) != arr.ndim:
                raise ShapeError(f"--bind {vi.name}: the input has shape {list(t.shape)}, a value of rank {arr.ndim} was given")
            g.constants[vi.name] = arr
            g.types[vi.name] = type_of_value(arr)
            continue
        if vi.name in input_shapes and isinstance(t, (SequenceType, OptionalType)):
            t = _container_shapes(vi.name, t, input_shapes[vi.name])
        elif vi.name in input_shapes:
            shape = tuple(int(d) for d in input_shapes[vi.name])
            if isinstance(t, TensorType) and t.shape is not None:
                if len(t.shape) != len(shape) or any(isinstance(d, int) and d != s for d, s in zip(t.shape, shape)):
                    raise ShapeError(f"input {vi.name!r} has shape {list(t.shape)}; --input-shape gave {list(shape)}")
            t = TensorType(t.dtype, shape)
        elif isinstance(t, TensorType) and (t.shape is None or not all(isinstance(d, int) for d in t.shape)):
            dims = "unknown rank" if t.shape is None else "[" + ", ".join(str(d) if d is not None else "?" for d in t.shape) + "]"
            raise ShapeError(f"input {vi.name!r} has symbolic dims {dims}; bind them with "
                             f"--input-shape {vi.name}=" + ",".join(str(d) if isinstance(d, int) else "N" for d in (t.shape or ["N"])))
        limits.check_type(t, f"input {vi.name!r}")       # sizes later computed in int64 cannot overflow
        g.inputs.append(vi.name)
        g.types[vi.name] = t
    imp.fill(g, gp, {})
    _drop_unused_constants(g)
    model = Model(g, dict(imp.opsets), proto.producer_name, sha256,
                  {p.key: p.value for p in proto.metadata_props})
    verify(model)
    return model


def load_onnx(path: str | os.PathLike, input_shapes: dict | None = None, bind: dict | None = None) -> Model:
    """Import an ONNX file into a verified IR Model.

    ``input_shapes`` maps input name -> tuple of ints binding its symbolic dims; ``bind`` maps a (scalar)
    input name -> value, turning that input into a constant so the graph specializes. Raises
    ModelImportError (bad file, unsafe external data), UnsupportedOpError (every unsupported op type with its
    node names), ShapeError (unbound symbolic dim, bad binding, shapes that do not fit an op)."""
    proto, sha = read_model_proto(path)
    return from_proto(proto, sha, input_shapes, bind)


def _names_read(n: onnx.NodeProto) -> set[str]:
    """The value names node ``n`` reads: its inputs and every input named inside its subgraphs."""
    names = {i for i in n.input if i}
    for a in n.attribute:
        for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
            for m in sub.node:
                names |= _names_read(m)
    return names


def _topological_order(nodes) -> list[int]:
    """Node indices in a dependency order, stable (the file's order wherever it is already valid). The ONNX IR
    spec asks for topologically sorted nodes, but real files break it (onnxruntime's float16 converter with
    keep_io_types appends the input Casts after their users); a cycle is left in file order, for the importer's
    "used before it is defined" error."""
    producer = {o: k for k, n in enumerate(nodes) for o in n.output if o}
    deps = [sorted({producer[v] for v in _names_read(n) if v in producer and producer[v] != k}) for k, n in enumerate(nodes)]
    if all(d < k for k, ds in enumerate(deps) for d in ds):
        return list(range(len(nodes)))
    import heapq
    users: dict[int, list[int]] = {}
    missing = [len(ds) for ds in deps]
    for k, ds in enumerate(deps):
        for d in ds:
            users.setdefault(d, []).append(k)
    ready = [k for k, m in enumerate(missing) if m == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        k = heapq.heappop(ready)
        order.append(k)
        for u in users.get(k, []):
            missing[u] -= 1
            if missing[u] == 0:
                heapq.heappush(ready, u)
    return order + [k for k in range(len(nodes)) if missing[k] > 0]
