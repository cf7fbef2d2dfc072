"""The C backend driver: planned model -> artifact directory (sources, Makefile, manifest, weights, binaries).

Walks the schedule once: lowers every node (all unsupported ops are reported together), gives every value a C
pointer expression (caller-owned input/output, arena offset from the memory plan, or weights), renders one
``static`` kernel function per node from ``templates/c`` and the ``run`` function that calls them in order.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import jinja2
import numpy as np

from ... import __version__
from ...errors import ArtifactError, UnsupportedOpError
from ...analysis import node_flops
from ...ir.graph import Model
from ...ir.types import TensorType
from ...memory import plan_model
from ...resources import resource_dir
from ...targets import Target
from ..common.text import c_string, comment_text, identifier
from . import lower_attention, lower_elementwise, lower_misc, lower_nn, lower_qint, lower_quant, lower_tensor  # noqa: F401  (register the lowerings)
from .ctypes_ import C_DTYPE_ENUM, STORAGE_ONLY, ctype, literal
from ..common.manifest import artifact_manifest, write_manifest
from ..common.schedule import is_if, lower_schedule, scheduled_nodes, values_with_subgraphs
from ..common.weights import weights_file_image, weights_layout_of
from .lowering import lower_node

ABI_VERSION = 2
FORMAT_VERSION = 1
EMBED_LIMIT_BYTES = 2 << 20


#: the C runtime files every artifact carries (runtime/c)
RUNTIME_FILES = ("bornrt.h", "bornrt_gemm.h", "bornrt.c")
#: and the startup code bare-metal artifacts add
BARE_METAL_FILES = ("bornrt_cortexm.c",)
#: model names whose <name>.c would overwrite one of the artifact's files
RESERVED_NAMES = {"main", "firmware", "bornrt", "bornrt_gemm", "bornrt_cortexm"}


def _gemm_functions() -> re.Pattern:
    """A pattern matching any name bornrt_gemm.h defines: its functions (``bornc_*``) and macros (``BORNC_*``),
    read from the header, so a kernel that uses one of them includes it."""
    text = (resource_dir("runtime") / "c" / "bornrt_gemm.h").read_text()
    names = set(re.findall(r"\b(bornc_\w+)\s*\(", text)) | set(re.findall(r"#define\s+(BORNC_\w+)", text))
    return re.compile(r"\b(" + "|".join(sorted(names)) + r")\b")


_GEMM_CALL = _gemm_functions()


def c_identifier(text: str) -> str:
    """The artifact name as a C identifier (see :func:`bornc.backends.common.text.identifier`)."""
    return identifier(text)


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(resource_dir("templates") / "c")),
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True)


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
              source: str = "", cflags: list | None = None, threads: int = 1) -> dict:
    """Write the C artifact for ``model`` (already optimized) into ``out_dir`` and return its manifest.

    ``weights``: "embed" (arrays in the .c), "file" (weights.bin) or "auto" (embedded up to EMBED_LIMIT_BYTES).
    Raises UnsupportedOpError listing every node the C backend cannot lower; ArtifactError for a target the
    backend cannot serve (io_in_arena) or a template that fails to render. ``threads``: the workers the artifact
    is planned for (scratch space per worker in the arena; the C API may cap it lower at run time)."""
    if target.io_in_arena:
        raise ArtifactError(f"target {target.name}: io_in_arena = true is not supported by the C backend yet "
                            "(its API takes caller-owned inputs and outputs)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    g = model.graph
    types, consts = values_with_subgraphs(g)
    lowered = _lower(model, types, consts, threads, tuple(target.features))
    types, consts = _packed_constants(g, lowered, types, consts)
    plan = plan_model(model, target.alignment, schedule, workspace=_workspaces(g, lowered, threads))
    order = plan.extra["order"]
    used = _constants_used(g, order, lowered, consts)
    w_offsets, payload = weights_layout_of(consts, used)
    if target.bare_metal and weights == "file":
        raise ArtifactError(f"target {target.name}: bare metal has no file system, its weights are const arrays in flash "
                            "(drop --weights file)")
    embed = weights == "embed" or target.bare_metal or (weights == "auto" and len(payload) <= EMBED_LIMIT_BYTES)
    em = _Emitter(g, types, consts, lowered, plan, {v: f"W{k}" for k, v in enumerate(used)} if embed else None, w_offsets)
    em.profile = target.bare_metal         # the runner counts each kernel's instructions through bornc_kernel_hook
    em.flops_of = lambda node: node_flops(model, node)
    calls = em.block(order)
    in_infos = [_io_info(g, v, "in", k) for k, v in enumerate(g.inputs)]
    out_infos = [_io_info(g, v, "out", k) for k, v in enumerate(g.outputs)]
    cname = c_identifier(name)
    if cname in RESERVED_NAMES:
        raise ArtifactError(f"--name {name}: {cname}.c is one of the artifact's own files; choose another name")
    ctxv = {"name": cname, "NAME": cname.upper(), "version": __version__, "abi": ABI_VERSION, "alignment": target.alignment,
            "arena_bytes": plan.arena_bytes, "weights_bytes": len(payload), "embed": embed, "inputs": in_infos,
            "outputs": out_infos, "infos": in_infos + out_infos, "kernels": em.kernels, "calls": calls,
            "final_copies": em.final_copies(order), "embedded": _embedded(consts, used, w_offsets, payload) if embed else [],
            "weights_sha": [str(b) for b in hashlib.sha256(payload).digest()],
            "static_arena": True, "source": comment_text(Path(source).name if source else "model"), "source_sha256": model.source_sha256 or "-" * 16,
            "target": target.name, "opt_level": opt_level, "self_test": _self_test_ctx(self_test, in_infos, out_infos),
            "gemm_header": any(_GEMM_CALL.search(k["prelude"] + k["body"]) for k in em.kernels), "threads": threads}
    flags = _write_sources(out, em.env, ctxv, target, cflags)
    if not embed:
        (out / "weights.bin").write_bytes(weights_file_image(payload))
    elif (out / "weights.bin").exists():
        (out / "weights.bin").unlink()
    manifest = artifact_manifest(
        "c", model, target, name=cname, source=source, opt_level=opt_level, plan=plan, payload=payload,
        inputs=[{"name": t["name"], "dtype": t["dtype"], "shape": t["shape"]} for t in in_infos],
        outputs=[{"name": t["name"], "dtype": t["dtype"], "shape": t["shape"], "file": t["safe"] + ".npy"} for t in out_infos],
        ops=[n.op for n in order], nodes=len(order), format_version=FORMAT_VERSION, weights="embed" if embed else "file",
        kernels=[{"fn": k["fn"], "node": k["node"], "op": k["op"], "flops": k["flops"]} for k in em.kernels],
        profile={"triple": target.triple, "cc": target.cc, "cflags": flags, "features": list(target.features),
                 "alignment": target.alignment, "threads": threads}, abi_version=ABI_VERSION)
    return write_manifest(out, manifest)


def _lower(model: Model, types: dict, consts: dict, threads: int, features: tuple = ()) -> dict:
    """{id(node): Lowered} for every node, If branches included (the C code runs If itself)."""
    def lower_one(node):
        if is_if(node):
            if not isinstance(types.get(node.inputs[0]), TensorType):
                raise UnsupportedOpError({"If with a non-tensor condition": [node.name]})
            return None
        return lower_node(node, types, consts, model.opsets.get(node.domain or "", 21), threads, features)
    return lower_schedule(model.graph.nodes, lower_one, runs_if=True)


def _packed_constants(g, lowered: dict, types: dict, consts: dict) -> tuple[dict, dict]:
    """Types and constants with every lowering's ``packed`` arrays added under fresh names (set in the
    lowering's ``values``), so the artifact holds the packed form in place of the original where a kernel wants
    it; the originals stay only where something else reads them."""
    types, consts = dict(types), dict(consts)
    for _, n in g.walk():
        low = lowered.get(id(n))
        for k, arr in sorted((low.packed if low is not None else {}).items()):
            name, j = f"{n.name}/packed{k}", 0
            while name in types or name in consts:
                j += 1
                name = f"{n.name}/packed{k}.{j}"
            consts[name] = arr
            types[name] = TensorType(arr.dtype.name, tuple(arr.shape))
            low.values[k] = name
    return types, consts


def worker_slice_floats(workspace: int) -> int:
    """Floats of one worker's scratch slice for a kernel whose tasks need ``workspace`` bytes (whole 64-byte
    lines, so that workers never share a cache line)."""
    return -(-workspace // 64) * 16


def _workspaces(g, lowered: dict, threads: int) -> dict[str, int]:
    """Scratch bytes per node name (the largest when a name appears in several branches); a kernel split into
    tasks gets one slice per worker."""
    workspace: dict[str, int] = {}
    for _, n in g.walk():
        low = lowered.get(id(n))
        if low is not None and low.workspace:
            need = worker_slice_floats(low.workspace) * 4 * threads if low.tasks else low.workspace
            workspace[n.name] = max(workspace.get(n.name, 0), need)
    return workspace


def _kernel_args(node, low) -> list[int]:
    """The node inputs passed to its kernel as pointers (the rest are baked into the code)."""
    return low.args if low.args is not None else [k for k, i in enumerate(node.inputs) if i]


def _arg_value(node, low, k: int) -> str:
    """The value kernel argument X<k> points at: node input k, or the packed constant that replaces it."""
    return low.values.get(k, node.inputs[k])


def _constants_used(g, order: list, lowered: dict, consts: dict) -> list[str]:
    """The constants the artifact holds, in first-use order: those passed to kernels as pointers, If
    conditions, those a branch returns, those the graph returns."""
    used: list[str] = []

    def add(v):
        if v in consts and v not in used:
            used.append(v)
    nodes = scheduled_nodes(order)
    for node in nodes:
        low = lowered.get(id(node))
        for k in (_kernel_args(node, low) if low is not None else []):
            add(_arg_value(node, low, k))
        if is_if(node):                      # run() reads the condition itself
            add(node.inputs[0])
    for node in nodes:
        for sub in node.subgraphs():
            for o in sub.outputs:
                add(o)
    for o in g.outputs:
        add(o)
    return used


class _Emitter:
    """Renders the kernels of a schedule and the statements of run(): every value gets a C pointer expression
    (caller-owned input/output, an arena offset of the plan, or the weights: an embedded array ``W<k>`` when
    ``syms`` is given, else an offset into ctx->weights)."""

    def __init__(self, g, types, consts, lowered, plan, syms, w_offsets):
        self.g, self.types, self.consts, self.lowered, self.plan = g, types, consts, lowered, plan
        self.syms, self.w_offsets = syms, w_offsets
        self.inputs, self.outputs = list(g.inputs), list(g.outputs)
        self.env = _env()
        self.kernels: list[dict] = []
        self.profile = False            # call bornc_kernel_hook after each kernel (bare-metal runners count instructions)
        self.flops_of = None            # node -> FLOPs (bornc.analysis.node_flops), recorded per kernel

    def ptr(self, v: str, const: bool) -> str:
        """The pointer expression of value ``v`` (``const``: read only). A constant or a model input that is
        also a model output is read where it lives; run() copies it into the output buffer last."""
        ct = ctype(self.types[v].dtype)
        if v in self.consts:
            return self.constant(v)
        if v in self.inputs:
            return f"((const {ct} *)inputs[{self.inputs.index(v)}])"
        if v in self.outputs:
            return f"(({ct} *)outputs[{self.outputs.index(v)}])"
        q = "const " if const else ""
        return f"(({q}{ct} *)(ctx->arena + {self.plan.offsets[self.plan.value_buffer[v]][0]}u))"

    def constant(self, v: str) -> str:
        """Where constant ``v`` lives: its embedded array, or its offset in the weights payload."""
        if self.syms is not None:
            return self.syms[v]
        return f"((const {ctype(self.types[v].dtype)} *)(ctx->weights + {self.w_offsets[v]}u))"

    def block(self, nodes) -> list[str]:
        """Statements of run() for ``nodes``: one kernel call each; an If becomes a C if/else over its branches,
        each ending by copying the branch outputs into the If's outputs."""
        stmts = []
        for node in nodes:
            if not is_if(node):
                stmts.append(f"if (BORNC_UNLIKELY((st = {self.kernel(node, self.lowered[id(node)])}) != BORNC_OK)) return st;")
                if self.profile:
                    stmts.append(f"if (bornc_kernel_hook) bornc_kernel_hook({len(self.kernels) - 1});")
                continue
            stmts.append(f"if ({self.ptr(node.inputs[0], True)}[0]) {{")
            for k, branch in enumerate((node.attrs["then_branch"], node.attrs["else_branch"])):
                if k:
                    stmts.append("} else {")
                stmts += ["    " + s for s in self.block(branch.nodes)]
                stmts += [f"    memmove({self.ptr(o, False)}, {self.ptr(bo, True)}, {self.types[o].nbytes}u);"
                          for o, bo in zip(node.outputs, branch.outputs) if o]
            stmts.append("}")
        return stmts

    def kernel(self, node, low) -> str:
        """Render ``node``'s kernel function (one per node, its stages in order); returns the call."""
        params, names, call_args = [], [], []
        for k in _kernel_args(node, low):
            v = _arg_value(node, low, k)
            params.append(f"const {ctype(self.types[v].dtype)} *X{k}")
            names.append(f"X{k}")
            call_args.append(self.ptr(v, True))
        for k, o in enumerate(node.outputs):
            t = self.types.get(o) if o else None
            params.append(f"{ctype(t.dtype) if isinstance(t, TensorType) else 'uint8_t'} *Y{k}")
            names.append(f"Y{k}")
            call_args.append(self.ptr(o, False) if o else "NULL")
        if low.workspace:
            params.append("float *WS")
            names.append("WS")
            call_args.append(f"((float *)(ctx->arena + {self.plan.offsets[node.name + '/workspace'][0]}u))")
        empty = all(isinstance(self.types.get(o), TensorType) and self.types[o].size == 0 for o in node.outputs if o)
        body = [self._render(node, st) for st in ([] if empty else low.stages)]
        fn = f"k{len(self.kernels)}_{c_identifier(node.op)}"
        prelude = ""
        split = [j for j, st in enumerate([] if empty else low.stages) if st.tasks]
        for j in split:
            task_fn = f"{fn}_s{j}"
            prelude += self._task_function(task_fn, fn, low, params, names, body[j], first=j == split[0])
            body[j] = f"bornc_parallel({task_fn}_task, &args, {low.stages[j].tasks}, NT);"
        if split:
            sets = "".join(f"    args.{n} = {n};\n" for n in names)
            body.insert(0, f"{fn}_args_t args;\n{sets}")
            params, names, call_args = params + ["int NT"], names + ["NT"], call_args + ["ctx->threads"]
        self.kernels.append({"fn": fn, "node": comment_text(node.name), "op": comment_text(node.op),
                             "flops": self.flops_of(node) if self.flops_of else 0, "prelude": prelude,
                             "params": params or ["void"], "param_names": names, "body": "\n".join(body)})
        return f"{fn}({', '.join(call_args)})"

    def _task_function(self, task_fn: str, fn: str, low, params: list, names: list, task_body: str,
                       first: bool) -> str:
        """The task function of one stage split into tasks (and, for the kernel's first such stage, the struct of
        kernel parameters every task function reads). Each worker's WS is its own slice of the arena."""
        fields = "".join(f"    {p};\n" for p in params)
        unpack = "".join(f"    {p} = A->{n};\n" for p, n in zip(params, names) if n != "WS")
        if "WS" in names:          # one slice per worker when the arena holds them (Lowered.tasks), else shared
            slice_ = f" + (size_t)worker * {worker_slice_floats(low.workspace)}u" if low.tasks else ""
            unpack += f"    float *WS = A->WS{slice_};\n"
        voids = "".join(f"    (void){n};\n" for n in names)
        struct = f"typedef struct {{\n{fields}}} {fn}_args_t;\n\n" if first else ""
        return (f"{struct}static void {task_fn}_task(void *arg, int task, int worker) {{\n"
                f"    const {fn}_args_t *A = (const {fn}_args_t *)arg;\n{unpack}{voids}"
                f"    (void)worker;\n{task_body}\n}}\n\n")

    def _render(self, node, st) -> str:
        try:
            return self.env.get_template(f"{st.template}.c.j2").render(**st.params)
        except jinja2.TemplateError as ex:
            raise ArtifactError(f"rendering template {st.template}.c.j2 for node {node.name!r} ({node.op}): {ex}") from None

    def final_copies(self, order) -> list[str]:
        """memcpy statements for graph outputs no node produces (a constant or an input returned as is)."""
        produced = {o for n in order for o in n.outputs if o}
        copies = []
        for j, o in enumerate(self.outputs):
            if o not in produced:
                src = self.constant(o) if o in self.consts else f"inputs[{self.inputs.index(o)}]"
                copies.append(f"memcpy(outputs[{j}], {src}, {self.g.types[o].nbytes}u);")
        return copies


def _io_info(g, v: str, kind: str, k: int) -> dict:
    t = g.types[v]
    return {"name": v, "cname": c_string(v), "comment": comment_text(v), "dtype": t.dtype, "shape": list(t.shape),
            "nbytes": t.nbytes, "enum": C_DTYPE_ENUM[t.dtype], "sym": f"{kind}{k}", "safe": re.sub(r"[^A-Za-z0-9._-]", "_", v)}


def _embedded(consts: dict, used: list, w_offsets: dict, payload: bytes) -> list[dict]:
    """The embedded weight arrays, each padded to the next one's offset so the arrays form the payload."""
    if used and w_offsets[used[0]] != 0:
        raise ArtifactError("weights payload must start with the first constant")
    arrays = []
    for k, v in enumerate(used):
        end = w_offsets[v] + consts[v].nbytes
        nxt = w_offsets[used[k + 1]] if k + 1 < len(used) else len(payload)
        arrays.append(_embedded_array(v, f"W{k}", consts[v], nxt - end))
    return arrays


def _write_sources(out: Path, env, ctxv: dict, target: Target, cflags: list | None) -> list:
    """model.h, model.c, main.c, the runtime files and the Makefile; returns the C flags of the build."""
    cname = ctxv["name"]
    (out / f"{cname}.h").write_text(env.get_template("model.h.j2").render(**ctxv))
    (out / f"{cname}.c").write_text(env.get_template("model.c.j2").render(**ctxv))
    (out / "main.c").write_text(env.get_template("main_baremetal.c.j2" if target.bare_metal else "main.c.j2").render(**ctxv))
    for f in RUNTIME_FILES + (BARE_METAL_FILES if target.bare_metal else ()):
        (out / f).write_text((resource_dir("runtime") / "c" / f).read_text())
    flags = list(cflags) if cflags else list(target.cflags)
    if target.bare_metal:
        _write_bare_metal(out, env, ctxv, target, flags)
        return flags
    ldflags = "-static" if target.run == "qemu-user" else ""
    (out / "Makefile").write_text(env.get_template("Makefile.j2").render(name=cname, target=target.name, triple=target.triple,
                                                                         cc=target.cc or "cc", cflags=" ".join(flags), ldflags=ldflags))
    return flags


def bare_metal_defines(name: str) -> list[str]:
    """The -D flags every object of a bare-metal artifact is compiled with: no thread pool, the static arena."""
    return ["-DBORNC_NO_THREADS", f"-DBORNC_{name.upper()}_STATIC_ARENA"]


def _write_bare_metal(out: Path, env, ctxv: dict, target: Target, flags: list) -> None:
    """firmware.c (the smallest application, sized at build), link.ld (the qemu board's memory) and the
    Makefile of a bare-metal artifact."""
    board = target.extra.get("qemu_system", {})
    (out / "firmware.c").write_text(env.get_template("firmware.c.j2").render(**ctxv))
    (out / "link.ld").write_text(env.get_template("link.ld.j2").render(
        name=ctxv["name"], target=target.name, board=board.get("board", "?"), vectors=board.get("vectors"),
        flash=board["flash"], ram=board["ram"], stack_bytes=target.stack_bytes))
    from .build import qemu_system_command
    (out / "Makefile").write_text(env.get_template("Makefile_baremetal.j2").render(
        name=ctxv["name"], target=target.name, cc=target.cc, cflags=" ".join(flags + bare_metal_defines(ctxv["name"])),
        board=board.get("board", "?"), qemu_command=" ".join(qemu_system_command(target, "build/model_run.elf"))))


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
