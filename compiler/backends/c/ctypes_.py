"""C spellings of IR dtypes and of scalar literals."""
from __future__ import annotations

import math

import numpy as np

from ...errors import UnsupportedOpError
from ...ops import registry

C_TYPES = {"float32": "float", "float64": "double", "int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t",
           "uint16": "uint16_t", "int32": "int32_t", "uint32": "uint32_t", "int64": "int64_t", "uint64": "uint64_t",
           "bool": "uint8_t", "float16": "uint16_t", "bfloat16": "uint16_t"}
#: Narrow integers (bits, signed) and small floats held one per uint8_t in their ml_dtypes bit layout: stored,
#: moved and converted (Cast), never computed on.
NARROW_INT = {"int4": (4, True), "uint4": (4, False), "int2": (2, True), "uint2": (2, False)}
SMALL_FLOAT = {"float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float4_e2m1fn"}
#: float8_e8m0fnu: a power-of-two exponent per uint8_t (bornc_e8m0_to_f / bornc_f_to_e8m0 in bornrt.h)
E8M0 = "float8_e8m0fnu"
STORAGE_ONLY = set(NARROW_INT) | SMALL_FLOAT | {E8M0}
#: dtypes stored as uint16_t bits and computed in float, with these load / store conversions.
HALF = {"float16": ("bornc_h2f", "bornc_f2h"), "bfloat16": ("bornc_b2f", "bornc_f2b")}
#: bornc_dtype_t enumerators (ONNX TensorProto numbers) by dtype name.
C_DTYPE_ENUM = {"float32": "BORNC_FLOAT32", "float64": "BORNC_FLOAT64", "int8": "BORNC_INT8", "uint8": "BORNC_UINT8",
                "int16": "BORNC_INT16", "uint16": "BORNC_UINT16", "int32": "BORNC_INT32", "uint32": "BORNC_UINT32",
                "int64": "BORNC_INT64", "uint64": "BORNC_UINT64", "bool": "BORNC_BOOL", "float16": "BORNC_FLOAT16",
                "bfloat16": "BORNC_BFLOAT16", "float8_e4m3fn": "BORNC_FLOAT8E4M3FN",
                "float8_e4m3fnuz": "BORNC_FLOAT8E4M3FNUZ", "float8_e5m2": "BORNC_FLOAT8E5M2",
                "float8_e5m2fnuz": "BORNC_FLOAT8E5M2FNUZ", "uint4": "BORNC_UINT4", "int4": "BORNC_INT4",
                "float4_e2m1fn": "BORNC_FLOAT4E2M1", "uint2": "BORNC_UINT2", "int2": "BORNC_INT2",
                "float8_e8m0fnu": "BORNC_FLOAT8E8M0"}


def ctype(dtype: str, node=None) -> str:
    """C type of a dtype; UnsupportedOpError (naming the node) for dtypes the C backend lacks."""
    if dtype in STORAGE_ONLY:
        if node is not None and not registry.has(node.op, "storage", node.domain):
            raise UnsupportedOpError({f"{node.op} on {dtype}": [node.name]})
        return "uint8_t"
    if dtype not in C_TYPES:
        raise UnsupportedOpError({f"{node.op if node is not None else 'value'} on {dtype}": [node.name if node is not None else "?"]})
    return C_TYPES[dtype]


def literal(value, dtype: str) -> str:
    """An exact C literal of ``value`` in ``dtype`` (floats as C99 hex floats, so no decimal rounding)."""
    if dtype in ("float32", "float64"):
        v = float(np.float32(value)) if dtype == "float32" else float(value)
        if math.isnan(v):
            return "(0.0f/0.0f)" if dtype == "float32" else "(0.0/0.0)"
        if math.isinf(v):
            return ("-" if v < 0 else "") + ("HUGE_VALF" if dtype == "float32" else "HUGE_VAL")
        return v.hex() + ("f" if dtype == "float32" else "")
    if dtype == "bool":
        return "1" if value else "0"
    if dtype in ("float16", "bfloat16"):
        bits = np.array([value], dtype=np.float32).astype(np.float16).view(np.uint16)[0] if dtype == "float16" else \
            int(np.array([value], dtype=np.float32).view(np.uint32)[0] + 0x7fff + ((np.array([value], dtype=np.float32).view(np.uint32)[0] >> 16) & 1)) >> 16
        return f"(uint16_t){int(bits):#06x}u"
    v = int(value)
    if dtype == "int64":
        return f"INT64_C({v})" if v >= -(2 ** 63) + 1 else "INT64_MIN"
    if dtype == "uint64":
        return f"UINT64_C({v})"
    if dtype == "int32" and v == -(2 ** 31):
        return "INT32_MIN"
    return str(v) + ("u" if dtype.startswith("uint") else "")
