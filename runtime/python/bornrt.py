"""bornrt: the bornc runtime for devices that have Python and numpy but no C compiler.

One file, numpy only (numpy >= 1.21, Python >= 3.8; no scipy, nothing of bornc). An artifact directory
written by ``bornc compile MODEL --target python -o out/`` holds this file, ``model.py`` (the generated
schedule: one kernel call per node), ``weights.bin`` and ``manifest.json``.

Use on the device::

    python3 bornrt.py out/ --input x=in.npy -o y.npz        # or:  python3 bornrt.py out/ --self-test
    import bornrt; m = bornrt.load("out"); y = m.run({"x": arr})

Memory: every intermediate tensor whose shape is known at compile time is a numpy view into one arena
(``manifest["arena_bytes"]`` bytes, offsets from bornc's static memory plan); kernels write into those views
with ``out=`` where numpy allows, scratch buffers (im2col columns, padded inputs) are kept per step after the
first call, and weights are read-only views into the verified ``weights.bin`` image. Tensors whose shape
depends on data (NonZero, Loop outputs...) are allocated at run time.

Kernels follow the ONNX operator specification (https://onnx.ai/onnx/operators/); the formulas they share
with bornc's reference interpreter (Resize coordinate mapping, recurrent cells, window geometry) live here
and are imported from here by the compiler, so the oracle and the device compute them one way.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import sys

import numpy as np
from numpy.lib.stride_tricks import as_strided

FORMAT_VERSION = 1
WEIGHTS_MAGIC = b"BORNCWT1"
WEIGHTS_HEADER_BYTES = 64


class BornrtError(Exception):
    """Any error of the runtime: a bad artifact (format, checksum), a wrong input, a failing kernel."""


# ============================================================================================ kernel registry
KERNELS = {}


def kernel(*names):
    """Register ``fn(x, o, a, w) -> outputs`` for the ONNX ops ``names``.

    ``x``: tuple of inputs (numpy arrays, lists for sequences, None for omitted optional inputs);
    ``o``: tuple of preallocated output arrays (views into the arena; None where the shape is only known at
    run time); ``a``: the node's attributes with defaults; ``w``: the step's :class:`Scratch`. The kernel
    returns its outputs in order; an output that is not ``o[k]`` itself is copied into ``o[k]``."""
    def deco(fn):
        for n in names:
            KERNELS[n] = fn
        return fn
    return deco


class Scratch:
    """Scratch buffers of one step (im2col columns, padded inputs, program temporaries), made on the first call
    and reused after, keyed by (key, shape, dtype). They are carved from the step's ``region`` (its workspace
    in the arena, planned at compile time) while it has room, else allocated once from the heap."""

    __slots__ = ("bufs", "region", "pos")

    def __init__(self, region=None):
        self.bufs = {}
        self.region = region
        self.pos = 0

    def get(self, key, shape, dtype):
        shape = tuple(int(s) for s in shape)
        dt = np.dtype(dtype)
        k = (key, shape, dt.str)
        b = self.bufs.get(k)
        if b is None:
            n = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
            if self.region is not None and self.pos + n <= self.region.size:
                b = self.region[self.pos:self.pos + n].view(dt).reshape(shape)
                self.pos += -(-n // 64) * 64
            else:
                b = np.empty(shape, dt)
            self.bufs[k] = b
        return b


def out(o, k, shape, dtype):
    """Output ``k``: the preallocated view, or a new array when its shape is only known now."""
    if k < len(o) and o[k] is not None:
        if list(o[k].shape) != [int(s) for s in shape]:
            raise BornrtError("result has shape %s, the plan expects %s" % ([int(s) for s in shape], list(o[k].shape)))
        return o[k]
    return np.empty(tuple(int(s) for s in shape), dtype)


def call(fn, x, o, a, w):
    """Run one kernel and place its results: returns the output values (arena views or new arrays).
    Raises BornrtError naming the node when the kernel fails."""
    try:
        if "_promote" in a:                 # a bfloat16 node: computed in float32, rounded back on the way out
            res = _promoted(fn, x, o, a, w)
        else:
            res = fn(x, o, a, w)
        final = []
        for k in range(len(o)):
            r = res[k] if k < len(res) else None
            d = o[k]
            if d is None or r is d:
                final.append(r)
                continue
            r = np.asarray(r)
            if r.shape != d.shape:
                raise BornrtError("result has shape %s, the plan expects %s" % (list(r.shape), list(d.shape)))
            np.copyto(d, r, casting="unsafe")
            final.append(d)
        return final
    except Exception as ex:  # noqa: BLE001 - one message naming the node, whatever numpy raised
        shapes = ", ".join("%s%s" % (v.dtype, list(v.shape)) if isinstance(v, np.ndarray) else type(v).__name__ for v in x)
        raise BornrtError("kernel failed: node %r (%s) on inputs (%s): %s: %s"
                          % (a.get("_node"), a.get("_op"), shapes, type(ex).__name__, ex))


def _promoted(fn, x, o, a, w):
    """Run ``fn`` on bfloat16 inputs decoded to float32 and encode its bfloat16 outputs again (the C target's
    float32 lowering of bfloat16 nodes; ONNX gives no precision for bfloat16 arithmetic)."""
    xs = [as_float(v, k, a) if isinstance(v, np.ndarray) else v for k, v in enumerate(x)]
    outs = a["_out_dtypes"]
    res = fn(xs, [None if outs[k] in FLOAT_BITS else d for k, d in enumerate(o)], a, w)
    return [float_to_bits(r, outs[k], None) if k < len(outs) and outs[k] in FLOAT_BITS and r is not None else r
            for k, r in enumerate(res)]


# ============================================================================================ elementwise
def _f(x):
    """float32 or float64 view of the computation for a float16 (or integer) input."""
    return x if x.dtype.kind == "f" and x.dtype.itemsize >= 4 else x.astype(np.float32)


def erf(x):
    """Error function, elementwise, in float64: a Maclaurin series for |x| < 0.5 (16 terms, below 1e-16) and
    1 - erfc(|x|) otherwise with the Chebyshev fit of Numerical Recipes in C, 2nd ed., section 6.2 (erfcc,
    fractional error below 1.2e-7)."""
    x = np.asarray(x, dtype=np.float64)
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (
        0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))
    big = np.sign(x) * (1.0 - t * np.exp(-z * z + poly))
    x2 = x * x
    term = x.copy()
    small = x.copy()
    for n in range(1, 16):
        term = term * (-x2) / n
        small = small + term / (2 * n + 1)
    return np.where(z < 0.5, small * (2.0 / math.sqrt(math.pi)), big)


def sigmoid(x):
    """Logistic function without overflow for large |x|, in float64."""
    x64 = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x64))
    return np.where(x64 >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _ufunc(uf):
    return lambda y, a, x: uf(x, out=y, casting="unsafe")


def _relu(y, a, x):
    return np.maximum(x, np.zeros((), x.dtype), out=y)


def _leaky(y, a, x):
    al = a.get("alpha", 0.01)
    if np.may_share_memory(x, y):
        np.copyto(y, np.where(x >= 0, x, x * al), casting="unsafe")
        return y
    np.multiply(x, al, out=y, casting="unsafe")
    return (np.maximum if al <= 1 else np.minimum)(x, y, out=y)


def _sigmoid(y, a, x):
    if x.dtype.kind != "f":
        np.copyto(y, sigmoid(x), casting="unsafe")
        return y
    np.negative(x, out=y)
    np.exp(y, out=y)
    y += 1
    return np.reciprocal(y, out=y)


def _hard_sigmoid(y, a, x):
    if x.dtype.kind != "f":
        np.copyto(y, np.clip(a.get("alpha", 0.2) * _f64(x) + a.get("beta", 0.5), 0, 1), casting="unsafe")
        return y
    np.multiply(x, a.get("alpha", 0.2), out=y, casting="unsafe")      # elementwise passes: safe in place
    y += a.get("beta", 0.5)
    return np.clip(y, 0, 1, out=y)


def _hard_swish(y, a, x):
    if x.dtype.kind != "f" or np.may_share_memory(x, y):
        np.copyto(y, x * np.clip(_f64(x) / 6 + 0.5, 0, 1), casting="unsafe")
        return y
    np.multiply(x, 1.0 / 6.0, out=y)
    y += 0.5
    np.clip(y, 0, 1, out=y)
    return np.multiply(y, x, out=y)


def _mk(fn):
    """An elementwise function that computes a new array, adapted to write into ``y``."""
    def run(y, a, *xs):
        np.copyto(y, fn(a, *xs), casting="unsafe")
        return y
    return run


def _int_div(a, b):
    """Integer division truncating toward zero (C semantics, as ONNX Div on integers)."""
    bz = np.where(b == 0, 1, b)
    q = np.floor_divide(a, bz)
    fix = (np.mod(a, bz) != 0) & ((a < 0) != (b < 0))
    return q + fix.astype(q.dtype)


def _div(y, a, p, q):
    if p.dtype.kind in "iu":
        np.copyto(y, _int_div(p, q), casting="unsafe")
        return y
    return np.divide(p, q, out=y, casting="unsafe")


def _pow(y, a, p, q):
    if p.dtype.kind in "iu":
        r = np.power(p.astype(np.int64), q.astype(np.int64)) if q.dtype.kind in "iu" else np.power(p.astype(np.float64), q)
    elif q.dtype.kind in "iu":
        r = np.power(p, q.astype(p.dtype))
    else:
        r = np.power(p.astype(np.float64) if p.dtype != np.float64 and q.dtype == np.float64 else p, q)
    np.copyto(y, r, casting="unsafe")
    return y


def _gelu(a, x):
    x64 = x.astype(np.float64)
    if a.get("approximate", "none") == "tanh":
        return 0.5 * x64 * (1 + np.tanh(math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64 ** 3)))
    return 0.5 * x64 * (1 + erf(x64 / math.sqrt(2)))


def _clip(y, a, x, lo=None, hi=None):
    if lo is None and hi is None:
        np.copyto(y, x)
        return y
    return np.clip(x, None if lo is None else lo.astype(x.dtype), None if hi is None else hi.astype(x.dtype), out=y)


def _f64(x):
    return x.astype(np.float64)


#: Elementwise functions ``fn(y, attrs, *inputs) -> y`` writing into ``y`` (broadcast shape, output dtype).
#: FusedElementwise programs and the single-op kernels use the same table.
EW = {
    "Abs": _ufunc(np.abs), "Neg": _ufunc(np.negative), "Floor": _ufunc(np.floor), "Ceil": _ufunc(np.ceil),
    "Sqrt": _ufunc(np.sqrt), "Exp": _ufunc(np.exp), "Log": _ufunc(np.log), "Sin": _ufunc(np.sin), "Cos": _ufunc(np.cos),
    "Tan": _ufunc(np.tan), "Asin": _ufunc(np.arcsin), "Acos": _ufunc(np.arccos), "Atan": _ufunc(np.arctan),
    "Sinh": _ufunc(np.sinh), "Cosh": _ufunc(np.cosh), "Tanh": _ufunc(np.tanh), "Asinh": _ufunc(np.arcsinh),
    "Acosh": _ufunc(np.arccosh), "Atanh": _ufunc(np.arctanh), "Sign": _ufunc(np.sign), "Round": _ufunc(np.rint),
    "Reciprocal": _ufunc(np.reciprocal), "Not": _ufunc(np.logical_not), "BitwiseNot": _ufunc(np.invert),
    "IsNaN": _ufunc(np.isnan),
    "Relu": _relu, "LeakyRelu": _leaky, "Sigmoid": _sigmoid,
    "Erf": _mk(lambda a, x: erf(x)),
    "Elu": _mk(lambda a, x: np.where(x >= 0, x, a.get("alpha", 1.0) * np.expm1(_f64(x)))),
    "Celu": _mk(lambda a, x: np.maximum(0, x) + np.minimum(0, a.get("alpha", 1.0) * np.expm1(_f64(x) / a.get("alpha", 1.0)))),
    "Selu": _mk(lambda a, x: a.get("gamma", 1.0507009873554804934193349852946) * np.where(
        x > 0, x, a.get("alpha", 1.6732632423543772848170429916717) * np.expm1(_f64(x)))),
    "HardSigmoid": _hard_sigmoid,
    "HardSwish": _hard_swish,
    "Softplus": _mk(lambda a, x: np.logaddexp(0, _f64(x))),
    "Softsign": _mk(lambda a, x: x / (1 + np.abs(x))),
    "ThresholdedRelu": _mk(lambda a, x: np.where(x > a.get("alpha", 1.0), x, 0)),
    "Mish": _mk(lambda a, x: x * np.tanh(np.logaddexp(0, _f64(x)))),
    "Swish": _mk(lambda a, x: x * sigmoid(a.get("alpha", 1.0) * _f64(x))),
    "Shrink": _mk(lambda a, x: np.where(x < -a.get("lambd", 0.5), x + a.get("bias", 0.0),
                                        np.where(x > a.get("lambd", 0.5), x - a.get("bias", 0.0), 0))),
    "Gelu": _mk(_gelu),
    "IsInf": _mk(lambda a, x: (np.isposinf(x) & bool(a.get("detect_positive", 1))) |
                 (np.isneginf(x) & bool(a.get("detect_negative", 1)))),
    "Add": lambda y, a, p, q: np.add(p, q, out=y, casting="unsafe"),
    "Sub": lambda y, a, p, q: np.subtract(p, q, out=y, casting="unsafe"),
    "Mul": lambda y, a, p, q: np.multiply(p, q, out=y, casting="unsafe"),
    "Div": _div, "Pow": _pow,
    "Mod": _mk(lambda a, p, q: (np.fmod if a.get("fmod", 0) else np.mod)(p, np.where(q == 0, 1, q) if q.dtype.kind in "iu" else q)),
    "BitShift": _mk(lambda a, p, q: (np.left_shift if a.get("direction", "LEFT") == "LEFT" else np.right_shift)(p, q)),
    "PRelu": _mk(lambda a, p, q: np.where(p < 0, p * q, p)),
    "BitwiseAnd": lambda y, a, p, q: np.bitwise_and(p, q, out=y),
    "BitwiseOr": lambda y, a, p, q: np.bitwise_or(p, q, out=y),
    "BitwiseXor": lambda y, a, p, q: np.bitwise_xor(p, q, out=y),
    "And": lambda y, a, p, q: np.logical_and(p, q, out=y),
    "Or": lambda y, a, p, q: np.logical_or(p, q, out=y),
    "Xor": lambda y, a, p, q: np.logical_xor(p, q, out=y),
    "Equal": lambda y, a, p, q: np.equal(p, q, out=y),
    "Less": lambda y, a, p, q: np.less(p, q, out=y),
    "LessOrEqual": lambda y, a, p, q: np.less_equal(p, q, out=y),
    "Greater": lambda y, a, p, q: np.greater(p, q, out=y),
    "GreaterOrEqual": lambda y, a, p, q: np.greater_equal(p, q, out=y),
    "Clip": _clip,
    "Max": lambda y, a, p, q: np.maximum(p, q, out=y, casting="unsafe"),
    "Min": lambda y, a, p, q: np.minimum(p, q, out=y, casting="unsafe"),
}

_BOOL_OUT = {"Not", "IsNaN", "IsInf", "And", "Or", "Xor", "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"}


def _shape_of(*xs):
    return np.broadcast(*xs).shape if len(xs) > 1 else np.shape(xs[0])


def _ew_kernel(name):
    fn = EW[name]

    def run(x, o, a, w):
        args = [v for v in x if v is not None] if name != "Clip" else list(x)
        y = out(o, 0, _shape_of(*[v for v in args if v is not None]), np.bool_ if name in _BOOL_OUT else args[0].dtype)
        return (fn(y, a, *args),)
    return run


for _name in EW:
    if _name not in ("Max", "Min"):
        KERNELS[_name] = _ew_kernel(_name)


@kernel("Max", "Min", "Sum", "Mean")
def k_variadic(x, o, a, w):
    op = a["_op"]
    y = out(o, 0, _shape_of(*x), x[0].dtype)
    uf = {"Max": np.maximum, "Min": np.minimum}.get(op, np.add)
    if len(x) == 1:
        np.copyto(y, x[0])
    else:
        uf(x[0], x[1], out=y, casting="unsafe")
    for v in x[2:]:
        uf(y, v, out=y, casting="unsafe")
    if op == "Mean":
        if y.dtype.kind in "iu":
            np.floor_divide(y, len(x), out=y)
        else:
            np.divide(y, len(x), out=y)
    return (y,)


@kernel("Where")
def k_where(x, o, a, w):
    c, p, q = x
    y = out(o, 0, _shape_of(c, p, q), p.dtype)
    if np.may_share_memory(y, c):                     # in place over the condition: compute first
        np.copyto(y, np.where(c, p, q))
    elif np.may_share_memory(y, p):                   # in place over x: only the other elements change
        np.copyto(y, q, where=np.logical_not(c))
    else:
        np.copyto(y, q)
        np.copyto(y, p, where=c)
    return (y,)


def run_program(program, inputs, y, w, tag="p"):
    """Evaluate a FusedElementwise program (bornc's format: steps ``{"op", "args", "attrs"}``, arguments
    ``["in", i]``, ``["t", k]`` or ``["c", scalar]``) into ``y``; intermediate steps use scratch buffers."""
    temps = []
    last = len(program) - 1
    for k, step in enumerate(program):
        args = []
        for kind, v in step["args"]:
            if kind == "in":
                args.append(inputs[v])
            elif kind == "t":
                args.append(temps[v])
            else:
                args.append(None if v is None else np.asarray(v, dtype=y.dtype))
        if k == last:
            dst = y
        else:
            dst = w.get((tag, k), _shape_of(*[v for v in args if v is not None]), y.dtype)
        temps.append(EW[step["op"]](dst, step.get("attrs", {}), *args))
    return y


@kernel("FusedElementwise")
def k_fused_elementwise(x, o, a, w):
    y = out(o, 0, _shape_of(*x), np.dtype(a["dtype"]))
    return (run_program(a["program"], x, y, w),)


# ============================================================================================ casts
#: ONNX integer types numpy lacks, held one value per byte: logical name -> (storage dtype, bits, signed).
STORAGE = {"int4": ("int8", 4, True), "uint4": ("uint8", 4, False), "int2": ("int8", 2, True), "uint2": ("uint8", 2, False)}


#: ONNX float types numpy lacks, held as their bit patterns: logical name -> storage dtype. Only Cast, CastLike,
#: QuantizeLinear and DequantizeLinear compute on them (through float32); views pass their bytes on.
FLOAT_BITS = {"bfloat16": "uint16", "float8_e4m3fn": "uint8", "float8_e4m3fnuz": "uint8", "float8_e5m2": "uint8",
              "float8_e5m2fnuz": "uint8", "float4_e2m1fn": "uint8", "float8_e8m0fnu": "uint8"}


def storage_dtype(name):
    """The numpy dtype that holds values of the ONNX type ``name`` here (int4 -> int8, bfloat16 -> uint16...)."""
    if name in FLOAT_BITS:
        return np.dtype(FLOAT_BITS[name])
    return np.dtype(STORAGE[name][0] if name in STORAGE else name)


def bits_to_float(v, dtype, tab):
    """float32 values of ``v``, bit patterns of the float type ``dtype``: bfloat16 is the high half of a float32;
    a small float decodes through ``tab`` (the compiler's table of every code's value)."""
    if dtype == "bfloat16":
        return (v.astype(np.uint32) << 16).view(np.float32)
    if dtype == "float8_e8m0fnu":               # 2^(code - 127); code 255 is NaN
        return np.where(v == 255, np.float32(np.nan), np.ldexp(np.float32(1), v.astype(np.int32) - 127)).astype(np.float32)
    return np.asarray(tab["values"], np.float32)[v & tab["mask"]]


def float_to_e8m0(x, saturate=1, round_mode="up"):
    """float8_e8m0fnu codes (a power-of-two exponent) of ``x`` from its float32 bits: the exponent field, raised
    by one for a nonzero fraction (``up``) or a fraction >= 1/2 (``nearest``), not past 254 when ``saturate``;
    Inf and NaN give 255 (ONNX Cast-24, round_mode)."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32)
    exp = ((bits >> 23) & 0xFF).astype(np.uint16)
    frac = bits & 0x7FFFFF
    special = exp == 0xFF
    if round_mode == "up":
        bump = frac > 0
    elif round_mode == "nearest":
        bump = frac >= 0x400000
    else:
        bump = np.zeros(exp.shape, dtype=bool)
    bump &= ~special
    if saturate:
        bump &= exp != 0xFE
    return np.where(special, 0xFF, np.minimum(exp + bump, 0xFF)).astype(np.uint8)


def float_to_bits(x, dtype, tab, saturate=1, round_mode="up"):
    """Bit patterns of ``x`` (converted to float32 first) in the float type ``dtype``, rounded to nearest, ties
    to even. bfloat16: the float32 rounded at bit 16, NaN kept quiet. A small float: the nearest code of ``tab``,
    the even one on a tie; beyond the largest finite value, that value when ``saturate`` (ONNX Cast) and else
    the overflow code (inf or NaN, as the format has)."""
    x = np.asarray(x, np.float32)
    if dtype == "float8_e8m0fnu":
        return float_to_e8m0(x, saturate, round_mode)
    if dtype == "bfloat16":
        b = x.view(np.uint32).astype(np.uint64)
        r = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)
        return np.where(np.isnan(x), ((b >> 16) | 0x40).astype(np.uint16), r)
    top = tab["maxcode"]
    vals = np.asarray(tab["values"], np.float32)[:top + 1]
    neg = np.signbit(x)
    a = np.abs(x)
    k = np.clip(np.searchsorted(vals, a, side="right") - 1, 0, top)
    k1 = np.minimum(k + 1, top)
    d0, d1 = a - vals[k], vals[k1] - a
    k = k + ((k < top) & ((d1 < d0) | ((d1 == d0) & (k % 2 == 1))))
    half = np.float32((vals[top] - vals[top - 1]) * np.float32(0.5))
    over = (a > vals[top] + half) | ((a == vals[top] + half) & ((top + 1) % 2 == 0))
    code = np.where(neg, tab["signbit"] | k, k)
    code = np.where((k == 0) & neg, tab["neg_zero"], code)
    if not saturate:
        code = np.where((a > vals[top]) & over, np.where(neg, tab["neg_over"], tab["pos_over"]), code)
    code = np.where(np.isnan(x), tab["nan"], code)
    return code.astype(np.uint8)


def as_float(v, k, a):
    """Input ``k`` of a node as numbers: bit-pattern floats (bfloat16, float8...) decoded to float32."""
    dt = a.get("_in_dtypes", [None] * (k + 1))[k]
    return bits_to_float(v, dt, a.get("_tabs", {}).get(dt)) if dt in FLOAT_BITS else v


def _to_narrow_int(v, name):
    """Cast to int4/uint4/int2/uint2 as the reference does: floats rounded half to even (4-bit types) or
    truncated (2-bit), 0 when out of the type's range or NaN; integers wrapped to the type's bits."""
    store, bits, signed = STORAGE[name]
    if v.dtype.kind == "f":                  # out of range (NaN included) -> 0, as ml_dtypes does
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        r = np.rint(v) if bits == 4 else np.trunc(v)
        v = np.where((r >= lo) & (r <= hi), r, 0)
    v = v.astype(np.int64) & ((1 << bits) - 1)
    if signed:
        v = np.where(v >= 1 << (bits - 1), v - (1 << bits), v)
    return v.astype(store)


@kernel("Cast", "CastLike")
def k_cast(x, o, a, w):
    to = a["_to"]
    v = as_float(x[0], 0, a)
    if to in FLOAT_BITS:
        return (float_to_bits(v, to, a.get("_tabs", {}).get(to), a.get("saturate", 1), a.get("round_mode", "up")),)
    if to in STORAGE:
        return (_to_narrow_int(v, to),)
    dt = np.dtype(to)
    y = out(o, 0, v.shape, dt)
    if dt.kind in "iu" and v.dtype.kind == "f":
        v = np.where(np.isfinite(v), v, 0)
    np.copyto(y, v, casting="unsafe")
    return (y,)


# ============================================================================================ tensor
def _copy(x, o, shape, dtype=None):
    y = out(o, 0, shape, dtype or x.dtype)
    np.copyto(y, np.reshape(x, y.shape))
    return y


@kernel("Identity")
def k_identity(x, o, a, w):
    if isinstance(x[0], np.ndarray):
        return (_copy(x[0], o, x[0].shape),)
    return (x[0],)


def reshape_shape(in_shape, shape, allowzero=0):
    """Output shape of ONNX Reshape (0 copies the input dim unless ``allowzero``, -1 is inferred)."""
    dims = [int(d) for d in shape]
    if not allowzero:
        dims = [in_shape[i] if d == 0 else d for i, d in enumerate(dims)]
    if -1 in dims:
        known = int(np.prod([d for d in dims if d != -1], dtype=np.int64))
        dims[dims.index(-1)] = int(np.prod(in_shape, dtype=np.int64)) // known if known else 0
    return tuple(dims)


@kernel("Reshape")
def k_reshape(x, o, a, w):
    return (_copy(x[0], o, reshape_shape(x[0].shape, x[1], a.get("allowzero", 0))),)


@kernel("Flatten")
def k_flatten(x, o, a, w):
    ax = a.get("axis", 1)
    ax = ax + x[0].ndim if ax < 0 else ax          # axis in [-r, r]
    s = x[0].shape
    return (_copy(x[0], o, (int(np.prod(s[:ax], dtype=np.int64)), int(np.prod(s[ax:], dtype=np.int64)))),)


@kernel("Squeeze")
def k_squeeze(x, o, a, w):
    v = x[0]
    if len(x) > 1 and x[1] is not None:
        axes = {int(i) % v.ndim for i in x[1]}
        shape = tuple(d for i, d in enumerate(v.shape) if i not in axes)
    else:
        shape = tuple(d for d in v.shape if d != 1)
    return (_copy(v, o, shape),)


@kernel("Unsqueeze")
def k_unsqueeze(x, o, a, w):
    v = x[0]
    ax_in = np.ravel(x[1])
    rank = v.ndim + len(ax_in)
    axes = sorted(int(i) % rank for i in ax_in)
    shape = list(v.shape)
    for ax in axes:
        shape.insert(ax, 1)
    return (_copy(v, o, shape),)


@kernel("Transpose")
def k_transpose(x, o, a, w):
    perm = a.get("perm") or list(range(x[0].ndim))[::-1]
    v = np.transpose(x[0], perm)
    y = out(o, 0, v.shape, v.dtype)
    np.copyto(y, v)
    return (y,)


@kernel("Concat")
def k_concat(x, o, a, w):
    xs = [v for v in x if v is not None]
    ax = a["axis"] % xs[0].ndim
    shape = list(xs[0].shape)
    shape[ax] = sum(v.shape[ax] for v in xs)
    y = out(o, 0, shape, xs[0].dtype)
    pos = 0
    for v in xs:
        sl = [slice(None)] * y.ndim
        sl[ax] = slice(pos, pos + v.shape[ax])
        y[tuple(sl)] = v
        pos += v.shape[ax]
    return (y,)


@kernel("Split")
def k_split(x, o, a, w):
    v = x[0]
    ax = a.get("axis", 0) % v.ndim
    n = len(o)
    if len(x) > 1 and x[1] is not None:
        sizes = [int(s) for s in x[1]]
    else:
        parts = a.get("num_outputs") or n
        each = -(-v.shape[ax] // parts)
        sizes = [min(each, v.shape[ax] - each * k) for k in range(parts)]
    res, pos = [], 0
    for k, s in enumerate(sizes):
        sl = [slice(None)] * v.ndim
        sl[ax] = slice(pos, pos + s)
        res.append(v[tuple(sl)])
        pos += s
    return res


def slices(shape, starts, ends, axes=None, steps=None):
    """Python slices of ONNX Slice (negative and out-of-range starts/ends clamped as the spec says)."""
    rank = len(shape)
    axes = [int(i) % rank for i in axes] if axes is not None else list(range(len(starts)))
    steps = [int(s) for s in steps] if steps is not None else [1] * len(axes)
    sl = [slice(None)] * rank
    for ax, s, e, st in zip(axes, starts, ends, steps):
        d = shape[ax]
        s, e = int(s), int(e)
        if st > 0:
            s = min(max(s + d if s < 0 else s, 0), d)
            e = min(max(e + d if e < 0 else e, 0), d)
        else:
            s = min(max(s + d if s < 0 else s, -1), d - 1)
            e = min(max(e + d if e < 0 else e, -1), d - 1)
            e = None if e < 0 else e
        sl[ax] = slice(s, e, st)
    return tuple(sl)


@kernel("Slice")
def k_slice(x, o, a, w):
    v = x[0]
    r = v[slices(v.shape, x[1], x[2], x[3] if len(x) > 3 else None, x[4] if len(x) > 4 else None)]
    y = out(o, 0, r.shape, v.dtype)
    np.copyto(y, r)
    return (y,)


def in_range(idx, dims):
    """int64 indices in [0, dim) for axes of sizes ``dims`` (negative ones count from the end); BornrtError for an
    index outside [-dim, dim) (numpy would wrap it)."""
    idx = np.asarray(idx).astype(np.int64)
    d = np.asarray(dims, dtype=np.int64)
    bad = (idx < -d) | (idx >= d)
    if bad.any():
        raise BornrtError("index %d is out of range for an axis of size(s) %s" % (int(idx[bad].ravel()[0]), d.tolist()))
    return np.where(idx < 0, idx + d, idx)


@kernel("Gather")
def k_gather(x, o, a, w):
    v, idx = x
    ax = a.get("axis", 0) % v.ndim
    return (np.take(v, in_range(idx, v.shape[ax]), axis=ax),)


@kernel("GatherElements")
def k_gather_elements(x, o, a, w):
    v, idx = x
    ax = a.get("axis", 0) % v.ndim
    return (np.take_along_axis(v, in_range(idx, v.shape[ax]), axis=ax),)


@kernel("GatherND")
def k_gather_nd(x, o, a, w):
    v, idx = x
    b = a.get("batch_dims", 0)
    idx = idx.astype(np.int64)
    bshape = v.shape[:b]
    k = idx.shape[-1]
    vb = v.reshape((-1,) + v.shape[b:])
    ib = idx.reshape((-1,) + idx.shape[b:])
    res = []
    for n in range(vb.shape[0]):
        ii = in_range(ib[n].reshape(-1, k), v.shape[b:b + k])
        res.append(vb[n][tuple(ii.T)])
    r = np.stack(res) if res else np.zeros((0,) + v.shape[b + k:], v.dtype)
    return (r.reshape(bshape + idx.shape[b:-1] + v.shape[b + k:]),)


def _scatter_reduce(red):
    return {"none": None, "add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}[red]


@kernel("ScatterElements", "Scatter")
def k_scatter_elements(x, o, a, w):
    v, idx, upd = x
    ax = a.get("axis", 0) % v.ndim
    y = np.array(v, copy=True)
    idx = in_range(idx, v.shape[ax])
    grid = list(np.indices(idx.shape, sparse=True))
    grid[ax] = idx
    uf = _scatter_reduce(a.get("reduction", "none"))
    if uf is None:
        y[tuple(grid)] = upd
    else:
        uf.at(y, tuple(np.broadcast_arrays(*grid)), upd)
    return (y,)


@kernel("ScatterND")
def k_scatter_nd(x, o, a, w):
    v, idx, upd = x
    y = np.array(v, copy=True)
    k = idx.shape[-1]
    ii = in_range(idx.reshape(-1, k), v.shape[:k])
    uu = upd.reshape((ii.shape[0],) + v.shape[k:])
    uf = _scatter_reduce(a.get("reduction", "none"))
    for n in range(ii.shape[0]):
        t = tuple(int(i) for i in ii[n])
        y[t] = uu[n] if uf is None else uf(y[t], uu[n])
    return (y,)


@kernel("Expand")
def k_expand(x, o, a, w):
    shape = np.broadcast(np.empty(x[0].shape, np.bool_), np.empty([int(d) for d in x[1]], np.bool_)).shape
    y = out(o, 0, shape, x[0].dtype)
    np.copyto(y, x[0])
    return (y,)


@kernel("Tile")
def k_tile(x, o, a, w):
    return (np.tile(x[0], [int(r) for r in x[1]]),)


@kernel("Pad")
def k_pad(x, o, a, w):
    v, pads = x[0], [int(p) for p in x[1]]
    cval = x[2] if len(x) > 2 and x[2] is not None and np.size(x[2]) else 0
    axes = [int(i) % v.ndim for i in x[3]] if len(x) > 3 and x[3] is not None else list(range(v.ndim))
    n = len(axes)
    width = [(0, 0)] * v.ndim
    for k, ax in enumerate(axes):
        width[ax] = (pads[k], pads[k + n])
    crop = tuple(slice(max(-b, 0), v.shape[i] - max(-e, 0)) for i, (b, e) in enumerate(width))
    v = v[crop]
    width = [(max(b, 0), max(e, 0)) for b, e in width]
    mode = a.get("mode", "constant")
    if mode == "constant":
        r = np.pad(v, width, mode="constant", constant_values=np.asarray(cval).reshape(()).astype(v.dtype))
    else:
        r = np.pad(v, width, mode={"reflect": "reflect", "edge": "edge", "wrap": "wrap"}[mode])
    return (r,)


@kernel("Shape")
def k_shape(x, o, a, w):
    s = np.array(np.shape(x[0]), dtype=np.int64)
    r = len(s)
    st = a.get("start", 0) or 0
    en = a.get("end")
    st = min(max(st + r if st < 0 else st, 0), r)
    en = r if en is None else min(max(en + r if en < 0 else en, 0), r)
    return (s[st:en],)


@kernel("Size")
def k_size(x, o, a, w):
    return (np.array(np.size(x[0]), dtype=np.int64),)


@kernel("ConstantOfShape")
def k_constant_of_shape(x, o, a, w):
    val = a.get("value")
    val = np.zeros(1, np.float32) if val is None else np.asarray(val)
    y = out(o, 0, [int(d) for d in x[0]], val.dtype)
    y.fill(val.reshape(-1)[0])
    return (y,)


@kernel("Range")
def k_range(x, o, a, w):
    s, l, d = (v.reshape(()) for v in x)
    n = max(int(math.ceil((float(l) - float(s)) / float(d))), 0)
    return ((s + np.arange(n, dtype=s.dtype) * d).astype(s.dtype),)


@kernel("EyeLike")
def k_eye_like(x, o, a, w):
    dt = np.dtype(a["_to"]) if a.get("_to") else x[0].dtype
    return (np.eye(x[0].shape[0], x[0].shape[1], k=a.get("k", 0), dtype=dt),)


@kernel("NonZero")
def k_nonzero(x, o, a, w):
    return (np.array(np.nonzero(x[0]), dtype=np.int64).reshape(x[0].ndim, -1),)


@kernel("Compress")
def k_compress(x, o, a, w):
    ax = a.get("axis")
    return (np.compress(x[1].astype(bool), x[0], axis=ax),)


@kernel("Trilu")
def k_trilu(x, o, a, w):
    k = int(x[1]) if len(x) > 1 and x[1] is not None else 0
    return ((np.triu if a.get("upper", 1) else np.tril)(x[0], k),)


def cumulative(a, x, axis, ufunc):
    """ONNX CumSum / CumProd along ``axis`` (``exclusive``, ``reverse``) with ``ufunc`` np.add or np.multiply."""
    ax = int(np.asarray(axis).ravel()[0]) % x.ndim
    y = np.flip(x, ax) if a.get("reverse", 0) else x
    r = ufunc.accumulate(y, axis=ax, dtype=x.dtype)
    if a.get("exclusive", 0):
        ident = np.zeros_like(r) if ufunc is np.add else np.ones_like(r)
        r = np.concatenate([np.take(ident, [0], axis=ax), np.take(r, np.arange(r.shape[ax] - 1), axis=ax)], axis=ax)
    return np.flip(r, ax).copy() if a.get("reverse", 0) else r


KERNELS["CumSum"] = lambda x, o, a, w: (cumulative(a, x[0], x[1], np.add),)
KERNELS["CumProd"] = lambda x, o, a, w: (cumulative(a, x[0], x[1], np.multiply),)


def unique(a, x):
    """ONNX Unique: values, first indices, inverse indices, counts; ``sorted`` = 0 keeps first-occurrence order."""
    ax = a.get("axis")
    ax = None if ax is None else ax % x.ndim
    y, first, inverse, counts = np.unique(x, return_index=True, return_inverse=True, return_counts=True, axis=ax)
    inverse = inverse.reshape(-1)
    if not a.get("sorted", 1):
        order = np.argsort(first, kind="stable")
        remap = np.empty_like(order)
        remap[order] = np.arange(len(order))
        y = np.take(y, order, axis=0 if ax is None else ax)
        first, counts, inverse = first[order], counts[order], remap[inverse]
    return y, first.astype(np.int64), inverse.astype(np.int64), counts.astype(np.int64)


KERNELS["Unique"] = lambda x, o, a, w: unique(a, x[0])


@kernel("OneHot")
def k_one_hot(x, o, a, w):
    idx, depth, values = x
    d = int(np.asarray(depth).reshape(-1)[0])
    idx = np.asarray(idx).astype(np.int64)
    idx = np.where(idx < 0, idx + d, idx)
    ax = a.get("axis", -1)
    ax = ax % (idx.ndim + 1)
    hot = np.expand_dims(idx, ax) == np.arange(d).reshape([d if i == ax else 1 for i in range(idx.ndim + 1)])
    return (np.where(hot, values[1], values[0]).astype(values.dtype),)


@kernel("TopK")
def k_topk(x, o, a, w):
    v, k = x[0], int(np.asarray(x[1]).reshape(-1)[0])
    ax = a.get("axis", -1) % v.ndim
    key = -v if a.get("largest", 1) and v.dtype.kind != "u" else v
    if a.get("largest", 1) and v.dtype.kind == "u":
        key = np.iinfo(v.dtype).max - v
    if v.dtype.kind == "f":
        key = np.where(np.isnan(v), -np.inf if a.get("largest", 1) else np.inf, key)
    idx = np.take(np.argsort(key, axis=ax, kind="stable"), np.arange(k), axis=ax)
    return (np.take_along_axis(v, idx, axis=ax), idx.astype(np.int64))


@kernel("DepthToSpace")
def k_depth_to_space(x, o, a, w):
    v, b = x[0], a["blocksize"]
    n, c, h, wd = v.shape
    if a.get("mode", "DCR") == "DCR":
        t = v.reshape(n, b, b, c // (b * b), h, wd).transpose(0, 3, 4, 1, 5, 2)
    else:
        t = v.reshape(n, c // (b * b), b, b, h, wd).transpose(0, 1, 4, 2, 5, 3)
    return (t.reshape(n, c // (b * b), h * b, wd * b),)


@kernel("SpaceToDepth")
def k_space_to_depth(x, o, a, w):
    v, b = x[0], a["blocksize"]
    n, c, h, wd = v.shape
    t = v.reshape(n, c, h // b, b, wd // b, b)
    t = t.transpose(0, 3, 5, 1, 2, 4) if a.get("mode", "DCR") == "DCR" else t.transpose(0, 1, 3, 5, 2, 4)
    return (t.reshape(n, c * b * b, h // b, wd // b),)


@kernel("ReverseSequence")
def k_reverse_sequence(x, o, a, w):
    v, lens = x
    y = np.array(v, copy=True)
    bax, tax = a.get("batch_axis", 1), a.get("time_axis", 0)
    for b in range(v.shape[bax]):
        n = int(lens[b])
        src = [slice(None)] * v.ndim
        src[bax] = b
        src[tax] = slice(0, n)
        y[tuple(src)] = np.flip(v[tuple(src)], axis=tax - (1 if bax < tax else 0))
    return (y,)


@kernel("Einsum")
def k_einsum(x, o, a, w):
    return (np.einsum(a["equation"], *x, optimize=len(x) > 2),)


@kernel("Dropout")
def k_dropout(x, o, a, w):
    y = _copy(x[0], o, x[0].shape)
    return (y, np.ones(x[0].shape, dtype=np.bool_))


# ============================================================================================ reductions
def reduce_axes(x, axes, noop_with_empty_axes=0):
    """Axes tuple of ONNX Reduce* (None: all axes; (): identity when ``noop_with_empty_axes``)."""
    if axes is None or len(axes) == 0:
        return () if noop_with_empty_axes else None
    return tuple(int(i) % max(x.ndim, 1) for i in np.asarray(axes).ravel())


def _ext(fn, x, ax, keep, low):
    if x.dtype.kind == "f":
        init = -np.inf if low else np.inf
    elif x.dtype == np.bool_:
        init = not low
    else:
        init = np.iinfo(x.dtype).min if low else np.iinfo(x.dtype).max
    return fn(x, axis=ax, keepdims=keep, initial=init)


def _logsumexp(x, ax, keep):
    m = np.max(x, axis=ax, keepdims=True, initial=-np.inf) if x.size else np.zeros([1] * x.ndim)
    m = np.where(np.isfinite(m), m, 0)
    r = np.log(np.sum(np.exp(x - m), axis=ax, keepdims=True)) + m
    return r if keep else np.squeeze(r, axis=ax if ax is not None else tuple(range(x.ndim)))


REDUCE = {
    "ReduceSum": lambda x, ax, k: np.sum(x, axis=ax, keepdims=k),
    "ReduceMean": lambda x, ax, k: np.mean(x, axis=ax, keepdims=k),
    "ReduceMax": lambda x, ax, k: _ext(np.max, x, ax, k, True),
    "ReduceMin": lambda x, ax, k: _ext(np.min, x, ax, k, False),
    "ReduceProd": lambda x, ax, k: np.prod(x, axis=ax, keepdims=k),
    "ReduceL1": lambda x, ax, k: np.sum(np.abs(x), axis=ax, keepdims=k),
    "ReduceL2": lambda x, ax, k: np.sqrt(np.sum(np.square(x.astype(np.float64)), axis=ax, keepdims=k)),
    "ReduceLogSum": lambda x, ax, k: np.log(np.sum(x, axis=ax, keepdims=k)),
    "ReduceLogSumExp": lambda x, ax, k: _logsumexp(x.astype(np.float64), ax, k),
    "ReduceSumSquare": lambda x, ax, k: np.sum(np.square(x), axis=ax, keepdims=k),
}


def _reduce_kernel(name):
    fn = REDUCE[name]

    def run(x, o, a, w):
        v = x[0]
        ax = reduce_axes(v, x[1] if len(x) > 1 else None, a.get("noop_with_empty_axes", 0))
        if ax == ():
            return (_copy(v, o, v.shape),)
        keep = bool(a.get("keepdims", 1))
        y = o[0] if o and o[0] is not None else None
        if y is not None and name in ("ReduceSum", "ReduceMean") and v.dtype == y.dtype and v.size:
            (np.sum if name == "ReduceSum" else np.mean)(v, axis=ax, keepdims=keep, out=y)
            return (y,)
        return (np.asarray(fn(v, ax, keep)).astype(v.dtype),)
    return run


for _name in REDUCE:
    KERNELS[_name] = _reduce_kernel(_name)


@kernel("ArgMax", "ArgMin")
def k_argreduce(x, o, a, w):
    v = x[0]
    ax = a.get("axis", 0) % v.ndim
    big = a["_op"] == "ArgMax"
    if a.get("select_last_index", 0):
        f = np.flip(v, ax)
        i = v.shape[ax] - 1 - (np.argmax(f, axis=ax) if big else np.argmin(f, axis=ax))
    else:
        i = np.argmax(v, axis=ax) if big else np.argmin(v, axis=ax)
    if a.get("keepdims", 1):
        i = np.expand_dims(i, ax)
    return (i.astype(np.int64),)


# ============================================================================================ geometry
def conv_pads(in_sp, kernel, strides, dilations, auto_pad, pads):
    """(begin, end) padding per spatial axis of Conv and pooling (spec: Conv, attribute auto_pad)."""
    nd = len(in_sp)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        res = []
        for i in range(nd):
            o = -(-in_sp[i] // strides[i])
            total = max((o - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - in_sp[i], 0)
            small = total // 2
            res.append((small, total - small) if auto_pad == "SAME_UPPER" else (total - small, small))
        return res
    if auto_pad == "VALID" or pads is None:
        return [(0, 0)] * nd
    return [(int(pads[i]), int(pads[i + nd])) for i in range(nd)]


def out_size(n, k, s, d, pb, pe, ceil_mode=False):
    """Output length of a window of ``k`` taps (dilation ``d``) at stride ``s`` over ``n`` + padding."""
    span = (k - 1) * d + 1
    q = (n + pb + pe - span) / s
    o = (math.ceil(q) if ceil_mode else math.floor(q)) + 1
    if ceil_mode and (o - 1) * s >= n + pb:   # the last window must start inside the input or left padding
        o -= 1
    return max(o, 0)


def conv_geometry(attrs, x_shape, w_shape):
    """kernel, strides, dilations, pads [(begin, end)], output spatial sizes of Conv."""
    nd = len(x_shape) - 2
    kernel = list(attrs.get("kernel_shape") or w_shape[2:])
    strides = list(attrs.get("strides") or [1] * nd)
    dil = list(attrs.get("dilations") or [1] * nd)
    pads = conv_pads(x_shape[2:], kernel, strides, dil, attrs.get("auto_pad", "NOTSET"), attrs.get("pads"))
    outs = [out_size(n, k, s, d, pb, pe) for n, k, s, d, (pb, pe) in zip(x_shape[2:], kernel, strides, dil, pads)]
    return kernel, strides, dil, pads, outs


def pool_geometry(attrs, x_shape):
    """kernel, strides, dilations, pads, extra end padding (so every window lies inside), output sizes."""
    kernel = list(attrs["kernel_shape"])
    nd = len(kernel)
    strides = list(attrs.get("strides") or [1] * nd)
    dil = list(attrs.get("dilations") or [1] * nd)
    pads = conv_pads(x_shape[2:], kernel, strides, dil, attrs.get("auto_pad", "NOTSET"), attrs.get("pads"))
    outs = [out_size(n, k, s, d, pb, pe, bool(attrs.get("ceil_mode", 0)))
            for n, k, s, d, (pb, pe) in zip(x_shape[2:], kernel, strides, dil, pads)]
    if attrs.get("auto_pad") in ("SAME_UPPER", "SAME_LOWER"):
        outs = [-(-n // s) for n, s in zip(x_shape[2:], strides)]
    ext = [max((o - 1) * s + (k - 1) * d + 1 - (n + pb + pe), 0)
           for o, s, k, d, n, (pb, pe) in zip(outs, strides, kernel, dil, x_shape[2:], pads)]
    return kernel, strides, dil, pads, ext, outs


def convtranspose_geometry(attrs, x_shape, w_shape):
    """kernel, strides, dilations, pads, full (uncropped) and output spatial sizes of ConvTranspose."""
    nd = len(x_shape) - 2
    kernel = list(attrs.get("kernel_shape") or w_shape[2:])
    strides = list(attrs.get("strides") or [1] * nd)
    dil = list(attrs.get("dilations") or [1] * nd)
    opad = list(attrs.get("output_padding") or [0] * nd)
    full = [strides[i] * (x_shape[2 + i] - 1) + opad[i] + (kernel[i] - 1) * dil[i] + 1 for i in range(nd)]
    auto = attrs.get("auto_pad", "NOTSET")
    if attrs.get("output_shape") is not None:
        target = list(attrs["output_shape"])[-nd:]
        total = [full[i] - target[i] for i in range(nd)]
        pads = [(t // 2, t - t // 2) if auto == "SAME_UPPER" else (t - t // 2, t // 2) for t in total]
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        target = [x_shape[2 + i] * strides[i] for i in range(nd)]
        total = [max(full[i] - target[i], 0) for i in range(nd)]
        pads = [(t // 2, t - t // 2) if auto == "SAME_UPPER" else (t - t // 2, t // 2) for t in total]
    elif attrs.get("pads") is not None and auto != "VALID":
        p = attrs["pads"]
        pads = [(int(p[i]), int(p[i + nd])) for i in range(nd)]
    else:
        pads = [(0, 0)] * nd
    outs = [full[i] - pads[i][0] - pads[i][1] for i in range(nd)]
    return kernel, strides, dil, pads, full, outs


def windows(xp, kernel, strides, dilations, out_sp):
    """Read-only view (N, C, *kernel, *out) of a padded NC... array: element [n, c, k.., o..] is
    xp[n, c, o * stride + k * dilation]."""
    st = xp.strides
    shape = xp.shape[:2] + tuple(kernel) + tuple(out_sp)
    strides = st[:2] + tuple(s * d for s, d in zip(st[2:], dilations)) + tuple(s * t for s, t in zip(st[2:], strides))
    return as_strided(xp, shape, strides, writeable=False)


def _padded(v, width, fill, w, key):
    """``v`` padded by ``width`` [(begin, end)] with ``fill``, in a reused scratch buffer."""
    if all(b == 0 and e == 0 for b, e in width):
        return v
    shape = [d + b + e for d, (b, e) in zip(v.shape, width)]
    xp = w.get(key, shape, v.dtype)
    xp.fill(fill)
    xp[tuple(slice(b, b + d) for d, (b, e) in zip(v.shape, width))] = v
    return xp


# ============================================================================================ nn
def conv(x, wt, b, group, kernel, strides, dil, pads, outs, y, w):
    """Grouped N-d convolution into ``y`` (N, M, *outs): im2col into a reused scratch buffer, then one
    batched matrix product per group (x (N, C, *S), wt (M, C/group, *K), b (M,) or None)."""
    n, c = x.shape[:2]
    m = wt.shape[0]
    nd = len(kernel)
    k = int(np.prod(kernel, dtype=np.int64))
    o = int(np.prod(outs, dtype=np.int64))
    cg, mg = c // group, m // group
    yv = y.reshape(n, group, mg, o)
    wg = wt.reshape(group, mg, cg * k)
    if k == 1 and all(s == 1 for s in strides) and all(p == (0, 0) for p in pads):
        cols = x.reshape(n, group, cg, o)
    else:
        xp = _padded(x, [(0, 0), (0, 0)] + list(pads), 0, w, "pad")
        win = windows(xp, kernel, strides, dil, outs)
        cols = w.get("cols", (n, c) + tuple(kernel) + tuple(outs), x.dtype)
        np.copyto(cols, win)
        cols = cols.reshape(n, group, cg * k, o)
    if group == 1:
        np.matmul(wg[0], cols[:, 0], out=yv[:, 0])
    else:
        np.matmul(wg, cols, out=yv)
    if b is not None:
        y += b.reshape((1, m) + (1,) * nd)
    return y


@kernel("Conv")
def k_conv(x, o, a, w):
    v, wt = x[0], x[1]
    b = x[2] if len(x) > 2 else None
    kernel_, strides, dil, pads, outs = conv_geometry(a, v.shape, wt.shape)
    y = out(o, 0, (v.shape[0], wt.shape[0]) + tuple(outs), v.dtype)
    return (conv(v, wt, b, a.get("group", 1), kernel_, strides, dil, pads, outs, y, w),)


def _epilogue(a, x, y, w):
    prog = a.get("epilogue")
    if prog:
        run_program(prog, [y] + list(x), y, w, "e")
    return y


@kernel("FusedConv")
def k_fused_conv(x, o, a, w):
    (y,) = k_conv(x[:3], o, a, w)
    return (_epilogue(a, x[3:], y, w),)


@kernel("ConvTranspose")
def k_conv_transpose(x, o, a, w):
    """Scatter form: every input pixel adds W[:, :, tap] at output position i * stride + tap * dilation."""
    v, wt = x[0], x[1]
    b = x[2] if len(x) > 2 else None
    kernel_, strides, dil, pads, full, outs = convtranspose_geometry(a, v.shape, wt.shape)
    group = a.get("group", 1)
    n, c = v.shape[:2]
    cg, mg = c // group, wt.shape[1]
    nd = v.ndim - 2
    in_sp = v.shape[2:]
    lo = [min(p[0], 0) for p in pads]
    hi = [min(p[1], 0) for p in pads]
    acc = w.get("acc", (n, mg * group) + tuple(f - l - h for f, l, h in zip(full, lo, hi)),
                np.float64 if v.dtype != np.float32 else v.dtype)
    acc.fill(0)
    xs = v.reshape(n, group, cg, -1)
    for g in range(group):
        wg = wt[g * cg:(g + 1) * cg].reshape(cg, -1)                       # (cg, mg * K)
        cols = w.get("cols", (n, wg.shape[1], xs.shape[-1]), np.result_type(wg, xs))
        np.matmul(wg.T, xs[:, g], out=cols)                                 # (N, mg * K, HW)
        cols = cols.reshape((n, mg) + tuple(kernel_) + tuple(in_sp))
        for tap in np.ndindex(*kernel_):
            sl = tuple(slice(tap[i] * dil[i] - lo[i], tap[i] * dil[i] - lo[i] + strides[i] * (in_sp[i] - 1) + 1, strides[i])
                       for i in range(nd))
            acc[(slice(None), slice(g * mg, (g + 1) * mg)) + sl] += cols[(slice(None), slice(None)) + tap]
    crop = tuple(slice(max(pads[i][0], 0), max(pads[i][0], 0) + outs[i]) for i in range(nd))
    r = acc[(slice(None), slice(None)) + crop]
    if b is not None:
        r = r + b.reshape((1, -1) + (1,) * nd)
    elif o[0] is None:                    # a run-time-shaped output must not alias the reused scratch
        r = np.array(r, copy=True)
    return (r,)


@kernel("MaxPool")
def k_maxpool(x, o, a, w):
    v = x[0]
    kernel_, strides, dil, pads, ext, outs = pool_geometry(a, v.shape)
    fill = -np.inf if v.dtype.kind == "f" else np.iinfo(v.dtype).min
    xp = _padded(v, [(0, 0), (0, 0)] + [(pb, pe + e) for (pb, pe), e in zip(pads, ext)], fill, w, "pad")
    win = windows(xp, kernel_, strides, dil, outs)
    nd = len(kernel_)
    y = out(o, 0, v.shape[:2] + tuple(outs), v.dtype)
    np.max(win, axis=tuple(range(2, 2 + nd)), out=y)
    if len(o) < 2:
        return (y,)
    k = int(np.prod(kernel_))
    arg = np.ascontiguousarray(win).reshape(v.shape[:2] + (k,) + tuple(outs)).argmax(axis=2)
    taps = np.unravel_index(arg, kernel_)
    grids = np.indices(tuple(outs))
    coords = [grids[i] * strides[i] - pads[i][0] + taps[i] * dil[i] for i in range(nd)]
    sp = v.shape[2:]
    idx = np.zeros_like(arg)
    order = range(nd) if a.get("storage_order", 0) == 0 else reversed(range(nd))
    for i in order:
        idx = idx * sp[i] + coords[i]
    nc = np.arange(v.shape[0] * v.shape[1]).reshape(v.shape[:2] + (1,) * nd)
    return (y, (idx + nc * int(np.prod(sp))).astype(np.int64))


@kernel("AveragePool", "LpPool")
def k_avgpool(x, o, a, w):
    v = x[0]
    kernel_, strides, dil, pads, ext, outs = pool_geometry(a, v.shape)
    nd = len(kernel_)
    axes = tuple(range(2, 2 + nd))
    lp = a["_op"] == "LpPool"
    src = np.abs(v.astype(np.float64)) ** a.get("p", 2) if lp else v
    xp = _padded(src, [(0, 0), (0, 0)] + [(pb, pe + e) for (pb, pe), e in zip(pads, ext)], 0, w, "pad")
    win = windows(xp, kernel_, strides, dil, outs)
    y = out(o, 0, v.shape[:2] + tuple(outs), v.dtype)
    if lp:
        np.copyto(y, np.sum(win, axis=axes) ** (1.0 / a.get("p", 2)), casting="unsafe")
        return (y,)
    np.sum(win, axis=axes, out=y)
    key = ("count", tuple(v.shape[2:]))
    cnt = w.bufs.get(key)
    if cnt is None:                               # divisor per output position, computed once
        ones = np.ones((1, 1) + v.shape[2:])
        if a.get("count_include_pad", 0):
            ones = np.pad(ones, [(0, 0), (0, 0)] + list(pads), constant_values=1.0)
            width = [(0, 0), (0, 0)] + [(0, e) for e in ext]
        else:
            width = [(0, 0), (0, 0)] + [(pb, pe + e) for (pb, pe), e in zip(pads, ext)]
        cnt = w.bufs[key] = windows(np.pad(ones, width), kernel_, strides, dil, outs).sum(axis=axes).astype(v.dtype)
    np.divide(y, cnt, out=y)
    return (y,)


@kernel("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")
def k_global_pool(x, o, a, w):
    v = x[0]
    axes = tuple(range(2, v.ndim))
    y = out(o, 0, v.shape[:2] + (1,) * (v.ndim - 2), v.dtype)
    if a["_op"] == "GlobalAveragePool":
        np.mean(v, axis=axes, keepdims=True, out=y)
    elif a["_op"] == "GlobalMaxPool":
        np.max(v, axis=axes, keepdims=True, out=y)
    else:
        p = a.get("p", 2)
        np.copyto(y, np.sum(np.abs(v.astype(np.float64)) ** p, axis=axes, keepdims=True) ** (1.0 / p), casting="unsafe")
    return (y,)


def _gemm(x, o, a):
    p, q = x[0], x[1]
    c = x[2] if len(x) > 2 else None
    p = p.T if a.get("transA", 0) else p
    q = q.T if a.get("transB", 0) else q
    y = out(o, 0, (p.shape[0], q.shape[1]), p.dtype)
    np.matmul(p, q, out=y)
    if a.get("alpha", 1.0) != 1.0:
        y *= a["alpha"]
    if c is not None:
        if a.get("beta", 1.0) != 1.0:
            y += (c * a["beta"]).astype(y.dtype)
        else:
            y += c
    return y


@kernel("Gemm")
def k_gemm(x, o, a, w):
    return (_gemm(x, o, a),)


@kernel("FusedGemm")
def k_fused_gemm(x, o, a, w):
    return (_epilogue(a, x[3:], _gemm(x[:3], o, a), w),)


def _matmul(p, q, o):
    if o and o[0] is not None and p.dtype == q.dtype:
        return np.matmul(p, q, out=o[0])
    return np.matmul(p, q).astype(p.dtype, copy=False)


@kernel("MatMul")
def k_matmul(x, o, a, w):
    return (_matmul(x[0], x[1], o),)


@kernel("FusedMatMul")
def k_fused_matmul(x, o, a, w):
    y = _matmul(x[0], x[1], o)
    return (_epilogue(a, x[2:], y, w),)


@kernel("BatchNormalization")
def k_batchnorm(x, o, a, w):
    v, scale, bias, mean, var = x
    shp = (1, -1) + (1,) * (v.ndim - 2)
    if a.get("training_mode", 0) and len(o) > 1:       # batch statistics, running mean/var updated
        axes = (0,) + tuple(range(2, v.ndim))
        cm, cv = v.mean(axis=axes), v.var(axis=axes)
        r = (v - cm.reshape(shp)) / np.sqrt(cv.reshape(shp) + a.get("epsilon", 1e-5)) * scale.reshape(shp) + bias.reshape(shp)
        mom = a.get("momentum", 0.9)
        return (r, mean * mom + cm * (1 - mom), var * mom + cv * (1 - mom))
    y = out(o, 0, v.shape, v.dtype)
    f = scale / np.sqrt(var + a.get("epsilon", 1e-5))
    np.multiply(v, f.reshape(shp).astype(v.dtype), out=y)
    y += (bias - mean * f).reshape(shp).astype(v.dtype)
    return (y,)


@kernel("InstanceNormalization")
def k_instancenorm(x, o, a, w):
    v, scale, bias = x
    axes = tuple(range(2, v.ndim))
    shp = (1, -1) + (1,) * (v.ndim - 2)
    vd = v.astype(np.float64)
    r = (vd - vd.mean(axis=axes, keepdims=True)) / np.sqrt(vd.var(axis=axes, keepdims=True) + a.get("epsilon", 1e-5))
    return (r * scale.reshape(shp) + bias.reshape(shp),)


@kernel("LayerNormalization")
def k_layernorm(x, o, a, w):
    v, scale = x[0], x[1]
    bias = x[2] if len(x) > 2 else None
    ax = a.get("axis", -1) % v.ndim
    axes = tuple(range(ax, v.ndim))
    vd = v.astype(np.float64) if a.get("stash_type", 1) == 1 else v
    mean = vd.mean(axis=axes, keepdims=True)
    d = vd - mean
    inv = 1.0 / np.sqrt((d * d).mean(axis=axes, keepdims=True) + a.get("epsilon", 1e-5))
    r = d * inv * scale
    if bias is not None:
        r = r + bias
    sd = np.float32 if a.get("stash_type", 1) == 1 else v.dtype
    return (r, mean.astype(sd), inv.astype(sd))[:max(len(o), 1)]


@kernel("LRN")
def k_lrn(x, o, a, w):
    v = x[0]
    size = a.get("size", 1)
    sq = v.astype(np.float64) ** 2
    c = v.shape[1]
    lo, hi = (size - 1) // 2, -(-(size - 1) // 2)
    pad = np.pad(sq, [(0, 0), (lo, hi)] + [(0, 0)] * (v.ndim - 2))
    s = sum(pad[:, i:i + c] for i in range(size))
    return (v / (a.get("bias", 1.0) + a.get("alpha", 1e-4) / size * s) ** a.get("beta", 0.75),)


@kernel("LpNormalization")
def k_lpnorm(x, o, a, w):
    v = x[0]
    p = a.get("p", 2)
    norm = np.sum(np.abs(v) ** p, axis=a.get("axis", -1), keepdims=True) ** (1.0 / p)
    return (np.where(norm == 0, 0, v / np.where(norm == 0, 1, norm)),)


def _softmax_axis(a, v):
    ax = a.get("axis")
    opset = a.get("_opset", 13)
    if ax is None:
        ax = -1 if opset >= 13 else 1
    return ax % max(v.ndim, 1), opset < 13


def _legacy(a, v, fn):
    ax, legacy = _softmax_axis(a, v)
    if not legacy:
        return fn(v, ax)
    flat = v.reshape(int(np.prod(v.shape[:ax], dtype=np.int64)), -1)
    return fn(flat, 1).reshape(v.shape)


@kernel("Softmax")
def k_softmax(x, o, a, w):
    v = x[0]
    ax, legacy = _softmax_axis(a, v)
    y = o[0] if o and o[0] is not None else None
    if y is not None and not legacy and v.dtype.kind == "f":
        np.subtract(v, v.max(axis=ax, keepdims=True), out=y)
        np.exp(y, out=y)
        y /= y.sum(axis=ax, keepdims=True)
        return (y,)

    def f(t, axis):
        e = np.exp(t - t.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)
    return (_legacy(a, v, f),)


@kernel("LogSoftmax")
def k_logsoftmax(x, o, a, w):
    def f(t, axis):
        s = t - t.max(axis=axis, keepdims=True)
        return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))
    return (_legacy(a, x[0], f),)


@kernel("Hardmax")
def k_hardmax(x, o, a, w):
    def f(t, axis):
        idx = np.expand_dims(t.argmax(axis=axis), axis)
        r = np.zeros_like(t)
        np.put_along_axis(r, idx, 1, axis=axis)
        return r
    return (_legacy(a, x[0], f),)


# ============================================================================================ recurrent
_ACT = {
    "Sigmoid": lambda x, a, b: sigmoid(x),
    "Tanh": lambda x, a, b: np.tanh(x),
    "Relu": lambda x, a, b: np.maximum(x, 0),
    "Affine": lambda x, a, b: a * x + b,
    "LeakyRelu": lambda x, a, b: np.where(x >= 0, x, a * x),
    "ThresholdedRelu": lambda x, a, b: np.where(x > a, x, 0),
    "ScaledTanh": lambda x, a, b: a * np.tanh(b * x),
    "HardSigmoid": lambda x, a, b: np.clip(a * x + b, 0, 1),
    "Elu": lambda x, a, b: np.where(x >= 0, x, a * (np.exp(x) - 1)),
    "Softsign": lambda x, a, b: x / (1 + np.abs(x)),
    "Softplus": lambda x, a, b: np.log1p(np.exp(x)),
}
_DEFAULT_ALPHA = {"LeakyRelu": 0.01, "ThresholdedRelu": 1.0, "HardSigmoid": 0.2, "Elu": 1.0, "Affine": 1.0, "ScaledTanh": 1.0}
_DEFAULT_BETA = {"HardSigmoid": 0.5, "Affine": 0.0, "ScaledTanh": 1.0}


def rnn_alpha_beta(names, alphas, betas):
    """[(alpha, beta)] of each recurrent activation in ``names``: ``activation_alpha`` and ``activation_beta`` are
    consumed in order by the activations that take them (the spec: "consumed in the order of activation
    functions"; onnxruntime's rnn_helpers reads them so), the defaults of the activation's ONNX operator otherwise."""
    al, be = iter(alphas or []), iter(betas or [])
    return [(next(al, _DEFAULT_ALPHA[n]) if n in _DEFAULT_ALPHA else 0.0,
             next(be, _DEFAULT_BETA[n]) if n in _DEFAULT_BETA else 0.0) for n in names]


def _acts(attrs, defaults, dirs):
    names = attrs.get("activations") or defaults * dirs
    fns = []
    for n, (a, b) in zip(names, rnn_alpha_beta(names, attrs.get("activation_alpha"), attrs.get("activation_beta"))):
        fns.append(lambda x, f=_ACT[n], a=a, b=b: f(x, a, b))
    per = len(defaults)
    return [fns[d * per:(d + 1) * per] for d in range(dirs)]


def _clip(attrs):
    """The spec's ``clip``: bounds every activation's input to [-clip, clip] (identity when unset)."""
    c = attrs.get("clip")
    return (lambda x: x) if c is None else (lambda x: np.clip(x, -c, c))


def _run_directions(x, lens, dirs, direction, step, init_states):
    """Drive ``step(d, x_t, states) -> states`` over time for each direction; returns Y and final states.
    Steps past a batch entry's ``sequence_lens`` output zeros and hold the state."""
    seq, batch = x.shape[0], x.shape[1]
    ys, finals = [], []
    for d in range(dirs):
        reverse = direction == "reverse" or (direction == "bidirectional" and d == 1)
        states = [s[d] for s in init_states]
        hs = np.zeros((seq, batch, states[0].shape[-1]), dtype=np.float64)
        for k in range(seq):
            t = seq - 1 - k if reverse else k
            new = step(d, x[t], states)
            if lens is not None:
                valid = (t < lens).reshape(-1, 1)
                new = [np.where(valid, n, s) for n, s in zip(new, states)]
                hs[t] = np.where(valid, new[0], 0)
            else:
                hs[t] = new[0]
            states = new
        ys.append(hs)
        finals.append(states)
    y = np.stack(ys, axis=1)                      # (seq, dirs, batch, hidden)
    return y, [np.stack([f[i] for f in finals]) for i in range(len(init_states))]


def _rnn_io(attrs, x, init):
    if attrs.get("layout", 0):
        x = np.swapaxes(x, 0, 1)
        init = [None if s is None else np.swapaxes(s, 0, 1) for s in init]
    return x.astype(np.float64), [None if s is None else s.astype(np.float64) for s in init]


def _rnn_out(attrs, dtype, y, finals, n_outputs):
    if attrs.get("layout", 0):
        y = np.transpose(y, (2, 0, 1, 3))
        finals = [np.swapaxes(f, 0, 1) for f in finals]
    return tuple([y.astype(dtype)] + [f.astype(dtype) for f in finals])[:max(n_outputs, 1)]


def lstm(attrs, n_outputs, x, w, r, b=None, lens=None, h0=None, c0=None, p=None):
    """ONNX LSTM (gate order i, o, f, c; peepholes, clip, input_forget, layout); returns (Y, Y_h, Y_c)[:n]."""
    dtype = x.dtype
    x, (h0, c0) = _rnn_io(attrs, x, [h0, c0])
    dirs, hidden, batch = w.shape[0], w.shape[1] // 4, x.shape[1]
    b = np.zeros((dirs, 8 * hidden)) if b is None else b.astype(np.float64)
    p = np.zeros((dirs, 3 * hidden)) if p is None else p.astype(np.float64)
    h0 = np.zeros((dirs, batch, hidden)) if h0 is None else h0
    c0 = np.zeros((dirs, batch, hidden)) if c0 is None else c0
    acts = _acts(attrs, ["Sigmoid", "Tanh", "Tanh"], dirs)
    cl = _clip(attrs)                             # on each activation's input, peephole term included
    wt = [w[d].astype(np.float64).T for d in range(dirs)]
    rt = [r[d].astype(np.float64).T for d in range(dirs)]

    def step(d, xt, states):
        h, c = states
        gates = xt @ wt[d] + h @ rt[d] + b[d, :4 * hidden] + b[d, 4 * hidden:]
        gi, go, gf, gc = np.split(gates, 4, axis=1)
        pi, po, pf = np.split(p[d], 3)
        f_, g_, h_ = acts[d]
        i = f_(cl(gi + pi * c))
        f = 1 - i if attrs.get("input_forget", 0) else f_(cl(gf + pf * c))
        cn = f * c + i * g_(cl(gc))
        o = f_(cl(go + po * cn))
        return [o * h_(cn), cn]

    y, finals = _run_directions(x, lens, dirs, attrs.get("direction", "forward"), step, [h0, c0])
    return _rnn_out(attrs, dtype, y, finals, n_outputs)


def gru(attrs, n_outputs, x, w, r, b=None, lens=None, h0=None):
    """ONNX GRU (gate order z, r, h; linear_before_reset, layout); returns (Y, Y_h)[:n]."""
    dtype = x.dtype
    x, (h0,) = _rnn_io(attrs, x, [h0])
    dirs, hidden, batch = w.shape[0], w.shape[1] // 3, x.shape[1]
    b = np.zeros((dirs, 6 * hidden)) if b is None else b.astype(np.float64)
    h0 = np.zeros((dirs, batch, hidden)) if h0 is None else h0
    acts = _acts(attrs, ["Sigmoid", "Tanh"], dirs)
    w64, r64 = w.astype(np.float64), r.astype(np.float64)
    lbr = attrs.get("linear_before_reset", 0)
    cl = _clip(attrs)

    def step(d, xt, states):
        (h,) = states
        wz, wr, wh = np.split(w64[d], 3)
        rz, rr, rh = np.split(r64[d], 3)
        wbz, wbr, wbh, rbz, rbr, rbh = np.split(b[d], 6)
        f_, g_ = acts[d]
        z = f_(cl(xt @ wz.T + h @ rz.T + wbz + rbz))
        rg = f_(cl(xt @ wr.T + h @ rr.T + wbr + rbr))
        if lbr:
            hh = g_(cl(xt @ wh.T + rg * (h @ rh.T + rbh) + wbh))
        else:
            hh = g_(cl(xt @ wh.T + (rg * h) @ rh.T + rbh + wbh))
        return [(1 - z) * hh + z * h]

    y, finals = _run_directions(x, lens, dirs, attrs.get("direction", "forward"), step, [h0])
    return _rnn_out(attrs, dtype, y, finals, n_outputs)


def rnn(attrs, n_outputs, x, w, r, b=None, lens=None, h0=None):
    """ONNX RNN (simple recurrent layer, layout); returns (Y, Y_h)[:n]."""
    dtype = x.dtype
    x, (h0,) = _rnn_io(attrs, x, [h0])
    dirs, hidden, batch = w.shape[0], w.shape[1], x.shape[1]
    b = np.zeros((dirs, 2 * hidden)) if b is None else b.astype(np.float64)
    h0 = np.zeros((dirs, batch, hidden)) if h0 is None else h0
    acts = _acts(attrs, ["Tanh"], dirs)
    w64, r64 = w.astype(np.float64), r.astype(np.float64)

    cl = _clip(attrs)

    def step(d, xt, states):
        (h,) = states
        return [acts[d][0](cl(xt @ w64[d].T + h @ r64[d].T + b[d, :hidden] + b[d, hidden:]))]

    y, finals = _run_directions(x, lens, dirs, attrs.get("direction", "forward"), step, [h0])
    return _rnn_out(attrs, dtype, y, finals, n_outputs)


def linear_attention(a, q, k, v, past=None, decay=None, beta=None):
    """The recurrence of the spec (LinearAttention-27), token by token in float64: per kv head a state S [d_k, d_v];
    gated rules scale S by exp(decay) (per key dimension or per head), delta rules add beta * k (v - S^T k), the
    linear ones k v^T; each query head of the group reads scale * q^T S."""
    rule = a.get("update_rule", "gated_delta")
    if rule not in ("linear", "gated", "delta", "gated_delta"):
        raise ValueError(f"LinearAttention update_rule {rule!r}")
    nq, nkv = a["q_num_heads"], a["kv_num_heads"]
    b, t, _ = q.shape
    dk, dv = q.shape[2] // nq, v.shape[2] // nkv
    scale = a.get("scale") or 1 / math.sqrt(dk)
    qh = q.reshape(b, t, nq, dk).astype(np.float64)
    kh = k.reshape(b, t, nkv, dk).astype(np.float64)
    vh = v.reshape(b, t, nkv, dv).astype(np.float64)
    st = np.zeros((b, nkv, dk, dv)) if past is None else past.astype(np.float64).copy()
    gate = None if decay is None else decay.astype(np.float64).reshape(b, t, nkv, -1)      # [.., dk] or [.., 1]
    bet = None if beta is None else np.broadcast_to(beta.astype(np.float64).reshape(b, t, -1), (b, t, nkv))
    out = np.zeros((b, t, nq, dv))
    rep = nq // nkv
    for s in range(t):
        if rule in ("gated", "gated_delta"):
            st = st * np.exp(gate[:, s])[..., None]
        kv = kh[:, s, :, :, None]                                    # [b, nkv, dk, 1]
        if rule in ("delta", "gated_delta"):
            pred = np.einsum("bgkv,bgk->bgv", st, kh[:, s])
            st = st + bet[:, s, :, None, None] * kv * (vh[:, s] - pred)[:, :, None, :]
        else:
            st = st + kv * vh[:, s, :, None, :]
        out[:, s] = scale * np.einsum("bhk,bhkv->bhv", qh[:, s], np.repeat(st, rep, axis=1))
    return out.reshape(b, t, nq * dv).astype(q.dtype), st.astype(q.dtype)


KERNELS["LSTM"] = lambda x, o, a, w: lstm(a, len(o), *x)
KERNELS["LinearAttention"] = lambda x, o, a, w: linear_attention(a, *x)
KERNELS["GRU"] = lambda x, o, a, w: gru(a, len(o), *x)
KERNELS["RNN"] = lambda x, o, a, w: rnn(a, len(o), *x)


# ============================================================================================ resize
# Separable: one interpolation per resized axis. The output coordinate maps back to an input coordinate with the
# spec's coordinate_transformation_mode formula, then nearest (four rounding modes), linear or cubic (Keys kernel,
# cubic_coeff_a) weights; antialias widens the kernel by 1/scale when downscaling; exclude_outside drops taps
# outside the input and renormalises; tf_crop_and_resize uses roi and extrapolation_value. Source: ONNX spec, Resize.
RESIZE_ATTRS = {"antialias": 0, "axes": None, "coordinate_transformation_mode": "half_pixel", "cubic_coeff_a": -0.75,
                 "exclude_outside": 0, "extrapolation_value": 0.0, "keep_aspect_ratio_policy": "stretch",
                 "mode": "nearest", "nearest_mode": "round_prefer_floor"}


def source_coords(mode, out_len, in_len, scale, roi=(0.0, 1.0)):
    """Input coordinate of each output index (spec: coordinate_transformation_mode)."""
    x = np.arange(out_len, dtype=np.float64)
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        adj = out_len / (scale * in_len)
        return in_len / 2 * (1 - adj) + (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if out_len > 1 else np.zeros_like(x)
    if mode == "align_corners":   # the spec's length_resized is scale * length_original (a float)
        return x * (in_len - 1) / (scale * in_len - 1) if out_len > 1 else np.zeros_like(x)
    if mode == "asymmetric":
        return x / scale
    if mode == "tf_crop_and_resize":
        s, e = roi
        if out_len > 1:
            return s * (in_len - 1) + x * (e - s) * (in_len - 1) / (out_len - 1)
        return np.full_like(x, 0.5 * (s + e) * (in_len - 1))
    raise ValueError(f"unknown coordinate_transformation_mode {mode!r}")


def nearest_index(xs, mode):
    if mode == "round_prefer_floor":
        return np.ceil(xs - 0.5)
    if mode == "round_prefer_ceil":
        return np.floor(xs + 0.5)
    if mode == "floor":
        return np.floor(xs)
    if mode == "ceil":
        return np.ceil(xs)
    raise ValueError(f"unknown nearest_mode {mode!r}")


def _cubic(t, a):
    t = np.abs(t)
    return np.where(t <= 1, ((a + 2) * t - (a + 3)) * t * t + 1,
                    np.where(t < 2, ((a * t - 5 * a) * t + 8 * a) * t - 4 * a, 0.0))


def interp_matrix(xs, in_len, attrs, scale):
    """Dense (out, in) weights for linear/cubic sampling at input coordinates ``xs``."""
    cubic = attrs["mode"] == "cubic"
    support = 2.0 if cubic else 1.0
    sf = min(scale, 1.0) if attrs["antialias"] else 1.0
    radius = support / sf
    lo = np.floor(xs - radius).astype(np.int64) + 1
    taps = lo[:, None] + np.arange(int(math.ceil(2 * radius)) + 1)[None, :]
    t = (xs[:, None] - taps) * sf
    w = _cubic(t, attrs["cubic_coeff_a"]) if cubic else np.maximum(0.0, 1 - np.abs(t))
    inside = (taps >= 0) & (taps < in_len)
    if attrs["exclude_outside"]:
        w = np.where(inside, w, 0.0)
    if attrs["exclude_outside"] or attrs["antialias"]:
        s = w.sum(axis=1, keepdims=True)
        w = w / np.where(s == 0, 1, s)
    m = np.zeros((len(xs), in_len))
    rows = np.repeat(np.arange(len(xs)), taps.shape[1])
    np.add.at(m, (rows, np.clip(taps, 0, in_len - 1).ravel()), w.ravel())
    return m


def resize_nd(x, out_shape, scales, attrs, roi=None):
    """Resize ``x`` to ``out_shape`` with per-axis ``scales`` (floats) and ``roi`` (starts+ends or None)."""
    y = x.astype(np.float64) if attrs["mode"] != "nearest" else x
    rank = x.ndim
    extrap = np.zeros(out_shape, dtype=bool) if attrs["coordinate_transformation_mode"] == "tf_crop_and_resize" else None
    for ax in range(rank):
        in_len, out_len, sc = x.shape[ax], int(out_shape[ax]), float(scales[ax])
        r = (float(roi[ax]), float(roi[ax + rank])) if roi is not None and len(roi) == 2 * rank else (0.0, 1.0)
        if in_len == out_len and sc == 1.0 and attrs["coordinate_transformation_mode"] != "tf_crop_and_resize":
            continue
        xs = source_coords(attrs["coordinate_transformation_mode"], out_len, in_len, sc, r)
        if extrap is not None:
            bad = (xs < 0) | (xs > in_len - 1)
            shape = [1] * rank
            shape[ax] = out_len
            extrap |= bad.reshape(shape)
        if attrs["mode"] == "nearest":
            idx = np.clip(nearest_index(xs, attrs["nearest_mode"]), 0, in_len - 1).astype(np.int64)
            y = np.take(y, idx, axis=ax)
        else:
            m = interp_matrix(xs, in_len, attrs, sc)
            y = np.moveaxis(np.tensordot(m, y, axes=([1], [ax])), 0, ax)
    if extrap is not None:
        y = np.where(extrap, attrs["extrapolation_value"], y)
    return np.asarray(y).astype(x.dtype, copy=False)


def resize_plan(a, x_shape, roi=None, scales=None, sizes=None):
    """Output shape, per-axis scales and full roi (starts + ends, or None) of ONNX Resize (opsets 11-24): sizes
    from ``sizes`` or ``scales`` on ``axes``, with ``keep_aspect_ratio_policy``."""
    rank = len(x_shape)
    axes = [ax % rank for ax in a["axes"]] if a.get("axes") is not None else list(range(rank))
    full_scales = [1.0] * rank
    out = list(x_shape)
    if roi is not None and np.size(roi) and a.get("axes") is not None:
        full_roi = [0.0] * rank + [1.0] * rank
        for k, ax in enumerate(axes):
            full_roi[ax], full_roi[ax + rank] = roi[k], roi[k + len(axes)]
        roi = np.array(full_roi)
    if sizes is not None and np.size(sizes):
        sizes = [int(s) for s in sizes]
        if a["keep_aspect_ratio_policy"] != "stretch":
            ratios = [sizes[k] / x_shape[ax] for k, ax in enumerate(axes)]
            s = min(ratios) if a["keep_aspect_ratio_policy"] == "not_larger" else max(ratios)
            sizes = [int(math.floor(s * x_shape[ax] + 0.5)) for ax in axes]
            for ax in axes:
                full_scales[ax] = s
        for k, ax in enumerate(axes):
            out[ax] = sizes[k]
            if a["keep_aspect_ratio_policy"] == "stretch":
                full_scales[ax] = sizes[k] / x_shape[ax]
    elif scales is not None and np.size(scales):
        for k, ax in enumerate(axes):
            full_scales[ax] = float(scales[k])
            out[ax] = int(math.floor(x_shape[ax] * float(scales[k])))
    return out, full_scales, (roi if roi is not None and np.size(roi) else None)


def resize(a, x, roi=None, scales=None, sizes=None):
    """ONNX Resize (opsets 11-24 inputs): :func:`resize_plan`, then :func:`resize_nd`."""
    out, full_scales, roi = resize_plan(a, x.shape, roi, scales, sizes)
    return resize_nd(x, out, full_scales, a, roi)


def upsample(mode, x, scales):
    """ONNX Upsample (opsets 7-9): Resize with asymmetric coordinates and floor rounding."""
    a = dict(RESIZE_ATTRS, mode=mode, coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    a["mode"] = "linear" if a["mode"] in ("linear", "bilinear") else a["mode"]
    out = [int(math.floor(d * float(s))) for d, s in zip(x.shape, scales)]
    return resize_nd(x, out, [float(s) for s in scales], a)


@kernel("Resize")
def k_resize(x, o, a, w):
    return (resize(a, *x),)


@kernel("Upsample")
def k_upsample(x, o, a, w):
    return (upsample(a.get("mode", "nearest"), x[0], x[1]),)


# ============================================================================================ quantization
def expand_param(p, x, axis, block=0):
    """Broadcast a scale or zero point to ``x``: scalar, per ``axis`` (1-D) or blocked along ``axis``
    (ONNX QuantizeLinear/DequantizeLinear, opsets 10-24)."""
    if p.ndim == 0 or p.size == 1 and x.ndim == 0:
        return p.reshape(())
    ax = axis % x.ndim
    if block:
        p = np.repeat(p, block, axis=ax)
        sl = [slice(None)] * x.ndim
        sl[ax] = slice(0, x.shape[ax])
        return p[tuple(sl)]
    if p.ndim == 1:
        shape = [1] * x.ndim
        shape[ax] = p.size
        return p.reshape(shape)
    return p


def quantize_divide(x, scale):
    """x / scale as QuantizeLinear divides: in the inputs' precision, float32 unless one of them is float64 (as
    onnxruntime and onnx.reference do; a float64 quotient can land off a round-half tie that float32 lands on)."""
    dt = np.float64 if np.float64 in (np.asarray(x).dtype, np.asarray(scale).dtype) else np.float32
    return np.asarray(x).astype(dt) / np.asarray(scale).astype(dt)


# ============================================================================================ signal, misc
def _to_complex(x):
    """complex128 of a real ([..., 1]) or complex ([..., 2]: real, imaginary) ONNX signal tensor."""
    return x[..., 0].astype(np.float64) + (1j * x[..., 1].astype(np.float64) if x.shape[-1] == 2 else 0)


def _from_complex(c, dtype):
    return np.stack([c.real, c.imag], axis=-1).astype(dtype)


def dft(a, opset, x, dft_length=None, axis=None):
    """DFT-17/20 (ONNX spec): numpy's FFT along ``axis`` (an input since opset 20, default -2; else the
    attribute), zero padded or cut to ``dft_length``; ``inverse`` with ``onesided`` is an irfft (a onesided
    spectrum in, a real signal [..., 1] out)."""
    ax = int(np.asarray(axis).ravel()[0]) if axis is not None else (a["axis"] if opset < 20 else -2)
    ax %= x.ndim
    if ax == x.ndim - 1:
        raise ValueError("DFT axis cannot be the trailing complex dimension")
    c = _to_complex(x)
    if a["inverse"] and a["onesided"]:
        n = int(np.asarray(dft_length).ravel()[0]) if dft_length is not None else 2 * (c.shape[ax] - 1)
        return np.fft.irfft(c, n=n, axis=ax)[..., None].astype(x.dtype)
    n = int(np.asarray(dft_length).ravel()[0]) if dft_length is not None else c.shape[ax]
    y = np.fft.ifft(c, n=n, axis=ax) if a["inverse"] else np.fft.fft(c, n=n, axis=ax)
    if a["onesided"]:
        y = np.take(y, np.arange(n // 2 + 1), axis=ax)
    return _from_complex(y, x.dtype)


def stft(a, signal, frame_step, window=None, frame_length=None):
    """STFT-17 (ONNX spec): frames of ``frame_length`` every ``frame_step`` samples of signal [batch, length,
    1 or 2], times the window, through an FFT: [batch, frames, bins, 2] (bins n/2+1 when ``onesided``)."""
    step = int(np.asarray(frame_step).ravel()[0])
    c = _to_complex(signal)
    n = int(np.asarray(frame_length).ravel()[0]) if frame_length is not None else window.shape[0]
    win = window.astype(np.float64) if window is not None else np.ones(n)
    frames = (c.shape[1] - n) // step + 1
    idx = np.arange(frames)[:, None] * step + np.arange(n)[None, :]
    y = np.fft.fft(c[:, idx] * win, axis=-1)
    if a["onesided"]:
        y = y[..., : n // 2 + 1]
    return _from_complex(y, signal.dtype)


def tensor_scatter(a, past, update, write_indices=None):
    """TensorScatter-24 (ONNX spec): ``update`` written into a copy of the cache ``past`` along ``axis``, from
    write_indices[batch] (0 when absent) on; mode "circular" wraps positions modulo the cache length."""
    ax = a["axis"] % past.ndim
    y = past.copy()
    max_len, seq = past.shape[ax], update.shape[ax]
    for prefix in np.ndindex(past.shape[:ax]):
        start = 0 if write_indices is None else int(write_indices[prefix[0]])
        for t in range(seq):
            dst = start + t
            if a["mode"] == "circular":
                dst %= max_len
            y[prefix + (dst,)] = update[prefix + (t,)]
    return y


def maxunpool_default_shape(a, x_shape):
    """MaxUnpool's output shape without output_shape: (in - 1) * stride + kernel - pads, per spatial axis."""
    nd = len(x_shape) - 2
    k, s = a["kernel_shape"], a["strides"] or [1] * nd
    p = a["pads"] or [0] * (2 * nd)
    return [int(d) for d in x_shape[:2]] + [(x_shape[2 + i] - 1) * s[i] + k[i] - p[i] - p[i + nd] for i in range(nd)]


def max_unpool(a, x, idx, output_shape=None):
    """MaxUnpool-11 (ONNX spec): zeros with x's values at the flat positions ``idx`` of the default output;
    with ``output_shape``, those positions are placed in that shape by their coordinates."""
    default = maxunpool_default_shape(a, x.shape)
    shape = [int(d) for d in output_shape] if output_shape is not None else default
    flat = idx.ravel().astype(np.int64)
    if shape != default:
        flat = np.ravel_multi_index(np.unravel_index(flat, default), shape)
    y = np.zeros(int(np.prod(shape)), dtype=x.dtype)
    y[flat] = x.ravel()
    return y.reshape(shape)


def tfidf_vectorizer(a, x):
    """TfIdfVectorizer-9 (ONNX spec): counts of the pool's n-grams (lengths min..max, skips 0..max_skip_count between items; a 1-gram counted
    once) per row, at ngram_indexes; IDF: presence times weight, TFIDF: count times weight (float32)."""
    pool = list(a["pool_strings"] if a["pool_strings"] is not None else a["pool_int64s"])
    starts = list(a["ngram_counts"]) + [len(pool)]
    index, number = {}, 0
    for n in range(1, len(starts)):
        lo, hi = starts[n - 1], starts[n]
        for j in range(lo, hi, n):
            index[(n, tuple(pool[j:j + n]))] = number
            number += 1
    out_idx = list(a["ngram_indexes"])
    width = max(out_idx) + 1 if out_idx else 0
    weights = list(a["weights"]) if a["weights"] is not None else [1.0] * len(out_idx)
    rows = [x] if x.ndim == 1 else list(x)
    y = np.zeros((len(rows), width), np.float32)
    for r, row in enumerate(rows):
        items = [s.decode() if isinstance(s, bytes) else (s.item() if isinstance(s, np.generic) else s) for s in row]
        counts = np.zeros(number, np.float64)
        for n in range(a["min_gram_length"], a["max_gram_length"] + 1):
            for skip in range(0, (a["max_skip_count"] if n > 1 else 0) + 1):
                step = skip + 1
                for i in range(len(items) - (n - 1) * step):
                    k = index.get((n, tuple(items[i + j * step] for j in range(n))))
                    if k is not None:
                        counts[k] += 1
        for k, c in enumerate(counts):
            if a["mode"] == "IDF":
                c = min(c, 1.0) * weights[k]
            elif a["mode"] == "TFIDF":
                c = c * weights[k]
            y[r, out_idx[k]] = c
    return y[0] if x.ndim == 1 else y


@kernel("TfIdfVectorizer")
def k_tfidf_vectorizer(x, o, a, w):
    return (tfidf_vectorizer(a, x[0]),)


@kernel("DFT")
def k_dft(x, o, a, w):
    return (dft(a, a.get("_opset", 20), *x),)


@kernel("STFT")
def k_stft(x, o, a, w):
    return (stft(a, *x),)


@kernel("TensorScatter")
def k_tensor_scatter(x, o, a, w):
    return (tensor_scatter(a, *x),)


@kernel("MaxUnpool")
def k_max_unpool(x, o, a, w):
    return (max_unpool(a, *x),)


@kernel("Det")
def k_det(x, o, a, w):
    """Det-11: determinants of the trailing square matrices (LU, numpy.linalg.det)."""
    return (np.linalg.det(x[0]).astype(x[0].dtype),)


@kernel("BitCast")
def k_bitcast(x, o, a, w):
    """The input's bytes read as the ``to`` type (same width, little endian; ONNX BitCast-26)."""
    v = x[0] if x[0].flags.c_contiguous else x[0].copy()
    le, dt = v.dtype.newbyteorder("<"), storage_dtype(a["_to"])
    return (v.astype(le, copy=False).view(dt.newbyteorder("<")).astype(dt, copy=False),)


@kernel("QuantizeLinear")
def k_quantize(x, o, a, w):
    v, scale = as_float(x[0], 0, a), as_float(x[1], 1, a)
    zp = as_float(x[2], 2, a) if len(x) > 2 and x[2] is not None else None
    if a["_to"] in FLOAT_BITS:              # float8 / float4: x / scale + zero point, rounded by the encoder
        q = quantize_divide(v, expand_param(scale, v, a.get("axis", 1), a.get("block_size", 0)))
        if zp is not None:
            q = q + expand_param(zp.astype(np.float32), v, a.get("axis", 1), a.get("block_size", 0))
        return (float_to_bits(q, a["_to"], a["_tabs"].get(a["_to"]), a.get("saturate", 1)),)
    dt = storage_dtype(a["_to"])
    q = np.rint(quantize_divide(v, expand_param(scale, v, a.get("axis", 1), a.get("block_size", 0)))).astype(np.float64)
    if zp is not None:
        q += expand_param(zp.astype(np.int64), v, a.get("axis", 1), a.get("block_size", 0))
    if a["_to"] in STORAGE:
        _, bits, signed = STORAGE[a["_to"]]
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    else:
        lo, hi = np.iinfo(dt).min, np.iinfo(dt).max
    return (np.clip(q, lo, hi).astype(dt),)


@kernel("DequantizeLinear")
def k_dequantize(x, o, a, w):
    v, scale = as_float(x[0], 0, a), as_float(x[1], 1, a)
    zp = as_float(x[2], 2, a) if len(x) > 2 and x[2] is not None else None
    q = v.astype(np.int64) if v.dtype.kind in "iu" else v.astype(np.float64)
    if zp is not None:
        q = q - expand_param(zp.astype(q.dtype), v, a.get("axis", 1), a.get("block_size", 0))
    r = q * expand_param(scale.astype(np.float64), v, a.get("axis", 1), a.get("block_size", 0))
    if a["_to"] in FLOAT_BITS:
        return (float_to_bits(r.astype(np.float32), a["_to"], a.get("_tabs", {}).get(a["_to"])),)
    return (r.astype(np.float32).astype(a["_to"]),)


@kernel("DynamicQuantizeLinear")
def k_dynamic_quantize(x, o, a, w):
    v = x[0]
    lo = min(0.0, float(v.min())) if v.size else 0.0
    hi = max(0.0, float(v.max())) if v.size else 0.0
    scale = np.float32((hi - lo) / 255.0)
    zp = np.clip(np.rint(0 - np.float32(lo) / scale), 0, 255) if scale != 0 else np.float32(0)
    q = np.clip(np.rint(v / scale) + zp, 0, 255) if scale != 0 else np.zeros_like(v)
    return (q.astype(np.uint8), np.array(scale, dtype=np.float32), np.array(zp, dtype=np.uint8))


def zero_point_along(zp, ndim, axis):
    """A zero point (scalar or 1-D per-channel) as int64 shaped to broadcast along ``axis`` of a rank-``ndim``
    tensor; 0 when absent (ONNX MatMulInteger / ConvInteger)."""
    if zp is None:
        return 0
    zp = zp.astype(np.int64)
    if zp.ndim == 1 and zp.size > 1:
        shape = [1] * ndim
        shape[axis] = zp.size
        return zp.reshape(shape)
    return zp.reshape(()) if zp.size == 1 else zp


@kernel("MatMulInteger")
def k_matmul_integer(x, o, a, w):
    p, q = x[0], x[1]
    pz = x[2] if len(x) > 2 else None
    qz = x[3] if len(x) > 3 else None
    pp = p.astype(np.int64) - zero_point_along(pz, p.ndim, -2)
    qq = q.astype(np.int64) - zero_point_along(qz, q.ndim, -1)
    return (np.matmul(pp, qq).astype(np.int32),)


def _conv_int(v, wt, a, w):
    kernel_, strides, dil, pads, outs = conv_geometry(a, v.shape, wt.shape)
    y = np.empty((v.shape[0], wt.shape[0]) + tuple(outs), np.float64)
    return conv(v.astype(np.float64), wt.astype(np.float64), None, a.get("group", 1), kernel_, strides, dil, pads, outs, y, w)


@kernel("ConvInteger")
def k_conv_integer(x, o, a, w):
    v, wt = x[0], x[1]
    vz = x[2] if len(x) > 2 else None
    wz = x[3] if len(x) > 3 else None
    vv = v.astype(np.int64) - zero_point_along(vz, v.ndim, 1)
    ww = wt.astype(np.int64) - zero_point_along(wz, wt.ndim, 0)
    return (np.rint(_conv_int(vv, ww, a, w)).astype(np.int32),)


def _requant(acc, mult, y_zp, dt):
    r = np.rint(acc * mult)
    if y_zp is not None:
        r = r + y_zp.astype(np.int64)
    info = np.iinfo(dt)
    return np.clip(r, info.min, info.max).astype(dt)


@kernel("QLinearMatMul")
def k_qlinear_matmul(x, o, a, w):
    p, ps, pz, q, qs, qz, ys, yz = x
    acc = np.matmul(p.astype(np.int64) - zero_point_along(pz, p.ndim, -2), q.astype(np.int64) - zero_point_along(qz, q.ndim, -1))
    mult = ps.astype(np.float64).reshape(-1, 1) if ps.size > 1 else ps.astype(np.float64).reshape(())
    mult = mult * (qs.astype(np.float64) if qs.size > 1 else qs.astype(np.float64).reshape(())) / ys.astype(np.float64).reshape(())
    return (_requant(acc, mult, yz, yz.dtype),)


@kernel("QLinearConv")
def k_qlinear_conv(x, o, a, w):
    v, vs, vz, wt, ws, wz, ys, yz = x[:8]
    b = x[8] if len(x) > 8 else None
    acc = _conv_int(v.astype(np.int64) - zero_point_along(vz, v.ndim, 1), wt.astype(np.int64) - zero_point_along(wz, wt.ndim, 0), a, w)
    if b is not None:
        acc = acc + b.astype(np.float64).reshape((1, -1) + (1,) * (v.ndim - 2))
    mult = vs.astype(np.float64).reshape(()) * ws.astype(np.float64).reshape((1, -1) + (1,) * (v.ndim - 2) if ws.size > 1 else ())
    return (_requant(acc, mult / ys.astype(np.float64).reshape(()), yz, yz.dtype),)


def requantize(acc, multiplier, shift, zero_point, lo, hi):
    """int32 accumulators -> 8-bit codes: clamp(zero_point + acc * M, lo, hi) with M = multiplier * 2^(shift - 31)
    in fixed point, bit-exact with the C runtime's ``bornc_requant``.

    acc: int64 array (values of int32 range); multiplier: int64 array in [2^30, 2^31) broadcasting against acc
    (per output channel) or scalar; shift: int64 the same way. The rounding is gemmlowp's
    SaturatingRoundingDoublingHighMul followed by RoundingDivideByPOT (gemmlowp fixedpoint/fixedpoint.h), as in
    TensorFlow Lite's MultiplyByQuantizedMultiplier (tensorflow/lite/kernels/internal/common.h); a positive
    shift multiplies first, saturating to int32. Returns int64 codes in [lo, hi]."""
    acc = np.asarray(acc, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    x = np.clip(np.left_shift(acc, np.maximum(shift, 0)), -(1 << 31), (1 << 31) - 1)
    ab = x * np.asarray(multiplier, dtype=np.int64)
    v = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = np.where(v >= 0, v >> 31, -((-v) >> 31))          # C's truncating division by 2^31
    rs = np.maximum(-shift, 0)
    mask = np.left_shift(np.int64(1), rs) - 1
    out = np.right_shift(high, rs) + ((high & mask) > (mask >> 1) + (high < 0))
    return np.clip(out + zero_point, lo, hi)


def per_channel(v, ndim, axis):
    """A per-channel parameter (1-D, or one value) as int64 shaped to broadcast along ``axis`` of rank ``ndim``."""
    v = np.asarray(v, dtype=np.int64)
    if v.size == 1:
        return v.reshape(())
    shape = [1] * ndim
    shape[axis] = v.size
    return v.reshape(shape)


def qconv_acc(x, wt, bias, a, w):
    """bornc QConv's int32 accumulators (int64 array): sum of (x - x_zero_point) * w over each window, plus the
    int32 bias; padding reads as the zero point. Exact: computed in float64 (sums stay below 2^53)."""
    v = x.astype(np.float64) - float(a["x_zero_point"])
    acc = _conv_int(v, wt.astype(np.float64), a, w)
    if bias is not None:
        acc = acc + bias.astype(np.float64).reshape((1, -1) + (1,) * (x.ndim - 2))
    return np.rint(acc).astype(np.int64)


def qmatmul_acc(x, wt, bias, a):
    """bornc QMatMul's int32 accumulators (int64 array): (x - x_zero_point) @ w.T + bias, w (N, K) int8."""
    acc = np.matmul(x.astype(np.float64) - float(a["x_zero_point"]), wt.astype(np.float64).T)
    if bias is not None:
        acc = acc + bias.astype(np.float64)
    return np.rint(acc).astype(np.int64)


@kernel("QConv")
def k_qconv(x, o, a, w):
    acc = qconv_acc(x[0], x[1], x[2] if len(x) > 2 else None, a, w)
    y = requantize(acc, per_channel(a["multiplier"], acc.ndim, 1), per_channel(a["shift"], acc.ndim, 1),
                   a["y_zero_point"], a["qmin"], a["qmax"])
    return (lookup_output(a, y.astype(np.uint8)),)


def lookup_output(a, y):
    """``y`` (uint8) through the node's optional 256-entry ``table`` attribute (a fused LookupTable)."""
    t = a.get("table")
    return y if t is None else np.asarray(t, dtype=np.uint8)[y]


@kernel("LookupTable")
def k_lookup_table(x, o, a, w):
    return (np.asarray(a["table"], dtype=np.uint8)[x[0]],)


@kernel("QMatMul")
def k_qmatmul(x, o, a, w):
    acc = qmatmul_acc(x[0], x[1], x[2] if len(x) > 2 else None, a)
    y = requantize(acc, per_channel(a["multiplier"], acc.ndim, acc.ndim - 1),
                   per_channel(a["shift"], acc.ndim, acc.ndim - 1), a["y_zero_point"], a["qmin"], a["qmax"])
    return (lookup_output(a, y.astype(np.uint8)),)


# ============================================================================================ control flow
def _truthy(c):
    return bool(np.asarray(c).reshape(-1)[0])


@kernel("If")
def k_if(x, o, a, w):
    return a["then_branch"]() if _truthy(x[0]) else a["else_branch"]()


@kernel("Loop")
def k_loop(x, o, a, w):
    """ONNX Loop: body(iteration, cond, carried...) -> (cond, carried..., scan outputs...)."""
    trip = None if x[0] is None or np.size(x[0]) == 0 else int(np.asarray(x[0]).reshape(-1)[0])
    cond = True if len(x) < 2 or x[1] is None else _truthy(x[1])
    carried = list(x[2:])
    scans = None
    i = 0
    while (trip is None or i < trip) and cond:
        res = a["body"](np.array(i, dtype=np.int64), np.array(cond), *carried)
        cond = _truthy(res[0])
        carried = list(res[1:1 + len(carried)])
        step_scans = res[1 + len(carried):]
        if scans is None:
            scans = [[] for _ in step_scans]
        for k, s in enumerate(step_scans):
            scans[k].append(s)
        i += 1
    n_scan = len(o) - len(carried)
    outs = carried
    for k in range(n_scan):
        vals = scans[k] if scans else []
        outs.append(np.stack(vals) if vals else np.zeros((0,), np.float32))
    return outs


@kernel("SequenceMap")
def k_sequence_map(x, o, a, w):
    """ONNX SequenceMap (opset 17): body(element k of the first sequence, element k of each other sequence or
    the tensor itself...) -> one tensor per output sequence, for each k."""
    n = len(x[0])
    if any(isinstance(v, list) and len(v) != n for v in x[1:]):
        raise BornrtError("SequenceMap: the input sequences differ in length")
    outs = [[] for _ in o]
    for k in range(n):
        res = a["body"](*[v[k] if isinstance(v, list) else v for v in x])
        for j, r in enumerate(res):
            outs[j].append(r)
    return outs


@kernel("Scan")
def k_scan(x, o, a, w):
    """ONNX Scan (opset 9+): body(state..., scan slices...) -> (state..., scan output slices...)."""
    n_scan = a["num_scan_inputs"]
    n_state = len(x) - n_scan
    states, seqs = list(x[:n_state]), list(x[n_state:])
    in_axes = a.get("scan_input_axes") or [0] * n_scan
    in_dirs = a.get("scan_input_directions") or [0] * n_scan
    seqs = [np.moveaxis(s, ax % s.ndim, 0) for s, ax in zip(seqs, in_axes)]
    seqs = [s[::-1] if d else s for s, d in zip(seqs, in_dirs)]
    steps = seqs[0].shape[0] if seqs else 0
    n_out = len(o) - n_state
    collected = [[] for _ in range(n_out)]
    for t in range(steps):
        res = a["body"](*(states + [s[t] for s in seqs]))
        states = list(res[:n_state])
        for k in range(n_out):
            collected[k].append(res[n_state + k])
    out_axes = a.get("scan_output_axes") or [0] * n_out
    out_dirs = a.get("scan_output_directions") or [0] * n_out
    outs = list(states)
    for k in range(n_out):
        r = np.stack(collected[k]) if collected[k] else np.zeros((0,), np.float32)
        if out_dirs[k]:
            r = r[::-1]
        outs.append(np.moveaxis(r, 0, out_axes[k] % r.ndim))
    return outs


# ============================================================================================ sequences, optionals
KERNELS["SequenceConstruct"] = lambda x, o, a, w: ([np.array(v, copy=True) for v in x],)
KERNELS["SequenceEmpty"] = lambda x, o, a, w: ([],)
KERNELS["SequenceLength"] = lambda x, o, a, w: (np.array(len(x[0]), dtype=np.int64),)
KERNELS["SequenceAt"] = lambda x, o, a, w: (x[0][int(np.asarray(x[1]).ravel()[0])],)
KERNELS["OptionalHasElement"] = lambda x, o, a, w: (np.array(len(x) > 0 and x[0] is not None),)
KERNELS["OptionalGetElement"] = lambda x, o, a, w: (x[0],)
KERNELS["Optional"] = lambda x, o, a, w: (x[0] if x else None,)


@kernel("SequenceInsert")
def k_sequence_insert(x, o, a, w):
    s = list(x[0])
    pos = len(s) if len(x) < 3 or x[2] is None else int(np.asarray(x[2]).ravel()[0])   # some files give shape [1]
    s.insert(pos if pos >= 0 else pos + len(s), x[1])
    return (s,)


@kernel("SequenceErase")
def k_sequence_erase(x, o, a, w):
    s = list(x[0])
    del s[-1 if len(x) < 2 or x[1] is None else int(np.asarray(x[1]).ravel()[0])]
    return (s,)


@kernel("ConcatFromSequence")
def k_concat_from_sequence(x, o, a, w):
    ax = a["axis"]
    if a.get("new_axis", 0):
        return (np.stack(x[0], axis=ax),)
    return (np.concatenate(x[0], axis=ax),)


@kernel("SplitToSequence")
def k_split_to_sequence(x, o, a, w):
    v = x[0]
    ax = a.get("axis", 0) % v.ndim
    split = x[1] if len(x) > 1 else None
    if split is None:
        parts = [np.take(v, [i], axis=ax) for i in range(v.shape[ax])]
        return ([np.squeeze(p, ax) for p in parts] if not a.get("keepdims", 1) else parts,)
    if np.ndim(split) == 0:
        n = int(split)
        return (np.split(v, list(range(n, v.shape[ax], n)), axis=ax),)
    return (np.split(v, np.cumsum([int(s) for s in split])[:-1], axis=ax),)


# ============================================================================================ detection, sampling
# NonMaxSuppression (10-24), Col2Im (18), GridSample (16-22), AffineGrid (20): the ONNX spec text of each operator.
def _iou(a: np.ndarray, b: np.ndarray):
    """IoU of one box against many, boxes as (y1, x1, y2, x2) with either corner order."""
    ay1, ay2 = min(a[0], a[2]), max(a[0], a[2])
    ax1, ax2 = min(a[1], a[3]), max(a[1], a[3])
    by1, by2 = np.minimum(b[:, 0], b[:, 2]), np.maximum(b[:, 0], b[:, 2])
    bx1, bx2 = np.minimum(b[:, 1], b[:, 3]), np.maximum(b[:, 1], b[:, 3])
    ih = np.clip(np.minimum(ay2, by2) - np.maximum(ay1, by1), 0, None)
    iw = np.clip(np.minimum(ax2, bx2) - np.maximum(ax1, bx1), 0, None)
    inter = ih * iw
    union = (ay2 - ay1) * (ax2 - ax1) + (by2 - by1) * (bx2 - bx1) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0)


def nonmaxsuppression(a, boxes, scores, max_out=None, iou_th=None, score_th=None):
    """Greedy NMS per batch and class: highest score first, drop boxes whose IoU exceeds the threshold."""
    limit = int(np.asarray(max_out).ravel()[0]) if max_out is not None and max_out.size else 0
    iou_t = float(np.asarray(iou_th).ravel()[0]) if iou_th is not None and iou_th.size else 0.0
    sc_t = float(np.asarray(score_th).ravel()[0]) if score_th is not None and score_th.size else None
    b = boxes.astype(np.float64)
    if a["center_point_box"]:
        xc, yc, w, h = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
        b = np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=-1)
    out = []
    for n in range(scores.shape[0]):
        for c in range(scores.shape[1]):
            s = scores[n, c].astype(np.float64)
            order = [i for i in np.argsort(-s, kind="stable") if sc_t is None or s[i] > sc_t]
            keep = []
            for i in order:
                if len(keep) >= limit:
                    break
                if keep and np.any(_iou(b[n, i], b[n, keep]) > iou_t):
                    continue
                keep.append(int(i))
            out.extend([n, c, i] for i in keep)
    return np.array(out, dtype=np.int64).reshape(-1, 3)


def col2im(a, x, image_shape, block_shape):
    img = [int(v) for v in image_shape]
    blk = [int(v) for v in block_shape]
    nd = len(img)
    dil = a["dilations"] or [1] * nd
    st = a["strides"] or [1] * nd
    pads = a["pads"] or [0] * (2 * nd)
    n, ck, length = x.shape
    c = ck // int(np.prod(blk))
    padded = [img[i] + pads[i] + pads[i + nd] for i in range(nd)]
    outs = [(padded[i] - dil[i] * (blk[i] - 1) - 1) // st[i] + 1 for i in range(nd)]
    y = np.zeros((n, c) + tuple(padded), dtype=x.dtype)
    cols = x.reshape((n, c) + tuple(blk) + tuple(outs))
    for tap in np.ndindex(*blk):
        sl = tuple(slice(tap[i] * dil[i], tap[i] * dil[i] + st[i] * (outs[i] - 1) + 1, st[i]) for i in range(nd))
        y[(slice(None), slice(None)) + sl] += cols[(slice(None), slice(None)) + tap]
    crop = tuple(slice(pads[i], pads[i] + img[i]) for i in range(nd))
    return y[(slice(None), slice(None)) + crop].copy()


# ---------------------------------------------------------------------------------------------------- TreeEnsemble
def tree_tables(a, n_features=None):
    """The checked tables of an ai.onnx.ml TreeEnsemble-5 node: per node its feature, mode (0 LEQ, 1 LT, 2 GTE,
    3 GT, 4 EQ, 5 NEQ, 6 MEMBER), split, missing-tracks-true flag, (true id, true is leaf), (false id, false is
    leaf), the member set of each MEMBER node (membership_values split at NaN, in node order), leaves (target,
    weight), the roots. BornrtError for an id out of range, a cycle, or member sets that do not match."""
    modes = np.asarray(a["nodes_modes"]).astype(np.int64).ravel()
    nn = len(modes)
    t = {"mode": modes, "feature": np.asarray(a["nodes_featureids"], np.int64).ravel(),
         "split": np.asarray(a["nodes_splits"], np.float64).ravel(),
         "true_id": np.asarray(a["nodes_truenodeids"], np.int64).ravel(), "true_leaf": np.asarray(a["nodes_trueleafs"], np.int64).ravel(),
         "false_id": np.asarray(a["nodes_falsenodeids"], np.int64).ravel(), "false_leaf": np.asarray(a["nodes_falseleafs"], np.int64).ravel(),
         "target": np.asarray(a["leaf_targetids"], np.int64).ravel(), "weight": np.asarray(a["leaf_weights"], np.float64).ravel(),
         "roots": np.asarray(a["tree_roots"], np.int64).ravel()}
    mt = a.get("nodes_missing_value_tracks_true")
    t["missing_true"] = np.zeros(nn, np.int64) if mt is None else np.asarray(mt, np.int64).ravel()
    nl, nt = len(t["weight"]), int(a["n_targets"] or 0)
    if any(len(t[k]) != nn for k in ("feature", "split", "true_id", "true_leaf", "false_id", "false_leaf", "missing_true")) \
            or len(t["target"]) != nl or nt < 1 or ((modes < 0) | (modes > 6)).any():
        raise BornrtError("TreeEnsemble: node or leaf attributes of different lengths, n_targets < 1 or a mode outside 0..6")
    for ids, leaf in (("true_id", "true_leaf"), ("false_id", "false_leaf")):
        lim = np.where(t[leaf] != 0, nl, nn)
        if ((t[ids] < 0) | (t[ids] >= lim)).any():
            raise BornrtError(f"TreeEnsemble: nodes_{ids.replace('_id', 'nodeids').replace('_', '')} out of range")
    if ((t["target"] < 0) | (t["target"] >= nt)).any() or ((t["roots"] < 0) | (t["roots"] >= nn)).any() or \
            (n_features is not None and ((t["feature"] < 0) | (t["feature"] >= n_features)).any()):
        raise BornrtError("TreeEnsemble: a leaf target, tree root or feature id out of range")
    members = np.asarray(a["membership_values"] if a.get("membership_values") is not None else [], np.float64).ravel()
    cuts = np.flatnonzero(np.isnan(members))
    if len(cuts) != int((modes == 6).sum()):
        raise BornrtError("TreeEnsemble: membership_values needs one NaN-terminated set per MEMBER node")
    sets, start = {}, 0
    for node, end in zip(np.flatnonzero(modes == 6), cuts):
        sets[int(node)] = members[start:end]
        start = end + 1
    t["sets"] = sets
    for r in t["roots"].tolist():                 # every path ends in a leaf: no cycle
        seen, stack = set(), [(r, ())]
        while stack:
            k, path = stack.pop()
            if k in path:
                raise BornrtError(f"TreeEnsemble: the tree at root {r} has a cycle through node {k}")
            for ids, leaf in (("true_id", "true_leaf"), ("false_id", "false_leaf")):
                if not t[leaf][k] and (k, int(t[ids][k])) not in seen:
                    seen.add((k, int(t[ids][k])))
                    stack.append((int(t[ids][k]), path + (k,)))
    return t


def tree_ensemble(a, x):
    """ai.onnx.ml TreeEnsemble-5 of x (N, F) -> (N, n_targets) in x's dtype: every tree walked from its root to
    a leaf (a NaN feature takes the true branch where missing-tracks-true is set), leaf weights aggregated per
    target by SUM, AVERAGE (over trees), MIN or MAX (targets no leaf reaches keep 0, or the dtype's max/min for
    MIN/MAX as onnx.reference does). post_transform NONE only."""
    if int(a.get("post_transform", 0) or 0) != 0:
        raise BornrtError("TreeEnsemble: only post_transform NONE (0) is supported")
    x2 = np.asarray(x).reshape(len(x), -1)
    t = tree_tables(a, x2.shape[1])
    agg, nt = int(a.get("aggregate_function", 1)), int(a["n_targets"])
    xd = x2.astype(np.float64)
    info = np.finfo(x2.dtype) if x2.dtype.kind == "f" else np.finfo(np.float64)
    res = np.full((len(x2), nt), {2: info.max, 3: info.min}.get(agg, 0.0), np.float64)
    rows = np.arange(len(x2))
    for r in t["roots"].tolist():
        k = np.full(len(x2), r, np.int64)
        done = np.zeros(len(x2), bool)
        leaf = np.zeros(len(x2), np.int64)
        if t["true_leaf"][r] and t["false_leaf"][r] and t["true_id"][r] == t["false_id"][r]:
            done[:], leaf[:] = True, t["true_id"][r]
        while not done.all():
            act = rows[~done]
            kk = k[act]
            v, sp, md = xd[act, t["feature"][kk]], t["split"][kk], t["mode"][kk]
            go = np.select([md == 0, md == 1, md == 2, md == 3, md == 4, md == 5],
                           [v <= sp, v < sp, v >= sp, v > sp, v == sp, v != sp], False)
            for j in np.flatnonzero(md == 6):
                go[j] = bool(np.isin(v[j], t["sets"][int(kk[j])]))
            go |= np.isnan(v) & (t["missing_true"][kk] != 0)
            nxt = np.where(go, t["true_id"][kk], t["false_id"][kk])
            is_leaf = np.where(go, t["true_leaf"][kk], t["false_leaf"][kk]) != 0
            k[act] = nxt
            leaf[act[is_leaf]] = nxt[is_leaf]
            done[act[is_leaf]] = True
        tg, wv = t["target"][leaf], t["weight"][leaf]
        if agg in (0, 1):
            np.add.at(res, (rows, tg), wv / (len(t["roots"]) if agg == 0 else 1))
        elif agg == 2:
            np.minimum.at(res, (rows, tg), wv)
        else:
            np.maximum.at(res, (rows, tg), wv)
    return res.astype(x2.dtype)


KERNELS["TreeEnsemble"] = lambda x, o, a, w: (tree_ensemble(a, x[0]),)
#: ai.onnx.ml ops with a kernel here (KERNELS is keyed by op name; these names are not ai.onnx ones)
ML_KERNELS = {"TreeEnsemble"}


# ---------------------------------------------------------------------------------------------------- RoiAlign
def roi_align_taps(size, start, bin_size, grid, bins):
    """Per output bin p (``bins`` of them) and sample s (``grid`` per bin) along one axis of length ``size``: the
    two source indices, their bilinear weights and whether the sample lies inside [-1, size] (ONNX RoiAlign-16,
    as onnxruntime's CPU kernel computes it: coordinates below 0 clamp to 0, beyond size-1 to size-1)."""
    p = np.arange(bins)[:, None]
    s = np.arange(grid)[None, :]
    y = start + p * bin_size + (s + 0.5) * bin_size / grid
    inside = (y >= -1.0) & (y <= size)
    y = np.maximum(y, 0.0)
    lo = np.floor(y).astype(np.int64)
    edge = lo >= size - 1
    lo = np.where(edge, size - 1, lo)
    hi = np.where(edge, size - 1, lo + 1)
    frac = np.where(edge, 0.0, y - lo)
    return lo, hi, 1.0 - frac, frac, inside


def roi_align(a, x, rois, batch_indices):
    """RoiAlign (ONNX spec, opsets 10-22): x (N, C, H, W), rois (R, 4) as (x1, y1, x2, y2), batch_indices (R,)
    -> (R, C, output_height, output_width). Each bin averages (or, for mode max, takes the largest of) the
    bilinear samples of a grid of sampling_ratio^2 points (ceil(roi size / bins) when 0); max mode takes the
    largest weighted corner of each sample, as onnxruntime does. Computed in float64, returned in x's dtype."""
    n, c, h, w = x.shape
    oh, ow = int(a["output_height"]), int(a["output_width"])
    scale, ratio = float(a["spatial_scale"]), int(a["sampling_ratio"])
    half = a.get("coordinate_transformation_mode", "half_pixel") == "half_pixel"
    bidx = np.asarray(batch_indices).astype(np.int64).reshape(-1)
    in_range(bidx, n)
    r = rois.astype(np.float64).reshape(-1, 4)
    y = np.zeros((r.shape[0], c, oh, ow), np.float64)
    xd = x.astype(np.float64)
    off = 0.5 if half else 0.0
    for k in range(r.shape[0]):
        x1, y1, x2, y2 = (r[k] * scale - off).tolist()
        rw, rh = x2 - x1, y2 - y1
        if not half:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        gh = ratio if ratio > 0 else int(np.ceil(rh / oh))
        gw = ratio if ratio > 0 else int(np.ceil(rw / ow))
        ylo, yhi, wy0, wy1, yin = roi_align_taps(h, y1, rh / oh, gh, oh)       # [oh, gh]
        xlo, xhi, wx0, wx1, xin = roi_align_taps(w, x1, rw / ow, gw, ow)       # [ow, gw]
        img = xd[bidx[k]]                                                        # [C, H, W]
        ok = (yin[:, :, None, None] & xin[None, None, :, :]).astype(np.float64)   # [oh, gh, ow, gw]
        corners = [(ylo, xlo, wy0, wx0), (ylo, xhi, wy0, wx1), (yhi, xlo, wy1, wx0), (yhi, xhi, wy1, wx1)]
        terms = [img[:, yi[:, :, None, None], xi[None, None, :, :]] * (wy[:, :, None, None] * wx[None, None, :, :] * ok)
                 for yi, xi, wy, wx in corners]                                  # each [C, oh, gh, ow, gw]
        if a["mode"] == "max":
            y[k] = np.max(np.maximum(np.maximum(terms[0], terms[1]), np.maximum(terms[2], terms[3])), axis=(2, 4))
        else:
            y[k] = sum(terms).sum(axis=(2, 4)) / max(gh * gw, 1)
    return y.astype(x.dtype)


KERNELS["RoiAlign"] = lambda x, o, a, w: (roi_align(a, *x),)


# ---------------------------------------------------------------------------------------------------- GridSample
def _unnormalize(g, size, align):
    return (g + 1) / 2 * (size - 1) if align else ((g + 1) * size - 1) / 2


def _reflect(x, lo, hi):
    span = hi - lo
    if span <= 0:
        return np.zeros_like(x) + lo
    d = np.abs(x - lo) % (2 * span)
    flips = np.floor(np.abs(x - lo) / span).astype(np.int64)
    return np.where(flips % 2 == 0, lo + d % span, hi - (d % span))


def _cubic_w(t, a=-0.75):
    t = np.abs(t)
    return np.where(t <= 1, ((a + 2) * t - (a + 3)) * t * t + 1, np.where(t < 2, ((a * t - 5 * a) * t + 8 * a) * t - 4 * a, 0.0))


def gridsample(a, x, grid):
    """Sample x (N, C, *D) at grid (N, *D_out, nd) normalized coordinates (last entry = width), with linear,
    nearest or cubic (a = -0.75) interpolation and zeros/border/reflection padding."""
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(a["mode"], a["mode"])
    align = bool(a["align_corners"])
    n, c = x.shape[:2]
    sizes = x.shape[2:]
    nd = len(sizes)
    xd = x.astype(np.float64)
    out_sp = grid.shape[1:-1]
    coords = []
    for i in range(nd):          # grid's last axis lists x (width) first: reverse to the array's axis order
        g = grid[..., nd - 1 - i].astype(np.float64)
        p = _unnormalize(g, sizes[i], align)
        if a["padding_mode"] == "border":
            p = np.clip(p, 0, sizes[i] - 1)
        elif a["padding_mode"] == "reflection":
            p = _reflect(p, 0.0, sizes[i] - 1.0) if align else np.clip(_reflect(p, -0.5, sizes[i] - 0.5), 0, sizes[i] - 1)
        coords.append(p)                                             # (N, *out)

    def gather(idx):
        valid = np.ones(idx[0].shape, dtype=bool)
        fixed = []
        for i, ix in enumerate(idx):
            if a["padding_mode"] == "zeros":
                valid &= (ix >= 0) & (ix < sizes[i])
            elif a["padding_mode"] == "reflection":
                ix = np.round(_reflect(ix.astype(np.float64), 0.0, sizes[i] - 1.0)).astype(np.int64) if align else \
                    np.clip(np.floor(_reflect(ix + 0.0, -0.5, sizes[i] - 0.5)).astype(np.int64), 0, sizes[i] - 1)
            fixed.append(np.clip(ix, 0, sizes[i] - 1))
        vals = np.stack([xd[b][(slice(None),) + tuple(f[b] for f in fixed)] for b in range(n)])
        return vals, valid[:, None]

    if mode == "nearest":
        idx = [np.rint(p).astype(np.int64) for p in coords]
        vals, valid = gather(idx)
        y = np.where(valid, vals, 0.0)
    else:
        taps = 2 if mode == "linear" else 4
        base = [np.floor(p).astype(np.int64) - (0 if mode == "linear" else 1) for p in coords]
        y = np.zeros((n, c) + out_sp)
        for off in np.ndindex(*([taps] * nd)):
            idx = [base[i] + off[i] for i in range(nd)]
            w = np.ones(coords[0].shape)
            for i in range(nd):
                t = coords[i] - idx[i]
                w = w * (np.maximum(0.0, 1 - np.abs(t)) if mode == "linear" else _cubic_w(t))
            vals, valid = gather(idx)
            y += np.where(valid, vals, 0.0) * w[:, None]
    return y.astype(x.dtype)


def affinegrid(a, theta, size):
    dims = [int(v) for v in size]
    n, sp = dims[0], dims[2:]
    align = bool(a["align_corners"])
    lin = []
    for s in sp:
        if align:
            lin.append(np.linspace(-1, 1, s) if s > 1 else np.zeros(1))
        else:
            lin.append((np.arange(s) * 2 + 1) / s - 1)
    mesh = np.meshgrid(*lin, indexing="ij")                           # per spatial axis, in (D, H, W) order
    pts = np.stack([m.ravel() for m in mesh[::-1]] + [np.ones(mesh[0].size)], axis=0)   # (x, y[, z], 1)
    out = np.einsum("nij,jk->nki", theta.astype(np.float64), pts)    # (N, points, nd)
    return out.reshape((n,) + tuple(sp) + (len(sp),)).astype(theta.dtype)

KERNELS["NonMaxSuppression"] = lambda x, o, a, w: (nonmaxsuppression(a, *x),)
KERNELS["Col2Im"] = lambda x, o, a, w: (col2im(a, *x),)
KERNELS["GridSample"] = lambda x, o, a, w: (gridsample(a, *x),)
KERNELS["AffineGrid"] = lambda x, o, a, w: (affinegrid(a, *x),)


# ============================================================================================ artifact
def read_weights(path, expected_sha256=None):
    """The payload of ``weights.bin`` (64-byte header: magic BORNCWT1, format version, header size, payload
    bytes, SHA-256 of the payload), checked before use. Raises BornrtError on any mismatch."""
    with open(path, "rb") as f:
        head = f.read(WEIGHTS_HEADER_BYTES)
        if len(head) < WEIGHTS_HEADER_BYTES or head[:8] != WEIGHTS_MAGIC:
            raise BornrtError("%s: not a bornc weights file (bad magic)" % path)
        version, hsize, size = struct.unpack("<IIQ", head[8:24])
        if version != 1 or hsize != WEIGHTS_HEADER_BYTES:
            raise BornrtError("%s: weights format %d is not supported by this runtime" % (path, version))
        payload = bytearray(size)
        got = f.readinto(payload)
        extra = f.read(1)
    if got != size:
        raise BornrtError("%s: truncated (%d of %d payload bytes)" % (path, got, size))
    if extra:
        raise BornrtError("%s: longer than its header says (%d payload bytes)" % (path, size))
    digest = hashlib.sha256(payload).digest()
    if digest != head[24:56] or (expected_sha256 and digest.hex() != expected_sha256):
        raise BornrtError("%s: SHA-256 mismatch (corrupted or from another build)" % path)
    return payload


def check_feeds(inputs, feeds):
    """Validate ``feeds`` against ``inputs`` ([{name, shape, dtype}] of a manifest); returns them as arrays in
    input order. Raises BornrtError for an unknown or missing name, a wrong dtype or shape."""
    names = [t["name"] for t in inputs]
    unknown = [k for k in feeds if k not in names]
    if unknown:
        raise BornrtError("unknown input(s) %s; the model's inputs are %s" % (", ".join(map(repr, unknown)), ", ".join(map(repr, names))))
    res = []
    for t in inputs:
        if t["name"] not in feeds:
            raise BornrtError("missing input %r (%s%s)" % (t["name"], t["dtype"], t["shape"]))
        if t["shape"] is None:                      # a sequence or optional input: passed as is
            res.append(feeds[t["name"]])
            continue
        a = np.asarray(feeds[t["name"]])
        if a.dtype.kind == "V" and a.dtype.itemsize == storage_dtype(t["dtype"]).itemsize:
            a = a.view(storage_dtype(t["dtype"]))    # .npy files hold bfloat16, int4... as raw bytes
        if a.dtype != storage_dtype(t["dtype"]):
            raise BornrtError("input %r: expected dtype %s, got %s" % (t["name"], t["dtype"], a.dtype))
        if list(a.shape) != list(t["shape"]):
            raise BornrtError("input %r: expected shape %s, got %s" % (t["name"], list(t["shape"]), list(a.shape)))
        res.append(a if a.flags.c_contiguous else np.array(a, order="C"))
    return res


class Model:
    """A loaded artifact: arena, weights, and the generated schedule (``model.py``).

    ``run(feeds)`` takes {input name: array} (exact dtype and shape of ``manifest["inputs"]``) and returns
    {output name: array}. Raises BornrtError for a wrong input name, shape or dtype, or a failing kernel."""

    def __init__(self, folder):
        self.folder = str(folder)
        try:
            with open(os.path.join(self.folder, "manifest.json")) as f:
                self.manifest = json.load(f)
        except (OSError, ValueError) as ex:
            raise BornrtError("%s: no readable manifest.json (%s)" % (self.folder, ex))
        m = self.manifest
        if m.get("backend") != "python" or m.get("format_version") != FORMAT_VERSION:
            raise BornrtError("%s: not a bornc python artifact of format %d" % (self.folder, FORMAT_VERSION))
        try:
            self.code = _load_code(os.path.join(self.folder, m["python"]["module"]))
            payload = read_weights(os.path.join(self.folder, "weights.bin"), m.get("weights_sha256"))
            self._check_manifest(m, len(payload))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as ex:
            raise BornrtError("%s: manifest.json does not describe this artifact (%s: %s)" % (self.folder, type(ex).__name__, ex))
        self.weights = np.frombuffer(payload, dtype=np.uint8)
        self.arena = _aligned(m["arena_bytes"], 64)
        v = [None] * self.code.SLOTS
        for slot, off, shape, dt in self.code.WEIGHTS:
            a = self.weights[off:off + _nbytes(shape, dt)].view(dt).reshape(shape)
            a.flags.writeable = False
            v[slot] = a
        for slot, off, shape, dt in self.code.ARENA:
            v[slot] = self.arena[off:off + _nbytes(shape, dt)].view(dt).reshape(shape)
        self.outputs = {}
        for slot, name, shape, dt in self.code.OUTPUTS:
            if shape is not None and v[slot] is None:
                v[slot] = np.empty(shape, dt)
        self.v = v
        self.scratch = [Scratch(None if ws is None else self.arena[ws[0]:ws[0] + ws[1]]) for ws in self.code.WORKSPACE]
        self._outs = [(slot, name) for slot, name, shape, dt in self.code.OUTPUTS]

    def _check_manifest(self, m, payload_bytes):
        """manifest.json against the schedule it ships with (model.py): the same inputs and outputs (name, shape,
        dtype), an arena at least as large as every planned tensor and workspace, weights views inside the
        payload. Raises BornrtError naming the first mismatch (an edited manifest)."""
        c = self.code
        for kind, listed, code in (("input", m["inputs"], c.INPUTS), ("output", m["outputs"], c.OUTPUTS)):
            want = [(name, None if shape is None else list(shape), str(dt)) for _, name, shape, dt in code]
            got = [(t["name"], None if t["shape"] is None else list(t["shape"]),
                    storage_dtype(t["dtype"]).name if t["shape"] is not None or t["dtype"] in FLOAT_BITS else t["dtype"])
                   for t in listed]
            if want != got:
                raise BornrtError("%s: manifest.json %ss %s do not match the schedule's %s" % (self.folder, kind, got, want))
        need = max([off + _nbytes(shape, dt) for _, off, shape, dt in c.ARENA] +
                   [ws[0] + ws[1] for ws in c.WORKSPACE if ws is not None] + [0])
        if not isinstance(m["arena_bytes"], int) or not need <= m["arena_bytes"] <= max(need, 1) * 2 + 4096:
            raise BornrtError("%s: manifest.json arena_bytes %r does not fit the schedule (%d bytes)" % (self.folder, m["arena_bytes"], need))
        for _, off, shape, dt in c.WEIGHTS:
            if off < 0 or off + _nbytes(shape, dt) > payload_bytes:
                raise BornrtError("%s: the schedule reads weights past the %d-byte payload" % (self.folder, payload_bytes))

    @property
    def inputs(self):
        """[{name, shape, dtype}] of the model inputs."""
        return self.manifest["inputs"]

    def check(self, feeds):
        """Validate ``feeds`` against the manifest's inputs; returns them as arrays in input order."""
        return check_feeds(self.inputs, feeds)

    def run(self, feeds, copy=True):
        """Run one inference. With ``copy=False`` the returned arrays are the runtime's own output buffers,
        overwritten by the next run (no allocation for outputs)."""
        arrays = self.check(feeds)
        v = self.v
        for (slot, name, shape, dt), a in zip(self.code.INPUTS, arrays):
            v[slot] = a
        with np.errstate(all="ignore"):
            self.code.run(v, KERNELS, call, self.scratch)
        res = {}
        for slot, name in self._outs:
            r = v[slot]
            res[name] = np.array(r, copy=True) if copy and isinstance(r, np.ndarray) else r
        return res

    def self_test(self):
        """Run the golden input stored in ``selftest.npz`` (when the artifact has one) and compare with its
        stored outputs; returns (ok, worst absolute error)."""
        path = os.path.join(self.folder, "selftest.npz")
        if not os.path.exists(path):
            raise BornrtError("%s: no selftest.npz in this artifact (compile with --self-test-data)" % self.folder)
        z = np.load(path, allow_pickle=False)
        st = self.manifest.get("self_test", {})
        feeds = {t["name"]: z["in_%d" % k] for k, t in enumerate(self.inputs)}
        got = self.run(feeds)
        worst, ok = 0.0, True
        for k, t in enumerate(self.manifest["outputs"]):
            e = z["out_%d" % k].astype(np.float64)
            g = np.asarray(got[t["name"]]).astype(np.float64)
            err = float(np.max(np.abs(g - e))) if e.size else 0.0
            worst = max(worst, err)
            ok = ok and g.shape == e.shape and bool(np.allclose(g, e, rtol=st.get("rtol", 1e-3), atol=st.get("atol", 1e-4)))
        return ok, worst


def _nbytes(shape, dt):
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dt).itemsize


def _aligned(nbytes, align):
    raw = np.empty(int(nbytes) + align, dtype=np.uint8)
    start = (-raw.ctypes.data) % align
    return raw[start:start + int(nbytes)]


def _load_code(path):
    scope = {"__name__": "bornrt_model", "__file__": path}
    try:
        with open(path) as f:
            src = f.read()
        exec(compile(src, path, "exec"), scope)
    except (OSError, SyntaxError) as ex:
        raise BornrtError("%s: cannot load the generated schedule (%s)" % (path, ex))

    class Code(object):
        pass
    code = Code()
    for k in ("SLOTS", "WEIGHTS", "ARENA", "INPUTS", "OUTPUTS", "WORKSPACE", "run"):
        setattr(code, k, scope[k])
    return code


# ============================================================================ multi-target folders, standalone
#: target features (the manifest's target_profile.features) and the flag /proc/cpuinfo names them by, where they differ
CPUINFO_FLAG = {"avx512vnni": "avx512_vnni", "avxvnni": "avx_vnni", "neon": "asimd", "dotprod": "asimddp", "fp16": "fphp"}


def missing_cpu_features(features):
    """The target ``features`` this machine's CPU lacks, from /proc/cpuinfo's flags (Linux); [] where that file
    cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return []
    flags = set()
    for line in text.splitlines():
        if line.split(":")[0].strip() in ("flags", "Features"):
            flags.update(line.split(":", 1)[1].split())
    return [f for f in features if CPUINFO_FLAG.get(f, f) not in flags]


def c_runs_here(manifest):
    """None when the C artifact of ``manifest`` can run natively here, else why not: built for another
    architecture (its target_profile.triple) or for CPU features this one lacks."""
    import platform
    prof = manifest.get("target_profile") or {}
    arch, here = str(prof.get("triple") or "?").split("-")[0], platform.machine()
    same = arch == here or (arch.startswith("arm") and here.startswith("arm")) or (arch, here) == ("aarch64", "arm64")
    if not same:
        return "built for %s, this machine is %s" % (arch, here)
    missing = missing_cpu_features(prof.get("features") or [])
    if missing:
        return "built for a CPU with %s, which this one lacks" % ", ".join(missing)
    return None


class CLibrary(object):
    """A C artifact's ``build/libmodel.so`` run in-process through ctypes (no bornc, no cffi): the arena is
    allocated here from the library's own ``bornc_<name>_arena_bytes()``, the inputs and outputs the manifest
    lists are checked against the library's ``_input_info`` / ``_output_info`` (name, shape, bytes) before any
    call. Raises BornrtError for a missing or mismatched library, a wrong input or a failing run."""

    def __init__(self, folder, manifest):
        import ctypes
        self.manifest, n = manifest, manifest.get("name")
        if not isinstance(n, str) or not n.isidentifier():
            raise BornrtError("%s: manifest.json has no valid model name" % folder)
        path = os.path.join(str(folder), "build", "libmodel.so")
        try:
            lib = ctypes.CDLL(os.path.abspath(path))
        except OSError as ex:
            raise BornrtError("%s: cannot load build/libmodel.so (%s)" % (folder, str(ex).splitlines()[0][:160]))

        class Info(ctypes.Structure):
            _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int), ("rank", ctypes.c_int),
                        ("shape", ctypes.POINTER(ctypes.c_int64)), ("nbytes", ctypes.c_size_t)]

        class Ctx(ctypes.Structure):
            _fields_ = [("arena", ctypes.c_void_p), ("weights", ctypes.c_void_p), ("threads", ctypes.c_int)]
        fn = lambda suffix, res, *args: self._fn(lib, "bornc_%s_%s" % (n, suffix), res, args)   # noqa: E731
        info = {k: fn(k + "_info", ctypes.POINTER(Info), ctypes.c_int) for k in ("input", "output")}
        arena_bytes = fn("arena_bytes", ctypes.c_size_t)()
        init = fn("init", ctypes.c_int, ctypes.POINTER(Ctx), ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t)
        self._run = fn("run", ctypes.c_int, ctypes.POINTER(Ctx), ctypes.c_void_p, ctypes.c_void_p)
        self._check(info, folder)
        self._ctypes, self.ctx = ctypes, Ctx()
        self._arena = _aligned(max(int(arena_bytes), 1), 4096)
        weights = b""
        if (manifest.get("compile") or {}).get("weights") == "file":
            with open(os.path.join(str(folder), "weights.bin"), "rb") as f:
                weights = f.read()
        self._wbuf = ctypes.create_string_buffer(weights, len(weights)) if weights else None   # read by every run
        st = init(ctypes.byref(self.ctx), self._arena.ctypes.data if arena_bytes else None, arena_bytes,
                  ctypes.cast(self._wbuf, ctypes.c_void_p) if weights else None, len(weights))
        if st:
            raise BornrtError("%s: model init failed (status %d)" % (folder, st))

    @staticmethod
    def _fn(lib, name, res, args):
        try:
            f = getattr(lib, name)
        except AttributeError:
            raise BornrtError("build/libmodel.so has no %s: it is not this manifest's library" % name)
        f.restype, f.argtypes = res, list(args)
        return f

    def _check(self, info, folder):
        for kind in ("input", "output"):
            specs = self.manifest[kind + "s"]
            for i in range(len(specs) + 1):
                p = info[kind](i)
                if i == len(specs):
                    if p:
                        raise BornrtError("%s: manifest.json lists %d %ss, the library has more" % (folder, len(specs), kind))
                    break
                t = specs[i]
                want = (t["name"], [int(d) for d in t["shape"]], _nbytes(t["shape"], storage_dtype(t["dtype"])))
                got = None if not p else (p.contents.name.decode("utf-8", "replace"),
                                          [int(p.contents.shape[d]) for d in range(p.contents.rank)], int(p.contents.nbytes))
                if got != want:
                    raise BornrtError("%s: manifest.json does not match build/libmodel.so: %s %d is %s in the library "
                                      "and %s in the manifest" % (folder, kind, i, got, want))

    def run(self, feeds):
        """One inference: {input name: array} (the manifest's exact dtype and shape) -> {output name: array}."""
        ins = check_feeds(self.inputs, feeds)
        outs = [np.empty(t["shape"], dtype=storage_dtype(t["dtype"])) for t in self.manifest["outputs"]]
        c = self._ctypes
        pin = (c.c_void_p * max(len(ins), 1))(*[a.ctypes.data for a in ins])
        pout = (c.c_void_p * max(len(outs), 1))(*[a.ctypes.data for a in outs])
        st = self._run(c.byref(self.ctx), pin, pout)
        if st:
            raise BornrtError("model run failed (status %d: an index out of range or a bad input)" % st)
        return {t["name"]: a for t, a in zip(self.manifest["outputs"], outs)}

    @property
    def inputs(self):
        """[{name, shape, dtype}] of the model inputs."""
        return self.manifest["inputs"]


def _webgpu_bundle(folder):
    """The folder's WebGPU bundle through its own bornrt_webgpu.py (needs the wgpu package)."""
    import importlib.util
    path = os.path.join(str(folder), "bornrt_webgpu.py")
    spec = importlib.util.spec_from_file_location("bornrt_webgpu_%d" % abs(hash(os.path.abspath(path))), path)
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except ImportError as ex:
        raise BornrtError("the wgpu package is not installed (%s)" % ex)
    except OSError as ex:
        raise BornrtError("no bornrt_webgpu.py (%s)" % ex)
    try:
        return mod.load(folder)
    except mod.BundleError as ex:
        raise BornrtError(str(ex))


class Selected(object):
    """The artifact a multi-target folder picked: ``run(feeds)``, ``target`` (its name), ``passed_over``
    ([(target, reason)] for those tried before it) and ``summary()`` (one line)."""

    def __init__(self, model, target, passed_over):
        self.model, self.target, self.passed_over = model, target, passed_over

    def run(self, feeds):
        """One inference on the picked artifact."""
        return self.model.run(feeds)

    def self_test(self):
        """The picked artifact's self-test where it has one (python artifacts); else BornrtError."""
        if not hasattr(self.model, "self_test"):
            raise BornrtError("--self-test: the %s artifact has its own (see its folder)" % self.target)
        return self.model.self_test()

    def summary(self):
        """One line: which target runs and why the ones before it were passed over."""
        why = "; ".join("%s: %s" % tr for tr in self.passed_over)
        return "running on %s" % self.target + (" (passed over %s)" % why if why else "")


def open_one(folder):
    """The artifact in ``folder`` by its manifest's backend: a python :class:`Model`, a WebGPU bundle (wgpu), or
    a host C library (:class:`CLibrary`, after :func:`c_runs_here`). Raises BornrtError saying why it cannot run."""
    try:
        with open(os.path.join(str(folder), "manifest.json")) as f:
            m = json.load(f)
    except (OSError, ValueError) as ex:
        raise BornrtError("no readable manifest.json (%s)" % ex)
    backend = m.get("backend") if isinstance(m, dict) else None
    if backend == "python":
        return Model(folder)
    if backend == "webgpu":
        return _webgpu_bundle(folder)
    if backend == "c":
        why = c_runs_here(m)
        if why:
            raise BornrtError(why)
        try:
            return CLibrary(folder, m)
        except (KeyError, TypeError, ValueError) as ex:
            raise BornrtError("manifest.json does not describe this artifact (%s: %s)" % (type(ex).__name__, ex))
    raise BornrtError("unknown backend %r" % backend)


def load_first_runnable(folder, opener=open_one, errors=(BornrtError,)):
    """The first artifact of a multi-target folder (``bornc compile MODEL --target webgpu,x86_64,python``; its
    manifest.json lists the targets in order of preference) that ``opener`` opens, as a :class:`Selected`.
    ``opener(subfolder)`` raises one of ``errors`` (or OSError, ValueError) saying why a target cannot run here.
    Raises BornrtError listing every reason when none can."""
    with open(os.path.join(str(folder), "manifest.json")) as f:
        targets = json.load(f).get("targets") or []
    passed = []
    for name in targets:
        try:
            return Selected(opener(os.path.join(str(folder), str(name))), str(name), passed)
        except tuple(errors) + (OSError, ValueError) as ex:
            passed.append((str(name), str(ex).splitlines()[0][:200] if str(ex) else type(ex).__name__))
    raise BornrtError("%s: no artifact can run here (%s)" % (folder, "; ".join("%s: %s" % tr for tr in passed)))


def load(folder):
    """Load the artifact in ``folder`` and return an object with ``run(feeds)``: a python artifact
    (manifest.json, model.py, weights.bin) as a :class:`Model`; a multi-target folder (``bornc compile
    --target webgpu,x86_64,python``) as the :class:`Selected` first target that runs here: a WebGPU adapter with
    the bundle's limits and features, else the C library when built for this CPU, else numpy."""
    try:
        with open(os.path.join(str(folder), "manifest.json")) as f:
            multi = json.load(f).get("backend") == "multi"
    except (OSError, ValueError, AttributeError):
        multi = False
    return load_first_runnable(folder) if multi else Model(folder)


def main(argv=None):
    """Command line: ``python3 bornrt.py OUT/ --input NAME=FILE.npy ... [-o OUT.npz]`` or ``--self-test``."""
    import argparse
    p = argparse.ArgumentParser(prog="bornrt.py", description="Run a bornc python artifact with numpy.")
    p.add_argument("artifact")
    p.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy")
    p.add_argument("--inputs", metavar="FILE.npz")
    p.add_argument("-o", "--output", metavar="OUT.npz")
    p.add_argument("--self-test", action="store_true")
    args = p.parse_args(argv)
    try:
        m = load(args.artifact)
        if isinstance(m, Selected):
            sys.stderr.write("bornrt: %s\n" % m.summary())
        if args.self_test:
            ok, err = m.self_test()
            print("self-test %s (max abs error %.3g)" % ("passed" if ok else "FAILED", err))
            return 0 if ok else 1
        feeds = {}
        if args.inputs:
            with np.load(args.inputs, allow_pickle=False) as z:
                feeds.update({k: z[k] for k in z.files})
        for item in args.input:
            name, sep, path = item.rpartition("=")
            if not sep:
                raise BornrtError("--input %r: expected NAME=FILE.npy" % item)
            feeds[name] = np.load(path, allow_pickle=False)
        res = m.run(feeds)
        if args.output:
            np.savez(args.output, **res)
        for k, r in res.items():
            r = np.asarray(r)
            print("%s: %s%s" % (k, r.dtype, list(r.shape)))
        return 0
    except (BornrtError, OSError, ValueError) as ex:
        sys.stderr.write("bornrt: error: %s\n" % ex)
        return 2


if __name__ == "__main__":
    sys.exit(main())
