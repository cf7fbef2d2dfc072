"""Executors: run a model on this machine and return numpy outputs, whatever the target.

``bornc run``, ``bornc golden check``, ``bornc conformance`` and ``bornc bench`` all go through
:func:`get_executor`, so every target is tested the same way: ``reference`` is the numpy interpreter; a target
of the C backend compiles the model (opt level 2) into a temporary artifact, builds it with the target's
toolchain and runs it in-process (host) or under qemu-user (Raspberry Pi targets).
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


class CExecutor:
    """Compile for a C target into a temporary folder (removed at exit), build, and run the artifact."""

    def __init__(self, target: str = "x86_64", opt_level: int = 2, sanitize: bool = False):
        from .targets import get_target
        self.target = get_target(target)
        self.name = self.target.name
        self.opt_level = opt_level
        self.sanitize = sanitize

    def prepare(self, model: Model, name: str = "model") -> Prepared:
        from .backends.c import compile_c
        from .backends.c.build import build
        from .backends.c.runner import Subprocess, load_artifact
        from .passes.pipeline import optimize
        folder = tempfile.mkdtemp(prefix=f"bornc-{self.name}-")
        atexit.register(shutil.rmtree, folder, True)
        compile_c(optimize(model, self.opt_level), self.target, folder, name=name, opt_level=self.opt_level)
        build(folder, self.target, name, sanitize=self.sanitize)
        if self.sanitize:
            import json
            from pathlib import Path
            return Subprocess(Path(folder), json.loads((Path(folder) / "manifest.json").read_text()))
        return load_artifact(folder)


class PythonExecutor:
    """Compile for the python target (one-file numpy runtime over a planned arena) into a temporary folder and
    run it in-process. Ops bornrt.py lacks are expanded into their ONNX function bodies at import (``expand``)."""

    name = "python"

    def __init__(self, opt_level: int = 2):
        from .backends.python import lacks_python_kernel
        self.opt_level = opt_level
        self.expand = lacks_python_kernel

    def prepare(self, model: Model, name: str = "model") -> Prepared:
        from .backends.python import compile_python
        from .backends.python.runner import load_python_artifact
        from .passes.pipeline import optimize
        from .pyrt import rt
        from .targets import get_target
        folder = tempfile.mkdtemp(prefix="bornc-python-")
        atexit.register(shutil.rmtree, folder, True)
        compile_python(optimize(model, self.opt_level), get_target("python"), folder, name=name, opt_level=self.opt_level)
        return load_python_artifact(folder, shared_runtime=rt)


class WebGPUExecutor:
    """Compile for the webgpu target into a temporary folder and run the bundle in-process through wgpu (one device
    per process, shared by every bundle). Ops without a WGSL kernel are expanded into their function bodies."""

    name = "webgpu"
    static = True           # conformance binds small shape-deciding inputs, as for C

    def __init__(self, target: str = "webgpu", opt_level: int = 2):
        from .backends.webgpu import lacks_webgpu_kernel
        from .targets import get_target
        self.target = get_target(target)
        self.name = self.target.name
        self.opt_level = opt_level
        self.expand = lacks_webgpu_kernel

    def prepare(self, model: Model, name: str = "model") -> Prepared:
        from .backends.webgpu import compile_webgpu
        from .backends.webgpu.runner import load_webgpu_artifact
        from .passes.pipeline import optimize
        from .targets import get_target
        folder = tempfile.mkdtemp(prefix="bornc-webgpu-")
        atexit.register(shutil.rmtree, folder, True)
        compile_webgpu(optimize(model, self.opt_level), self.target, folder, name=name, opt_level=self.opt_level)
        return load_webgpu_artifact(folder)


EXECUTORS: dict[str, Callable[[], object]] = {"reference": ReferenceExecutor, "c": CExecutor, "python": PythonExecutor,
                                              "webgpu": WebGPUExecutor}


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
    if backend == "python":
        from .backends.python.runner import load_python_artifact
        return load_python_artifact(path)
    if backend == "webgpu":
        from .backends.webgpu.runner import load_webgpu_artifact
        return load_webgpu_artifact(path)
    from .backends.c.runner import load_artifact as load_c
    return load_c(path)


def get_executor(name: str):
    """The executor for ``name``: 'reference', 'c' (host C target) or any target name or alias."""
    if name in EXECUTORS:
        return EXECUTORS[name]()
    from .targets import get_target
    try:
        t = get_target(name)
    except BorncError:
        raise BorncError(f"unknown executor {name!r}; use reference, c, or a target name (see `bornc targets`)") from None
    if t.backend == "reference":
        return ReferenceExecutor()
    if t.backend == "c":
        return CExecutor(t.name)
    if t.backend == "python":
        return PythonExecutor()
    if t.backend == "webgpu":
        return WebGPUExecutor(t.name)
    raise BorncError(f"target {t.name}: the {t.backend} backend is not implemented yet")
