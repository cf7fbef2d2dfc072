"""Run a python artifact here: load the artifact's own ``bornrt.py`` (exactly what ships to the device) and
call it in-process. Runtime errors become bornc errors (wrong input: InputError; failing kernel: KernelError;
bad artifact: ArtifactError)."""
from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path

from ...errors import ArtifactError, InputError, KernelError

_COUNTER = itertools.count()


def load_runtime(path: Path):
    """Import ``path`` (a bornrt.py) as a fresh module."""
    spec = importlib.util.spec_from_file_location(f"bornrt_artifact_{next(_COUNTER)}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class PythonArtifact:
    """``feeds -> outputs`` over a loaded python artifact; ``model`` is the bornrt.Model."""

    def __init__(self, rt, folder: Path):
        self.rt = rt
        try:
            self.model = rt.load(str(folder))
        except rt.BornrtError as ex:
            raise ArtifactError(str(ex)) from None
        self.manifest = self.model.manifest
        #: int4/int2 and bfloat16/float8 inputs and outputs: ml_dtypes arrays here, the runtime's storage inside
        #: (int4 values one per byte, bit-pattern floats as their bits)
        self.narrow = {t["name"]: t["dtype"] for t in self.manifest["inputs"] + self.manifest["outputs"]
                       if t["dtype"] in rt.STORAGE or t["dtype"] in rt.FLOAT_BITS}

    def _to_runtime(self, v, dtype):
        v = v if hasattr(v, "dtype") else __import__("numpy").asarray(v)
        return v.view(self.rt.FLOAT_BITS[dtype]) if dtype in self.rt.FLOAT_BITS else v.astype(self.rt.storage_dtype(dtype))

    def __call__(self, feeds, copy: bool = True) -> dict:
        narrow = self.narrow
        if narrow:
            from ...ir.types import np_dtype
            feeds = {k: (self._to_runtime(v, narrow[k]) if k in narrow else v) for k, v in feeds.items()}
        try:
            res = self.model.run(feeds, copy=copy)
            if narrow:
                res = {k: ((v.view if narrow[k] in self.rt.FLOAT_BITS else v.astype)(np_dtype(narrow[k]))
                           if k in narrow else v) for k, v in res.items()}
            return res
        except self.rt.BornrtError as ex:
            msg = str(ex)
            raise (KernelError if msg.startswith("kernel failed") else InputError)(msg) from None


def load_python_artifact(path: str | Path, shared_runtime=None) -> PythonArtifact:
    """Load the python artifact in ``path``; ``shared_runtime`` (a loaded bornrt module) skips importing the
    artifact's copy, as the conformance run does for its thousands of tiny artifacts."""
    art = Path(path)
    mf = art / "manifest.json"
    if not mf.is_file():
        raise ArtifactError(f"{art} is not a bornc artifact (no manifest.json)")
    manifest = json.loads(mf.read_text())
    if manifest.get("backend") != "python":
        raise ArtifactError(f"{art}: not a python artifact (backend {manifest.get('backend')})")
    rt = shared_runtime or load_runtime(art / "bornrt.py")
    return PythonArtifact(rt, art)
