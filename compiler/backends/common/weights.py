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


__all__ = ["WEIGHT_ALIGN", "weights_layout_of", "weights_file_image"]
