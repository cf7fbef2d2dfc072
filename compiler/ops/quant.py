"""Quantization operators: QuantizeLinear, DequantizeLinear (per tensor, per axis, blocked), DynamicQuantizeLinear,
QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger.

Source: ONNX spec (opsets 10-24). Rounding is round-half-to-even, then saturation to the output type's range
(for float8 outputs: a saturating cast). Integer ops accumulate in int32.
"""
from __future__ import annotations

import numpy as np

from ..ir.types import np_dtype, onnx_elem_to_name
from ..pyrt import rt
from .nn import _spatial, check_kernel, conv_nchw
from .body import FunctionBody
from .registry import decomposition, register
from .tensor import cast_array


_expand_param = rt.expand_param


def _int_range(dt: np.dtype):
    name = np.dtype(dt).name
    if name == "int4":
        return -8, 7
    if name == "uint4":
        return 0, 15
    if name == "int2":
        return -2, 1
    if name == "uint2":
        return 0, 3
    info = np.iinfo(dt)
    return info.min, info.max


@register("QuantizeLinear", attrs={"axis": 1, "block_size": 0, "output_dtype": 0, "saturate": 1, "precision": 0},
          versions="10-24", props=("storage",))
def ref_quantizelinear(ctx, x, scale, zp=None):
    a = ctx.attrs
    if zp is not None:
        out_dt = zp.dtype
    elif a["output_dtype"]:
        out_dt = np_dtype(onnx_elem_to_name(a["output_dtype"]))
    else:
        out_dt = np.dtype(np.uint8)
    s = _expand_param(scale if scale.dtype.kind == "f" and scale.dtype.itemsize >= 4 else scale.astype(np.float32),
                      x, a["axis"], a["block_size"])
    y = rt.quantize_divide(x, s).astype(np.float64)          # in float32 unless an input is float64
    name = out_dt.name
    if name.startswith("float8") or name.startswith("float4"):
        if zp is not None:
            y = y + _expand_param(zp.astype(np.float32).astype(np.float64), x, a["axis"], a["block_size"])
        return cast_array(y.astype(np.float32), name, bool(a["saturate"]))
    y = np.round(y)
    if zp is not None:
        y = y + _expand_param(zp.astype(np.int64), x, a["axis"], a["block_size"])
    lo, hi = _int_range(out_dt)
    return np.clip(y, lo, hi).astype(np.int64).astype(out_dt)


@register("DequantizeLinear", attrs={"axis": 1, "block_size": 0, "output_dtype": 0}, versions="10-24", props=("storage",))
def ref_dequantizelinear(ctx, x, scale, zp=None):
    a = ctx.attrs
    xf = x.astype(np.float32).astype(np.float64) if x.dtype.kind not in "iu" else x.astype(np.int64)
    if zp is not None:
        zpf = zp.astype(np.float32).astype(np.float64) if zp.dtype.kind not in "iu" else zp.astype(np.int64)
        xf = xf - _expand_param(zpf, x, a["axis"], a["block_size"])
    y = xf * _expand_param(scale.astype(np.float64), x, a["axis"], a["block_size"])
    out_dt = np_dtype(onnx_elem_to_name(a["output_dtype"])) if a["output_dtype"] else scale.dtype
    return y.astype(np.float32).astype(out_dt)


@register("DynamicQuantizeLinear", versions="11-24")
def ref_dynamicquantizelinear(ctx, x):
    lo, hi = min(0.0, float(x.min())) if x.size else 0.0, max(0.0, float(x.max())) if x.size else 0.0
    scale = np.float32((hi - lo) / 255.0)
    zp = np.clip(np.round(0 - np.float32(lo) / scale), 0, 255) if scale != 0 else np.float32(0)
    y = np.clip(np.round(x / scale) + zp, 0, 255) if scale != 0 else np.zeros_like(x)
    return y.astype(np.uint8), np.array(scale, dtype=np.float32), np.array(zp, dtype=np.uint8)


def _requant(acc: np.ndarray, mult, y_zp, out_dt) -> np.ndarray:
    y = np.round(acc * mult)
    if y_zp is not None:
        y = y + y_zp.astype(np.int64)
    lo, hi = _int_range(out_dt)
    return np.clip(y, lo, hi).astype(out_dt)


_zp_shape = rt.zero_point_along


@register("MatMulInteger", versions="10-24")
def ref_matmulinteger(ctx, a, b, a_zp=None, b_zp=None):
    aa = a.astype(np.int64) - (_zp_shape(a_zp, a.ndim, -2) if a_zp is not None and a_zp.size > 1 else (0 if a_zp is None else a_zp.astype(np.int64).reshape(())))
    bb = b.astype(np.int64) - (0 if b_zp is None else (b_zp.astype(np.int64).reshape(()) if b_zp.size == 1 else b_zp.astype(np.int64)))
    return np.matmul(aa, bb).astype(np.int32)


@register("ConvInteger", attrs={"auto_pad": "NOTSET", "dilations": None, "group": 1, "kernel_shape": None, "pads": None,
                                "strides": None}, versions="10-24")
def ref_convinteger(ctx, x, w, x_zp=None, w_zp=None):
    check_kernel(ctx.node, ctx.attrs, x.shape, w.shape)
    xi = x.astype(np.int64) - (0 if x_zp is None else x_zp.astype(np.int64).reshape(()))
    wi = w.astype(np.int64) - (0 if w_zp is None else _zp_shape(w_zp, w.ndim, 0))
    kernel = list(ctx.attrs["kernel_shape"] or w.shape[2:])
    strides, dil, pads = _spatial(ctx.attrs, x.shape, kernel)
    # zero point padding: padded cells must read as the zero point, i.e. 0 after subtraction
    return conv_nchw(xi, wi, None, ctx.attrs["group"], strides, dil, pads).astype(np.int32)


@register("QLinearMatMul", versions="10-24")
def ref_qlinearmatmul(ctx, a, a_s, a_zp, b, b_s, b_zp, y_s, y_zp):
    acc = np.matmul(a.astype(np.int64) - a_zp.astype(np.int64), b.astype(np.int64) - _zp_shape(b_zp, b.ndim, -1))
    mult = a_s.astype(np.float64) * b_s.astype(np.float64) / y_s.astype(np.float64)
    return _requant(acc, mult, y_zp, y_zp.dtype)


@decomposition("QLinearMatMul")
def decompose_qlinearmatmul(node, opset, in_types):
    """MatMulInteger (exact int32 sums; float32 MatMul for a batched B), then the requantization of the reference: round(acc * a_s * b_s / y_s)
    + y_zp, clipped to the output type. The multiplier is computed in float32 here (float64 in the reference),
    so a product landing within float32 rounding of a .5 tie may round the other way."""
    if len(in_types) < 8 or in_types[7] is None or in_types[7].dtype not in ("uint8", "int8"):
        return None
    b = FunctionBody()
    f32 = lambda v: b.op("Cast", [v], to=1)  # noqa: E731
    if in_types[3] is not None and in_types[3].shape is not None and len(in_types[3].shape) == 2:
        acc = f32(b.op("MatMulInteger", ["a", "b", "a_zp", "b_zp"]))
    else:                 # a batched B: float32 sums of integer products (exact while K * 255^2 < 2^24)
        acc = b.op("MatMul", [b.op("Sub", [f32("a"), f32("a_zp")]), b.op("Sub", [f32("b"), f32("b_zp")])])
    mult = b.op("Div", [b.op("Mul", [f32("a_s"), f32("b_s")]), f32("y_s")])
    y = b.op("Add", [b.op("Round", [b.op("Mul", [acc, mult])]), f32("y_zp")])
    lo, hi = _int_range(np.dtype(in_types[7].dtype))
    y = b.op("Clip", [y, b.scalar(lo, np.float32), b.scalar(hi, np.float32)])
    b.op("Cast", [y], "y", to=3 if in_types[7].dtype == "int8" else 2)
    return b.function("QLinearMatMul", ["a", "a_s", "a_zp", "b", "b_s", "b_zp", "y_s", "y_zp"], ["y"])


@register("QLinearConv", attrs={"auto_pad": "NOTSET", "dilations": None, "group": 1, "kernel_shape": None, "pads": None,
                                "strides": None}, versions="10-24")
def ref_qlinearconv(ctx, x, x_s, x_zp, w, w_s, w_zp, y_s, y_zp, b=None):
    check_kernel(ctx.node, ctx.attrs, x.shape, w.shape)
    xi = x.astype(np.int64) - x_zp.astype(np.int64).reshape(())
    wi = w.astype(np.int64) - _zp_shape(w_zp, w.ndim, 0)
    kernel = list(ctx.attrs["kernel_shape"] or w.shape[2:])
    strides, dil, pads = _spatial(ctx.attrs, x.shape, kernel)
    acc = conv_nchw(xi, wi, None if b is None else b.astype(np.int64), ctx.attrs["group"], strides, dil, pads)
    ws = w_s.astype(np.float64)
    ws = ws.reshape((1, -1) + (1,) * (x.ndim - 2)) if ws.size > 1 else ws.reshape(())
    mult = x_s.astype(np.float64) * ws / y_s.astype(np.float64)
    return _requant(acc.astype(np.float64), mult, y_zp, y_zp.dtype)
