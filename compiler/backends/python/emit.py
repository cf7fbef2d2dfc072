"""The python backend driver: planned model -> artifact directory (bornrt.py, model.py, weights.bin, manifest).

``model.py`` is rendered from ``templates/python/model.py.j2``: the value slots (arena views at the memory
plan's offsets, weights views, inputs, outputs, values made at run time), the attributes of every node, and one
function per graph (the model and each subgraph) that calls the node kernels of ``bornrt.KERNELS`` in schedule
order. Views (Reshape, Flatten, Squeeze, Unsqueeze, Identity) that the plan places on their input's bytes emit
no call. Convolutions and pools get a planned workspace in the arena for their padded input and im2col columns.
"""
from __future__ import annotations

import hashlib
import math
import shutil
from pathlib import Path

import jinja2
import numpy as np

from ... import __version__
from ...analysis import summarize
from ...errors import ArtifactError, UnsupportedOpError
from ...ir.graph import Graph, Model, Node
from ...ir.types import TensorType, np_dtype
from ...memory import plan_model
from ...memory.liveness import is_view
from ...ops import registry
from ...pyrt import rt
from ...resources import resource_dir
from ..common.text import comment_text, py_string
from ...targets import Target
from ..weights import weights_file_image, weights_layout_of, write_manifest

FORMAT_VERSION = 1
#: dtypes numpy has on the device (no ml_dtypes there): bfloat16, float8, int4/int2 and strings are not.
NUMPY_DTYPES = {"float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                "uint64", "bool"}
STORAGE = rt.STORAGE
_TO_OPS = {"Cast", "CastLike", "EyeLike", "QuantizeLinear", "DequantizeLinear"}
_OPSET_OPS = {"Softmax", "LogSoftmax", "Hardmax"}


def lacks_python_kernel(op: str, domain: str) -> bool:
    """True for ops bornrt.py has no kernel for (importers expand them into their ONNX function body)."""
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
    """The numpy dtype name bornrt holds ``dtype`` in (int4 -> int8; others unchanged)."""
    return rt.storage_dtype(dtype).name if dtype in STORAGE else dtype


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
            if isinstance(elem, TensorType) and elem.dtype not in NUMPY_DTYPES and elem.dtype not in STORAGE:
                key = f"{elem.dtype} tensors (numpy has no {elem.dtype})"
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
    types = dict(g.types)
    consts = dict(g.constants)
    for _, n in g.walk():
        for sub in n.subgraphs():
            types.update(sub.types)
            consts.update(sub.constants)
    workspace = {n.name: b for n in g.nodes if (b := _workspace_bytes(n, types))}
    plan = plan_model(model, target.alignment, schedule, workspace=workspace, dynamic=True)
    order = plan.extra["order"]

    slots: dict[str, int] = {}

    def slot(v: str) -> int:
        if v not in slots:
            slots[v] = len(slots)
        return slots[v]

    inputs, outputs = list(g.inputs), list(g.outputs)
    for v in inputs + outputs:
        slot(v)
    read = set(outputs)                     # every name a node or a subgraph reads or returns: one walk
    for _, n in g.walk():
        read.update(n.inputs)
        for sub in n.subgraphs():
            read.update(sub.outputs)
    used = [c for c in consts if c in read]
    consts = {k: (np.asarray(v).astype(_store(np.asarray(v).dtype.name)) if np.asarray(v).dtype.name in STORAGE else v)
              for k, v in consts.items()}
    w_offsets, payload = weights_layout_of(consts, used)
    steps: list = []          # (attrs literal, workspace)
    functions: list = []

    def static(v: str) -> bool:
        t = types.get(v)
        return isinstance(t, TensorType) and t.is_static

    arena_vals = {v for v in plan.value_buffer if v in types and not v.endswith("/workspace")}

    def ref(v: str) -> str:
        return f"v[{slot(v)}]" if v else "None"

    def out_ref(v: str, top: bool) -> str:
        if not v:
            return "None"
        if top and (v in arena_vals or (v in outputs and static(v))):
            return f"v[{slot(v)}]"
        return "None"

    def emit_graph(graph: Graph, nodes, top: bool) -> list[str]:
        lines = []
        for node in nodes:
            opdef = registry.get(node.op, node.domain)
            if (top and is_view(node) and node.outputs[0] in arena_vals
                    and plan.value_buffer.get(node.outputs[0]) == plan.value_buffer.get(node.inputs[0])):
                lines.append(f"# {node.op} {comment_text(node.name)}: a view, {comment_text(node.outputs[0])} shares the bytes of "
                             f"{comment_text(node.inputs[0])}")
                continue
            attrs = _literal_attrs(registry.attrs_with_defaults(opdef, node))
            attrs["_op"] = node.op
            attrs["_node"] = node.name
            if node.op in _TO_OPS and isinstance(types.get(node.outputs[0]), TensorType):
                attrs["_to"] = types[node.outputs[0]].dtype
            if node.op in _OPSET_OPS:
                attrs["_opset"] = model.opsets.get(node.domain or "", 21)
            idx = len(steps)
            ws = plan.offsets.get(f"{node.name}/workspace") if top else None
            steps.append((py_literal(attrs), None if ws is None else (ws[0], ws[1])))
            ins = list(node.inputs)
            while ins and not ins[-1]:
                ins.pop()
            a = f"ATTRS[{idx}]"
            subs = [(k, v) for k, v in node.attrs.items() if isinstance(v, Graph)]
            if subs:
                parts = []
                for k, sub in subs:
                    fname = f"g{len(functions) + 1}"
                    functions.append(None)               # reserve the name; filled below
                    pos = len(functions) - 1
                    body = [f"{', '.join(ref(i) for i in sub.inputs)}, = xs"] if sub.inputs else []
                    body += emit_graph(sub, sub.nodes, False)
                    body.append(f"return ({''.join(ref(o) + ', ' for o in sub.outputs)})")
                    functions[pos] = {"name": fname, "params": "v, K, call, w, xs",
                                      "doc": f"{k} of node {comment_text(node.name)} ({node.op})", "lines": body}
                    parts.append(f"{k}=lambda *xs: {fname}(v, K, call, w, xs)")
                a = f"dict(ATTRS[{idx}], {', '.join(parts)})"
            outs = [out_ref(o, top) for o in node.outputs]
            lhs = "".join((ref(o) if o else "_") + ", " for o in node.outputs)
            lines.append(f"# {node.op} {comment_text(node.name)}")
            lines.append(f"{lhs}= call(K[{node.op!r}], ({''.join(ref(i) + ', ' for i in ins)}), "
                         f"({''.join(o + ', ' for o in outs)}), {a}, w[{idx}])")
        return lines

    functions.append(None)
    functions[0] = {"name": "run", "params": "v, K, call, w", "doc": "One inference: every node of the model in schedule order.",
                    "lines": emit_graph(g, order, True) or ["pass"]}

    def info(v: str) -> dict:
        t = types[v]
        return {"slot": slot(v), "name": v, "name_lit": py_string(v), "dtype": _store(_dtype_name(t)),
                "shape": repr(list(t.shape)) if static(v) else "None"}

    weights_tab = [{"slot": slot(c), "offset": w_offsets[c], "shape": repr(list(np.shape(consts[c]))),
                    "dtype": np.asarray(consts[c]).dtype.name, "name": comment_text(c)} for c in used]
    arena_tab = []
    for v in sorted(arena_vals, key=lambda x: slot(x)):
        t = types[v]
        arena_tab.append({"slot": slot(v), "offset": plan.offsets[plan.value_buffer[v]][0], "shape": repr(list(t.shape)),
                          "dtype": _store(t.dtype), "name": comment_text(v)})
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(resource_dir("templates") / "python")),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    code = env.get_template("model.py.j2").render(
        name=comment_text(name), version=__version__, target=target.name, opt_level=opt_level, slots=len(slots),
        weights=weights_tab, arena=arena_tab, inputs=[info(v) for v in inputs], outputs=[info(v) for v in outputs],
        workspace=repr([s[1] for s in steps]), attrs=[s[0] for s in steps], functions=functions)
    compile(code, "model.py", "exec")      # a generator bug fails here, not on the device
    (out / "model.py").write_text(code)
    shutil.copyfile(resource_dir("runtime") / "python" / "bornrt.py", out / "bornrt.py")
    (out / "weights.bin").write_bytes(weights_file_image(payload))
    sha = hashlib.sha256(payload).hexdigest()
    manifest = {
        "format_version": FORMAT_VERSION, "bornc_version": __version__, "backend": "python", "name": name,
        "target": target.name, "target_profile": {"alignment": target.alignment, "features": list(target.features)},
        "source_model": {"file": Path(source).name if source else "", "path": str(Path(source).resolve()) if source else "",
                         "sha256": model.source_sha256},
        "compile": {"opt_level": opt_level, "weights": "file", "schedule": plan.schedule_name},
        "inputs": [{"name": v, "dtype": _dtype_name(types[v]), "shape": list(types[v].shape) if static(v) else None} for v in inputs],
        "outputs": [{"name": v, "dtype": _dtype_name(types[v]), "shape": list(types[v].shape) if static(v) else None} for v in outputs],
        "flops": summarize(model)["flops"],
        "arena_bytes": plan.arena_bytes, "weights_bytes": len(payload), "weights_sha256": sha,
        "ops": sorted({n.op for _, n in g.walk()}), "nodes": len(order), "kernel_calls": len(steps),
        "dynamic_values": sorted(v for v in slots if v not in arena_vals and v not in used and v not in inputs + outputs),
        "plan": {**plan.summary(), "tensors": plan.to_json()["tensors"]},
        "python": {"module": "model.py", "runtime": "bornrt.py", "requires": "Python >= 3.8, numpy >= 1.21"},
    }
    return write_manifest(out, manifest, self_test, inputs, outputs)
