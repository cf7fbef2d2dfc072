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

from ...errors import ArtifactError, UnsupportedOpError
from ...ir.graph import Graph, Model, Node
from ...ir.types import TensorType
from ...memory import plan_model
from ...memory.liveness import is_view
from ...ops import registry
from ...resources import resource_dir
from ...targets import Target
from ..common.manifest import artifact_manifest, write_manifest
from ..common.schedule import lower_schedule
from ..common.weights import weights_file_image
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
                 model.source_sha256, model.metadata, model.containers)


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

    Raises UnsupportedOpError listing every node without a WebGPU kernel and every value of a dtype WGSL lacks;
    ArtifactError when a kernel would need more than 8 storage buffers or write the weights."""
    missing = _unsupported(model)
    if missing:
        raise UnsupportedOpError(missing)
    g = model.graph
    f16 = "shader-f16" in target.features      # float16 tensors held as IEEE halves; GEMM staged in f16
    opset = model.opsets.get("", 21)
    lowered = lower_schedule(g.nodes, lambda n: None if is_view(n) else _lower(n, g.types, g.constants, opset, f16))
    workspace = {n.name: -(-lowered[id(n)].workspace // ALIGN) * ALIGN for n in g.nodes
                 if id(n) in lowered and lowered[id(n)].workspace}
    plan = plan_model(_retyped(model), ALIGN, schedule, io_in_arena=True, workspace=workspace)
    order = plan.extra["order"]
    out = Path(out_dir)
    if (out / "kernels").exists():
        shutil.rmtree(out / "kernels")
    (out / "kernels").mkdir(parents=True)
    bundle = _Bundle(g, plan, f16, out)
    for node, k in _kernels(order, lowered, g, plan, opset, f16):
        bundle.add(node, k)
    payload = bundle.weights.payload()
    (out / "weights.bin").write_bytes(weights_file_image(payload))
    rt_dir = resource_dir("runtime") / "webgpu"
    for f in ("bornrt_webgpu.py", "bornrt.js", "index.html"):
        shutil.copyfile(rt_dir / f, out / f)
    manifest = artifact_manifest(
        "webgpu", model, target, name=name, source=source, opt_level=opt_level, plan=plan, payload=payload,
        inputs=[bundle.io(v) for v in g.inputs], outputs=[bundle.io(v) for v in g.outputs],
        ops=[n.op for _, n in g.walk()], nodes=len(order), format_version=FORMAT_VERSION,
        profile={"alignment": ALIGN, "features": list(target.features)}, arena_bytes=bundle.status_offset + ALIGN,
        webgpu={"status_offset": bundle.status_offset, "required_limits": bundle.limits(len(payload)),
                "required_features": ["shader-f16"] if f16 else [], "kernels": sorted(set(bundle.sources.values())),
                "dispatches": len(bundle.dispatches), "submits_per_inference": 1,
                "host": {"python": "bornrt_webgpu.py", "browser": "index.html + bornrt.js"}},
        dispatches=bundle.dispatches)
    return write_manifest(out, manifest, self_test, g.inputs, g.outputs)


def _kernels(order: list, lowered: dict, g: Graph, plan, opset: int, f16: bool) -> list[tuple[Node, Kernel]]:
    """(node, kernel) of every dispatch in schedule order; a view whose output the plan did not place on its
    input's bytes becomes a copy."""
    found = []
    for node in order:
        if not is_view(node):
            found += [(node, k) for k in lowered[id(node)].kernels]
        elif node.inputs[0] in g.constants or plan.value_buffer.get(node.outputs[0]) != plan.value_buffer.get(node.inputs[0]):
            found.append((node, identity_kernel(_ctx(node, g.types, g.constants, opset, f16))))
    return found


class _Weights:
    """The weights buffer: every constant a kernel reads (as the GPU stores it: 32-bit words, or IEEE halves in
    the low 16 bits with shader-f16), then every lowering table, at 256-byte aligned offsets (bytes)."""

    def __init__(self, types: dict, consts: dict, f16: bool):
        self.types, self.consts, self.f16 = types, consts, f16
        self.chunks: list[bytes] = []
        self.pos = 0
        self.offsets: dict[str, int] = {}

    def put(self, data: bytes) -> int:
        pad = (-self.pos) % ALIGN
        self.chunks += [b"\0" * pad, data]
        at = self.pos + pad
        self.pos = at + len(data)
        return at

    def constant(self, v: str) -> int:
        """Byte offset of constant ``v`` (placed on first use)."""
        if v not in self.offsets:
            arr = np.asarray(self.consts[v])
            if self.f16 and arr.dtype == np.float16:
                data = np.ascontiguousarray(arr.view(np.uint16).astype(np.uint32)).tobytes()
            else:
                t = self.types.get(v)
                gt = GPU_NUMPY[gpu_type(t.dtype if isinstance(t, TensorType) else arr.dtype.name)]
                data = np.ascontiguousarray(arr.astype(np.float32) if gt == "float32" else arr.astype(np.int64).astype(gt)).tobytes()
            self.offsets[v] = self.put(data)
        return self.offsets[v]

    def payload(self) -> bytes:
        data = b"".join(self.chunks)
        return data + b"\0" * ((-len(data)) % ALIGN)


class _Bundle:
    """The dispatches of a bundle as they are added: each kernel's operands bound to ranges of the arena (the
    plan's offsets; one status word after it) or the weights, its shader rendered and written once per distinct
    source, and the limits the bundle needs beyond WebGPU's defaults."""

    def __init__(self, g: Graph, plan, f16: bool, out: Path):
        self.g, self.plan, self.f16, self.out = g, plan, f16, out
        self.weights = _Weights(g.types, g.constants, f16)
        self.status_offset = -(-plan.arena_bytes // ALIGN) * ALIGN   # one word after the plan: index errors of a run
        self.env = _env()
        self.sources: dict[str, str] = {}
        self.dispatches: list[dict] = []
        self.max_binding = self.max_bindings = self.wg_storage = 0

    def where(self, v: str) -> int:
        return self.plan.offsets[self.plan.value_buffer[v]][0]

    def _ranges(self, node: Node, k: Kernel) -> list[tuple]:
        """(buffer, byte offset, byte size, operand index) of every operand."""
        ranges = []
        for j, o in enumerate(k.operands):
            size = max(o.elems, 1) * 4
            if o.kind == "in" and node.inputs[o.index] in self.g.constants:
                ranges.append(("weights", self.weights.constant(node.inputs[o.index]) + o.start * 4, size, j))
            elif o.kind in ("in", "out"):
                v = node.inputs[o.index] if o.kind == "in" else node.outputs[o.index]
                ranges.append(("arena", self.where(v) + o.start * 4, size, j))
            elif o.kind == "table":
                ranges.append(("weights", self.weights.put(o.data.tobytes()), size, j))
            elif o.kind == "status":
                ranges.append(("arena", self.status_offset, 4, j))
            else:
                ranges.append(("arena", self.plan.offsets[f"{node.name}/workspace"][0] + o.index * 4, size, j))
        return ranges

    def add(self, node: Node, k: Kernel) -> None:
        bindings, placed = _bind(self._ranges(node, k))
        self.max_bindings = max(self.max_bindings, len(bindings))
        self.max_binding = max([self.max_binding] + [b["size"] for b in bindings])
        src = self.env.get_template(f"{k.template}.wgsl.j2").render(header=_header(k, bindings, placed, self.f16),
                                                                     **{"wg": WG, **k.params})
        self.wg_storage = max(self.wg_storage, k.params.get("wg_storage_bytes", 0))
        digest = hashlib.sha256(src.encode()).hexdigest()[:12]
        fname = self.sources.get(digest)
        if fname is None:
            fname = f"kernels/{len(self.sources):03d}_{k.template}.wgsl"
            self.sources[digest] = fname
            (self.out / fname).write_text(src)
        if k.groups is not None:
            groups = list(k.groups)
        else:
            w = -(-k.threads // WG)
            groups = [min(w, 65535), -(-w // 65535), 1]
        if 0 not in groups:
            self.dispatches.append({"kernel": fname, "node": node.name, "op": node.op, "label": k.label or k.template,
                                    "workgroups": groups, "bindings": bindings})

    def io(self, v: str) -> dict:
        """A model input or output as the hosts see it: where it lives in the arena and how it is stored."""
        t = self.g.types[v]
        half = self.f16 and t.dtype == "float16"
        return {"name": v, "shape": list(t.shape), "dtype": t.dtype,
                "gpu_dtype": "uint32" if half else GPU_NUMPY[gpu_type(t.dtype)], "half_bits": half,
                "offset": self.where(v), "bytes": max(t.size, 1) * 4}

    def limits(self, weights_bytes: int) -> dict:
        """The device limits the bundle needs above WebGPU's defaults (DEFAULT_LIMITS)."""
        need = {"max_storage_buffers_per_shader_stage": self.max_bindings, "max_storage_buffer_binding_size": self.max_binding,
                "max_buffer_size": max(self.status_offset + ALIGN, weights_bytes), "max_compute_workgroup_storage_size": self.wg_storage}
        return {key: val for key, val in need.items() if val > DEFAULT_LIMITS[key]}


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
