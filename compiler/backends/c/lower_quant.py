"""C lowerings of QuantizeLinear and DequantizeLinear (ONNX opsets 10-24): per tensor, per axis and blocked.

QuantizeLinear: y = saturate(round_half_even(x / scale) + zero_point), computed in double as the reference does;
to float8 outputs, x / scale + zero_point is encoded (saturating unless ``saturate`` = 0). DequantizeLinear:
y = (x - zero_point) * scale. int4/int2 values are read and written in their one-per-byte bit layout.
"""
from __future__ import annotations

import numpy as np

from ...ops.registry import lowering
from .ctypes_ import HALF, NARROW_INT, SMALL_FLOAT
from ..common.small_float import small_float_table
from .lower_elementwise import _c_float
from .lowering import Lowered, CCtx, Stage


def _geometry(ctx: CCtx) -> dict:
    """outer, D, inner around the quantization axis, and the C index of the scale / zero point for element
    (o, c, i): 0 per tensor, c per axis, (o * ceil(D / B) + c / B) * inner + i blocked."""
    xs = ctx.shape(0)
    ss = ctx.shape(1)
    if not xs:
        return {"outer": 1, "D": 1, "inner": 1, "qidx": "0"}
    ax = ctx.attrs["axis"] % len(xs)
    outer, d, inner = int(np.prod(xs[:ax], dtype=np.int64)), xs[ax], int(np.prod(xs[ax + 1:], dtype=np.int64))
    n_scale = int(np.prod(ss, dtype=np.int64)) if ss else 1
    block = ctx.attrs.get("block_size") or 0
    if n_scale == 1:
        qidx = "0"
    elif block:
        qidx = f"(o * {-(-d // block)}u + c / {block}u) * {inner}u + i"
    else:
        qidx = "c"
    return {"outer": outer, "D": d, "inner": inner, "qidx": qidx}


def _load(dtype: str, expr: str, tables: list, name: str) -> str:
    """C expression (double) of the value stored as ``expr`` in ``dtype``."""
    if dtype in SMALL_FLOAT:
        info = small_float_table(dtype)
        tables.append({"name": name, "data": [_c_float(v) for v in info["values"]]})
        return f"(double){name}[{expr} & {info['mask']}u]"
    if dtype in NARROW_INT:
        bits, signed = NARROW_INT[dtype]
        return f"(double)bornc_sext({expr}, {bits})" if signed else f"(double)({expr} & {(1 << bits) - 1}u)"
    if dtype in HALF:
        return f"(double){HALF[dtype][0]}({expr})"
    return f"(double)({expr})"


def _operands(ctx: CCtx):
    """Geometry, decode tables and the C expressions (double) of x, scale and zero point for element p."""
    tables: list = []
    g = _geometry(ctx)
    x = _load(ctx.ins[0].dtype, "X0[p]", tables, "dec_x")
    s = _load(ctx.ins[1].dtype, f"X1[{g['qidx']}]", tables, "dec_s")
    zp = _load(ctx.ins[2].dtype, f"X2[{g['qidx']}]", tables, "dec_z") if ctx.has(2) else "0.0"
    return g, tables, x, s, zp


def _per_tensor(ctx: CCtx, quantized: str) -> Lowered | None:
    """The flat-loop form for float32 <-> uint8/int8 with a constant scalar scale and zero point."""
    q = ctx.ins[0].dtype if quantized == "in" else ctx.outs[0].dtype
    f = ctx.outs[0].dtype if quantized == "in" else ctx.ins[0].dtype
    s = ctx.consts[1]
    z = ctx.consts[2] if ctx.has(2) else np.zeros((), np.uint8)
    if q not in ("uint8", "int8") or f != "float32" or s is None or z is None or s.size != 1 or z.size != 1 \
            or s.dtype != np.float32:
        return None
    info = np.iinfo(np.dtype(q))
    return Lowered([Stage("quantize_tensor", {"count": int(np.prod(ctx.shape(0), dtype=np.int64)),
                                              "dequantize": quantized == "in", "scale": repr(float(s.reshape(-1)[0])),
                                              "zp": int(z.reshape(-1)[0]), "lo": int(info.min), "hi": int(info.max),
                                              "T": ctx.oct() if quantized == "out" else ctx.ct(0)})], [0])


@lowering("c", "QuantizeLinear")
def _quantize(ctx: CCtx) -> Lowered:
    dst = ctx.outs[0].dtype
    fast = _per_tensor(ctx, "out")
    if fast is not None:
        return fast
    g, tables, x, s, zp = _operands(ctx)
    if "float64" not in (ctx.ins[0].dtype, ctx.ins[1].dtype):     # x / scale in float32, as the reference
        q = f"(double)((float){x} / (float){s})"
    else:
        q = f"{x} / {s}"
    if dst in SMALL_FLOAT:
        info = small_float_table(dst)
        tables.append({"name": "dec_y", "data": [_c_float(v) for v in info["values"]]})
        store = (f"bornc_encode_small_float((float)(v), dec_y, {info['maxcode']}u, {info['signbit']}u, {info['nan']}u, "
                 f"{info['pos_over']}u, {info['neg_over']}u, {info['neg_zero']}u, {int(bool(ctx.attrs['saturate']))})")
        body = [f"const double v = {q} + {zp};"]
    else:
        if dst in NARROW_INT:
            bits, signed = NARROW_INT[dst]
            lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
            store = f"(uint8_t)((unsigned)(int)v & {(1 << bits) - 1}u)"
        else:
            info = np.iinfo(np.dtype(dst))
            lo, hi = int(info.min), int(info.max)
            store = f"({ctx.oct()})v"
        body = [f"double v = rint({q}) + {zp};",
                f"v = v < {float(lo)!r} ? {float(lo)!r} : (v > {float(hi)!r} ? {float(hi)!r} : v);"]
    return Lowered([Stage("quantize", {**g, "tables": tables, "body": body, "store": store})],
                   [k for k in range(3) if ctx.has(k)])


def _per_axis_dequantize(ctx: CCtx) -> Lowered | None:
    """The flat form of an int8/uint8 -> float32 DequantizeLinear along one axis with constant scales."""
    s, z = ctx.consts[1], ctx.consts[2] if ctx.has(2) else None
    if ctx.ins[0].dtype not in ("uint8", "int8") or ctx.outs[0].dtype != "float32" or s is None or s.ndim != 1 \
            or s.dtype != np.float32 or (ctx.has(2) and z is None) or ctx.attrs.get("block_size") or not ctx.shape(0):
        return None
    g = _geometry(ctx)
    if g["qidx"] != "c" or s.size != g["D"]:
        return None
    zps = [int(v) for v in np.asarray(z).reshape(-1)] if z is not None and np.any(z) else None
    return Lowered([Stage("dequantize_axis", {**g, "scales": [repr(float(v)) + "f" for v in s], "zps": zps,
                                              "T": ctx.ct(0)})], [0])


@lowering("c", "DequantizeLinear")
def _dequantize(ctx: CCtx) -> Lowered:
    dst = ctx.outs[0].dtype
    fast = _per_tensor(ctx, "in") or _per_axis_dequantize(ctx)
    if fast is not None:
        return fast
    g, tables, x, s, zp = _operands(ctx)
    body = [f"const float v = (float)(({x} - {zp}) * {s});"]
    store = f"{HALF[dst][1]}(v)" if dst in HALF else f"({ctx.oct()})v"
    return Lowered([Stage("quantize", {**g, "tables": tables, "body": body, "store": store})],
                   [k for k in range(3) if ctx.has(k)])


# ------------------------------------------------------------------ ONNX integer ops with run-time parameters
def _param(ctx: CCtx, i: int, index: str, default: str = "0") -> str:
    """C expression of parameter input i (a scale or zero point): scalar, or indexed by ``index`` when it has
    more than one element; ``default`` when absent."""
    if not ctx.has(i):
        return default
    return f"X{i}[0]" if int(np.prod(ctx.shape(i), dtype=np.int64)) <= 1 else f"X{i}[{index}]"


def _int_conv(ctx: CCtx, requant: bool) -> Lowered:
    from .lower_nn import conv_window
    geo = conv_window(ctx, 3 if requant else 1)
    p = {**geo, "requant": requant, "T": ctx.oct()}
    if requant:
        info = np.iinfo(np.dtype(ctx.outs[0].dtype))
        p.update({"xzp": _param(ctx, 2, "0"), "wi": 3, "wzp": _param(ctx, 5, "m"), "xs": _param(ctx, 1, "0"),
                  "ws": _param(ctx, 4, "m"), "ys": _param(ctx, 6, "0"), "yzp": _param(ctx, 7, "0"),
                  "lo": int(info.min), "hi": int(info.max), "has_bias": ctx.has(8)})
    else:
        p.update({"xzp": _param(ctx, 2, "0"), "wi": 1, "wzp": _param(ctx, 3, "m")})
    return Lowered([Stage("int_conv", p)], [k for k in range(len(ctx.node.inputs)) if ctx.has(k)])


def _int_matmul(ctx: CCtx, requant: bool) -> Lowered:
    bi = 3 if requant else 1
    a, b = ctx.shape(0), ctx.shape(bi)
    if len(a) < 2 or len(b) < 2 or (len(b) > 2 and tuple(b[:-2]) != tuple(a[:-2])):
        raise ctx.unsupported("integer MatMul with broadcast batch dimensions in C")
    m, k = a[-2], a[-1]
    nn = b[-1]
    batch = int(np.prod(a[:-2], dtype=np.int64))
    p = {"BATCH": batch, "M": m, "K": k, "N": nn, "a_batch": f"{m * k}u", "b_batch": f"{k * nn}u" if len(b) > 2 else "0u",
         "bi": bi, "requant": requant, "T": ctx.oct()}
    if requant:
        info = np.iinfo(np.dtype(ctx.outs[0].dtype))
        p.update({"azp": _param(ctx, 2, "i"), "bzp": _param(ctx, 5, "j"), "as_": _param(ctx, 1, "i"),
                  "bs": _param(ctx, 4, "j"), "ys": _param(ctx, 6, "0"), "yzp": _param(ctx, 7, "0"),
                  "lo": int(info.min), "hi": int(info.max)})
    else:
        p.update({"azp": _param(ctx, 2, "i"), "bzp": _param(ctx, 3, "j")})
    return Lowered([Stage("int_matmul", p)], [i for i in range(len(ctx.node.inputs)) if ctx.has(i)])


lowering("c", "ConvInteger")(lambda ctx: _int_conv(ctx, False))
lowering("c", "QLinearConv")(lambda ctx: _int_conv(ctx, True))
lowering("c", "MatMulInteger")(lambda ctx: _int_matmul(ctx, False))
lowering("c", "QLinearMatMul")(lambda ctx: _int_matmul(ctx, True))


@lowering("c", "DynamicQuantizeLinear")
def _dynamic_quantize(ctx: CCtx) -> Lowered:
    if ctx.ins[0].dtype != "float32":
        raise ctx.unsupported(f"{ctx.ins[0].dtype} input in C")
    return Lowered([Stage("dynamic_quantize", {"count": int(np.prod(ctx.shape(0), dtype=np.int64))})], [0])
