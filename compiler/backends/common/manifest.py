"""The manifest every artifact carries (``manifest.json``), built once for the three backends.

Common keys: format_version, bornc_version, backend, name, target, target_profile, source_model (file, path,
sha256), compile (opt_level, weights, schedule), inputs and outputs (name, dtype, shape, plus what the backend's
host needs), flops, arena_bytes, weights_bytes, weights_sha256, ops, nodes, plan (the memory plan's summary and
tensors), files. The budget (``compile.py``) and the backend's own section are added by their owners.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ... import __version__
from ...analysis import summarize
from ...ir.graph import Model
from ...targets import Target


def artifact_manifest(backend: str, model: Model, target: Target, *, name: str, source: str, opt_level: int, plan,
                      payload: bytes, inputs: list, outputs: list, ops: list, nodes: int, format_version: int,
                      profile: dict, weights: str = "file", arena_bytes: int | None = None, **extra) -> dict:
    """The common manifest of an artifact of ``backend`` for ``model`` (already optimized) on ``target``.

    ``plan``: the memory plan (bornc.memory.Plan); ``payload``: the weights bytes (their size and SHA-256 are
    recorded); ``inputs``/``outputs``: the backend's descriptions (dicts with at least name, dtype, shape);
    ``ops``/``nodes``: the op types and node count of the schedule; ``profile``: the target facts the artifact was
    built for; ``arena_bytes``: when not the plan's (bytes); ``extra``: the backend's own keys, added last."""
    src = Path(source) if source else None
    manifest = {
        "format_version": format_version, "bornc_version": __version__, "backend": backend, "name": name,
        "target": target.name, "target_profile": profile,
        "source_model": {"file": src.name if src else "", "path": str(src.resolve()) if src else "",
                         "sha256": model.source_sha256},
        "compile": {"opt_level": opt_level, "weights": weights, "schedule": plan.schedule_name},
        "inputs": inputs, "outputs": outputs,
        "flops": summarize(model)["flops"],
        "arena_bytes": plan.arena_bytes if arena_bytes is None else arena_bytes, "weights_bytes": len(payload),
        "weights_sha256": hashlib.sha256(payload).hexdigest(),
        "ops": sorted(set(ops)), "nodes": nodes,
        "plan": {**plan.summary(), "tensors": plan.to_json()["tensors"]},
    }
    if model.containers:
        manifest["containers"] = {k: {"kind": kind, "elements": list(names), "role": role}
                                  for k, (kind, names, role) in model.containers.items()}
    manifest.update(extra)
    return manifest


def write_manifest(out, manifest: dict, self_test: dict | None = None, inputs: list = (), outputs: list = ()) -> dict:
    """Finish an artifact folder: ``selftest.npz`` (in_<k>/out_<k> arrays and their tolerances in the manifest) when
    ``self_test`` is given (else a stale one is removed), the file list, and ``manifest.json``. Returns the manifest."""
    out = Path(out)
    if self_test:
        arrays = {f"in_{k}": np.asarray(self_test["inputs"][v]) for k, v in enumerate(inputs)}
        arrays.update({f"out_{k}": np.asarray(self_test["outputs"][v]) for k, v in enumerate(outputs)})
        np.savez(out / "selftest.npz", **arrays)
        manifest["self_test"] = {"rtol": float(self_test.get("rtol", 1e-3)), "atol": float(self_test.get("atol", 1e-4))}
    elif (out / "selftest.npz").exists():
        (out / "selftest.npz").unlink()
    manifest["files"] = sorted(p.name for p in out.iterdir() if p.is_file()) + ["manifest.json"]
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


__all__ = ["artifact_manifest", "write_manifest"]
