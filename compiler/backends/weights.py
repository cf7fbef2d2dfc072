"""The weights payload shared by every backend: constants packed at 64-byte aligned offsets, and the
``weights.bin`` image (64-byte header: magic ``BORNCWT1``, format version, header bytes, payload bytes,
SHA-256 of the payload; then the payload) that the C and Python runtimes verify before use."""
from __future__ import annotations

import hashlib
import struct

import numpy as np

WEIGHT_ALIGN = 64


def weights_layout_of(constants: dict, used: list[str]) -> tuple[dict[str, int], bytes]:
    """Offsets (64-byte aligned) of the used constants in one payload, and the payload bytes."""
    offsets, chunks, pos = {}, [], 0
    for name in used:
        arr = np.ascontiguousarray(constants[name])
        pad = (-pos) % WEIGHT_ALIGN
        chunks.append(b"\0" * pad)
        pos += pad
        offsets[name] = pos
        data = arr.tobytes()
        chunks.append(data)
        pos += len(data)
    pad = (-pos) % WEIGHT_ALIGN
    chunks.append(b"\0" * pad)
    return offsets, b"".join(chunks)


def weights_file_image(payload: bytes) -> bytes:
    """weights.bin: 64-byte header (magic, version, header size, payload size, SHA-256) then the payload."""
    header = b"BORNCWT1" + struct.pack("<IIQ", 1, 64, len(payload)) + hashlib.sha256(payload).digest()
    return header + b"\0" * (64 - len(header)) + payload


def write_manifest(out, manifest: dict, self_test: dict | None, inputs: list, outputs: list) -> dict:
    """Finish an artifact folder: ``selftest.npz`` (in_<k>/out_<k> arrays and their tolerances in the manifest) when
    ``self_test`` is given (else a stale one is removed), the file list, and ``manifest.json``. Returns the manifest."""
    import json
    from pathlib import Path
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
