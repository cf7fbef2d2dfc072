"""Conformance of the C backend: the ONNX node tests compiled in batches.

Each case is imported, optimized (opt level 2) and lowered to C with its own symbol prefix; cases the backend
cannot lower are *unsupported*. The generated sources are compiled in parallel (``-O1``, the same warnings as
every build) and linked into one shared library per batch, loaded once through cffi; each case then runs
in-process and is compared as in :mod:`bornc.conformance`. A source that does not compile fails its case only.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .backends.c import compile_c
from .backends.c.build import WARN
from .backends.c.runner import InProcess, cdef_model
from .conformance import check_data_sets
from .errors import BorncError, UnsupportedOpError
from .frontend.onnx_import import from_proto
from .passes.pipeline import optimize
from .resources import resource_dir
from .targets import get_target

BATCH = 200


def lacks_c_kernel(op: str, domain: str) -> bool:
    """True for ops the C backend has no lowering for (they are expanded into their ONNX function body)."""
    from .ops import registry
    d = registry.get(op, domain)
    return d is None or "c" not in d.lowerings


def _generate(case, idx: int, folder: Path, target):
    from .conformance import import_static
    model = import_static(case, lacks_c_kernel)
    if not model.is_static():
        raise UnsupportedOpError({"non-static shapes": [case.name]})
    art = folder / f"c{idx}"
    manifest = compile_c(optimize(model, 2), target, art, name=f"c{idx}", weights="embed")
    return model, art, manifest


def run_c_cases(cases: list, jobs: int | None = None) -> dict[str, tuple[str, str]]:
    """Status and detail for every case (passed / failed / unsupported), compiled in batches."""
    target = get_target("x86_64")
    results: dict[str, tuple[str, str]] = {}
    jobs = jobs or max(os.cpu_count() or 1, 1)
    for start in range(0, len(cases), BATCH):
        chunk = list(enumerate(cases[start:start + BATCH], start))
        with tempfile.TemporaryDirectory(prefix="bornc-conf-") as tmp:
            folder = Path(tmp)
            ready = []
            for idx, case in chunk:
                try:
                    ready.append((idx, case) + _generate(case, idx, folder, target))
                except UnsupportedOpError as ex:
                    results[case.name] = ("unsupported", str(ex)[:300])
                except BorncError as ex:
                    results[case.name] = ("failed", f"{type(ex).__name__}: {str(ex)[:300]}")
                except Exception as ex:  # noqa: BLE001 - a crash is a failed case
                    results[case.name] = ("failed", f"crash {type(ex).__name__}: {str(ex)[:300]}")
            rt = folder / "bornrt.o"
            _cc(["gcc", *WARN, "-O1", "-fPIC", "-c", str(resource_dir("runtime") / "c" / "bornrt.c"), "-o", str(rt)])

            def build_one(item):
                idx, case, model, art, manifest = item
                obj = art / "model.o"
                err = _cc(["gcc", *WARN, "-O1", "-fPIC", f"-I{art}", "-c", str(art / f"c{idx}.c"), "-o", str(obj)])
                return item, err
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                built = list(pool.map(build_one, ready))
            objs = [str(it[3] / "model.o") for it, err in built if err is None]
            for it, err in built:
                if err is not None:
                    results[it[1].name] = ("failed", f"C compile error: {err[:300]}")
            if not objs:
                continue
            so = folder / "batch.so"
            err = _cc(["gcc", "-shared", "-o", str(so), str(rt), *objs, "-lm"])
            if err:
                for it, _ in built:
                    results.setdefault(it[1].name, ("failed", f"link error: {err[:200]}"))
                continue
            ok = [it for it, err in built if err is None]
            results.update(_run_isolated(ok, so))
    return results


def _run_isolated(ok: list, so: Path) -> dict:
    """Run the compiled cases in a forked child that reports each result on a pipe; a kernel that crashes
    the child fails its own case only (a new child continues with the next case)."""
    results: dict = {}
    pos = 0
    while pos < len(ok):
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:                       # child: load the library, run cases from pos on
            os.close(rfd)
            import cffi
            ffi = cffi.FFI()
            for it in ok:
                cdef_model(ffi, it[4]["name"])
            lib = ffi.dlopen(str(so))
            with os.fdopen(wfd, "w") as out:
                for idx, case, model, art, manifest in ok[pos:]:
                    try:
                        res = check_data_sets(case, model, InProcess(manifest, lib, ffi))
                    except BorncError as ex:
                        res = ("failed", f"{type(ex).__name__}: {str(ex)[:300]}")
                    except Exception as ex:  # noqa: BLE001
                        res = ("failed", f"crash {type(ex).__name__}: {str(ex)[:300]}")
                    out.write(json.dumps([case.name, *res]) + "\n")
                    out.flush()
            os._exit(0)
        os.close(wfd)
        with os.fdopen(rfd) as inp:
            for line in inp:
                name, status, detail = json.loads(line)
                results[name] = (status, detail)
                pos += 1
        _, status = os.waitpid(pid, 0)
        if pos < len(ok) and status != 0:
            sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            results[ok[pos][1].name] = ("failed", f"the compiled kernel crashed (signal {sig})")
            pos += 1
    return results


def _cc(cmd: list[str]) -> str | None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    return None if r.returncode == 0 else (r.stderr or r.stdout).strip()


__all__ = ["run_c_cases"]
