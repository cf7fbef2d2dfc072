"""bornc's integer operators for int8 post-training quantization (domain ``bornc``): ``QConv`` and ``QMatMul``.

Both take uint8 activations (per-tensor, asymmetric: real = scale * (q - zero_point)) and int8 weights
(symmetric per output channel), accumulate in int32, add an int32 bias quantized with scale
x_scale * w_scale[c], and requantize to uint8 in fixed point:

    y = clamp(y_zero_point + MultiplyByQuantizedMultiplier(acc, multiplier[c], shift[c]), qmin, qmax)

with ``multiplier`` an int32 in [2^30, 2^31) and M = multiplier * 2^(shift - 31) the real multiplier
x_scale * w_scale[c] / y_scale (TensorFlow Lite's QuantizeMultiplier; Jacob et al., "Quantization and Training
of Neural Networks for Efficient Integer-Arithmetic-Only Inference", CVPR 2018, section 2.2). A fused Relu/Clip
is the clamp [qmin, qmax]; an activation tabulated as a LookupTable may follow in the same kernel (``table``:
256 codes applied to the result). The rounding is shared with the Python runtime (``bornrt.requantize``) and written
the same way in C, so every target's integer path is bit-exact with this reference.

QConv: x (N, C, *S) uint8, w (M, C/group, *K) int8, bias (M,) int32 -> (N, M, *O) uint8; Conv's attributes.
QMatMul: x (..., K) uint8, w (N, K) int8 constant (one row per output channel, as Gemm's transB=1), bias (N,)
int32 -> (..., N) uint8.
"""
from __future__ import annotations

import math

import numpy as np

from ..pyrt import rt
from .nn import _conv_infer, _spatial, conv_nchw
from .registry import InferCtx, TensorType, register

_QATTRS = {"x_zero_point": 0, "y_zero_point": 0, "multiplier": [1 << 30], "shift": [1], "qmin": 0, "qmax": 255,
           "table": None}
_CONV = {"auto_pad": "NOTSET", "dilations": None, "group": 1, "kernel_shape": None, "pads": None, "strides": None}


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(multiplier, shift) with real ~= multiplier * 2^(shift - 31), multiplier in [2^30, 2^31) (0 for real 0).

    TensorFlow Lite's QuantizeMultiplier (tensorflow/lite/kernels/internal/quantization_util.cc): frexp, then the
    mantissa rounded to 31 fractional bits. Raises ValueError for a negative or non-finite multiplier."""
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"requantization multiplier {real!r} must be finite and >= 0")
    if real == 0:
        return 0, 0
    mant, exp = math.frexp(real)
    q = int(round(mant * (1 << 31)))
    if q == 1 << 31:
        q //= 2
        exp += 1
    if exp < -31:
        return 0, 0
    return q, min(exp, 30)


def _qconv_infer(ctx: InferCtx) -> list:
    return [TensorType("uint8", _conv_infer(ctx)[0].shape)]


@register("QConv", domain="bornc", attrs={**_CONV, **_QATTRS}, infer=_qconv_infer, versions="bornc composite")
def ref_qconv(ctx, x, w, bias=None):
    a = ctx.attrs
    kernel = list(a["kernel_shape"] or w.shape[2:])
    strides, dil, pads = _spatial(a, x.shape, kernel)
    xf = x.astype(np.float64) - float(a["x_zero_point"])       # exact: integer sums stay below 2^53
    acc = conv_nchw(xf, w.astype(np.float64), None if bias is None else bias.astype(np.float64), a["group"],
                    strides, dil, pads)
    acc = np.rint(acc).astype(np.int64)
    y = rt.requantize(acc, rt.per_channel(a["multiplier"], acc.ndim, 1), rt.per_channel(a["shift"], acc.ndim, 1),
                      a["y_zero_point"], a["qmin"], a["qmax"])
    return rt.lookup_output(a, y.astype(np.uint8))


def _qmatmul_infer(ctx: InferCtx) -> list:
    xs, ws = ctx.shape(0), ctx.shape(1)
    if xs is None or ws is None:
        return [TensorType("uint8", None)]
    return [TensorType("uint8", tuple(xs[:-1]) + (ws[0],))]


@register("QMatMul", domain="bornc", attrs=dict(_QATTRS), infer=_qmatmul_infer, versions="bornc composite")
def ref_qmatmul(ctx, x, w, bias=None):
    a = ctx.attrs
    acc = rt.qmatmul_acc(x, w, bias, a)
    y = rt.requantize(acc, rt.per_channel(a["multiplier"], acc.ndim, acc.ndim - 1),
                      rt.per_channel(a["shift"], acc.ndim, acc.ndim - 1), a["y_zero_point"], a["qmin"], a["qmax"])
    return rt.lookup_output(a, y.astype(np.uint8))


def _lut_infer(ctx: InferCtx) -> list:
    return [TensorType("uint8", ctx.shape(0))]


@register("LookupTable", domain="bornc", attrs={"table": list(range(256))}, infer=_lut_infer,
          versions="bornc composite")
def ref_lookuptable(ctx, x):
    """y = table[x] for uint8 x: a per-tensor elementwise function between two quantized tensors (dequantize,
    float ops, quantize), tabulated at compile time over the 256 codes."""
    return np.asarray(ctx.attrs["table"], dtype=np.uint8)[x]
