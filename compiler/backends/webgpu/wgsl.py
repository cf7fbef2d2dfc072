"""WGSL spelling: how ONNX dtypes are held on the GPU, literals, per-op expressions, and the kernel header.

Every tensor element is one 32-bit word in a storage buffer (WGSL has no 8/16-bit storage types without
extensions, and no 64-bit types): float32/float16/bfloat16 as ``f32`` (half results are rounded to their
precision when stored), float64 as ``f32`` too (computed in float32: the host rounds float64 inputs to float32
and widens the outputs, so a float64 model runs at float32 precision), int8/int16/int32/int64 as ``i32`` and uint8/uint16/uint32/uint64/bool as ``u32``
(narrow integer results wrap to their width when stored). The host converts at the boundary and refuses int64
inputs that do not fit 32 bits. Bindings are ``array<u32>`` views of the arena or the weights; ``ld<k>`` /
``st<k>`` bitcast to and from the operand's type, so one arena holds every dtype.
"""
from __future__ import annotations

import math

import numpy as np

GPU_TYPE = {"float32": "f32", "float64": "f32", "float16": "f32", "bfloat16": "f32", "float8_e4m3fn": "f32", "float8_e4m3fnuz": "f32",
            "float8_e5m2": "f32", "float8_e5m2fnuz": "f32", "float4_e2m1fn": "f32",
            "int32": "i32", "int64": "i32", "int16": "i32", "int8": "i32", "int4": "i32", "int2": "i32",
            "uint32": "u32", "uint64": "u32", "uint16": "u32", "uint8": "u32", "bool": "u32", "uint4": "u32",
            "uint2": "u32"}
#: numpy dtype the host converts each GPU type to and from
GPU_NUMPY = {"f32": "float32", "i32": "int32", "u32": "uint32"}


def gpu_type(dtype: str) -> str | None:
    """The WGSL scalar type holding ``dtype`` on the GPU, or None (float64, strings, float8...)."""
    return GPU_TYPE.get(dtype)


def gpu_dtype(dtype: str) -> str:
    """The numpy dtype name of the 32-bit word a ``dtype`` element becomes on the GPU."""
    return GPU_NUMPY[GPU_TYPE[dtype]]


def lit(v, t: str) -> str:
    """A WGSL literal of scalar type ``t`` ('f32', 'i32', 'u32'); inf and NaN through helper calls."""
    if t == "f32":
        f = float(np.float32(v))
        if math.isnan(f):
            return "bn_nan()"
        if math.isinf(f):
            return "bn_inf()" if f > 0 else "-bn_inf()"
        return repr(f) + "f" if "e" in repr(f) or "." in repr(f) else repr(f) + ".0f"
    if t == "i32":
        i = int(np.int64(v).astype(np.int32)) if not isinstance(v, (float, np.floating)) else int(v)
        i = ((i + 2 ** 31) % 2 ** 32) - 2 ** 31
        return "i32(-2147483647 - 1)" if i == -2 ** 31 else f"{i}i"
    if t == "u32":
        return f"{int(v) % 2 ** 32}u"
    if t == "bool":
        return "true" if v else "false"
    raise ValueError(t)


def _f(a: str) -> str:
    return f"({a})"


def _maxmin(a, b, t, op):
    if t != "f32":
        return f"{op}({a}, {b})"
    return f"bn_{op}({a}, {b})"


def _pow(a, at, t):
    if t != "f32":
        return f"bn_ipow_{t}({a[0]}, {a[1]})"
    if a[1] == lit(2.0, "f32"):
        return f"({a[0]}) * ({a[0]})"
    if a[1] == lit(0.5, "f32"):
        return f"sqrt({a[0]})"
    if a[1] == lit(1.0, "f32"):
        return f"({a[0]})"
    return f"bn_pow({a[0]}, {a[1]})"


def _div(a, at, t):
    if t == "f32":
        return f"({a[0]}) / ({a[1]})"
    return f"select(({a[0]}) / ({a[1]}), {lit(0, t)}, ({a[1]}) == {lit(0, t)})"


def _mod(a, at, t):
    if t == "f32":
        r = f"(({a[0]}) % ({a[1]}))"          # WGSL: x - y * trunc(x / y), the sign of x (C fmod)
        if at.get("fmod"):
            return r
        return f"bn_fmod_floor({a[0]}, {a[1]})"
    if t == "u32" or at.get("fmod"):
        return f"select(({a[0]}) % ({a[1]}), {lit(0, t)}, ({a[1]}) == {lit(0, t)})"
    return f"bn_imod_floor({a[0]}, {a[1]})"


def _clip(a, at, t):
    y = a[0]
    if len(a) > 1 and a[1] is not None:
        y = _maxmin(y, a[1], t, "max")
    if len(a) > 2 and a[2] is not None:
        y = _maxmin(y, a[2], t, "min")
    return y


def _shift(a, at, t):
    amount = f"u32({a[1]})"
    if at["direction"] == "LEFT":
        return f"select({lit(0, t)}, ({a[0]}) << {amount}, {amount} < 32u)"
    beyond = f"select(0i, -1i, ({a[0]}) < 0i)" if t == "i32" else lit(0, t)   # arithmetic shift of signed values
    return f"select({beyond}, ({a[0]}) >> {amount}, {amount} < 32u)"


def _c(v, t):
    return lit(v, t)


#: ONNX op -> WGSL expression builder ``(args, attrs, t) -> str`` for a computation type t (result type t,
#: except ops with the registry property bool_output, which give a WGSL bool).
EXPR = {
    "Add": lambda a, at, t: f"({a[0]}) + ({a[1]})",
    "Sub": lambda a, at, t: f"({a[0]}) - ({a[1]})",
    "Mul": lambda a, at, t: f"({a[0]}) * ({a[1]})",
    "Div": _div,
    "Pow": _pow,
    "Mod": _mod,
    "Max": lambda a, at, t: _maxmin(a[0], a[1], t, "max"),
    "Min": lambda a, at, t: _maxmin(a[0], a[1], t, "min"),
    "Clip": _clip,
    "Abs": lambda a, at, t: f"abs({a[0]})" if t != "u32" else a[0],
    "Neg": lambda a, at, t: f"-({a[0]})" if t != "u32" else f"(0u - ({a[0]}))",
    "Floor": lambda a, at, t: f"floor({a[0]})",
    "Ceil": lambda a, at, t: f"ceil({a[0]})",
    "Round": lambda a, at, t: f"round({a[0]})",       # WGSL rounds halfway cases to even, as ONNX
    "Sqrt": lambda a, at, t: f"sqrt({a[0]})",
    "Exp": lambda a, at, t: f"exp({a[0]})",
    "Log": lambda a, at, t: f"log({a[0]})",
    "Sin": lambda a, at, t: f"sin({a[0]})",
    "Cos": lambda a, at, t: f"cos({a[0]})",
    "Tan": lambda a, at, t: f"tan({a[0]})",
    "Asin": lambda a, at, t: f"asin({a[0]})",
    "Acos": lambda a, at, t: f"acos({a[0]})",
    "Atan": lambda a, at, t: f"atan({a[0]})",
    "Sinh": lambda a, at, t: f"sinh({a[0]})",
    "Cosh": lambda a, at, t: f"cosh({a[0]})",
    "Asinh": lambda a, at, t: f"asinh({a[0]})",
    "Acosh": lambda a, at, t: f"acosh({a[0]})",
    "Atanh": lambda a, at, t: f"atanh({a[0]})",
    "Tanh": lambda a, at, t: f"bn_tanh({a[0]})",
    "Erf": lambda a, at, t: f"bn_erf({a[0]})",
    "Reciprocal": lambda a, at, t: f"1.0f / ({a[0]})",
    "Sign": lambda a, at, t: f"sign({a[0]})" if t != "u32" else f"select(0u, 1u, ({a[0]}) > 0u)",
    "Relu": lambda a, at, t: f"select({a[0]}, {_c(0, t)}, ({a[0]}) < {_c(0, t)})" if t != "u32" else a[0],
    "Sigmoid": lambda a, at, t: f"bn_sigmoid({a[0]})",
    "LeakyRelu": lambda a, at, t: f"select({a[0]}, {_c(at['alpha'], t)} * ({a[0]}), ({a[0]}) < 0.0f)",
    "Elu": lambda a, at, t: f"select({a[0]}, {_c(at['alpha'], t)} * bn_expm1({a[0]}), ({a[0]}) < 0.0f)",
    "Selu": lambda a, at, t: (f"{_c(at['gamma'], t)} * select({_c(at['alpha'], t)} * bn_expm1({a[0]}), {a[0]}, "
                              f"({a[0]}) > 0.0f)"),
    "Celu": lambda a, at, t: (f"select({_c(at['alpha'], t)} * bn_expm1(({a[0]}) / {_c(at['alpha'], t)}), {a[0]}, "
                              f"({a[0]}) > 0.0f)"),
    "ThresholdedRelu": lambda a, at, t: f"select(0.0f, {a[0]}, ({a[0]}) > {_c(at['alpha'], t)})",
    "HardSigmoid": lambda a, at, t: f"clamp({_c(at['alpha'], t)} * ({a[0]}) + {_c(at['beta'], t)}, 0.0f, 1.0f)",
    "HardSwish": lambda a, at, t: f"({a[0]}) * clamp(({a[0]}) / 6.0f + 0.5f, 0.0f, 1.0f)",
    "Softplus": lambda a, at, t: f"bn_softplus({a[0]})",
    "Softsign": lambda a, at, t: f"({a[0]}) / (1.0f + abs({a[0]}))",
    "Mish": lambda a, at, t: f"bn_mish({a[0]})",
    "Gelu": lambda a, at, t: (f"0.5f * ({a[0]}) * (1.0f + bn_tanh({lit(math.sqrt(2 / math.pi), 'f32')} * (({a[0]}) + "
                              f"0.044715f * ({a[0]}) * ({a[0]}) * ({a[0]}))))") if at.get("approximate") == "tanh"
    else f"0.5f * ({a[0]}) * (1.0f + bn_erf(({a[0]}) * {lit(1 / math.sqrt(2), 'f32')}))",
    "Shrink": lambda a, at, t: (f"select(select({_c(0, t)}, ({a[0]}) - {_c(at['bias'], t)}, ({a[0]}) > {_c(at['lambd'], t)}), "
                                f"({a[0]}) + {_c(at['bias'], t)}, ({a[0]}) < {_c(-at['lambd'], t)})"),
    "PRelu": lambda a, at, t: f"select({a[0]}, ({a[0]}) * ({a[1]}), ({a[0]}) < {_c(0, t)})",
    "Identity": lambda a, at, t: a[0],
    "Equal": lambda a, at, t: f"(({a[0]}) == ({a[1]}))",
    "Less": lambda a, at, t: f"(({a[0]}) < ({a[1]}))",
    "LessOrEqual": lambda a, at, t: f"(({a[0]}) <= ({a[1]}))",
    "Greater": lambda a, at, t: f"(({a[0]}) > ({a[1]}))",
    "GreaterOrEqual": lambda a, at, t: f"(({a[0]}) >= ({a[1]}))",
    "And": lambda a, at, t: f"((({a[0]}) != 0u) && (({a[1]}) != 0u))",
    "Or": lambda a, at, t: f"((({a[0]}) != 0u) || (({a[1]}) != 0u))",
    "Xor": lambda a, at, t: f"((({a[0]}) != 0u) != (({a[1]}) != 0u))",
    "Not": lambda a, at, t: f"(({a[0]}) == 0u)",
    "IsNaN": lambda a, at, t: f"bn_isnan({a[0]})",
    "IsInf": lambda a, at, t: (f"(bn_isinf({a[0]}) && ((({a[0]}) > 0.0f && {lit(bool(at['detect_positive']), 'bool')}) || "
                               f"(({a[0]}) < 0.0f && {lit(bool(at['detect_negative']), 'bool')})))"),
    "BitShift": _shift,
    "BitwiseAnd": lambda a, at, t: f"(({a[0]}) & ({a[1]}))",
    "BitwiseOr": lambda a, at, t: f"(({a[0]}) | ({a[1]}))",
    "BitwiseXor": lambda a, at, t: f"(({a[0]}) ^ ({a[1]}))",
    "BitwiseNot": lambda a, at, t: f"(~({a[0]}))",
}


#: helper functions every kernel may call (unused ones cost nothing: the shader compiler drops them)
HELPERS = """
// Fixed-point requantization (bornc QConv / QMatMul), bit-exact with bornrt_gemm.h bornc_requant: gemmlowp's
// SaturatingRoundingDoublingHighMul as floor((x * m + 2^30) / 2^31) with the 64-bit product built from 16-bit
// limbs (WGSL has no 64-bit integers), then RoundingDivideByPOT.
fn bn_requant(acc: i32, m: i32, shift: i32) -> i32 {
  var x = acc;
  if (shift > 0) {
    let lim = 2147483647 >> u32(shift);
    if (x > lim) { x = 2147483647; } else if (x < -lim - 1) { x = -2147483647 - 1; } else { x = x << u32(shift); }
  }
  let neg = x < 0;
  let a = select(u32(x), u32(0) - u32(x), neg);
  let b = u32(m);
  let a0 = a & 0xffffu; let a1 = a >> 16u; let b0 = b & 0xffffu; let b1 = b >> 16u;
  let p00 = a0 * b0; let p01 = a0 * b1; let p10 = a1 * b0; let p11 = a1 * b1;
  let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  let lo = (p00 & 0xffffu) | (mid << 16u);
  let hi = p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
  let c = select(0x40000000u, 0x3fffffffu, neg);      // |x m| + 2^30 (x >= 0) or + 2^30 - 1 (x < 0)
  let lo2 = lo + c;
  let hi2 = hi + select(0u, 1u, lo2 < lo);
  let q = (hi2 << 1u) | (lo2 >> 31u);
  var high = select(i32(q), -i32(q), neg);
  if (shift < 0) {
    let rs = u32(-shift);
    let mask = i32((1u << rs) - 1u);
    let rem = high & mask;
    let threshold = (mask >> 1u) + select(0, 1, high < 0);
    high = (high >> rs) + select(0, 1, rem > threshold);
  }
  return high;
}
// inf and NaN through a variable: WGSL rejects constant expressions whose value is not finite
fn bn_inf() -> f32 { var u = 0x7f800000u; return bitcast<f32>(u); }
fn bn_nan() -> f32 { var u = 0x7fc00000u; return bitcast<f32>(u); }
fn bn_isnan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn bn_isinf(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u; }
fn bn_max(a: f32, b: f32) -> f32 { return select(select(b, a, a > b), a, bn_isnan(a)); }
fn bn_min(a: f32, b: f32) -> f32 { return select(select(b, a, a < b), a, bn_isnan(a)); }
fn bn_tanh(x: f32) -> f32 { if (abs(x) > 15.0f) { return sign(x); } return tanh(x); }
fn bn_sigmoid(x: f32) -> f32 { return 1.0f / (1.0f + exp(-x)); }
fn bn_expm1(x: f32) -> f32 { if (abs(x) < 1e-5f) { return x + 0.5f * x * x; } return exp(x) - 1.0f; }
// mish(x) = x tanh(softplus(x)) = x n / (n + 2) with n = e^x (e^x + 2): one exp, no cancellation
fn bn_mish(x: f32) -> f32 { if (x > 20.0f) { return x; } let e = exp(x); let n = e * (e + 2.0f); return x * n / (n + 2.0f); }
fn bn_softplus(x: f32) -> f32 { if (x > 20.0f) { return x; } return log(1.0f + exp(x)); }
// erf: Maclaurin series below |x| = 0.5 (terms to x^11), else Abramowitz & Stegun 7.1.26 (Handbook of
// Mathematical Functions, 1964; absolute error below 1.5e-7).
fn bn_erf(x: f32) -> f32 {
    let z = abs(x);
    if (z < 0.5f) {
        let q = z * z;
        let s = z * (1.0f - q * (1.0f / 3.0f - q * (0.1f - q * (1.0f / 42.0f - q * (1.0f / 216.0f - q / 1320.0f)))));
        return sign(x) * 1.1283791670955126f * s;
    }
    let t = 1.0f / (1.0f + 0.3275911f * z);
    let poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
    return sign(x) * (1.0f - poly * exp(-z * z));
}
fn bn_pow(x: f32, y: f32) -> f32 {
    if (y == 0.0f) { return 1.0f; }
    if (x < 0.0f) {
        if (floor(y) != y) { return bn_nan(); }
        let r = pow(-x, y);
        return select(r, -r, floor(y * 0.5f) * 2.0f != y);
    }
    if (x == 0.0f) { return select(0.0f, bn_inf(), y < 0.0f); }
    return pow(x, y);
}
fn bn_ipow_i32(x: i32, y: i32) -> i32 {
    var r = 1i; var b = x; var e = y;
    if (e < 0i) { return select(0i, 1i, x == 1i); }
    loop { if (e == 0i) { break; } if ((e & 1i) != 0i) { r = r * b; } b = b * b; e = e >> 1u; }
    return r;
}
fn bn_ipow_u32(x: u32, y: u32) -> u32 {
    var r = 1u; var b = x; var e = y;
    loop { if (e == 0u) { break; } if ((e & 1u) != 0u) { r = r * b; } b = b * b; e = e >> 1u; }
    return r;
}
fn bn_fmod_floor(a: f32, b: f32) -> f32 {
    if (bn_isinf(b) && !bn_isinf(a) && !bn_isnan(a)) { return select(b, a, a == 0.0f || ((a < 0.0f) == (b < 0.0f))); }
    let r = a % b;
    if (r == 0.0f) { return select(0.0f, bitcast<f32>(0x80000000u), b < 0.0f); }   // a zero takes the divisor's sign
    return select(r, r + b, (r < 0.0f) != (b < 0.0f));
}
fn bn_imod_floor(a: i32, b: i32) -> i32 {
    if (b == 0i) { return 0i; }
    let r = a % b; return select(r, r + b, r != 0i && ((r < 0i) != (b < 0i)));
}
fn bn_small_float(x: f32, mbits: u32, emin: i32, maxv: f32, sat: bool, has_inf: bool, nz: bool) -> f32 {
    if (bn_isnan(x)) { return x; }
    var v = x;
    if (sat) { v = clamp(v, -maxv, maxv); } else if (bn_isinf(v)) { return select(bn_nan(), v, has_inf); }
    let a = abs(v);
    if (a == 0.0f) { return select(v, 0.0f, nz); }
    let e = max(frexp(a).exp - 1i, emin);
    let q = ldexp(1.0f, e - i32(mbits));
    let r = round(a / q) * q;
    if (r > maxv) { return select(bn_nan(), sign(v) * bn_inf(), has_inf); }
    if (r == 0.0f && nz) { return 0.0f; }
    return select(r, -r, v < 0.0f);
}
fn bn_round_f16(x: f32) -> f32 { return unpack2x16float(pack2x16float(vec2<f32>(x, 0.0f))).x; }
fn bn_round_bf16(x: f32) -> f32 {
    let u = bitcast<u32>(x);
    if (bn_isnan(x)) { return x; }
    return bitcast<f32>((u + 0x7fffu + ((u >> 16u) & 1u)) & 0xffff0000u);
}
"""


#: float8/float4 formats held as f32 values on their grid: (mantissa bits, smallest normal exponent, largest
#: finite value, has inf, no negative zero) -- the formats of the ONNX spec (docs/Float8.md), as ml_dtypes defines them
SMALL_FLOATS = {"float8_e4m3fn": (3, -6, 448.0, False, False), "float8_e4m3fnuz": (3, -7, 240.0, False, True),
                "float8_e5m2": (2, -14, 57344.0, True, False), "float8_e5m2fnuz": (2, -15, 57344.0, False, True),
                "float4_e2m1fn": (1, 0, 6.0, False, False)}


def small_float(v: str, dtype: str, saturate: bool) -> str:
    """``v`` (f32) rounded to the float8/float4 format ``dtype``: round half to even, overflow to the largest
    finite value when ``saturate`` else to inf (formats with inf) or NaN (ONNX Cast, "Saturation" table)."""
    m, emin, mx, has_inf, nz = SMALL_FLOATS[dtype]
    return f"bn_small_float({v}, {m}u, {emin}i, {lit(mx, 'f32')}, {lit(bool(saturate), 'bool')}, {lit(has_inf, 'bool')}, {lit(nz, 'bool')})"


def store_expr(v: str, dtype: str) -> str:
    """``v`` (of the GPU type of ``dtype``) as the u32 word stored for ``dtype``: half floats rounded to their
    precision, narrow integers wrapped to their width, bools as 0/1."""
    if dtype == "float16":
        return f"bitcast<u32>(bn_round_f16({v}))"
    if dtype == "bfloat16":
        return f"bitcast<u32>(bn_round_bf16({v}))"
    if dtype in ("float32", "float64"):
        return f"bitcast<u32>({v})"
    if dtype in SMALL_FLOATS:
        return f"bitcast<u32>({small_float(v, dtype, False)})"
    if dtype in ("int32", "int64"):
        return f"bitcast<u32>({v})"
    if dtype in ("int8", "int16", "int4", "int2"):
        bits = {"int8": 8, "int16": 16, "int4": 4, "int2": 2}[dtype]
        return f"bitcast<u32>((({v}) << {32 - bits}u) >> {32 - bits}u)"
    if dtype in ("uint8", "uint16", "uint4", "uint2"):
        mask = {"uint8": 0xff, "uint16": 0xffff, "uint4": 0xf, "uint2": 0x3}[dtype]
        return f"(({v}) & {mask}u)"
    if dtype == "bool":
        return f"select(0u, 1u, ({v}) != 0u)"
    return f"({v})"


def load_expr(word: str, t: str) -> str:
    """A stored u32 word as GPU type ``t``."""
    return word if t == "u32" else f"bitcast<{t}>({word})"


def convert(v: str, src: str, dst: str, dst_dtype: str = "") -> str:
    """Convert a value of GPU type ``src`` to GPU type ``dst`` (ONNX Cast: float -> int truncates toward zero,
    saturating at the 32-bit range; NaN -> 0)."""
    if src == dst:
        return v
    if dst == "f32":
        return f"f32({v})"
    if src == "f32":
        if dst == "u32" and dst_dtype == "bool":
            return f"select(0u, 1u, ({v}) != 0.0f)"
        if dst == "u32" and dst_dtype not in ("uint32", "uint64"):
            return f"bitcast<u32>(i32(select({v}, 0.0f, bn_isnan({v}))))"
        return f"{dst}(select({v}, 0.0f, bn_isnan({v})))"
    if dst == "u32" and dst_dtype == "bool":
        return f"select(0u, 1u, ({v}) != {lit(0, src)})"
    return f"bitcast<{dst}>({v})"
