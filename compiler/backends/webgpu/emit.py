"""The WebGPU backend driver: planned model -> kernel bundle (kernels/*.wgsl, manifest.json, weights.bin, hosts).

Every node becomes one or more dispatches (``lower_*`` modules); views the plan places on their input's bytes
become none. Values live in one arena buffer laid out by the memory planner at 256-byte aligned offsets (model
inputs and outputs included, so the host writes inputs and reads outputs there); constants and lowering tables
live in the weights buffer. Each dispatch binds 256-byte aligned ranges of those two buffers, at most 8 (ranges
of one buffer that overlap, or that would exceed the limit, are merged). Identical shaders are written once.
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import jinja2
import numpy as np

from ... import __version__
from ...analysis import summarize
from ...errors import ArtifactError, UnsupportedOpError
from ...ir.graph import Graph, Model, Node
from ...ir.types import TensorType
from ...memory import plan_model
from ...memory.liveness import is_view
from ...ops import registry
from ...resources import resource_dir
from ...targets import Target
from ..weights import weights_file_image, write_manifest
from . import lower_elementwise, lower_nn, lower_qint, lower_tensor  # noqa: F401  (register the lowerings)
from .kernel import WG, Ctx, Kernel, Lowered
from .lower_elementwise import identity_kernel
from .wgsl import GPU_NUMPY, HELPERS, gpu_type, load_expr, store_expr

FORMAT_VERSION = 1
ALIGN = 256
#: WebGPU's default limits (https://www.w3.org/TR/webgpu/#limits); the bundle asks for more only when needed
DEFAULT_LIMITS = {"max_storage_buffers_per_shader_stage": 8, "max_storage_buffer_binding_size": 128 << 20,
                  "max_buffer_size": 256 << 20, "max_compute_workgroups_per_dimension": 65535,
                  "max_compute_invocations_per_workgroup": 256, "max_compute_workgroup_storage_size": 16384}


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(resource_dir("templates") / "wgsl")),
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True)


def lacks_webgpu_kernel(op: str, domain: str) -> bool:
    """True for ops the WebGPU backend has no lowering for (importers expand them into their function body)."""
    d = registry.get(op, domain)
    return d is None or ("webgpu" not in d.lowerings and "view" not in d.props)


def _unsupported(model: Model) -> dict:
    missing: dict = {}
    for graph, node in model.graph.walk():
        if node.subgraphs():
            missing.setdefault(f"{node.op} (control flow runs on the host, not in a WebGPU bundle)", []).append(node.name)
            continue
        if lacks_webgpu_kernel(node.op, node.domain):
            missing.setdefault(node.op, []).append(node.name)
        for v in list(node.inputs) + list(node.outputs):
            t = graph.types.get(v) if v else None
            if t is None:
                continue
            if not isinstance(t, TensorType):
                missing.setdefault(f"{type(t).__name__} values", []).append(node.name)
            elif gpu_type(t.dtype) is None:
                key = f"{t.dtype} tensors (WGSL has no {t.dtype})"
                if node.name not in missing.get(key, []):
                    missing.setdefault(key, []).append(node.name)
            elif not t.is_static:
                missing.setdefault(f"{node.op} with a non-static shape", []).append(node.name)
    return missing


def _retyped(model: Model) -> Model:
    """A shallow copy of ``model`` whose tensor types hold 32-bit elements, as the GPU stores them (for planning)."""
    g = model.graph
    types = {k: (TensorType(GPU_NUMPY[gpu_type(t.dtype)], t.shape) if isinstance(t, TensorType) and gpu_type(t.dtype)
                 else t) for k, t in g.types.items()}
    return Model(Graph(g.name, g.inputs, g.outputs, g.nodes, g.constants, types), model.opsets, model.producer,
                 model.source_sha256, model.metadata)


def _ctx(node, types, consts, opset, f16: bool) -> Ctx:
    ctx = Ctx(node, types, consts, opset)
    ctx.f16 = f16
    return ctx


def _lower(node, types, consts, opset, f16: bool) -> Lowered:
    fn = registry.get(node.op, node.domain).lowerings["webgpu"]
    return fn(_ctx(node, types, consts, opset, f16))


def compile_webgpu(model: Model, target: Target, out_dir: str | Path, name: str = "model", opt_level: int = 2,
                   schedule: str = "topological", self_test: dict | None = None, source: str = "") -> dict:
    """Write the WebGPU bundle for ``model`` (already optimized) into ``out_dir``; returns its manifest.

    Raises UnsupportedOpError listing every node without a WebGPU kernel and every value of a dtype WGSL lacks."""
    missing = _unsupported(model)
    if missing:
        raise UnsupportedOpError(missing)
    g = model.graph
    types, consts = g.types, g.constants
    opset = model.opsets.get("", 21)
    f16 = "shader-f16" in target.features      # float16 tensors held as IEEE halves; GEMM staged in f16
    lowered: dict[str, Lowered] = {}
    for node in g.nodes:
        if is_view(node):
            continue
        try:
            lowered[node.name] = _lower(node, types, consts, opset, f16)
        except UnsupportedOpError as ex:
            for op, names in ex.missing.items():
                missing.setdefault(op, []).extend(names)
    if missing:
        raise UnsupportedOpError(missing)
    workspace = {k: -(-low.workspace // ALIGN) * ALIGN for k, low in lowered.items() if low.workspace}
    plan = plan_model(_retyped(model), ALIGN, schedule, io_in_arena=True, workspace=workspace)
    order = plan.extra["order"]

    def where(v: str) -> int:
        return plan.offsets[plan.value_buffer[v]][0]

    status_offset = -(-plan.arena_bytes // ALIGN) * ALIGN   # one word after the plan: index errors of this run
    kernels: list[tuple] = []                # (node name, Kernel, ctx)
    for node in order:
        if is_view(node):
            if node.inputs[0] not in consts and plan.value_buffer.get(node.outputs[0]) == plan.value_buffer.get(node.inputs[0]):
                continue
            ctx = _ctx(node, types, consts, opset, f16)
            kernels.append((node, identity_kernel(ctx), ctx))
            continue
        ctx = _ctx(node, types, consts, opset, f16)
        for k in lowered[node.name].kernels:
            kernels.append((node, k, ctx))

    # weights: every constant a kernel reads, then every table, at 256-byte aligned offsets
    chunks: list[bytes] = []
    w_offsets: dict[str, int] = {}
    pos = 0

    def put(data: bytes) -> int:
        nonlocal pos
        pad = (-pos) % ALIGN
        chunks.append(b"\0" * pad)
        pos += pad
        at = pos
        chunks.append(data)
        pos += len(data)
        return at

    def const_words(v: str) -> bytes:
        arr = np.asarray(consts[v])
        if f16 and arr.dtype == np.float16:
            return np.ascontiguousarray(arr.view(np.uint16).astype(np.uint32)).tobytes()
        gt = GPU_NUMPY[gpu_type(types[v].dtype if isinstance(types.get(v), TensorType) else arr.dtype.name)]
        return np.ascontiguousarray(arr.astype(np.float32) if gt == "float32" else arr.astype(np.int64).astype(gt)).tobytes()

    env = _env()
    out = Path(out_dir)
    if (out / "kernels").exists():
        shutil.rmtree(out / "kernels")
    (out / "kernels").mkdir(parents=True)
    sources: dict[str, str] = {}
    dispatches = []
    max_binding, max_bindings, wg_storage = 0, 0, 0
    for node, k, ctx in kernels:
        ranges = []                          # (buffer, byte offset, byte size, operand index)
        for j, o in enumerate(k.operands):
            if o.kind == "in":
                v = node.inputs[o.index]
                if v in consts:
                    if v not in w_offsets:
                        w_offsets[v] = put(const_words(v))
                    ranges.append(("weights", w_offsets[v] + o.start * 4, max(o.elems, 1) * 4, j))
                else:
                    ranges.append(("arena", where(v) + o.start * 4, max(o.elems, 1) * 4, j))
            elif o.kind == "out":
                ranges.append(("arena", where(node.outputs[o.index]) + o.start * 4, max(o.elems, 1) * 4, j))
            elif o.kind == "table":
                ranges.append(("weights", put(o.data.tobytes()), max(o.elems, 1) * 4, j))
            elif o.kind == "status":
                ranges.append(("arena", status_offset, 4, j))
            else:
                base = plan.offsets[f"{node.name}/workspace"][0]
                ranges.append(("arena", base + o.index * 4, max(o.elems, 1) * 4, j))
        bindings, placed = _bind(ranges)
        max_bindings = max(max_bindings, len(bindings))
        max_binding = max([max_binding] + [b["size"] for b in bindings])
        header = _header(k, bindings, placed, f16)
        src = env.get_template(f"{k.template}.wgsl.j2").render(header=header, **{"wg": WG, **k.params})
        wg_storage = max(wg_storage, k.params.get("wg_storage_bytes", 0))
        digest = hashlib.sha256(src.encode()).hexdigest()[:12]
        fname = sources.get(digest)
        if fname is None:
            fname = f"kernels/{len(sources):03d}_{k.template}.wgsl"
            sources[digest] = fname
            (out / fname).write_text(src)
        if k.groups is not None:
            groups = list(k.groups)
        else:
            w = -(-k.threads // WG)
            groups = [min(w, 65535), -(-w // 65535), 1]
        if 0 in groups:
            continue
        dispatches.append({"kernel": fname, "node": node.name, "op": node.op, "label": k.label or k.template,
                           "workgroups": groups, "bindings": bindings})
    payload = b"".join(chunks)
    payload += b"\0" * ((-len(payload)) % ALIGN)
    (out / "weights.bin").write_bytes(weights_file_image(payload))

    def io(v: str) -> dict:
        t = types[v]
        half = f16 and t.dtype == "float16"
        return {"name": v, "shape": list(t.shape), "dtype": t.dtype,
                "gpu_dtype": "uint32" if half else GPU_NUMPY[gpu_type(t.dtype)], "half_bits": half,
                "offset": where(v), "bytes": max(t.size, 1) * 4}

    limits = {}
    need = {"max_storage_buffers_per_shader_stage": max_bindings, "max_storage_buffer_binding_size": max_binding,
            "max_buffer_size": max(status_offset + ALIGN, len(payload)), "max_compute_workgroup_storage_size": wg_storage}
    for key, val in need.items():
        if val > DEFAULT_LIMITS[key]:
            limits[key] = val
    rt_dir = resource_dir("runtime") / "webgpu"
    for f in ("bornrt_webgpu.py", "bornrt.js", "index.html"):
        shutil.copyfile(rt_dir / f, out / f)
    manifest = {
        "format_version": FORMAT_VERSION, "bornc_version": __version__, "backend": "webgpu", "name": name,
        "target": target.name, "target_profile": {"alignment": ALIGN, "features": list(target.features)},
        "source_model": {"file": Path(source).name if source else "", "path": str(Path(source).resolve()) if source else "",
                         "sha256": model.source_sha256},
        "compile": {"opt_level": opt_level, "weights": "file", "schedule": plan.schedule_name},
        "inputs": [io(v) for v in g.inputs], "outputs": [io(v) for v in g.outputs],
        "flops": summarize(model)["flops"],
        "arena_bytes": status_offset + ALIGN, "weights_bytes": len(payload),
        "weights_sha256": hashlib.sha256(payload).hexdigest(),
        "ops": sorted({n.op for _, n in g.walk()}), "nodes": len(order),
        "webgpu": {"status_offset": status_offset, "required_limits": limits, "required_features": ["shader-f16"] if f16 else [], "kernels": sorted(set(sources.values())),
                   "dispatches": len(dispatches), "submits_per_inference": 1,
                   "host": {"python": "bornrt_webgpu.py", "browser": "index.html + bornrt.js"}},
        "dispatches": dispatches,
        "plan": {**plan.summary(), "tensors": plan.to_json()["tensors"]},
    }
    return write_manifest(out, manifest, self_test, g.inputs, g.outputs)


def _bind(ranges: list[tuple]) -> tuple[list[dict], dict]:
    """Merge operand ranges into at most 8 bindings: overlapping ranges of a buffer become one; while more than 8,
    the two nearest ranges of one buffer merge. Returns (bindings, operand index -> (binding, element offset))."""
    groups: list[list] = []
    for buf, off, size, j in sorted(ranges, key=lambda r: (r[0], r[1])):
        lo = off - off % ALIGN
        if groups and groups[-1][0] == buf and lo < groups[-1][2]:
            g = groups[-1]
            g[2] = max(g[2], off + size)
            g[3].append((j, off))
        else:
            groups.append([buf, lo, off + size, [(j, off)]])
    while len(groups) > 8:
        best = None
        for a in range(len(groups) - 1):
            if groups[a][0] == groups[a + 1][0]:
                gap = groups[a + 1][1] - groups[a][2]
                if best is None or gap < best[0]:
                    best = (gap, a)
        if best is None:
            raise ArtifactError("a kernel needs more than 8 storage buffers")
        a = best[1]
        groups[a][2] = max(groups[a][2], groups[a + 1][2])
        groups[a][3] += groups[a + 1][3]
        del groups[a + 1]
    bindings, placed = [], {}
    for b, (buf, lo, hi, members) in enumerate(groups):
        size = -(-(hi - lo) // 4) * 4
        bindings.append({"buffer": buf, "offset": lo, "size": size})
        for j, off in members:
            placed[j] = (b, (off - lo) // 4)
    return bindings, placed


def _header(k: Kernel, bindings: list[dict], placed: dict, f16: bool = False) -> str:
    """Binding declarations and the ld<k>/st<k>/cv<k>/sv<k> accessors of every operand, then the helpers. With
    ``f16`` (adapters with shader-f16) a float16 element is an IEEE half in the low 16 bits of its word."""
    vec = {b: all(k.operands[j].vec4 for j, (bb, _) in placed.items() if bb == b) for b in range(len(bindings))}
    writes = {placed[j][0] for j, o in enumerate(k.operands) if o.kind in ("out", "ws", "status")}
    lines = ["enable f16;"] if f16 else []
    for b, bd in enumerate(bindings):
        access = "read_write" if (bd["buffer"] == "arena") else "read"
        if bd["buffer"] != "arena" and b in writes:
            raise ArtifactError("a kernel writes the weights buffer")
        elem = "vec4<u32>" if vec[b] else "u32"
        lines.append(f"@group(0) @binding({b}) var<storage, {access}> b{b}: array<{elem}>;")
    for j, o in enumerate(k.operands):
        b, off = placed[j]
        t = o.t
        if o.kind == "status":
            lines.append(f"fn fail{j}() {{ b{b}[{off}u] = 1u; }}")
            continue
        if f16 and o.dtype == "float16":
            lines.append(f"fn cv{j}(w: u32) -> f32 {{ return unpack2x16float(w).x; }}")
            lines.append(f"fn sv{j}(v: f32) -> u32 {{ return pack2x16float(vec2<f32>(v, 0.0f)); }}")
        else:
            lines.append(f"fn cv{j}(w: u32) -> {t} {{ return {load_expr('w', t)}; }}")
            lines.append(f"fn sv{j}(v: {t}) -> u32 {{ return {store_expr('v', o.dtype)}; }}")
        if o.vec4 and not vec[b]:                 # a vec4 operand in a binding shared with scalar ones
            lines.append(f"fn ld{j}(i: u32) -> vec4<u32> {{ let q = {off}u + 4u * i; "
                         f"return vec4<u32>(b{b}[q], b{b}[q + 1u], b{b}[q + 2u], b{b}[q + 3u]); }}")
            if o.kind in ("out", "ws"):
                lines.append(f"fn st{j}(i: u32, v: vec4<u32>) {{ let q = {off}u + 4u * i; "
                             f"b{b}[q] = v.x; b{b}[q + 1u] = v.y; b{b}[q + 2u] = v.z; b{b}[q + 3u] = v.w; }}")
        elif vec[b]:
            lines.append(f"fn ld{j}(i: u32) -> vec4<u32> {{ return b{b}[{off // 4}u + i]; }}")
            if o.kind in ("out", "ws"):
                lines.append(f"fn st{j}(i: u32, v: vec4<u32>) {{ b{b}[{off // 4}u + i] = v; }}")
        else:
            lines.append(f"fn ld{j}(i: u32) -> {t} {{ return cv{j}(b{b}[{off}u + i]); }}")
            if o.kind in ("out", "ws"):
                lines.append(f"fn st{j}(i: u32, v: {t}) {{ b{b}[{off}u + i] = sv{j}(v); }}")
    return "\n".join(lines) + "\n" + HELPERS
