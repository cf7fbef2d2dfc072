"""Conformance of the C backend: the ONNX node tests compiled in batches.

Each case is imported as ``bornc compile`` imports it (with ``--bind`` where the case needs it) and compiled
through :func:`bornc.compile.compile_model` (optimize, legalize, generate: the user's path) with its own symbol
prefix; cases the target cannot lower are *unsupported*. Each generated source is compiled with exactly the
flags of the target's own build (``build.compile_flags``: ``-O3 -march=x86-64-v3`` and the warnings as errors
for x86_64), in parallel, and linked into one shared library per batch, loaded once through cffi; each case then
runs in-process and is compared as in :mod:`bornc.conformance`. A source that does not compile fails its case
only.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .backends.c.build import compile_flags
from .backends.c.runner import InProcess, cdef_model
from .conformance import check_data_sets
from .errors import BorncError, UnsupportedOpError
from .resources import resource_dir
from .executors import with_containers
from .targets import get_target

BATCH = 200


def _generate(case, idx: int, folder: Path, target):
    from .compile import compile_model
    from .conformance import import_case
    model, bound = import_case(case, static=True)
    art = folder / f"c{idx}"
    res = compile_model(model, target, art, name=f"c{idx}", weights="embed", build=False)
    return model, art, res.manifest, bound


def run_c_cases(cases: list, target_name: str = "x86_64", jobs: int | None = None,
                done=None) -> dict[str, tuple[str, str, list]]:
    """(status, detail, bound input names) for every case (passed / failed / unsupported), compiled in batches
    for a C target that runs on this machine. ``done(k)`` is called as each batch of k cases finishes (a
    progress bar)."""
    target = get_target(target_name)
    results: dict[str, tuple[str, str]] = {}
    jobs = jobs or max(os.cpu_count() or 1, 1)
    for start in range(0, len(cases), BATCH):
        chunk = list(enumerate(cases[start:start + BATCH], start))
        with tempfile.TemporaryDirectory(prefix="bornc-conf-") as tmp:
            results.update(_run_batch(chunk, Path(tmp), target, jobs))
        if done:
            done(len(chunk))
    return results


def _run_batch(chunk: list, folder: Path, target, jobs: int) -> dict:
    """Generate, compile (the target's flags, ``jobs`` at a time), link into one library and run one batch of
    (index, case) pairs; results by case name."""
    flags = compile_flags(target)
    cc = target.cc or "cc"
    results: dict = {}
    ready = []
    for idx, case in chunk:
        try:
            ready.append((idx, case) + _generate(case, idx, folder, target))
        except UnsupportedOpError as ex:
            results[case.name] = ("unsupported", str(ex)[:300], [])
        except BorncError as ex:
            results[case.name] = ("failed", f"{type(ex).__name__}: {str(ex)[:300]}", [])
        except Exception as ex:  # noqa: BLE001 - a crash is a failed case
            results[case.name] = ("failed", f"crash {type(ex).__name__}: {str(ex)[:300]}", [])
    rt = folder / "bornrt.o"
    _cc([cc, *flags, "-c", str(resource_dir("runtime") / "c" / "bornrt.c"), "-o", str(rt)])

    def build_one(item):
        idx, case, model, art, manifest, bound = item
        obj = art / "model.o"
        return item, _cc([cc, *flags, f"-I{art}", "-c", str(art / f"c{idx}.c"), "-o", str(obj)])
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        built = list(pool.map(build_one, ready))
    objs = [str(it[3] / "model.o") for it, err in built if err is None]
    for it, err in built:
        if err is not None:
            results[it[1].name] = ("failed", f"C compile error: {err[:300]}", it[5])
    if not objs:
        return results
    so = folder / "batch.so"
    err = _cc([cc, *flags, "-shared", "-o", str(so), str(rt), *objs, "-lm"])
    if err:
        for it, _ in built:
            results.setdefault(it[1].name, ("failed", f"link error: {err[:200]}", it[5]))
        return results
    results.update(_run_isolated([it for it, err in built if err is None], so))
    return results


def _child_run(items: list, so: Path, wfd: int) -> None:
    """In the forked child: one JSON line per case on ``wfd``; a failure to load the library fails every case."""
    with os.fdopen(wfd, "w") as out:
        try:
            import cffi
            ffi = cffi.FFI()
            for it in items:
                cdef_model(ffi, it[4]["name"])
            lib = ffi.dlopen(str(so))
        except Exception as ex:  # noqa: BLE001 - reported on every case of the batch, not a hung parent
            for it in items:
                out.write(json.dumps([it[1].name, "failed", f"crash loading the batch: {type(ex).__name__}: {ex}"[:300], it[5]]) + "\n")
            return
        for idx, case, model, art, manifest, bound in items:
            try:
                res = (*check_data_sets(case, model, with_containers(InProcess(manifest, lib, ffi), manifest)), bound)
            except BorncError as ex:
                res = ("failed", f"{type(ex).__name__}: {str(ex)[:300]}", bound)
            except Exception as ex:  # noqa: BLE001
                res = ("failed", f"crash {type(ex).__name__}: {str(ex)[:300]}", bound)
            out.write(json.dumps([case.name, *res]) + "\n")
            out.flush()


def _run_isolated(ok: list, so: Path) -> dict:
    """Run the compiled cases in a forked child that reports each result on a pipe; a kernel that crashes
    the child fails its own case only (a new child continues with the next case)."""
    results: dict = {}
    pos = 0
    while pos < len(ok):
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:                       # child: load the library, run cases from pos on; never returns
            try:
                os.close(rfd)
                _child_run(ok[pos:], so, wfd)
            finally:
                os._exit(0)
        os.close(wfd)
        with os.fdopen(rfd) as inp:
            for line in inp:
                name, status, detail, bound = json.loads(line)
                results[name] = (status, detail, bound)
                pos += 1
        _, status = os.waitpid(pid, 0)
        if pos < len(ok) and status != 0:
            sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            results[ok[pos][1].name] = ("failed", f"the compiled kernel crashed (signal {sig})", ok[pos][5])
            pos += 1
    return results


def _cc(cmd: list[str]) -> str | None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    return None if r.returncode == 0 else (r.stderr or r.stdout).strip()


__all__ = ["run_c_cases"]
