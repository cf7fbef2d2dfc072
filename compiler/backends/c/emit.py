"""The C backend driver: planned model -> artifact directory (sources, Makefile, manifest, weights, binaries).

Walks the schedule once: lowers every node (all unsupported ops are reported together), gives every value a C
pointer expression (caller-owned input/output, arena offset from the memory plan, or weights), renders one
``static`` kernel function per node from ``templates/c`` and the ``run`` function that calls them in order.
"""
from __future__ import annotations

import hashlib
import json
import re
import struct
from pathlib import Path

import jinja2
import numpy as np

from ... import __version__
from ...errors import ArtifactError, UnsupportedOpError
from ...ir.graph import Model
from ...ir.types import TensorType
from ...memory import plan_model
from ...resources import resource_dir
from ..common.text import c_string, comment_text, identifier
from ...targets import Target
from . import lower_elementwise, lower_nn, lower_qint, lower_quant, lower_tensor  # noqa: F401  (register the lowerings)
from .ctypes_ import C_DTYPE_ENUM, STORAGE_ONLY, ctype, literal
from ..weights import weights_file_image, weights_layout_of
from .lowering import lower_node

ABI_VERSION = 1
FORMAT_VERSION = 1
EMBED_LIMIT_BYTES = 2 << 20


#: the C runtime files every artifact carries (runtime/c)
RUNTIME_FILES = ("bornrt.h", "bornrt_gemm.h", "bornrt.c")


def _gemm_functions() -> re.Pattern:
    """A pattern matching a call of any function bornrt_gemm.h defines (its names are read from the header)."""
    text = (resource_dir("runtime") / "c" / "bornrt_gemm.h").read_text()
    names = sorted(set(re.findall(r"static inline [\w ]+?\b(bornc_\w+)\(", text)))
    return re.compile(r"\b(" + "|".join(names) + r")\s*\(")


_GEMM_CALL = _gemm_functions()


def c_identifier(text: str) -> str:
    """The artifact name as a C identifier (see :func:`bornc.backends.common.text.identifier`)."""
    return identifier(text)


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(resource_dir("templates") / "c")),
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True)


def _inner(node) -> list:
    """(graph, node) for every node inside ``node``'s subgraphs, nested ones included."""
    return [x for sub in node.subgraphs() for x in sub.walk()]


def _embedded_array(name: str, sym: str, arr: np.ndarray, pad: int) -> dict:
    dt = "bool" if arr.dtype == np.bool_ else arr.dtype.name
    flat = np.ascontiguousarray(arr).ravel()
    if dt in STORAGE_ONLY:                       # the bytes as they are laid out (ml_dtypes bit patterns)
        lits = [f"{b}u" for b in flat.view(np.uint8).tolist()]
    else:
        lits = [literal(v, dt) for v in (flat.tolist() if dt != "float32" else flat.astype(np.float64).tolist())]
    if not lits:
        lits = ["0"]
    lines = [", ".join(lits[i:i + 8]) + "," for i in range(0, len(lits), 8)]
    return {"name": name, "comment": comment_text(name), "sym": sym, "dtype": dt, "shape": list(arr.shape), "ctype": ctype(dt), "count": max(flat.size, 1),
            "lines": lines, "pad": pad}


def compile_c(model: Model, target: Target, out_dir: str | Path, name: str = "model", opt_level: int = 2,
              weights: str = "auto", schedule: str = "topological", self_test: dict | None = None,
              source: str = "", cflags: list | None = None) -> dict:
    """Write the C artifact for ``model`` (already optimized) into ``out_dir`` and return its manifest.

    Raises UnsupportedOpError listing every node the C backend cannot lower."""
    if target.io_in_arena:
        raise ArtifactError(f"target {target.name}: io_in_arena = true is not supported by the C backend yet "
                            "(its API takes caller-owned inputs and outputs)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    g = model.graph
    cname = c_identifier(name)
    consts = dict(g.constants)
    types = dict(g.types)
    for _, n in g.walk():                      # values and constants of If branches, for their kernels
        for sub in n.subgraphs():
            types.update(sub.types)
            consts.update(sub.constants)
    lowered: dict[int, object] = {}
    missing: dict = {}

    def lower_all(nodes):
        for node in nodes:
            if node.op == "If" and not node.domain:
                if not isinstance(types.get(node.inputs[0]), TensorType):
                    missing.setdefault("If with a non-tensor condition", []).append(node.name)
                for sub in node.subgraphs():
                    lower_all(sub.nodes)
                continue
            if node.subgraphs():
                missing.setdefault(node.op, []).append(node.name)
                continue
            try:
                lowered[id(node)] = lower_node(node, types, consts, model.opsets.get(node.domain or "", 21))
            except UnsupportedOpError as ex:
                for op, names in ex.missing.items():
                    missing.setdefault(op, []).extend(names)
    lower_all(g.nodes)
    if missing:
        raise UnsupportedOpError(missing)
    workspace: dict[str, int] = {}
    for _, n in g.walk():
        low = lowered.get(id(n))
        if low is not None and low.workspace:
            workspace[n.name] = max(workspace.get(n.name, 0), low.workspace)
    plan = plan_model(model, target.alignment, schedule, workspace=workspace)
    order = plan.extra["order"]
    used: list[str] = []
    for _, node in [(None, n) for n in order] + [x for n in order for x in _inner(n)]:
        low = lowered.get(id(node))
        if low is None:
            continue
        args = low.args if low.args is not None else [k for k, i in enumerate(node.inputs) if i]
        for k in args:
            v = node.inputs[k]
            if v in consts and v not in used:
                used.append(v)
    for node in list(order) + [x[1] for n in order for x in _inner(n)]:
        for sub in node.subgraphs():
            for o in sub.outputs:
                if o in consts and o not in used:
                    used.append(o)
    for o in g.outputs:
        if o in consts and o not in used:
            used.append(o)
    w_offsets, payload = weights_layout_of(consts, used)
    from ...analysis import summarize
    flops = summarize(model)["flops"]
    embed = weights == "embed" or (weights == "auto" and len(payload) <= EMBED_LIMIT_BYTES)
    sha = hashlib.sha256(payload).digest()
    inputs, outputs = list(g.inputs), list(g.outputs)
    syms = {v: f"W{k}" for k, v in enumerate(used)}

    def ptr(v: str, const: bool) -> str:
        t = types[v]
        ct = ctype(t.dtype)
        q = "const " if const else ""
        if v in outputs:
            return f"(({ct} *)outputs[{outputs.index(v)}])"
        if v in inputs:
            return f"((const {ct} *)inputs[{inputs.index(v)}])"
        if v in consts:
            return syms[v] if embed else f"((const {ct} *)(ctx->weights + {w_offsets[v]}u))"
        buf = plan.value_buffer[v]
        return f"(({q}{ct} *)(ctx->arena + {plan.offsets[buf][0]}u))"

    env = _env()
    kernels: list[dict] = []

    def emit_block(nodes) -> list[str]:
        """Statements of run() for ``nodes``: one kernel call each; an If becomes a C if/else over its branches,
        each ending by copying the branch outputs into the If's outputs."""
        stmts = []
        for node in nodes:
            if node.op == "If" and not node.domain:
                stmts.append(f"if ({ptr(node.inputs[0], True)}[0]) {{")
                for k, branch in enumerate((node.attrs["then_branch"], node.attrs["else_branch"])):
                    if k:
                        stmts.append("} else {")
                    stmts += ["    " + s for s in emit_block(branch.nodes)]
                    for o, bo in zip(node.outputs, branch.outputs):
                        if o:
                            stmts.append(f"    memmove({ptr(o, False)}, {ptr(bo, True)}, {types[o].nbytes}u);")
                stmts.append("}")
                continue
            stmts.append(f"if ((st = {emit_kernel(node, lowered[id(node)])}) != BORNC_OK) return st;")
        return stmts

    def emit_kernel(node, low) -> str:
        idx = len(kernels)
        args = low.args if low.args is not None else [k for k, i in enumerate(node.inputs) if i]
        params, names, call_args = [], [], []
        for k in args:
            v = node.inputs[k]
            params.append(f"const {ctype(types[v].dtype)} *X{k}")
            names.append(f"X{k}")
            call_args.append(ptr(v, True))
        for k, o in enumerate(node.outputs):
            t = types.get(o) if o else None
            ct = ctype(t.dtype) if isinstance(t, TensorType) else "uint8_t"
            params.append(f"{ct} *Y{k}")
            names.append(f"Y{k}")
            call_args.append(ptr(o, False) if o else "NULL")
        if low.workspace:
            params.append("float *WS")
            names.append("WS")
            call_args.append(f"((float *)(ctx->arena + {plan.offsets[node.name + '/workspace'][0]}u))")
        body = []
        empty = all(isinstance(types.get(o), TensorType) and types[o].size == 0 for o in node.outputs if o)
        for st in ([] if empty else low.stages):
            try:
                body.append(env.get_template(f"{st.template}.c.j2").render(**st.params))
            except jinja2.TemplateError as ex:
                raise ArtifactError(f"rendering template {st.template}.c.j2 for node {node.name!r} ({node.op}): {ex}") from None
        fn = f"k{idx}_{c_identifier(node.op)}"
        kernels.append({"fn": fn, "node": comment_text(node.name), "op": comment_text(node.op), "params": params or ["void"],
                        "param_names": names, "body": "\n".join(body)})
        return f"{fn}({', '.join(call_args)})"

    calls = emit_block(order)
    final_copies = []
    produced = {o for n in order for o in n.outputs if o}
    for j, o in enumerate(outputs):
        if o not in produced:
            src = ptr(o, True) if o in consts else f"inputs[{inputs.index(o)}]"
            if o in consts and embed:
                src = syms[o]
            final_copies.append(f"memcpy(outputs[{j}], {src}, {g.types[o].nbytes}u);")

    def info(v: str, kind: str, k: int) -> dict:
        t = g.types[v]
        return {"name": v, "cname": c_string(v), "comment": comment_text(v), "dtype": t.dtype, "shape": list(t.shape), "nbytes": t.nbytes,
                "enum": C_DTYPE_ENUM[t.dtype], "sym": f"{kind}{k}", "safe": re.sub(r"[^A-Za-z0-9._-]", "_", v)}

    in_infos = [info(v, "in", k) for k, v in enumerate(inputs)]
    out_infos = [info(v, "out", k) for k, v in enumerate(outputs)]
    embedded = []
    if embed:
        for k, v in enumerate(used):
            arr = consts[v]
            end = w_offsets[v] + arr.nbytes
            nxt = w_offsets[used[k + 1]] if k + 1 < len(used) else len(payload)
            embedded.append(_embedded_array(v, syms[v], arr, nxt - end))
        if used and w_offsets[used[0]] != 0:
            raise ArtifactError("weights payload must start with the first constant")
    ctxv = {"name": cname, "NAME": cname.upper(), "version": __version__, "abi": ABI_VERSION, "alignment": target.alignment,
            "arena_bytes": plan.arena_bytes, "weights_bytes": len(payload), "embed": embed, "inputs": in_infos,
            "outputs": out_infos, "infos": in_infos + out_infos, "kernels": kernels, "calls": calls,
            "final_copies": final_copies, "embedded": embedded, "weights_sha": [str(b) for b in sha],
            "static_arena": True, "source": comment_text(Path(source).name if source else "model"), "source_sha256": model.source_sha256 or "-" * 16,
            "target": target.name, "opt_level": opt_level, "self_test": _self_test_ctx(self_test, in_infos, out_infos),
            "gemm_header": any(_GEMM_CALL.search(k["body"]) for k in kernels)}
    (out / f"{cname}.h").write_text(env.get_template("model.h.j2").render(**ctxv))
    (out / f"{cname}.c").write_text(env.get_template("model.c.j2").render(**ctxv))
    (out / "main.c").write_text(env.get_template("main.c.j2").render(**ctxv))
    for f in RUNTIME_FILES:
        (out / f).write_text((resource_dir("runtime") / "c" / f).read_text())
    flags = list(cflags) if cflags else list(target.cflags)
    ldflags = "-static" if target.run == "qemu-user" else ""
    (out / "Makefile").write_text(env.get_template("Makefile.j2").render(name=cname, target=target.name, triple=target.triple,
                                                                         cc=target.cc or "cc", cflags=" ".join(flags), ldflags=ldflags))
    if not embed:
        (out / "weights.bin").write_bytes(weights_file_image(payload))
    elif (out / "weights.bin").exists():
        (out / "weights.bin").unlink()
    manifest = {
        "format_version": FORMAT_VERSION, "abi_version": ABI_VERSION, "bornc_version": __version__, "backend": "c",
        "name": cname, "target": target.name, "target_profile": {"triple": target.triple, "cc": target.cc, "cflags": flags,
                                                                 "features": list(target.features), "alignment": target.alignment},
        "source_model": {"file": Path(source).name if source else "", "path": str(Path(source).resolve()) if source else "",
                         "sha256": model.source_sha256},
        "flops": flops,
        "compile": {"opt_level": opt_level, "weights": "embed" if embed else "file", "schedule": plan.schedule_name},
        "inputs": [{"name": t["name"], "dtype": t["dtype"], "shape": t["shape"]} for t in in_infos],
        "outputs": [{"name": t["name"], "dtype": t["dtype"], "shape": t["shape"], "file": t["safe"] + ".npy"} for t in out_infos],
        "arena_bytes": plan.arena_bytes, "weights_bytes": len(payload), "weights_sha256": sha.hex(),
        "ops": sorted({n.op for n in order}), "nodes": len(order),
        "plan": {**plan.summary(), "tensors": plan.to_json()["tensors"]},
        "files": sorted(p.name for p in out.iterdir() if p.is_file()) + ["manifest.json"],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def _self_test_ctx(data: dict | None, ins: list, outs: list) -> dict | None:
    """Golden input/output arrays baked into main.c for --self-test (outputs compared as float32)."""
    if not data:
        return None
    arrays, in_syms, out_syms = [], [], []
    for k, t in enumerate(ins):
        arr = np.asarray(data["inputs"][t["name"]]).astype(np.dtype(t["dtype"]) if t["dtype"] != "bool" else np.bool_)
        dt = t["dtype"]
        vals = ", ".join(literal(v, dt) for v in (arr.ravel().astype(np.float64).tolist() if dt == "float32" else arr.ravel().tolist())) or "0"
        arrays.append({"sym": f"golden_in{k}", "ctype": ctype(dt), "count": max(arr.size, 1), "data": vals})
        in_syms.append(f"golden_in{k}")
    for k, t in enumerate(outs):
        arr = np.asarray(data["outputs"][t["name"]]).astype(np.float32)
        vals = ", ".join(literal(v, "float32") for v in arr.ravel().astype(np.float64).tolist()) or "0"
        arrays.append({"sym": f"golden_out{k}", "ctype": "float", "count": max(arr.size, 1), "data": vals})
        out_syms.append(f"golden_out{k}")
    return {"arrays": arrays, "inputs": in_syms, "outputs": out_syms, "rtol": repr(float(data.get("rtol", 1e-4))),
            "atol": repr(float(data.get("atol", 1e-4)))}
