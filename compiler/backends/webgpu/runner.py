"""Load a WebGPU bundle in this process through runtime/webgpu/bornrt_webgpu.py (the same file the bundle ships)."""
from __future__ import annotations

import importlib.util

from ...errors import ArtifactError, InputError
from ...resources import resource_dir

_RT = None


def host():
    """The bornrt_webgpu module shipped in runtime/webgpu (imported once)."""
    global _RT
    if _RT is None:
        spec = importlib.util.spec_from_file_location("bornrt_webgpu", resource_dir("runtime") / "webgpu" / "bornrt_webgpu.py")
        _RT = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_RT)
    return _RT


def load_webgpu_artifact(folder):
    """``feeds -> outputs`` for a WebGPU bundle; ArtifactError for a bad bundle or device, InputError for bad feeds."""
    rt = host()
    try:
        m = rt.Model(folder)
    except rt.BundleError as ex:
        raise ArtifactError(str(ex)) from None

    def run(feeds):
        try:
            return m.run(dict(feeds))
        except rt.BundleError as ex:
            raise InputError(str(ex)) from None
    run.model = m
    return run
