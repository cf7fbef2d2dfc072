"""The python backend driver: planned model -> artifact directory (bornrt.py, model.py, weights.bin, manifest).

``model.py`` is rendered from ``templates/python/model.py.j2``: the value slots (arena views at the memory
plan's offsets, weights views, inputs, outputs, values made at run time), the attributes of every node, and one
function per graph (the model and each subgraph) that calls the node kernels of ``bornrt.KERNELS`` in schedule
order. Views (Reshape, Flatten, Squeeze, Unsqueeze, Identity) that the plan places on their input's bytes emit
no call. Convolutions and pools get a planned workspace in the arena for their padded input and im2col columns.
"""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import jinja2
import numpy as np

from ... import __version__
from ...errors import ArtifactError, UnsupportedOpError
from ...ir.graph import Graph, Model, Node
from ...ir.types import TensorType, np_dtype
from ...memory import plan_model
from ...memory.liveness import is_view
from ...ops import registry
from ...pyrt import rt
from ...resources import resource_dir
from ...targets import Target
from ..common.small_float import SMALL_FLOAT, small_float_table
from ..common.text import comment_text, py_string
from ..common.manifest import artifact_manifest, write_manifest
from ..common.schedule import values_with_subgraphs
from ..common.weights import weights_file_image, weights_layout_of

FORMAT_VERSION = 1
#: dtypes numpy has on the device (no ml_dtypes there): bfloat16, float8, int4/int2 and strings are not.
NUMPY_DTYPES = {"float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                "uint64", "bool"}
STORAGE = rt.STORAGE
FLOAT_BITS = rt.FLOAT_BITS
#: the ops bornrt computes bit-pattern floats (bfloat16, float8, float4) in, and the views that pass them on
_FLOAT_BITS_OPS = {"Cast", "CastLike", "QuantizeLinear", "DequantizeLinear", "BitCast", "Identity", "Reshape", "Flatten",
                   "Squeeze", "Unsqueeze"}
_TO_OPS = {"Cast", "CastLike", "EyeLike", "QuantizeLinear", "DequantizeLinear", "BitCast"}
_OPSET_OPS = {"Softmax", "LogSoftmax", "Hardmax", "DFT"}


def lacks_python_kernel(op: str, domain: str) -> bool:
    """True for ops bornrt.py has no kernel for (importers expand them into their ONNX function body)."""
    if domain == "ai.onnx.ml":
        return op not in rt.ML_KERNELS
    return domain not in ("", "ai.onnx", "bornc") or op not in rt.KERNELS


def py_literal(x) -> str:
    """Python source for an attribute value (numbers, strings, lists, dicts, numpy arrays)."""
    if x is None or isinstance(x, bool):
        return repr(x)
    if isinstance(x, (int, np.integer)):
        return repr(int(x))
    if isinstance(x, (float, np.floating)):
        f = float(x)
        return "NAN" if math.isnan(f) else ("INF" if f > 0 else "-INF") if math.isinf(f) else repr(f)
    if isinstance(x, str):
        return py_string(x)
    if isinstance(x, bytes):
        return repr(x)
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(py_literal(v) for v in x) + "]"
    if isinstance(x, dict):
        return "{" + ", ".join(f"{py_literal(k)}: {py_literal(v)}" for k, v in x.items()) + "}"
    if isinstance(x, np.ndarray) and x.dtype.name in NUMPY_DTYPES:
        return f"np.array({py_literal(x.ravel().tolist())}, dtype={x.dtype.name!r}).reshape({tuple(x.shape)!r})"
    raise ArtifactError(f"attribute value of type {type(x).__name__} cannot be written for the python target")


def _store(dtype: str) -> str:
    """The numpy dtype name bornrt holds ``dtype`` in (int4 -> int8, bfloat16 -> uint16; others unchanged)."""
    return rt.storage_dtype(dtype).name if dtype in STORAGE or dtype in FLOAT_BITS else dtype


def _stored(v) -> np.ndarray:
    """A constant as bornrt holds it: int4/int2 values one per byte, bit-pattern floats as their bits."""
    v = np.asarray(v)
    if v.dtype.name in FLOAT_BITS:
        return v.view(FLOAT_BITS[v.dtype.name])
    return v.astype(_store(v.dtype.name)) if v.dtype.name in STORAGE else v


def _dtype_name(t) -> str:
    """The dtype of a tensor type, or 'sequence' / 'optional' for the other ONNX types."""
    return t.dtype if isinstance(t, TensorType) else type(t).__name__.replace("Type", "").lower()


def _literal_attrs(attrs: dict) -> dict:
    """The attributes a kernel can read: those with a Python literal form (TypeProto and graphs are left out)."""
    keep = {}
    for k, v in attrs.items():
        try:
            py_literal(v)
        except ArtifactError:
            continue
        keep[k] = v
    return keep


def _unsupported(model: Model) -> dict:
    """Every op without a bornrt kernel and every value of a dtype numpy lacks, with node names."""
    missing: dict = {}
    for graph, node in model.graph.walk():
        if lacks_python_kernel(node.op, node.domain):
            missing.setdefault(node.op, []).append(node.name)
        for v in list(node.inputs) + list(node.outputs):
            t = graph.types.get(v) if v else None
            elem = t.elem if t is not None and not isinstance(t, TensorType) and hasattr(t, "elem") else t
            if isinstance(elem, TensorType) and isinstance(t, TensorType) and \
                    (elem.dtype in FLOAT_BITS and node.op in _FLOAT_BITS_OPS or elem.dtype == "bfloat16"):
                continue                 # bit patterns converted by the op itself, or the node run in float32
            if isinstance(elem, TensorType) and elem.dtype not in NUMPY_DTYPES and elem.dtype not in STORAGE:
                key = f"{elem.dtype} tensors (numpy has no {elem.dtype}"
                key += ")" if elem.dtype not in FLOAT_BITS else "; the python target converts it in Cast and Q/DQ only)"
                if node.name not in missing.get(key, []):
                    missing.setdefault(key, []).append(node.name)
    return missing


def _workspace_bytes(node: Node, types: dict) -> int:
    """Arena bytes for the scratch a Conv/pool kernel takes: padded input and im2col columns (64-byte rounded)."""
    if node.op not in ("Conv", "FusedConv", "MaxPool", "AveragePool") or len(node.outputs) > 1:
        return 0
    x = types.get(node.inputs[0])
    if not isinstance(x, TensorType) or not x.is_static or x.dtype not in NUMPY_DTYPES:
        return 0
    item = np_dtype(x.dtype).itemsize
    rnd = lambda n: -(-n // 64) * 64  # noqa: E731
    attrs = registry.attrs_with_defaults(registry.get(node.op, node.domain), node)
    if node.op in ("MaxPool", "AveragePool"):
        kernel, strides, dil, pads, ext, outs = rt.pool_geometry(attrs, x.shape)
        width = [(pb, pe + e) for (pb, pe), e in zip(pads, ext)]
        if all(b == 0 and e == 0 for b, e in width):
            return 0
        return rnd(int(np.prod(x.shape[:2])) * int(np.prod([d + b + e for d, (b, e) in zip(x.shape[2:], width)])) * item)
    w = types.get(node.inputs[1])
    if not isinstance(w, TensorType) or not w.is_static:
        return 0
    kernel, strides, dil, pads, outs = rt.conv_geometry(attrs, x.shape, w.shape)
    if int(np.prod(kernel)) == 1 and all(s == 1 for s in strides) and all(p == (0, 0) for p in pads):
        return 0
    total = 0
    if any(p != (0, 0) for p in pads):
        total += rnd(int(np.prod(x.shape[:2])) * int(np.prod([d + b + e for d, (b, e) in zip(x.shape[2:], pads)])) * item)
    total += rnd(int(np.prod(x.shape[:2])) * int(np.prod(kernel)) * int(np.prod(outs)) * item)
    return total


def compile_python(model: Model, target: Target, out_dir: str | Path, name: str = "model", opt_level: int = 2,
                   schedule: str = "topological", self_test: dict | None = None, source: str = "") -> dict:
    """Write the python artifact for ``model`` (already optimized) into ``out_dir``; returns its manifest.

    Raises UnsupportedOpError listing every node bornrt.py has no kernel for, and every value whose dtype numpy
    lacks on the device (bfloat16, float8, int4...)."""
    missing = _unsupported(model)
    if missing:
        raise UnsupportedOpError(missing)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    g = model.graph
    types, consts = values_with_subgraphs(g)
    workspace = {n.name: b for n in g.nodes if (b := _workspace_bytes(n, types))}
    plan = plan_model(model, target.alignment, schedule, workspace=workspace, dynamic=True)
    order = plan.extra["order"]
    read = set(g.outputs)                     # every name a node or a subgraph reads or returns: one walk
    for _, n in g.walk():
        read.update(n.inputs)
        for sub in n.subgraphs():
            read.update(sub.outputs)
    used = [c for c in consts if c in read]
    consts = {k: _stored(v) for k, v in consts.items()}
    w_offsets, payload = weights_layout_of(consts, used)
    em = _Emitter(model, types, plan)
    functions = em.functions(order)
    code = _render(em, name, target, opt_level, functions, consts, used, w_offsets)
    compile(code, "model.py", "exec")      # a generator bug fails here, not on the device
    (out / "model.py").write_text(code)
    shutil.copyfile(resource_dir("runtime") / "python" / "bornrt.py", out / "bornrt.py")
    (out / "weights.bin").write_bytes(weights_file_image(payload))
    io = [{"name": v, "dtype": _dtype_name(types[v]), "shape": list(types[v].shape) if em.static(v) else None}
          for v in list(g.inputs) + list(g.outputs)]
    manifest = artifact_manifest(
        "python", model, target, name=name, source=source, opt_level=opt_level, plan=plan, payload=payload,
        inputs=io[:len(g.inputs)], outputs=io[len(g.inputs):], ops=[n.op for _, n in g.walk()], nodes=len(order),
        format_version=FORMAT_VERSION, profile={"alignment": target.alignment, "features": list(target.features)},
        kernel_calls=len(em.steps),
        dynamic_values=sorted(v for v in em.slots if v not in em.arena_vals and v not in used and v not in g.inputs + g.outputs),
        python={"module": "model.py", "runtime": "bornrt.py", "requires": "Python >= 3.8, numpy >= 1.21"})
    return write_manifest(out, manifest, self_test, g.inputs, g.outputs)


class _Emitter:
    """The lines of model.py: value slots (``v[k]``), the attributes and workspace of every kernel call, and one
    function per graph (the model's ``run`` and one per subgraph) calling the kernels in schedule order."""

    def __init__(self, model: Model, types: dict, plan):
        self.model, self.types, self.plan = model, types, plan
        g = model.graph
        self.inputs, self.outputs = list(g.inputs), list(g.outputs)
        self.slots: dict[str, int] = {}
        for v in self.inputs + self.outputs:
            self.slot(v)
        self.steps: list = []          # (attrs literal, workspace (offset, bytes) or None)
        self.subgraph_functions: list = []
        self.arena_vals = {v for v in plan.value_buffer if v in types and not v.endswith("/workspace")}

    def slot(self, v: str) -> int:
        if v not in self.slots:
            self.slots[v] = len(self.slots)
        return self.slots[v]

    def static(self, v: str) -> bool:
        t = self.types.get(v)
        return isinstance(t, TensorType) and t.is_static

    def ref(self, v: str) -> str:
        return f"v[{self.slot(v)}]" if v else "None"

    def out_ref(self, v: str, top: bool) -> str:
        """Where a kernel writes output ``v``: its planned arena view (top graph), else None (it allocates)."""
        if v and top and (v in self.arena_vals or (v in self.outputs and self.static(v))):
            return f"v[{self.slot(v)}]"
        return "None"

    def functions(self, order: list) -> list[dict]:
        """``run`` (the model, schedule order) and then every subgraph's function."""
        run = {"name": "run", "params": "v, K, call, w", "doc": "One inference: every node of the model in schedule order.",
               "lines": self.graph_lines(order, True) or ["pass"]}
        return [run] + self.subgraph_functions

    def graph_lines(self, nodes, top: bool) -> list[str]:
        lines = []
        for node in nodes:
            if (top and is_view(node) and node.outputs[0] in self.arena_vals
                    and self.plan.value_buffer.get(node.outputs[0]) == self.plan.value_buffer.get(node.inputs[0])):
                lines.append(f"# {node.op} {comment_text(node.name)}: a view, {comment_text(node.outputs[0])} shares the bytes of "
                             f"{comment_text(node.inputs[0])}")
                continue
            lines += self.call_lines(node, top)
        return lines

    def _attrs(self, node: Node) -> dict:
        attrs = _literal_attrs(registry.attrs_with_defaults(registry.get(node.op, node.domain), node))
        attrs["_op"] = node.op
        attrs["_node"] = node.name
        if node.op in _TO_OPS and isinstance(self.types.get(node.outputs[0]), TensorType):
            attrs["_to"] = self.types[node.outputs[0]].dtype
        dtypes = [self.types[i].dtype if i and isinstance(self.types.get(i), TensorType) else None for i in node.inputs]
        bits = {d for d in dtypes + [attrs.get("_to")] if d in FLOAT_BITS}
        if bits:                                 # what bornrt decodes and encodes bit-pattern floats by
            attrs["_in_dtypes"] = dtypes
            attrs["_tabs"] = {d: small_float_table(d) for d in sorted(bits) if d in SMALL_FLOAT}
        outs = [self.types[o].dtype if o and isinstance(self.types.get(o), TensorType) else None for o in node.outputs]
        if node.op not in _FLOAT_BITS_OPS and "bfloat16" in dtypes + outs:
            attrs["_promote"] = 1                # bornrt computes the node in float32 (bornrt._promoted)
            attrs["_in_dtypes"], attrs["_out_dtypes"] = dtypes, outs
        if node.op in _OPSET_OPS:
            attrs["_opset"] = self.model.opsets.get(node.domain or "", 21)
        return attrs

    def call_lines(self, node: Node, top: bool) -> list[str]:
        """The kernel call of ``node``; its subgraphs become functions passed as attributes (lambdas)."""
        idx = len(self.steps)
        ws = self.plan.offsets.get(f"{node.name}/workspace") if top else None
        self.steps.append((py_literal(self._attrs(node)), None if ws is None else (ws[0], ws[1])))
        ins = list(node.inputs)
        while ins and not ins[-1]:
            ins.pop()
        a = f"ATTRS[{idx}]"
        parts = [f"{k}=lambda *xs: {self.subgraph_function(node, k, sub)}(v, K, call, w, xs)"
                 for k, sub in node.attrs.items() if isinstance(sub, Graph)]
        if parts:
            a = f"dict(ATTRS[{idx}], {', '.join(parts)})"
        outs = [self.out_ref(o, top) for o in node.outputs]
        lhs = "".join((self.ref(o) if o else "_") + ", " for o in node.outputs)
        return [f"# {node.op} {comment_text(node.name)}",
                f"{lhs}= call(K[{node.op!r}], ({''.join(self.ref(i) + ', ' for i in ins)}), "
                f"({''.join(o + ', ' for o in outs)}), {a}, w[{idx}])"]

    def subgraph_function(self, node: Node, attr: str, sub: Graph) -> str:
        """Emit the function of subgraph ``attr`` of ``node`` (nested subgraphs first come after it); its name."""
        fname = f"g{len(self.subgraph_functions) + 2}"            # g1 would be run's place; subgraphs count from g2
        entry = {"name": fname, "params": "v, K, call, w, xs", "doc": f"{attr} of node {comment_text(node.name)} ({node.op})"}
        self.subgraph_functions.append(entry)              # the name is reserved before the body's own subgraphs
        body = [f"{', '.join(self.ref(i) for i in sub.inputs)}, = xs"] if sub.inputs else []
        body += self.graph_lines(sub.nodes, False)
        body.append(f"return ({''.join(self.ref(o) + ', ' for o in sub.outputs)})")
        entry["lines"] = body
        return fname


def _render(em: _Emitter, name: str, target: Target, opt_level: int, functions: list, consts: dict, used: list,
            w_offsets: dict) -> str:
    """model.py's source from templates/python/model.py.j2."""
    for v in sorted(em.arena_vals - em.slots.keys()):     # slots of arena values no call names, in a fixed order
        em.slot(v)
    weights_tab = [{"slot": em.slot(c), "offset": w_offsets[c], "shape": repr(list(np.shape(consts[c]))),
                    "dtype": np.asarray(consts[c]).dtype.name, "name": comment_text(c)} for c in used]
    arena_tab = [{"slot": em.slot(v), "offset": em.plan.offsets[em.plan.value_buffer[v]][0], "shape": repr(list(em.types[v].shape)),
                  "dtype": _store(em.types[v].dtype), "name": comment_text(v)} for v in sorted(em.arena_vals, key=em.slot)]

    def info(v: str) -> dict:
        return {"slot": em.slot(v), "name": v, "name_lit": py_string(v), "dtype": _store(_dtype_name(em.types[v])),
                "shape": repr(list(em.types[v].shape)) if em.static(v) else "None"}
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(resource_dir("templates") / "python")),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    return env.get_template("model.py.j2").render(
        name=comment_text(name), version=__version__, target=target.name, opt_level=opt_level, slots=len(em.slots),
        weights=weights_tab, arena=arena_tab, inputs=[info(v) for v in em.inputs], outputs=[info(v) for v in em.outputs],
        workspace=repr([s[1] for s in em.steps]), attrs=[s[0] for s in em.steps], functions=functions)
