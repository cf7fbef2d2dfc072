"""onnxruntime's quantized contrib operators (domain com.microsoft): the QLinear* ops of its static quantizer,
QGemm, the dynamic-quantization ops (DynamicQuantizeMatMul, MatMulIntegerToFloat, DynamicQuantizeLSTM) and
MatMulNBits (4-bit blocked weights of edge LLM exports).

Spec: onnxruntime's docs/ContribOperators.md; onnxruntime's CPU EP is the oracle (tests/ops/test_contrib.py).
Reference kernels dequantize as (q - zero_point) * scale and quantize as saturate(round_half_even(y / scale) +
zero_point), in float32 as onnxruntime does; decompositions spell the same with DequantizeLinear, the float op and
QuantizeLinear (integer kernels of onnxruntime round once per output; results may differ by one step where a
float32 product lands on a tie). Weights stay constant through the decompositions, so MatMulNBits and
DynamicQuantizeLSTM weights are dequantized at compile time by constant folding.
"""
from __future__ import annotations

import numpy as np
from onnx import helper

from ..ir.types import np_dtype
from ..pyrt import rt
from .contrib import MS, _Body, _attr, _inputs, _typed
from .registry import decomposition, register


def _deq(q, scale, zp=None) -> np.ndarray:
    """(q - zp) * scale in float32; scale and zp scalars or broadcastable."""
    z = np.zeros((), np.float32) if zp is None else np.asarray(zp).astype(np.float32)
    return (np.asarray(q).astype(np.float32) - z) * np.asarray(scale).astype(np.float32)


def _quant(y, scale, zp, like) -> np.ndarray:
    """saturate(round_half_even(y / scale) + zp) in float32, of zp's dtype (else ``like``'s)."""
    dt = np.asarray(zp).dtype if zp is not None else np.asarray(like).dtype
    info = np.iinfo(dt)
    z = np.float32(0) if zp is None else np.asarray(zp).astype(np.float32)
    v = np.rint(np.asarray(y, np.float32) / np.asarray(scale, np.float32)) + z
    return np.clip(v, info.min, info.max).astype(dt)


def _zp_or_zero(b: _Body, node, k: int, like_dtype) -> str:
    """Input k (a zero point) when the node has it, else a zero constant of ``like_dtype``."""
    return f"i{k}" if len(node.input) > k and node.input[k] else b.const(np.zeros((), like_dtype))


# ---------------------------------------------------------------------------------------------------- QLinear*
def _qlinear(name: str, n: int, fn, attrs=None):
    """QLinearAdd/Mul (n = 2) and QLinearSigmoid/LeakyRelu (n = 1): inputs (X, X_scale, X_zero_point) per operand,
    then Y_scale, Y_zero_point; the float op between DequantizeLinear and QuantizeLinear."""
    op = name[len("QLinear"):]

    def ref(ctx, *args):
        xs = [_deq(*(list(args[3 * k:3 * k + 3]) + [None] * 3)[:3]) for k in range(n)]
        y_zp = args[3 * n + 1] if len(args) > 3 * n + 1 else None
        return _quant(fn(*xs, ctx.attrs), args[3 * n], y_zp, args[0])
    ref.__name__ = f"ref_{name.lower()}"
    register(name, domain=MS, attrs=attrs or {}, versions="com.microsoft 1")(ref)

    def decompose(node, opset, in_types):
        if not _typed(in_types, 0):
            return None
        dt = np_dtype(in_types[0].dtype)
        b = _Body()
        xs = [b.op("DequantizeLinear", [f"i{3 * k}", f"i{3 * k + 1}", _zp_or_zero(b, node, 3 * k + 2, dt)]) for k in range(n)]
        y = b.op(op, xs, alpha=float(_attr(node, "alpha", 0.01))) if op == "LeakyRelu" else b.op(op, xs)
        b.op("QuantizeLinear", [y, f"i{3 * n}", _zp_or_zero(b, node, 3 * n + 1, dt)], "o0")
        return b.function(name, _inputs(node), ["o0"], opset=18)
    decomposition(name, MS)(decompose)


_qlinear("QLinearAdd", 2, lambda a, b, attrs: a + b)
_qlinear("QLinearMul", 2, lambda a, b, attrs: a * b)
_qlinear("QLinearSigmoid", 1, lambda x, a: (1 / (1 + np.exp(-x.astype(np.float64)))).astype(np.float32))
_qlinear("QLinearLeakyRelu", 1, lambda x, a: np.where(x >= 0, x, np.float32(a["alpha"]) * x), {"alpha": 0.01})


@register("QLinearConcat", domain=MS, attrs={"axis": 0}, versions="com.microsoft 1")
def ref_qlinearconcat(ctx, y_s, y_zp, *triples):
    parts = [_deq(triples[k], triples[k + 1], triples[k + 2]) for k in range(0, len(triples), 3)]
    return _quant(np.concatenate(parts, axis=ctx.attrs["axis"]), y_s, y_zp, triples[0])


@decomposition("QLinearConcat", MS)
def decompose_qlinearconcat(node, opset, in_types):
    b = _Body()
    parts = [b.op("DequantizeLinear", [f"i{k}", f"i{k + 1}", f"i{k + 2}"]) for k in range(2, len(node.input), 3)]
    b.op("QuantizeLinear", [b.op("Concat", parts, axis=int(_attr(node, "axis", 0))), "i0", "i1"], "o0")
    return b.function("QLinearConcat", _inputs(node), ["o0"], opset=18)


@register("QLinearGlobalAveragePool", domain=MS, attrs={"channels_last": 0}, versions="com.microsoft 1")
def ref_qlinearglobalaveragepool(ctx, x, x_s, x_zp, y_s, y_zp=None):
    axes = tuple(range(1, x.ndim - 1)) if ctx.attrs["channels_last"] else tuple(range(2, x.ndim))
    return _quant(_deq(x, x_s, x_zp).mean(axis=axes, keepdims=True, dtype=np.float64), y_s, y_zp, x)


@decomposition("QLinearGlobalAveragePool", MS)
def decompose_qlinearglobalaveragepool(node, opset, in_types):
    if not _typed(in_types, 0) or _attr(node, "channels_last", 0):
        return None
    dt = np_dtype(in_types[0].dtype)
    b = _Body()
    x = b.op("DequantizeLinear", ["i0", "i1", _zp_or_zero(b, node, 2, dt)])
    b.op("QuantizeLinear", [b.op("GlobalAveragePool", [x]), "i3", _zp_or_zero(b, node, 4, dt)], "o0")
    return b.function("QLinearGlobalAveragePool", _inputs(node), ["o0"], opset=18)


@register("QGemm", domain=MS, attrs={"alpha": 1.0, "transA": 0, "transB": 0}, versions="com.microsoft 1")
def ref_qgemm(ctx, a, a_s, a_zp, b, b_s, b_zp, c=None, y_s=None, y_zp=None):
    """alpha * deq(A) @ deq(B) + C * a_scale * b_scale (C int32); quantized when y_scale is given, else float."""
    at = _deq(a, a_s, a_zp)
    bt = _deq(b, np.asarray(b_s).reshape(-1, 1) if ctx.attrs["transB"] and np.size(b_s) > 1 else b_s,
              np.asarray(b_zp).reshape(-1, 1) if ctx.attrs["transB"] and np.size(b_zp) > 1 else b_zp)
    at = at.T if ctx.attrs["transA"] else at
    bt = bt.T if ctx.attrs["transB"] else bt
    y = np.float32(ctx.attrs["alpha"]) * (at @ bt)
    if c is not None:
        y = y + c.astype(np.float32) * (np.float32(a_s) * np.asarray(b_s, np.float32))
    return y.astype(np.float32) if y_s is None else _quant(y, y_s, y_zp, a)


@decomposition("QGemm", MS)
def decompose_qgemm(node, opset, in_types):
    if not _typed(in_types, 0, 3):
        return None
    b = _Body()
    has = lambda k: len(node.input) > k and bool(node.input[k])   # noqa: E731
    tb = int(_attr(node, "transB", 0))
    a = b.op("DequantizeLinear", ["i0", "i1", "i2"] if has(2) else ["i0", "i1"])
    w = b.op("DequantizeLinear", ["i3", "i4", "i5"] if has(5) else ["i3", "i4"], axis=0 if tb else 1)
    ins = [a, w]
    if has(6):
        ins.append(b.op("Mul", [b.op("Cast", ["i6"], to=1), b.op("Mul", ["i1", "i4"])]))
    y = b.op("Gemm", ins, alpha=float(_attr(node, "alpha", 1.0)), transA=int(_attr(node, "transA", 0)), transB=tb)
    if has(7):
        b.op("QuantizeLinear", [y, "i7"] + (["i8"] if has(8) else []), "o0")
    else:
        b.op("Identity", [y], "o0")
    return b.function("QGemm", _inputs(node), ["o0"], opset=18)


# ---------------------------------------------------------------------------------------------------- dynamic quantization
def _dynamic_quantize(x):
    """DynamicQuantizeLinear (ONNX spec): uint8, scale (max(0, x) - min(0, x)) / 255, zero point from the minimum."""
    lo, hi = min(0.0, float(x.min())), max(0.0, float(x.max()))
    scale = np.float32((hi - lo) / 255.0)
    if scale == 0:
        return np.zeros(x.shape, np.uint8), scale, np.uint8(0)
    zp = np.uint8(np.clip(np.rint(np.float32(0) - np.float32(lo) / scale), 0, 255))
    return np.clip(np.rint(x.astype(np.float32) / scale) + np.float32(zp), 0, 255).astype(np.uint8), scale, zp


def _int_matmul(a, b, a_zp, b_zp) -> np.ndarray:
    return (a.astype(np.int64) - np.asarray(a_zp, np.int64)) @ (b.astype(np.int64) - np.asarray(0 if b_zp is None else b_zp, np.int64))


@register("DynamicQuantizeMatMul", domain=MS, versions="com.microsoft 1")
def ref_dynamicquantizematmul(ctx, a, b, b_s, b_zp=None, bias=None):
    q, s, zp = _dynamic_quantize(a)
    y = _int_matmul(q, b, zp, b_zp).astype(np.float32) * (s * np.asarray(b_s, np.float32))
    return (y if bias is None else y + bias).astype(np.float32)


@decomposition("DynamicQuantizeMatMul", MS)
def decompose_dynamicquantizematmul(node, opset, in_types):
    b = _Body()
    has = lambda k: len(node.input) > k and bool(node.input[k])   # noqa: E731
    q, s, zp = b.ops("DynamicQuantizeLinear", ["i0"], [b.fresh(), b.fresh(), b.fresh()])
    acc = b.op("MatMulInteger", [q, "i1", zp] + (["i3"] if has(3) else []))
    y = b.op("Mul", [b.op("Cast", [acc], to=1), b.op("Mul", [s, "i2"])])
    b.op("Add", [y, "i4"], "o0") if has(4) else b.op("Identity", [y], "o0")
    return b.function("DynamicQuantizeMatMul", _inputs(node), ["o0"], opset=18)


@register("MatMulIntegerToFloat", domain=MS, versions="com.microsoft 1")
def ref_matmulintegertofloat(ctx, a, b, a_s, b_s, a_zp=None, b_zp=None, bias=None):
    y = _int_matmul(a, b, 0 if a_zp is None else a_zp, b_zp).astype(np.float32) * (np.asarray(a_s, np.float32) * np.asarray(b_s, np.float32))
    return (y if bias is None else y + bias).astype(np.float32)


@decomposition("MatMulIntegerToFloat", MS)
def decompose_matmulintegertofloat(node, opset, in_types):
    b = _Body()
    has = lambda k: len(node.input) > k and bool(node.input[k])   # noqa: E731
    zps = (["i4"] if has(4) else ([b.const(np.zeros((), np_dtype(in_types[0].dtype)))] if has(5) else [])) + (["i5"] if has(5) else [])
    acc = b.op("MatMulInteger", ["i0", "i1"] + zps)
    y = b.op("Mul", [b.op("Cast", [acc], to=1), b.op("Mul", ["i2", "i3"])])
    b.op("Add", [y, "i6"], "o0") if has(6) else b.op("Identity", [y], "o0")
    return b.function("MatMulIntegerToFloat", _inputs(node), ["o0"], opset=18)


# ---------------------------------------------------------------------------------------------------- MatMulNBits
def _nbits_weight(b_q, scales, zp, k: int, n: int, bits: int, block: int) -> np.ndarray:
    """The float32 [N, K] weight of MatMulNBits: B [N, blocks, block * bits / 8] uint8, low bits first; scale per
    (n, block); zero point packed like B (uint8), float per (n, block), or 2^(bits - 1) when absent."""
    per = 8 // bits
    nb = -(-k // block)
    q = np.stack([(b_q >> (bits * j)) & ((1 << bits) - 1) for j in range(per)], axis=-1).reshape(n, nb, block)
    if zp is None:
        z = np.full((n, nb, 1), 1 << (bits - 1), np.float32)
    elif zp.dtype == np.uint8:
        zu = np.stack([(zp.reshape(n, -1) >> (bits * j)) & ((1 << bits) - 1) for j in range(per)], axis=-1).reshape(n, -1)
        z = zu[:, :nb].astype(np.float32)[..., None]
    else:
        z = zp.reshape(n, nb, 1).astype(np.float32)
    w = (q.astype(np.float32) - z) * scales.reshape(n, nb, 1).astype(np.float32)
    return w.reshape(n, nb * block)[:, :k]


@register("MatMulNBits", domain=MS, attrs={"K": 0, "N": 0, "bits": 4, "block_size": 0, "accuracy_level": 0},
          versions="com.microsoft 1")
def ref_matmulnbits(ctx, a, b_q, scales, zp=None, g_idx=None, bias=None):
    a_ = ctx.attrs
    if g_idx is not None:
        raise ValueError("MatMulNBits with g_idx")
    w = _nbits_weight(b_q, scales, zp, a_["K"], a_["N"], a_["bits"], a_["block_size"])
    y = a.astype(np.float32) @ w.T
    return (y if bias is None else y + bias).astype(a.dtype)


@decomposition("MatMulNBits", MS)
def decompose_matmulnbits(node, opset, in_types):
    """The weight dequantized by ONNX ops on the constant B, scales and zero points (folded at compile time:
    BitShift, BitwiseAnd, Sub, Mul), then MatMul with its transpose."""
    k, n, bits, block = (int(_attr(node, x, 0)) for x in ("K", "N", "bits", "block_size"))
    has = lambda i: len(node.input) > i and bool(node.input[i])   # noqa: E731
    if bits not in (2, 4, 8) or not block or has(4) or not _typed(in_types, 0):
        return None
    per, nb = 8 // bits, -(-k // block)
    b = _Body()

    def unpack(v, rows_shape):
        parts = [b.op("Unsqueeze", [b.op("BitwiseAnd", [b.op("BitShift", [v, b.const(np.uint8(bits * j))], direction="RIGHT"),
                                                        b.const(np.uint8((1 << bits) - 1))]), b.const(np.array([-1], np.int64))])
                 for j in range(per)]
        return b.op("Reshape", [b.op("Concat", parts, axis=-1), b.const(np.array(rows_shape, np.int64))])
    q = b.op("Cast", [unpack("i1", [n, nb, block])], to=1)
    if has(3) and in_types[3].dtype == "uint8":
        z = b.op("Slice", [b.op("Cast", [unpack("i3", [n, -1])], to=1), b.const(np.array([0], np.int64)),
                           b.const(np.array([nb], np.int64)), b.const(np.array([1], np.int64))])
        z = b.op("Reshape", [z, b.const(np.array([n, nb, 1], np.int64))])
    elif has(3):
        z = b.op("Reshape", [b.op("Cast", ["i3"], to=1), b.const(np.array([n, nb, 1], np.int64))])
    else:
        z = b.const(np.float32(1 << (bits - 1)))
    w = b.op("Mul", [b.op("Sub", [q, z]), b.op("Reshape", [b.op("Cast", ["i2"], to=1), b.const(np.array([n, nb, 1], np.int64))])])
    w = b.op("Reshape", [w, b.const(np.array([n, nb * block], np.int64))])
    if nb * block != k:
        w = b.op("Slice", [w, b.const(np.array([0], np.int64)), b.const(np.array([k], np.int64)), b.const(np.array([1], np.int64))])
    wt = b.op("Transpose", [w], perm=[1, 0])
    if in_types[0].dtype != "float32":
        wt = b.op("Cast", [wt], to=helper.np_dtype_to_tensor_dtype(np_dtype(in_types[0].dtype)))
    y = b.op("MatMul", ["i0", wt])
    b.op("Add", [y, "i5"], "o0") if has(5) else b.op("Identity", [y], "o0")
    return b.function("MatMulNBits", _inputs(node), ["o0"], opset=18)


# ---------------------------------------------------------------------------------------------------- DynamicQuantizeLSTM
_LSTM_ATTRS = {"activation_alpha": None, "activation_beta": None, "activations": None, "clip": None,
               "direction": "forward", "hidden_size": None, "input_forget": 0}


def _lstm_weight(w, scale, zp) -> np.ndarray:
    """[D, I, 4H] quantized -> [D, 4H, I] float32 (scale and zero point per direction, or per direction and gate row)."""
    d = w.shape[0]
    s = np.asarray(scale, np.float32).reshape(d, 1, -1)
    z = np.asarray(zp).astype(np.float32).reshape(d, 1, -1)
    return np.ascontiguousarray(((w.astype(np.float32) - z) * s).transpose(0, 2, 1))


@register("DynamicQuantizeLSTM", domain=MS, attrs=_LSTM_ATTRS, outputs=3, versions="com.microsoft 1")
def ref_dynamicquantizelstm(ctx, x, w, r, b=None, lens=None, h0=None, c0=None, p=None, w_s=None, w_zp=None, r_s=None,
                            r_zp=None):
    """The float LSTM on the dequantized weights (onnxruntime also quantizes X and H per step; its results differ
    by that rounding)."""
    return rt.lstm(ctx.attrs, ctx.n_outputs, x, _lstm_weight(w, w_s, w_zp), _lstm_weight(r, r_s, r_zp), b, lens, h0, c0, p)


@decomposition("DynamicQuantizeLSTM", MS)
def decompose_dynamicquantizelstm(node, opset, in_types):
    """Weights dequantized (folded at compile time) and transposed to LSTM's [D, 4H, I], then LSTM-14."""
    if not _typed(in_types, 1, 2):
        return None
    b = _Body()
    ws = []
    for k, (s, z) in ((1, (8, 9)), (2, (10, 11))):
        d = in_types[k].shape[0]
        sh = b.const(np.array([d, 1, -1], np.int64))
        deq = b.op("Mul", [b.op("Sub", [b.op("Cast", [f"i{k}"], to=1), b.op("Reshape", [b.op("Cast", [f"i{z}"], to=1), sh])]),
                           b.op("Reshape", [f"i{s}", sh])])
        ws.append(b.op("Transpose", [deq], perm=[0, 2, 1]))
    ins = ["i0", ws[0], ws[1]] + [f"i{k}" if len(node.input) > k and node.input[k] else "" for k in range(3, 8)]
    while ins and not ins[-1]:
        ins.pop()
    outs = [f"o{k}" if o else "" for k, o in enumerate(node.output)]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    b.ops("LSTM", ins, outs, **attrs)
    return b.function("DynamicQuantizeLSTM", _inputs(node), outs, opset=18)


__all__: list[str] = []
