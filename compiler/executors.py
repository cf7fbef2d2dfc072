"""Executors: run a model on this machine and return numpy outputs, whatever the target.

``bornc run``, ``bornc golden check``, ``bornc conformance`` and ``bornc bench`` all go through
:func:`get_executor`, so every target is tested the way a user runs it: ``reference`` is the numpy interpreter;
every other target compiles the model through :func:`bornc.compile.compile_model` (the path of ``bornc
compile``) into a temporary artifact and runs it as ``bornc run`` runs an artifact folder.
"""
from __future__ import annotations

import atexit
import shutil
import tempfile
from typing import Callable, Mapping

import numpy as np

from .errors import BorncError
from .interpreter import run
from .ir.graph import Model

Prepared = Callable[[Mapping[str, np.ndarray]], dict]


class ReferenceExecutor:
    """The numpy reference interpreter (the oracle)."""

    name = "reference"

    def prepare(self, model: Model) -> Prepared:
        """Return ``feeds -> {output name: value}`` for ``model``."""
        return lambda feeds: run(model, feeds)


class ArtifactExecutor:
    """Compile for a target through the one compile path (:func:`bornc.compile.compile_model`: optimize, legalize,
    generate, build with the target's compiler and flags) into a temporary folder (removed at exit), then run the
    artifact as ``bornc run`` does: in-process through cffi on the host, under qemu-user for Raspberry Pi targets,
    through bornrt.py for python, through wgpu for webgpu. ``sanitize``: C built with ASan and UBSan, run in a
    subprocess. ``static``: the target needs static shapes and constant shape-deciding inputs (conformance binds
    them, as ``bornc compile --bind`` does)."""

    def __init__(self, target: str = "x86_64", opt_level: int = 2, sanitize: bool = False):
        from .targets import get_target
        self.target = get_target(target)
        self.name = self.target.name
        self.opt_level = opt_level
        self.sanitize = sanitize
        self.static = self.target.backend in ("c", "webgpu")

    def prepare(self, model: Model, name: str = "model") -> Prepared:
        from .compile import compile_model
        folder = tempfile.mkdtemp(prefix=f"bornc-{self.name}-")
        atexit.register(shutil.rmtree, folder, True)
        compile_model(model, self.target, folder, name=name, opt_level=self.opt_level, sanitize=self.sanitize)
        if self.sanitize:
            import json
            from pathlib import Path
            from .backends.c.runner import Subprocess
            manifest = json.loads((Path(folder) / "manifest.json").read_text())
            return with_containers(Subprocess(Path(folder), manifest), manifest)
        if self.target.backend == "python":
            from .backends.python.runner import load_python_artifact
            from .pyrt import rt
            return load_python_artifact(folder, shared_runtime=rt)
        return load_artifact(folder)


def with_containers(run: Prepared, manifest: dict) -> Prepared:
    """``run`` taking and returning the sequences and optionals that a static-shape backend unrolled (the
    manifest's "containers"): a sequence input as a list of arrays (fed as its elements ``NAME[k]``), a sequence
    output as a list, an optional output as its array or None. InputError when a list's length is not the one
    the artifact was compiled for."""
    from .errors import InputError
    groups = manifest.get("containers") or {}
    if not groups:
        return run

    def call(feeds):
        flat = {}
        for k, v in feeds.items():
            g = groups.get(k)
            if g is None or g.get("role") != "input":
                flat[k] = v
                continue
            vals = list(v) if isinstance(v, (list, tuple)) else [] if v is None else [v]
            if len(vals) != len(g["elements"]):
                raise InputError(f"input {k!r}: a sequence of {len(vals)} tensors; the artifact was compiled for "
                                 f"{len(g['elements'])}")
            flat.update(zip(g["elements"], vals))
        outs = dict(run(flat))
        for k, g in groups.items():
            if g.get("role") != "output":
                continue
            vals = [outs.pop(e) for e in g["elements"]]
            outs[k] = vals if g["kind"] == "sequence" else (vals[0] if vals else None)
        return outs
    return call


def CExecutor(target: str = "x86_64", opt_level: int = 2, sanitize: bool = False) -> ArtifactExecutor:
    """The executor of a C target (x86_64 by default)."""
    return ArtifactExecutor(target, opt_level, sanitize)


def PythonExecutor(opt_level: int = 2) -> ArtifactExecutor:
    """The executor of the python target."""
    return ArtifactExecutor("python", opt_level)


def WebGPUExecutor(target: str = "webgpu", opt_level: int = 2) -> ArtifactExecutor:
    """The executor of a webgpu target."""
    return ArtifactExecutor(target, opt_level)


#: ``c`` is the host C target, x86_64: one executor under two names.
EXECUTORS: dict[str, Callable[[], object]] = {"reference": ReferenceExecutor, "c": CExecutor}


def load_artifact(path) -> Prepared:
    """``feeds -> outputs`` for a compiled artifact folder of any backend (from its manifest.json)."""
    import json
    from pathlib import Path

    from .errors import ArtifactError
    mf = Path(path) / "manifest.json"
    try:
        backend = json.loads(mf.read_text()).get("backend")
    except (OSError, ValueError):
        raise ArtifactError(f"{path} is not a bornc artifact (no readable manifest.json)") from None
    if backend == "multi":
        return load_first_runnable(path)
    if backend == "python":
        from .backends.python.runner import load_python_artifact
        return load_python_artifact(path)
    manifest = json.loads(mf.read_text())
    if backend == "webgpu":
        from .backends.webgpu.runner import load_webgpu_artifact
        return with_containers(load_webgpu_artifact(path), manifest)
    from .backends.c.runner import load_artifact as load_c
    return with_containers(load_c(path), manifest)


class Chosen:
    """``feeds -> outputs`` of the artifact a multi-target folder picked; ``target`` names it and ``passed_over``
    lists (target, reason) for those tried before it."""

    def __init__(self, run: Prepared, target: str, passed_over: list):
        self.run, self.target, self.passed_over = run, target, passed_over

    def __call__(self, feeds):
        return self.run(feeds)

    def summary(self) -> str:
        """One line: which target runs and why the ones before it were passed over."""
        why = "; ".join(f"{t}: {r}" for t, r in self.passed_over)
        return f"running on {self.target}" + (f" (passed over {why})" if why else "")


def runs_here(manifest: dict) -> str | None:
    """None when the C artifact of ``manifest`` runs natively on this machine, else why not (built for another
    architecture or for CPU features this one lacks; the rule of bornrt.py's ``c_runs_here``, which the folder's
    standalone loader applies too)."""
    from .pyrt import rt
    return rt.c_runs_here(manifest)


def missing_cpu_features(features) -> list[str]:
    """The target ``features`` this machine's CPU lacks, from /proc/cpuinfo's flags (Linux); [] where that file
    cannot be read."""
    from .pyrt import rt
    return rt.missing_cpu_features(features)


def load_first_runnable(path) -> Chosen:
    """The first artifact of a multi-target folder (``bornc compile --target webgpu,x86_64,python``; its
    manifest.json lists the targets in order of preference) that can run here: a WebGPU bundle when an adapter
    offers the limits and features it needs, a C library built for this machine's CPU that loads, a python
    artifact (numpy only). The choice is bornrt.py's ``load_first_runnable`` (what ``bornrt.load(folder)`` runs
    without bornc); here each artifact opens through bornc's own runners. ArtifactError when none can, with every
    reason."""
    import json
    from pathlib import Path

    from .errors import ArtifactError
    from .pyrt import rt

    def opener(sub):
        m = json.loads((Path(sub) / "manifest.json").read_text())
        why = runs_here(m) if m.get("backend") == "c" else None
        if why:
            raise ArtifactError(why)
        return load_artifact(sub)
    try:
        sel = rt.load_first_runnable(path, opener, (BorncError,))
    except rt.BornrtError as ex:
        raise ArtifactError(str(ex)) from None
    return Chosen(sel.model, sel.target, sel.passed_over)


def get_executor(name: str):
    """The executor for ``name``: 'reference', 'c' (the host C target, x86_64) or any target name or alias."""
    if name in EXECUTORS:
        return EXECUTORS[name]()
    from .targets import get_target
    try:
        t = get_target(name)
    except BorncError:
        raise BorncError(f"unknown executor {name!r}; use reference, c, or a target name (see `bornc targets`)") from None
    if t.backend == "reference":
        return ReferenceExecutor()
    if t.backend in ("c", "python", "webgpu"):
        return ArtifactExecutor(t.name)
    raise BorncError(f"target {t.name}: the {t.backend} backend is not implemented yet")
