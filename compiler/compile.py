"""``bornc compile``: import, optimize, generate the target's artifact, build it, and check the memory budget.

The budget check compares what the device needs with the target's ``ram_bytes`` / ``flash_bytes`` (or
``--ram`` / ``--flash``): RAM = arena + caller-owned inputs and outputs + a stack estimate + the weights when
they are loaded from weights.bin; flash/storage = code (text of the built binary, or the generated source size
as an estimate) + weights. It fails with suggestions when the model does not fit.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BorncError, ToolchainError
from .ir.graph import Model
from .passes.pipeline import optimize
from .targets import Target, get_target

log = logging.getLogger(__name__)

#: Stack bytes the generated code may use (kernel locals, LSTM state), plus the runner's frame: an estimate.
STACK_ESTIMATE_BYTES = 64 * 1024


class BudgetError(BorncError):
    """The model does not fit the device's RAM or storage."""


@dataclass
class CompileResult:
    """What compile produced: the manifest, built files, the budget figures and notes for the user (bytes)."""

    manifest: dict
    built: dict = field(default_factory=dict)
    ram_bytes: int = 0
    flash_bytes: int = 0
    notes: list = field(default_factory=list)


def c_ram_needed(manifest: dict, stack: int = STACK_ESTIMATE_BYTES) -> int:
    """RAM bytes a C artifact needs: arena + caller-owned inputs and outputs + ``stack`` (an estimate) (+ the
    weights when they are loaded from weights.bin). Storage (code + runtime + weights, each once) is
    :func:`_finish`'s."""
    io = sum(_nbytes(t) for t in manifest["inputs"] + manifest["outputs"])
    file_weights = manifest["weights_bytes"] if manifest["compile"]["weights"] == "file" else 0
    return manifest["arena_bytes"] + io + stack + file_weights


def _c_storage(t: Target, out: Path, manifest: dict, built: dict) -> tuple[int, int, str]:
    """(code bytes, runtime bytes, how they were measured) of a C artifact: the storage sections of the built
    model and runtime objects (embedded weights taken out of the model's), else estimates from the sources."""
    from .backends.c.build import storage_bytes
    bdir = Path(built["model_run"]).parent if "model_run" in built else out / "build"
    model_o, rt_o = storage_bytes(t, bdir / f"{manifest['name']}.o"), storage_bytes(t, bdir / "bornrt.o")
    embedded = manifest["weights_bytes"] if manifest["compile"]["weights"] == "embed" else 0
    if built and model_o is not None and rt_o is not None:
        return max(model_o - embedded, 0), rt_o, "object sections (size -A)"
    # not built: a quarter of the source's bytes per byte of code; embedded weights spell about 4 source
    # characters per byte, so they are taken out once
    est = (out / f"{manifest['name']}.c").stat().st_size // 4
    return max(est - embedded, 0), (out / "bornrt.c").stat().st_size // 4, "estimated from the sources (not built)"


def _nbytes(t: dict) -> int:
    import numpy as np
    from .ir.types import np_dtype
    return int(np.prod(t["shape"], dtype=np.int64)) * np_dtype(t["dtype"]).itemsize


def compile_model(model: Model, target: str | Target, out_dir: str | Path, *, name: str = "model", opt_level: int = 2,
                  weights: str = "auto", schedule: str = "topological", cflags: list | None = None,
                  self_test: dict | None = None, ram: int | None = None, flash: int | None = None,
                  build: bool = True, source: str = "", quantize=None, sanitize: bool = False,
                  threads: int | None = None) -> CompileResult:
    """Compile an imported model for ``target`` into ``out_dir``: the one path from a model to an artifact, taken by
    ``bornc compile``, ``bornc run`` on a model, the executors (golden, bench, conformance) and the Python API.
    The model is optimized and legalized for the target, generated, and built with the target's compiler and flags
    (``sanitize``: plus AddressSanitizer and UndefinedBehaviorSanitizer, C targets). ``quantize`` (a
    bornc.quantize.QuantizeConfig) runs post-training quantization inside the optimizer and puts its report in the
    manifest ("quantization").

    Raises UnsupportedOpError (every op the backend lacks), BudgetError (does not fit RAM or flash). A missing
    toolchain is not an error: the sources and Makefile are written and ``notes`` says what to install.
    ``threads``: C targets, the workers the artifact is built for (default: the target's ``cores``; BorncError
    outside 1..BORNC_MAX_THREADS = 64)."""
    t = get_target(target) if isinstance(target, str) else target
    if quantize is not None and quantize.mode == "int8":
        quantize.weight_max = int8_weight_max(t)
    if quantize is not None and quantize.mode == "fp16":     # f16 arithmetic where the target has it
        quantize.fp16_compute = t.backend == "webgpu" and "shader-f16" in t.features
    if t.backend == "python":
        return _compile_python(model, t, out_dir, name, opt_level, schedule, self_test, ram, flash, source, quantize)
    if t.backend == "webgpu":
        return _compile_webgpu(model, t, out_dir, name, opt_level, schedule, self_test, ram, flash, source, quantize)
    if t.backend != "c":
        raise BorncError(f"target {t.name}: the {t.backend} backend is not implemented yet")
    from .backends.c import compile_c
    from .backends.c.build import build as build_c
    threads = t.default_threads() if threads is None else threads
    if not 1 <= threads <= 64:
        raise BorncError(f"--threads {threads}: give 1 to 64 (the C runtime's BORNC_MAX_THREADS)")
    optimized = optimize(model, opt_level, quantize=quantize, target=t)
    manifest = compile_c(optimized, t, out_dir, name=name, opt_level=opt_level, weights=weights, schedule=schedule,
                         self_test=self_test, source=source, cflags=cflags, threads=threads)
    res = CompileResult(manifest)
    if build:
        try:
            res.built = build_c(out_dir, t, manifest["name"], cflags, sanitize=sanitize)
        except ToolchainError as ex:
            if "not found" not in str(ex):
                raise
            res.notes.append(f"{ex}. Sources and Makefile are in {out_dir}; on the device run: make")
    if t.bare_metal and "firmware" in res.built:
        return _finish_bare_metal(res, t, Path(out_dir), ram, flash, quantize)
    code, runtime, how = _c_storage(t, Path(out_dir), manifest, res.built)
    stack = t.stack_bytes or STACK_ESTIMATE_BYTES
    return _finish(res, t, Path(out_dir), c_ram_needed(manifest, stack), code, ram, flash, quantize, stack=stack,
                   runtime=runtime, measured=how)


def _finish_bare_metal(res: CompileResult, t: Target, out: Path, ram, flash, quantize) -> CompileResult:
    """Budgets of a built bare-metal artifact from build/firmware.elf's link map (the smallest application:
    what a product links): flash = kernels + runtime + weights; RAM = arena + I/O buffers + other .data/.bss
    + the stack link.ld reserves (the runner reports the stack a run really used)."""
    from .backends.c.build import bare_metal_sizes
    sizes = bare_metal_sizes(Path(res.built["firmware"]).with_suffix(".map"), res.manifest["name"])
    res.manifest["firmware"] = {**sizes, "stack_reserved": t.stack_bytes}
    ram_needed = sizes["arena"] + sizes["io"] + sizes["state"] + t.stack_bytes
    return _finish(res, t, out, ram_needed, sizes["kernels"], ram, flash, quantize, stack=t.stack_bytes,
                   runtime=sizes["runtime"], measured="build/firmware.elf link map", weights=sizes["weights"])


def int8_weight_max(t: Target) -> int:
    """The int8 weight range a target prefers: 63 on x86-64 with AVX2 but no VNNI, whose fastest integer product
    (vpmaddubsw) saturates pair sums of uint8 x int8 beyond [-63, 63] weights (as onnxruntime's reduce_range on
    such CPUs); 127 elsewhere."""
    feats = set(t.features)
    return 63 if "avx2" in feats and not feats & {"avxvnni", "avx512vnni", "avx512_vnni"} else 127


def _record_quantization(manifest: dict, quantize) -> None:
    if quantize is not None:
        manifest["quantization"] = {**quantize.report, "artifact_weights_bytes": manifest["weights_bytes"]}
        manifest["compile"]["quantize"] = quantize.mode


def _compile_python(model, t, out_dir, name, opt_level, schedule, self_test, ram, flash, source,
                    quantize=None) -> CompileResult:
    """The python target: RAM = arena + I/O + weights (loaded into memory); storage = code files + weights."""
    from .backends.python import compile_python
    manifest = compile_python(optimize(model, opt_level, quantize=quantize, target=t), t, out_dir, name=name, opt_level=opt_level, schedule=schedule,
                              self_test=self_test, source=source)
    res = CompileResult(manifest)
    out = Path(out_dir)
    io = sum(_nbytes(x) for x in manifest["inputs"] + manifest["outputs"] if x["shape"] is not None)
    return _finish(res, t, out, manifest["arena_bytes"] + io + manifest["weights_bytes"], (out / "model.py").stat().st_size,
                   ram, flash, quantize, runtime=(out / "bornrt.py").stat().st_size, measured="file sizes")


def _compile_webgpu(model, t, out_dir, name, opt_level, schedule, self_test, ram, flash, source,
                    quantize=None) -> CompileResult:
    """The webgpu target: GPU memory = arena + weights (+ the output staging buffer); storage = kernels + weights."""
    from .backends.webgpu import compile_webgpu
    manifest = compile_webgpu(optimize(model, opt_level, quantize=quantize, target=t), t, out_dir, name=name, opt_level=opt_level,
                              schedule=schedule, self_test=self_test, source=source)
    res = CompileResult(manifest)
    out = Path(out_dir)
    code = sum((out / k).stat().st_size for k in manifest["webgpu"]["kernels"])
    host = sum((out / f).stat().st_size for f in ("bornrt_webgpu.py", "bornrt.js", "index.html"))
    ram_needed = manifest["arena_bytes"] + manifest["weights_bytes"] + sum(o["bytes"] for o in manifest["outputs"])
    return _finish(res, t, out, ram_needed, code, ram, flash, quantize, runtime=host, measured="file sizes")


def _finish(res: CompileResult, t: Target, out: Path, ram_needed: int, code: int, ram, flash,
            quantize=None, stack: int = 0, runtime: int = 0, measured: str = "", weights: int | None = None) -> CompileResult:
    """Record RAM/storage needs and budgets in the manifest (bytes; storage = code + runtime + weights, each
    counted once; ``stack``: the stack estimate included in ``ram_needed``; ``measured``: how code and runtime
    were sized; ``weights``: the weights' storage bytes when measured, else the payload's), write it, check the
    budgets (BudgetError). A target without a RAM or storage figure (python,
    webgpu, unless --ram/--flash are given) has budget None: nothing is checked or printed."""
    manifest = res.manifest
    _record_quantization(manifest, quantize)
    weights = manifest["weights_bytes"] if weights is None else weights
    res.ram_bytes, res.flash_bytes = ram_needed, code + runtime + weights
    ram_budget = (ram if ram is not None else t.ram_bytes) or None
    flash_budget = (flash if flash is not None else t.flash_bytes) or None
    manifest["budget"] = {"ram_needed": res.ram_bytes, "ram_budget": ram_budget, "flash_needed": res.flash_bytes,
                          "flash_budget": flash_budget, "code_bytes": code, "runtime_bytes": runtime,
                          "weights_bytes": weights, "sized_by": measured, "stack_estimate": stack}
    import json
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    _check_budget(t, res, ram_budget, flash_budget)
    return res


def _check_budget(t: Target, res: CompileResult, ram_budget, flash_budget) -> None:
    problems = []
    if ram_budget and res.ram_bytes > ram_budget:
        problems.append(f"RAM: needs {res.ram_bytes:,} bytes, the device has {ram_budget:,}")
    if flash_budget and res.flash_bytes > flash_budget:
        problems.append(f"storage: needs {res.flash_bytes:,} bytes, the device has {flash_budget:,}")
    if problems:
        raise BudgetError(f"the model does not fit {t.name}: " + "; ".join(problems) +
                          ". Try --schedule memory (lowers the arena peak), --quantize fp16 or int8 (halves or "
                          "quarters the weights), a smaller --input-shape, or a target with more memory (--ram/--flash).")
