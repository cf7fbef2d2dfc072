"""Running a built C artifact on this machine: in-process through cffi (host target, ``libmodel.so``) or as a
subprocess (``model_run``, under qemu-user for Raspberry Pi targets) with .npy files."""
from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ...errors import ArtifactError, BorncError, InputError
from ...ir.types import np_dtype
from ...targets import get_target

_STATUS = {0: "ok", 1: "invalid argument", 2: "arena missing, too small or misaligned", 3: "weights missing or bad",
           4: "index out of range", 5: "file input/output failed", 6: "malformed .npy or shape/dtype mismatch"}


def check_feeds(manifest: dict, feeds: dict) -> list[np.ndarray]:
    """Inputs in manifest order, validated (name, dtype, shape); InputError otherwise."""
    names = [t["name"] for t in manifest["inputs"]]
    unknown = [k for k in feeds if k not in names]
    if unknown:
        raise InputError(f"unknown input(s) {', '.join(map(repr, unknown))}; the model's inputs are {', '.join(map(repr, names))}")
    out = []
    for t in manifest["inputs"]:
        if t["name"] not in feeds:
            raise InputError(f"missing input {t['name']!r} ({t['dtype']}{t['shape']})")
        a = np.asarray(feeds[t["name"]])
        if a.dtype.kind == "V" and a.dtype.itemsize == np_dtype(t["dtype"]).itemsize:
            a = a.view(np_dtype(t["dtype"]))     # .npy/.npz files hold ml_dtypes values (bfloat16, int4...) as bytes
        if a.dtype != np_dtype(t["dtype"]):
            raise InputError(f"input {t['name']!r}: expected dtype {t['dtype']}, got {a.dtype}")
        if list(a.shape) != list(t["shape"]):
            raise InputError(f"input {t['name']!r}: expected shape {list(t['shape'])}, got {list(a.shape)}")
        out.append(a if a.flags.c_contiguous else a.copy(order="C"))   # (ascontiguousarray would make 0-d arrays 1-d)
    return out


def cdef_model(ffi, name: str) -> None:
    """Declare the generated C API of model ``name`` to a cffi FFI (the shared bornc_tensor_info_t once per FFI,
    however many models it declares)."""
    if not getattr(ffi, "_bornc_info_declared", False):
        ffi.cdef("typedef struct { const char *name; int dtype; int rank; const int64_t *shape; size_t nbytes; } "
                 "bornc_tensor_info_t;")
        ffi._bornc_info_declared = True
    ffi.cdef(f"""
        const bornc_tensor_info_t *bornc_{name}_input_info(int i);
        const bornc_tensor_info_t *bornc_{name}_output_info(int j);
        size_t bornc_{name}_arena_bytes(void);
        typedef struct {{ unsigned char *arena; const unsigned char *weights; int threads; }} bornc_{name}_ctx_t;
        int bornc_{name}_set_threads(bornc_{name}_ctx_t *ctx, int threads);
        int bornc_{name}_init(bornc_{name}_ctx_t *ctx, void *arena, size_t arena_bytes, const void *weights_file, size_t weights_file_bytes);
        int bornc_{name}_run(const bornc_{name}_ctx_t *ctx, const void *const *inputs, void *const *outputs);
    """)


def check_manifest_against_library(manifest: dict, lib, ffi) -> None:
    """The inputs and outputs manifest.json lists (name, dtype, shape) must be the ones the compiled library
    reports through ``bornc_<name>_input_info`` / ``_output_info``: an edited manifest would make the caller pass
    buffers of the wrong size. Raises ArtifactError naming the first mismatch."""
    from ...ir.types import name_to_onnx_elem
    n = manifest["name"]
    for kind in ("input", "output"):
        query = getattr(lib, f"bornc_{n}_{kind}_info")
        specs = manifest[f"{kind}s"]
        for i in range(len(specs) + 1):
            info = query(i)
            if i == len(specs):
                if info != ffi.NULL:
                    raise ArtifactError(f"manifest.json lists {len(specs)} {kind}s, build/libmodel.so has more")
                break
            t = specs[i]
            try:
                want = (t["name"], name_to_onnx_elem(t["dtype"]), [int(d) for d in t["shape"]])
            except Exception:  # noqa: BLE001 - an edited manifest with a malformed entry
                raise ArtifactError(f"manifest.json: {kind} {i} is malformed") from None
            got = None if info == ffi.NULL else (ffi.string(info.name).decode("utf-8", "replace"), int(info.dtype),
                                                 [int(info.shape[d]) for d in range(info.rank)])
            if got != want:
                raise ArtifactError(f"manifest.json does not match build/libmodel.so: {kind} {i} is {got} in the "
                                    f"library and {want} in the manifest")


class InProcess:
    """A C model in a loaded shared library: init once (arena owned by this object), then each call runs one
    inference in-process, with no subprocess or file round trip."""

    def __init__(self, manifest: dict, lib, ffi, weights: bytes = b""):
        self.manifest, self.lib, self.ffi = manifest, lib, ffi
        n = manifest["name"]
        align = 4096          # at least any target's alignment (the manifest's figure is not trusted)
        arena_bytes = int(getattr(lib, f"bornc_{n}_arena_bytes")())       # the library's own figure, not the manifest's
        self._arena = np.zeros(arena_bytes + align, dtype=np.uint8)
        base = int(ffi.cast("uintptr_t", ffi.from_buffer(self._arena)))
        self._weights = weights
        self.ctx = ffi.new(f"bornc_{n}_ctx_t *")
        wptr = ffi.from_buffer(weights) if weights else ffi.NULL
        arena_ptr = ffi.from_buffer(self._arena) + (-base) % align if arena_bytes else ffi.NULL
        st = getattr(lib, f"bornc_{n}_init")(self.ctx, arena_ptr, arena_bytes, wptr, len(weights))
        if st:
            raise ArtifactError(f"model {n}: init failed: {_STATUS.get(st, st)}")
        self._run = getattr(lib, f"bornc_{n}_run")

    def set_threads(self, threads: int) -> None:
        """Cap the worker threads of later calls at ``threads`` (1 .. the count the artifact was compiled for;
        InputError otherwise)."""
        n = self.manifest["name"]
        if getattr(self.lib, f"bornc_{n}_set_threads")(self.ctx, int(threads)):
            raise InputError(f"--threads {threads}: this artifact runs on 1 to {self.max_threads} threads "
                             f"(compile it with --threads N for more)")

    @property
    def max_threads(self) -> int:
        """The threads the artifact was compiled for (its arena holds scratch for that many workers)."""
        return int(self.manifest.get("target_profile", {}).get("threads", 1))

    @property
    def threads(self) -> int:
        """The threads the next call runs on."""
        return int(self.ctx.threads)

    @classmethod
    def open(cls, art: Path, manifest: dict) -> "InProcess":
        """Load ``build/libmodel.so`` of an artifact folder (and its weights.bin when it has one)."""
        import cffi
        ffi = cffi.FFI()
        cdef_model(ffi, manifest["name"])
        lib = ffi.dlopen(str(art / "build" / "libmodel.so"))
        check_manifest_against_library(manifest, lib, ffi)
        weights = (art / "weights.bin").read_bytes() if manifest["compile"]["weights"] == "file" else b""
        return cls(manifest, lib, ffi, weights)

    def __call__(self, feeds: dict) -> dict:
        ins = check_feeds(self.manifest, feeds)
        outs = [np.empty(t["shape"], dtype=np_dtype(t["dtype"])) for t in self.manifest["outputs"]]
        ffi = self.ffi
        pin = ffi.new("void *[]", [ffi.from_buffer(a) for a in ins] or [ffi.NULL])
        pout = ffi.new("void *[]", [ffi.from_buffer(a) for a in outs])
        st = self._run(self.ctx, pin, pout)
        if st:
            raise BorncError(f"model run failed: {_STATUS.get(st, st)}")
        return {t["name"]: a for t, a in zip(self.manifest["outputs"], outs)}


class Subprocess:
    """``build/model_run`` as a child process (under qemu-user for cross targets), inputs and outputs as .npy.
    A bare-metal target's ``build/model_run.elf`` runs under qemu-system-arm on the target's board with
    semihosting (files relative to a temporary folder) and ``-icount shift=0`` (one instruction per virtual ns);
    after each call ``stats`` holds what it measured: "stack_bytes" (the run's stack high-water mark),
    "runner_stack_bytes" (the runner's own frames below the run) and, for
    ``bench``, "instructions" per inference (SysTick ticks x 1e9 / the board's clock in Hz) and "kernels" (the
    manifest's kernels, each with its "instructions", counted in one more run through bornc_kernel_hook)."""

    def __init__(self, art: Path, manifest: dict):
        from .build import find_tool
        art = Path(art).resolve()           # runs start in a temporary folder
        self.art, self.manifest = art, manifest
        self.target = target = get_target(manifest["target"])
        exe = str(art / "build" / ("model_run.elf" if target.bare_metal else "model_run"))
        if not Path(exe).exists():
            raise ArtifactError(f"{art}: build/{Path(exe).name} is missing (was the toolchain present at compile time?)")
        self.prefix = [exe]
        if target.run == "qemu-user":
            cpu = target.extra.get("qemu_cpu")
            self.prefix = [find_tool(target, target.qemu)] + (["-cpu", cpu] if cpu else []) + [exe]
        elif target.run == "qemu-system":
            from .build import qemu_system_command
            find_tool(target, target.qemu)
            self.prefix = qemu_system_command(target, exe)
        self.threads = None
        self.stats: dict = {}

    @property
    def max_threads(self) -> int:
        """The threads the artifact was compiled for."""
        return int(self.manifest.get("target_profile", {}).get("threads", 1))

    def set_threads(self, threads: int) -> None:
        """Run later calls with ``model_run --threads`` (1 .. max_threads; InputError otherwise)."""
        if not 1 <= int(threads) <= self.max_threads:
            raise InputError(f"--threads {threads}: this artifact runs on 1 to {self.max_threads} threads "
                             f"(compile it with --threads N for more)")
        self.threads = int(threads)

    def __call__(self, feeds: dict, bench: int = 0) -> dict:
        ins = check_feeds(self.manifest, feeds)
        semihosting = self.target.run == "qemu-system"      # paths relative to qemu's folder, no spaces
        with tempfile.TemporaryDirectory() as tmp:
            args = []
            for t, a in zip(self.manifest["inputs"], ins):
                p = Path(tmp) / f"in{len(args) // 2}.npy"
                np.save(p, a)
                args += ["--input", f"{t['name']}={p.name if semihosting else p}"]
            args += ["-o", "." if semihosting else tmp]
            if self.manifest["compile"]["weights"] == "file":
                args += ["--weights", str(self.art / "weights.bin")]
            if bench:
                args += ["--bench", str(bench)]
            if self.threads:
                args += ["--threads", str(self.threads)]
            cmd = self.prefix + args
            if semihosting:                 # qemu passes "KERNEL ARGS..." split at spaces: no spaces anywhere
                if any(" " in a for a in args) or len(" ".join(args)) > 1000 or len(args) > 60:
                    raise InputError("the semihosting command line takes at most 60 arguments, 1,000 characters "
                                     "and no spaces (an input name with a space?)")
                (Path(tmp) / "model_run.elf").symlink_to(self.prefix[-1])
                cmd = self.prefix[:-1] + ["model_run.elf", "-append", " ".join(args)]
            limit = 600 if semihosting else 3600
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, cwd=tmp, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                raise BorncError(f"model_run gave no answer in {limit} s (a firmware that hangs under "
                                 f"{Path(self.prefix[0]).name}?)") from None
            if r.returncode < 0:
                raise BorncError(f"model_run killed by signal {-r.returncode}: {(r.stderr or r.stdout).strip()[:300]}")
            if r.returncode:
                raise BorncError(f"model_run failed: {(r.stderr or r.stdout).strip()[:500]}")
            outs = {t["name"]: np.load(Path(tmp) / t["file"]) for t in self.manifest["outputs"]}
            self.stats = self._stats(r.stdout)
            if bench and not semihosting:
                outs["__median_ms__"] = float(r.stdout.split("median_ms")[1].split()[0])
            return outs

    def _stats(self, stdout: str) -> dict:
        """The figures a bare-metal runner printed: "stack_bytes", "runner_stack_bytes" and, from "ticks" and
        "kernel K N" lines, "instructions" and the per-kernel "kernels" (see the class docstring); {} elsewhere."""
        if not self.target.bare_metal:
            return {}
        per_tick = 1e9 / self.target.extra["qemu_system"]["sysclk_hz"]
        lines = [line.split() for line in stdout.splitlines()]
        found = dict(w[:2] for w in lines if len(w) == 2 and w[0] in ("stack_bytes", "runner_stack_bytes", "ticks"))
        stats = {k: int(found[k]) for k in ("stack_bytes", "runner_stack_bytes") if k in found}
        if "ticks" in found:
            stats["instructions"] = round(int(found["ticks"]) * per_tick)
            kernels = self.manifest.get("kernels", [])
            stats["kernels"] = [{**kernels[int(w[1])], "instructions": round(int(w[2]) * per_tick)}
                                for w in lines if len(w) == 3 and w[0] == "kernel" and int(w[1]) < len(kernels)]
        return stats


def load_artifact(path: str | Path, in_process: bool = True):
    """A callable ``feeds -> outputs`` for the C artifact folder ``path``."""
    art = Path(path).resolve()          # the runs below start in a temporary folder
    mf = art / "manifest.json"
    if not mf.is_file():
        raise ArtifactError(f"{art} is not a bornc artifact (no manifest.json)")
    try:
        manifest = json.loads(mf.read_text())
    except ValueError as ex:
        raise ArtifactError(f"{art}: manifest.json is not valid JSON ({ex})") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{art}: manifest.json is not a JSON object")
    if manifest.get("format_version") != 1 or manifest.get("backend") != "c":
        raise ArtifactError(f"{art}: unsupported artifact (format {manifest.get('format_version')}, backend {manifest.get('backend')})")
    if not isinstance(manifest.get("name"), str) or not manifest["name"].isidentifier():
        raise ArtifactError(f"{art}: manifest.json has no valid model name")
    try:
        if in_process and (art / "build" / "libmodel.so").exists():
            return InProcess.open(art, manifest)
        return Subprocess(art, manifest)
    except (KeyError, TypeError, ValueError, AttributeError) as ex:   # an edited or truncated manifest
        raise ArtifactError(f"{art}: manifest.json does not describe this artifact ({type(ex).__name__}: {ex})") from None
