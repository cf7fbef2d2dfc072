"""WebGPU lowerings of elementwise ops: one invocation per output element (``elementwise.wgsl.j2``).

Each operand is read at its broadcast offset (strides collapsed where every operand walks contiguously);
scalar constants are baked in as literals. When every operand is contiguous, of the output's size, and the size
is a multiple of 4, the kernel moves ``vec4<u32>`` words (one invocation per 4 elements). FusedElementwise
programs and the Fused* epilogues are spelled by :func:`program_lines`.
"""
from __future__ import annotations

import numpy as np

from ...ops.composite import fold_program
from ...ops.registry import get, has, lowering
from ..common.lowering import broadcast_strides, collapse, unsupported
from .kernel import Ctx, Kernel, Lowered, decompose, offset
from .wgsl import EXPR, SMALL_FLOATS, convert, lit, small_float


def program_lines(program: list, args: list[str], t: str, prefix: str = "t") -> tuple[list[str], str]:
    """WGSL ``let`` lines evaluating a fused program (:func:`bornc.ops.composite.fold_program`) on scalar
    expressions ``args`` of type ``t``; returns (lines, result expression)."""
    lines: list[str] = []

    def apply(k, op, vals, attrs):
        lines.append(f"let {prefix}{k} = {EXPR[op](vals, attrs, t)};")
        return f"{prefix}{k}"
    temps = fold_program(program, args, lambda v: lit(v, t), apply)
    return lines, temps[-1] if temps else args[0]


def elementwise(ctx: Ctx, inputs: list[tuple], body, out_k: int = 0, extra_outputs: tuple = ()) -> Kernel:
    """One elementwise kernel. ``inputs``: (operand, shape, scalar literal or None, load type) per argument;
    ``body(args) -> (lines, result)`` spells the result in the output's GPU type from the argument
    expressions."""
    oshape = list(ctx.oshape(out_k))
    n = int(np.prod(oshape, dtype=np.int64))
    ops, strides = [], []
    for opnd, shape, literal_, _ in inputs:
        if literal_ is None:
            ops.append(opnd)
            strides.append(broadcast_strides(shape, oshape))
    dims, cs = collapse(oshape, strides) if strides else ([max(n, 1)], [])
    contiguous = all(s == [1] for s in cs) and len(dims) == 1
    vec4 = contiguous and n % 4 == 0 and n >= 4
    y = ctx.y(out_k, vec4)
    args, loads, k = [], [], 0
    for opnd, shape, literal_, lt in inputs:
        if literal_ is not None:
            args.append(literal_)
            continue
        opnd.vec4 = vec4
        args.append(f"a{k}")
        loads.append((k, offset(cs[k]) if not vec4 else "i", lt))
        k += 1
    lines, result = body(args)
    y_index = len(ops)
    words = n // 4 if vec4 else n
    vpt = 4 if vec4 and words >= (1 << 20) else 1          # large tensors: 4 words per invocation
    return Kernel("elementwise", {"n": words, "vec4": vec4, "vpt": vpt, "index": [] if vec4 else decompose(dims),
                                  "loads": loads, "lines": lines, "result": result, "y": y_index},
                  ops + [y], threads=-(-words // vpt), label=ctx.node.op)


def _scalar_literal(ctx: Ctx, i: int, t: str):
    c = ctx.consts[i]
    if c is not None and np.asarray(c).size == 1 and ctx.ins[i].dtype not in ("float16", "bfloat16"):
        return lit(np.asarray(c).ravel()[0].item(), t)
    return None


def operand_args(ctx: Ctx, idx: list[int], t: str | None = None) -> list[tuple]:
    """(operand, shape, literal, load type) for node inputs ``idx`` (scalar constants become literals)."""
    out = []
    for i in idx:
        ti = ctx.t(i)
        litv = _scalar_literal(ctx, i, ti)
        out.append((ctx.x(i) if litv is None else None, ctx.shape(i), litv, ti))
    return out


def _check_types(ctx: Ctx, op: str, t: str):
    if has(op, "float_only") and t != "f32":
        raise unsupported(ctx.node, f"{ctx.ins[0].dtype} operands")
    if has(op, "int_only") and t == "f32":
        raise unsupported(ctx.node, f"{ctx.ins[0].dtype} operands")


def _simple(ctx: Ctx) -> Lowered:
    op = ctx.node.op
    idx = [i for i in range(len(ctx.node.inputs)) if ctx.has(i)]
    t = ctx.t(0)
    _check_types(ctx, op, t)
    ot = ctx.ot()
    if op == "Clip":
        idx = [0] + [i for i in (1, 2) if ctx.has(i)]
    ins = operand_args(ctx, idx)

    def body(args):
        args = [convert(x, ins[j][3], t) if ins[j][3] != t and ins[j][2] is None else x for j, x in enumerate(args)]
        full = list(args)
        if op == "Clip":
            full = [args[0], None, None]
            for j, i in enumerate(idx[1:], 1):
                full[i] = args[j]
        e = EXPR[op](full, ctx.attrs, t)
        if has(op, "bool_output"):
            return [], f"select(0u, 1u, {e})"
        return [], convert(e, t, ot, ctx.outs[0].dtype)
    return Lowered([elementwise(ctx, ins, body)])


for _op in EXPR:
    if get(_op) is not None and _op != "Identity":
        lowering("webgpu", _op)(_simple)


@lowering("webgpu", "FusedElementwise", "bornc")
def _fused(ctx: Ctx) -> Lowered:
    t = ctx.ot()
    idx = list(range(len(ctx.node.inputs)))
    ins = operand_args(ctx, idx)
    return Lowered([elementwise(ctx, ins, lambda args: program_lines(ctx.attrs["program"], args, t))])


def _variadic(ctx: Ctx, op: str) -> Lowered:
    t = ctx.ot()
    idx = [i for i in range(len(ctx.node.inputs)) if ctx.has(i)]
    ins = operand_args(ctx, idx)

    def body(args):
        acc = args[0]
        for a in args[1:]:
            acc = EXPR["Add" if op in ("Sum", "Mean") else op](["(" + acc + ")", a], {}, t)
        if op == "Mean":
            acc = f"({acc}) / {lit(len(args), t)}"
        return [], acc
    return Lowered([elementwise(ctx, ins, body)])


for _op in ("Sum", "Mean", "Max", "Min"):
    lowering("webgpu", _op)(lambda ctx, _o=_op: _variadic(ctx, _o))


@lowering("webgpu", "Where")
def _where(ctx: Ctx) -> Lowered:
    ins = operand_args(ctx, [0, 1, 2])
    return Lowered([elementwise(ctx, ins, lambda a: ([], f"select({a[2]}, {a[1]}, ({a[0]}) != 0u)"))])


@lowering("webgpu", "Cast")
def _cast(ctx: Ctx) -> Lowered:
    src, dst = ctx.t(0), ctx.ot()
    ins = operand_args(ctx, [0])
    d = ctx.outs[0].dtype
    if d == "float8_e8m0fnu" or ctx.ins[0].dtype == "float8_e8m0fnu":
        raise unsupported(ctx.node, "float8_e8m0fnu")
    if d in SMALL_FLOATS:                    # rounded here with the node's saturate flag
        sat = bool(ctx.attrs.get("saturate", 1))
        return Lowered([elementwise(ctx, ins, lambda a: ([], small_float(convert(a[0], src, "f32"), d, sat)))])
    if d in ("int4", "uint4", "int2", "uint2") and src == "f32":   # rounded (4-bit) or truncated; out of range -> 0
        lo, hi = _INT_RANGE[d]
        fn = "round" if d.endswith("4") else "trunc"
        return Lowered([elementwise(ctx, ins, lambda a: (
            [f"let r = {fn}({a[0]});"], f"select({lit(0, dst)}, {dst}(r), r >= {float(lo)}f && r <= {float(hi)}f)"))])
    return Lowered([elementwise(ctx, ins, lambda a: ([], convert(a[0], src, dst, d)))])


lowering("webgpu", "CastLike")(_cast)


def identity_kernel(ctx: Ctx, i: int = 0, k: int = 0) -> Kernel:
    ins = operand_args(ctx, [i])
    return elementwise(ctx, ins, lambda a: ([], a[0]), out_k=k)


@lowering("webgpu", "BatchNormalization")
def _batchnorm(ctx: Ctx) -> Lowered:
    """Inference BatchNormalization as y = (x - mean) * (scale / sqrt(var + eps)) + bias with per-channel
    operands broadcast along axis 1 (folded to two constants when scale, bias, mean, var are constant)."""
    if len([o for o in ctx.node.outputs if o]) > 1 or ctx.attrs.get("training_mode"):
        raise unsupported(ctx.node, "training mode")
    xs = ctx.shape(0)
    cshape = (xs[1],) + (1,) * (len(xs) - 2) if len(xs) > 1 else (xs[0],)
    eps = float(ctx.attrs["epsilon"])
    if all(ctx.consts[i] is not None for i in (1, 2, 3, 4)):
        s, b, m, v = (np.asarray(ctx.consts[i], np.float64) for i in (1, 2, 3, 4))
        a = s / np.sqrt(v + eps)
        ins = [(ctx.x(0), xs, None, "f32"), (ctx.table(a.reshape(cshape), "f32"), cshape, None, "f32"),
               (ctx.table((b - m * a).reshape(cshape), "f32"), cshape, None, "f32")]
        return Lowered([elementwise(ctx, ins, lambda q: ([], f"({q[0]}) * ({q[1]}) + ({q[2]})"))])
    ins = [(ctx.x(0), xs, None, "f32")] + [(ctx.x(i), cshape, None, "f32") for i in (1, 2, 3, 4)]
    return Lowered([elementwise(ctx, ins, lambda q: (
        [], f"(({q[0]}) - ({q[3]})) / sqrt(({q[4]}) + {lit(eps, 'f32')}) * ({q[1]}) + ({q[2]})"))])


def _qparam_shape(ctx: Ctx, i: int, axis: int) -> tuple:
    """The shape a scale / zero point of input ``i`` broadcasts as: scalar per tensor, (D, 1, ...) per axis."""
    ps = ctx.shape(i)
    xs = ctx.shape(0)
    if int(np.prod(ps, dtype=np.int64)) == 1:
        return tuple(ps) if len(ps) <= len(xs) else ()
    if len(ps) == 1:
        ax = axis % len(xs)
        return (ps[0],) + (1,) * (len(xs) - ax - 1)
    raise unsupported(ctx.node, "blocked quantization")


def _quant_ins(ctx: Ctx) -> list:
    ax = ctx.attrs.get("axis", 1)
    ins = [operand_args(ctx, [0])[0]]
    for i in (1, 2):
        if ctx.has(i):
            opnd, _, litv, lt = operand_args(ctx, [i])[0]
            ins.append((opnd, _qparam_shape(ctx, i, ax), litv, lt))
    return ins


@lowering("webgpu", "DequantizeLinear")
def _dequantize(ctx: Ctx) -> Lowered:
    """y = (x - zero_point) * scale, per tensor or per axis (ONNX DequantizeLinear)."""
    ins = _quant_ins(ctx)
    ts = [x[3] for x in ins]

    def body(a):
        x = convert(a[0], ts[0], "f32")
        if len(a) > 2:
            x = f"({x} - {convert(a[2], ts[2], 'f32')})"
        return [], f"{x} * {convert(a[1], ts[1], 'f32')}"
    return Lowered([elementwise(ctx, ins, body)])


_INT_RANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "uint16": (0, 65535),
              "int4": (-8, 7), "uint4": (0, 15), "int2": (-2, 1), "uint2": (0, 3), "int32": (-2 ** 31, 2 ** 31 - 1),
              "uint32": (0, 2 ** 32 - 1)}


@lowering("webgpu", "QuantizeLinear")
def _quantize(ctx: Ctx) -> Lowered:
    """y = saturate(round_half_even(x / scale) + zero_point), per tensor or per axis (ONNX QuantizeLinear)."""
    od = ctx.outs[0].dtype
    ins = _quant_ins(ctx)
    ts = [x[3] for x in ins]
    if od in SMALL_FLOATS:                   # float8 / float4: x / scale + zero point, rounded to the format
        sat = bool(ctx.attrs.get("saturate", 1))

        def fbody(a):
            y = f"{convert(a[0], ts[0], 'f32')} / {convert(a[1], ts[1], 'f32')}"
            if len(a) > 2:
                y = f"{y} + {convert(a[2], ts[2], 'f32')}"
            return [], small_float(y, od, sat)
        return Lowered([elementwise(ctx, ins, fbody)])
    if od not in _INT_RANGE or od in ("int32", "uint32"):
        raise unsupported(ctx.node, f"{od} output")
    lo, hi = _INT_RANGE[od]
    ot = ctx.ot()

    def body(a):
        y = f"round({convert(a[0], ts[0], 'f32')} / {convert(a[1], ts[1], 'f32')})"
        if len(a) > 2:
            y = f"{y} + {convert(a[2], ts[2], 'f32')}"
        return [], f"{ot}(clamp({y}, {lit(lo, 'f32')}, {lit(hi, 'f32')}))"
    return Lowered([elementwise(ctx, ins, body)])


@lowering("webgpu", "Dropout")
def _dropout(ctx: Ctx) -> Lowered:
    """Inference Dropout (training_mode absent or constant false): the input, and a mask of ones."""
    ratio = ctx.consts[1] if ctx.has(1) else np.float32(0.5)
    if ctx.has(2) and (ctx.consts[2] is None or bool(np.asarray(ctx.consts[2]).ravel()[0])) \
            and (ratio is None or float(np.asarray(ratio).ravel()[0]) != 0.0):
        raise unsupported(ctx.node, "training mode")      # ratio 0 drops nothing: the inference form
    ks = [identity_kernel(ctx)] if ctx.outs[0].size else []
    if len(ctx.node.outputs) > 1 and ctx.node.outputs[1] and ctx.outs[1].size:
        n = ctx.outs[1].size
        ks.append(Kernel("remap", {"n": n, "index": [], "mode": "fill", "fill": "1u"}, [ctx.y(1)], threads=n, label="Dropout mask"))
    return Lowered(ks)


@lowering("webgpu", "BitCast")
def _bitcast(ctx: Ctx) -> Lowered:
    """Reinterpret 32-bit words (float32 <-> int32 <-> uint32); other widths are not held bit-exactly on the GPU."""
    if {ctx.ins[0].dtype, ctx.outs[0].dtype} - {"float32", "int32", "uint32"}:
        raise unsupported(ctx.node, f"{ctx.ins[0].dtype} -> {ctx.outs[0].dtype}")
    src, dst = ctx.t(0), ctx.ot()
    ins = operand_args(ctx, [0])
    return Lowered([elementwise(ctx, ins, lambda a: ([], a[0] if src == dst else f"bitcast<{dst}>({a[0]})"))])


@lowering("webgpu", "OneHot")
def _onehot(ctx: Ctx) -> Lowered:
    """y[..., d, ...] = values[1] where indices (negative ones counted from the end) equal d, else values[0]."""
    depth = int(np.asarray(ctx.const(1, "depth")).ravel()[0])
    oshape = list(ctx.oshape())
    ax = ctx.attrs["axis"] % len(oshape)
    inner = int(np.prod(oshape[ax + 1:], dtype=np.int64))
    n = ctx.outs[0].size
    it = ctx.t(0)
    q = "i32(ld0(j))" if it == "f32" else convert("ld0(j)", it, "i32")
    lines = [f"let j = (i / {inner * depth}u) * {inner}u + i % {inner}u;", f"var q = {q};",
             f"if (q < 0i) {{ q = q + {depth}i; }}", f"let d = i32((i / {inner}u) % {depth}u);",
             "st2(i, select(ld1(0u), ld1(1u), q == d));"]
    return Lowered([Kernel("direct", {"n": n, "lines": lines}, [ctx.x(0), ctx.x(2), ctx.y()], threads=n, label="OneHot")] if n else [])
