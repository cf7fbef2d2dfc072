"""WebGPU lowerings of elementwise ops: one invocation per output element (``elementwise.wgsl.j2``).

Each operand is read at its broadcast offset (strides collapsed where every operand walks contiguously);
scalar constants are baked in as literals. When every operand is contiguous, of the output's size, and the size
is a multiple of 4, the kernel moves ``vec4<u32>`` words (one invocation per 4 elements). FusedElementwise
programs and the Fused* epilogues are spelled by :func:`program_lines`.
"""
from __future__ import annotations

import numpy as np

from ...ops.composite import registry_node
from ...ops.registry import attrs_with_defaults, get, lowering
from .kernel import WG, Ctx, Kernel, Lowered, broadcast_strides, collapse, decompose, offset, unsupported
from .wgsl import EXPR, FLOAT_ONLY, INT_ONLY, PREDICATES, convert, lit


def program_lines(program: list, args: list[str], t: str, prefix: str = "t") -> tuple[list[str], str]:
    """WGSL ``let`` lines evaluating a fused program (see bornc.ops.composite) on scalar expressions ``args``
    of type ``t``; returns (lines, result expression)."""
    lines, temps = [], []
    for k, step in enumerate(program):
        vals = []
        for kind, v in step["args"]:
            if kind == "in":
                vals.append(args[v])
            elif kind == "t":
                vals.append(temps[v])
            else:
                vals.append(None if v is None else lit(v, t))
        opdef = get(step["op"])
        attrs = attrs_with_defaults(opdef, registry_node(step))
        e = EXPR[step["op"]](vals, attrs, t)
        lines.append(f"let {prefix}{k} = {e};")
        temps.append(f"{prefix}{k}")
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
    return Kernel("elementwise", {"n": n // 4 if vec4 else n, "vec4": vec4, "index": [] if vec4 else decompose(dims),
                                  "loads": loads, "lines": lines, "result": result, "y": y_index},
                  ops + [y], threads=n // 4 if vec4 else n, label=ctx.node.op)


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
    if op in FLOAT_ONLY and t != "f32":
        raise unsupported(ctx.node, f"{ctx.ins[0].dtype} operands")
    if op in INT_ONLY and t == "f32":
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
        full = list(args)
        if op == "Clip":
            full = [args[0], None, None]
            for j, i in enumerate(idx[1:], 1):
                full[i] = args[j]
        e = EXPR[op](full, ctx.attrs, t)
        if op in PREDICATES:
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
