"""Building a C artifact with the target's toolchain, and finding the tools.

Compiles with ``-std=c99 -Wall -Wextra -Werror -pedantic -fno-strict-aliasing`` plus the target's flags; builds
``build/model_run`` (statically linked for qemu-user targets), ``build/libmodel.a`` and, for the host target,
``build/libmodel.so`` for in-process use through cffi (linked with ``-z nodelete``: the thread pool's workers
outlive a dlclose). A missing compiler is a ToolchainError that names the
Debian package to install.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ...errors import ArtifactError, ToolchainError
from ...progress import progress
from ...targets import Target

WARN = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fno-strict-aliasing"]
SANITIZE = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]


def find_tool(target: Target, tool: str) -> str:
    """Path of ``tool`` or ToolchainError naming the Debian packages of the target."""
    path = shutil.which(tool)
    if path is None:
        raise ToolchainError(f"{tool} not found for target {target.name}: apt-get install {' '.join(target.debian_packages)} "
                             f"(or copy the artifact to the device and run make there)")
    return path


def qemu_system_command(target: Target, kernel: str) -> list[str]:
    """The qemu-system-arm command that runs the bare-metal ELF ``kernel`` on the target's board: no display, no
    monitor, semihosting to the host's files, ``-icount shift=0`` (one instruction per virtual nanosecond, so
    SysTick counts instructions). Arguments follow as ``-append "..."``."""
    return [target.qemu, "-M", target.extra["qemu_system"]["board"], "-nographic", "-monitor", "none",
            "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel", kernel]


def _run(cmd: list[str], cwd: Path) -> None:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode:
        msg = (r.stderr or r.stdout).strip()
        raise ToolchainError(f"{' '.join(cmd[:1])} failed in {cwd}:\n{msg[:4000]}")


def compile_flags(target: Target, cflags: list | None = None, sanitize: bool = False) -> list[str]:
    """The flags every object of an artifact is compiled with: the warnings (as errors), the target's cflags (or
    ``cflags``), the sanitizers when asked, and -fPIC on the host (for the shared library)."""
    flags = WARN + (list(cflags) if cflags else list(target.cflags)) + (SANITIZE if sanitize else [])
    return flags + (["-fPIC"] if target.run == "native" else [])


def build(out_dir: str | Path, target: Target, name: str, cflags: list | None = None, sanitize: bool = False,
          build_dir: str = "build", cc: str | None = None) -> dict[str, Path]:
    """Compile the artifact in ``out_dir``; returns the built files by role (model_run, libmodel.a, libmodel.so)."""
    out = Path(out_dir)
    compiler = cc or target.cc or "cc"
    find_tool(target, compiler)
    flags = compile_flags(target, cflags, sanitize)
    if target.bare_metal:
        if sanitize:
            raise ToolchainError(f"target {target.name}: the sanitizers need an operating system (use a hosted target)")
        return _build_bare_metal(out, target, name, flags, compiler, build_dir)
    host = target.run == "native"
    bdir = out / build_dir
    bdir.mkdir(exist_ok=True)
    sources = [f"{name}.c", "bornrt.c", "main.c"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(progress(pool.map(lambda s: _run([compiler, *flags, "-c", s, "-o", f"{build_dir}/{Path(s).stem}.o"], out), sources),
                      f"compiling {name} for {target.name}", total=len(sources), unit="file"))
    objs = [f"{build_dir}/{name}.o", f"{build_dir}/bornrt.o"]
    link = ["-static"] if target.run == "qemu-user" and not sanitize else []
    _run([compiler, *flags, f"{build_dir}/main.o", *objs, "-o", f"{build_dir}/model_run", *link, "-lm", "-pthread"], out)
    built = {"model_run": bdir / "model_run"}
    ar = shutil.which(f"{target.triple}-ar") if target.triple and not host else shutil.which("ar")
    if ar:
        _run([ar, "rcs", f"{build_dir}/libmodel.a", *objs], out)
        built["libmodel.a"] = bdir / "libmodel.a"
    if host and not sanitize:
        # -z nodelete: the thread pool's workers live for the process and run code of this library, so a
        # dlclose must not unmap it under them
        _run([compiler, *flags, "-shared", *objs, "-o", f"{build_dir}/libmodel.so", "-lm", "-pthread", "-Wl,-z,nodelete"], out)
        built["libmodel.so"] = bdir / "libmodel.so"
    elif (bdir / "libmodel.so").exists():
        (bdir / "libmodel.so").unlink()       # a sanitized build runs as model_run: no stale library beside it
    return built


def _build_bare_metal(out: Path, target: Target, name: str, flags: list, compiler: str, build_dir: str) -> dict[str, Path]:
    """Objects of a bare-metal artifact, then ``model_run.elf`` (the semihosting runner, newlib's rdimon),
    ``firmware.elf`` (the smallest application, for sizes; nosys) and ``libmodel.a``, each ELF with its link map."""
    from .emit import bare_metal_defines
    flags = flags + bare_metal_defines(name)
    bdir = out / build_dir
    bdir.mkdir(exist_ok=True)
    sources = [f"{name}.c", "bornrt.c", "bornrt_cortexm.c", "main.c", "firmware.c"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(progress(pool.map(lambda s: _run([compiler, *flags, "-c", s, "-o", f"{build_dir}/{Path(s).stem}.o"], out), sources),
                      f"compiling {name} for {target.name}", total=len(sources), unit="file"))
    objs = [f"{build_dir}/{name}.o", f"{build_dir}/bornrt.o", f"{build_dir}/bornrt_cortexm.o"]
    link = [*flags, "-nostartfiles", "-T", "link.ld", "-Wl,--gc-sections"]
    for elf, main, specs in (("model_run", "main", "rdimon"), ("firmware", "firmware", "nosys")):
        _run([compiler, *link, f"--specs={specs}.specs", f"-Wl,-Map={build_dir}/{elf}.map", f"{build_dir}/{main}.o", *objs,
              "-o", f"{build_dir}/{elf}.elf", "-lm"], out)
    built = {"model_run": bdir / "model_run.elf", "firmware": bdir / "firmware.elf"}
    ar = shutil.which(f"{target.triple}-ar")
    if ar:
        _run([ar, "rcs", f"{build_dir}/libmodel.a", *objs[:2]], out)
        built["libmodel.a"] = bdir / "libmodel.a"
    return built


def storage_bytes(target: Target, obj: Path) -> int | None:
    """Bytes an object file puts into the device's storage: its code and constant data sections (.text*,
    .rodata*, .data*; not .bss, unwind tables or notes), from binutils' ``size -A``; None when that tool (for a
    cross target ``<triple>-size``, Debian package binutils-<triple>) or the file is missing."""
    size = shutil.which(f"{target.triple}-size") if target.triple and target.run != "native" else shutil.which("size")
    if not size or not obj.exists():
        return None
    r = subprocess.run([size, "-A", str(obj)], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    total = 0
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith((".text", ".rodata", ".data")) and parts[1].isdigit():
            total += int(parts[1])
    return total


_MAP_INPUT = re.compile(r"^ (\.\S+|COMMON)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S+)$")
_MAP_FILL = re.compile(r"^ \*fill\*\s+0x[0-9a-f]+\s+0x([0-9a-f]+)")
#: output sections that take no room on the device
_NOT_LOADED = (".comment", ".ARM.attributes", ".debug", ".stab", ".note", ".glue_7", ".v4_bx", ".vfp11_veneer", ".iplt",
               ".rel.", ".igot")


def bare_metal_sizes(map_path: Path, name: str) -> dict[str, int]:
    """Bytes of a linked bare-metal ELF by role, read from its GNU ld map (``-Wl,-Map``; only what the link
    kept after --gc-sections): flash "kernels" (the model object's code and index tables), "weights" (its
    ``W<k>`` const arrays), "runtime" (everything else in flash: startup, bornrt, libgcc, libc, libm, the
    application's main); RAM "arena" (the static arena), "io" (the application's input and output buffers,
    ``bornc_io_*``) and "state" (every other .data and .bss byte). ArtifactError when the map is unreadable."""
    try:
        lines = map_path.read_text().split("Linker script and memory map", 1)[1].splitlines()
    except (OSError, IndexError):
        raise ArtifactError(f"{map_path}: no GNU ld link map") from None
    sizes = dict.fromkeys(("kernels", "weights", "runtime", "arena", "io", "state"), 0)
    model_obj, out_sec, pending = f"{name}.o", "", ""
    for line in lines:
        if line.startswith("."):
            out_sec = line.split()[0]
            continue
        if pending:                      # a long input-section name puts its address and size on the next line
            line, pending = f" {pending} {line.strip()}", ""
        if line.startswith(" .") and len(line.split()) == 1:
            pending = line.strip()
            continue
        m, fill = _MAP_INPUT.match(line), _MAP_FILL.match(line)
        if not (m or fill) or not out_sec or out_sec.startswith(_NOT_LOADED):
            continue
        size = int((m or fill).group(2 if m else 1), 16)
        sec, obj = (m.group(1), Path(m.group(3)).name) if m else ("*fill*", "")
        if out_sec in (".data", ".bss"):
            role = ("arena" if obj == model_obj and sec.endswith("_static_arena") else
                    "io" if sec.startswith((".bss.bornc_io_", ".data.bornc_io_")) else "state")
            sizes[role] += size
        if out_sec == ".bss":
            continue
        if obj == model_obj:             # .data is in flash too (its load image); any other section is flash
            sizes["weights" if re.fullmatch(r"\.rodata\.W\d+", sec) else "kernels"] += size
        else:
            sizes["runtime"] += size
    return sizes
