"""Small float formats (float8 and float4) as tables: what the C and python backends encode and decode them by.

The ONNX spec (section "Float stored in 8 bits" / "4 bits") defines the formats; the values of every code are
read from ml_dtypes at compile time, so the device needs neither ml_dtypes nor code of ours for the formats.
"""
from __future__ import annotations

import numpy as np

from ...ir.types import np_dtype

#: the small float formats, stored one code per byte
SMALL_FLOAT = ("float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float4_e2m1fn")


def small_float_table(dtype: str) -> dict:
    """Decode table and encoder constants of a small float format, read from ml_dtypes at compile time: the
    value of every code, the sign bit, the largest finite positive code, and the codes ml_dtypes gives NaN,
    overflow (not saturating) and -0 (ONNX spec, "Float stored in 8 bits" / "4 bits")."""
    t = np_dtype(dtype)
    n = 16 if dtype == "float4_e2m1fn" else 256
    vals = np.arange(n, dtype=np.uint8).view(t).astype(np.float32)
    sign = n // 2
    pos = vals[:sign]
    maxcode = 0
    while maxcode + 1 < sign and np.isfinite(pos[maxcode + 1]) and pos[maxcode + 1] > pos[maxcode]:
        maxcode += 1

    def code(v):
        return int(np.array([v], np.float32).astype(t).view(np.uint8)[0])
    return {"values": vals, "maxcode": maxcode, "signbit": sign, "nan": code(np.nan), "pos_over": code(3e38),
            "neg_over": code(-3e38), "neg_zero": code(-0.0), "mask": n - 1}
