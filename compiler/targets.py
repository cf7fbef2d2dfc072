"""Targets are data: ``targets/*.toml`` files describe each device (backend, triple, compiler and flags,
features, alignment, how to run on this machine, Debian packages for the tools, memory budget).

``status`` tells whether bornc can build and run for a target here: the backend must be implemented and the
tools present; otherwise it names what is missing (the Debian package to install).
"""
from __future__ import annotations

import functools
import shutil
import tomllib
from dataclasses import dataclass, field

from .errors import BorncError
from .resources import resource_dir

#: Backends implemented so far (target backends register here as they land).
IMPLEMENTED_BACKENDS = {"reference", "c", "python", "webgpu"}


@dataclass(frozen=True)
class Target:
    """One target description, as read from its TOML file (unknown keys kept in ``extra``)."""

    name: str
    backend: str
    description: str = ""
    aliases: tuple = ()
    triple: str = ""
    cc: str = ""
    cflags: tuple = ()
    features: tuple = ()
    alignment: int = 16
    run: str = ""
    qemu: str = ""
    debian_packages: tuple = ()
    ram_bytes: int = 0
    flash_bytes: int = 0
    io_in_arena: bool = False    # model inputs/outputs planned inside the arena (else caller-owned)
    cores: int = 1               # threads a C artifact runs on by default; 0: this machine's cores
    bare_metal: bool = False     # no OS (Cortex-M): no threads, files or heap; weights embedded; run under qemu-system
    stack_bytes: int = 0         # stack the linker script reserves (bare metal), bytes
    extra: dict = field(default_factory=dict)

    def default_threads(self) -> int:
        """Threads a C artifact for this target is compiled for when ``--threads`` is not given: the ``cores``
        field, or this machine's CPU count (os.sched_getaffinity) when it is 0 (the host target)."""
        import os
        if self.cores > 0:
            return self.cores
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

    def status(self) -> str:
        """'ready', or why not: backend not implemented yet / which tool (and Debian package) is missing."""
        if self.backend not in IMPLEMENTED_BACKENDS:
            return f"planned ({self.backend} backend not implemented yet)"
        if self.backend == "webgpu":
            import importlib.util
            if importlib.util.find_spec("wgpu") is None:
                return "missing the wgpu Python package (pip install wgpu)"
        missing = [t for t in (self.cc, self.qemu) if t and shutil.which(t) is None]
        if not missing and self.bare_metal and not _has_newlib(self.cc):
            missing = ["newlib for " + self.triple]
        if missing:
            return f"missing {', '.join(missing)} (apt-get install {' '.join(self.debian_packages)})"
        return "ready"


@functools.lru_cache(maxsize=None)
def _has_newlib(cc: str) -> bool:
    """Whether the bare-metal compiler ``cc`` finds newlib's semihosting library (librdimon.a), which the runner
    links (Debian package libnewlib-arm-none-eabi)."""
    import subprocess
    r = subprocess.run([cc, "-print-file-name=librdimon.a"], capture_output=True, text=True)
    return r.returncode == 0 and "/" in r.stdout


_FIELDS = set(Target.__dataclass_fields__) - {"extra"}


def load_targets() -> dict[str, Target]:
    """All targets keyed by name (aliases not included)."""
    out = {}
    for p in sorted(resource_dir("targets").glob("*.toml")):
        data = tomllib.loads(p.read_text())
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in _FIELDS}
        kw["extra"] = {k: v for k, v in data.items() if k not in _FIELDS}
        out[data["name"]] = Target(**kw)
    return out


def get_target(name: str) -> Target:
    """Target by name or alias; BorncError listing the known names otherwise."""
    targets = load_targets()
    for t in targets.values():
        if name == t.name or name in t.aliases:
            return t
    raise BorncError(f"unknown target {name!r}; known: {', '.join(sorted(targets))} (see `bornc targets`)")
