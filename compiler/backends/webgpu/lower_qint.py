"""WebGPU lowerings of bornc's integer layers QConv, QMatMul and LookupTable (see ``ops/qint.py``).

Unpacked int8: every element is one 32-bit word on the GPU (see ``wgsl.py``), so uint8 activations and int8
weights are read as u32/i32 words and each invocation computes one output with an i32 accumulator, then the
fixed-point requantization ``bn_requant`` (bit-exact with the C runtime and the reference). Packed 4x8-bit dot
products (WGSL's dot4I8Packed) would need a packed storage layout and are not used.
"""
from __future__ import annotations

from ...ops.nn import _spatial
from ...ops.registry import lowering
from .kernel import Ctx, Kernel, Lowered
from ..common.lowering import unsupported
from .lower_nn import window_sum_lines

def _requant_lines(ctx: Ctx, ch: str, acc: str, out: int) -> tuple[list[str], list[str]]:
    """(module-scope declarations, body lines) storing requant(acc) of channel ``ch`` to operand ``out``."""
    a = ctx.attrs
    m = ctx.outs[0].shape[1] if ctx.node.op == "QConv" else ctx.outs[0].shape[-1]
    mult, shift = list(a["multiplier"]), list(a["shift"])
    if len(mult) == 1:
        mult, shift = mult * m, shift * m
    decl = [f"var<private> qmul: array<i32, {m}> = array<i32, {m}>({', '.join(f'{int(v)}i' for v in mult)});",
            f"var<private> qshift: array<i32, {m}> = array<i32, {m}>({', '.join(f'{int(v)}i' for v in shift)});"]
    val = f"clamp(bn_requant({acc}, qmul[{ch}], qshift[{ch}]) + {int(a['y_zero_point'])}i, {int(a['qmin'])}i, {int(a['qmax'])}i)"
    if a.get("table") is not None:
        decl.append(f"var<private> qtable: array<u32, 256> = array<u32, 256>({', '.join(f'{int(v)}u' for v in a['table'])});")
        val = f"qtable[u32({val})]"
    else:
        val = f"u32({val})"
    return decl, [f"st{out}(i, {val});"]

def _integer_layer(ctx: Ctx, lines: list[str], channel: str, n: int) -> Lowered:
    """The accumulation ``lines`` (leaving ``acc``), plus the bias of ``channel`` and the requantized store."""
    ops = [ctx.x(0), ctx.x(1)]
    if ctx.has(2):
        ops.append(ctx.x(2))
        lines = lines + [f"acc = acc + ld{len(ops) - 1}({channel});"]
    ops.append(ctx.y())
    decl, store = _requant_lines(ctx, channel, "acc", len(ops) - 1)
    return Lowered([Kernel("direct", {"n": n, "lines": lines + store, "decl": decl}, ops, threads=n,
                           label=ctx.node.op)])

@lowering("webgpu", "QConv", "bornc")
def _qconv(ctx: Ctx) -> Lowered:
    xs, ws = list(ctx.shape(0)), list(ctx.shape(1))
    kernel = list(ctx.attrs["kernel_shape"] or ws[2:])
    strides, dil, pads = _spatial(ctx.attrs, xs, kernel)
    lines = window_sum_lines(ctx, kernel, strides, dil, pads, "0i",
                             f"(i32({{x}}) - {int(ctx.attrs['x_zero_point'])}i) * {{w}}")
    return _integer_layer(ctx, lines, "o1", ctx.outs[0].size)

@lowering("webgpu", "QMatMul", "bornc")
def _qmatmul(ctx: Ctx) -> Lowered:
    m, k = ctx.shape(1)
    zp = int(ctx.attrs["x_zero_point"])
    lines = [f"let row = i / {m}u;", f"let col = i % {m}u;", "var acc = 0i;",
             f"for (var kk = 0u; kk < {k}u; kk = kk + 1u) {{",
             f"  acc = acc + (i32(ld0(row * {k}u + kk)) - {zp}i) * ld1(col * {k}u + kk);", "}"]
    return _integer_layer(ctx, lines, "col", ctx.outs[0].size)

@lowering("webgpu", "LookupTable", "bornc")
def _lookup(ctx: Ctx) -> Lowered:
    n = ctx.outs[0].size
    decl = [f"var<private> qtable: array<u32, 256> = array<u32, 256>({', '.join(f'{int(v)}u' for v in ctx.attrs['table'])});"]
    return Lowered([Kernel("direct", {"n": n, "lines": ["st1(i, qtable[ld0(i) & 255u]);"], "decl": decl},
                           [ctx.x(0), ctx.y()], threads=n, label="LookupTable")])


def _zp(ctx: Ctx, k: int, ops: list, index: str) -> str:
    """WGSL i32 expression of zero-point input ``k`` (scalar, or indexed by ``index`` when it has more than one
    element), appending its operand to ``ops``; ``0i`` when absent."""
    if not ctx.has(k):
        return "0i"
    ops.append(ctx.x(k))
    return f"i32(ld{len(ops) - 1}({index if ctx.ins[k].size > 1 else '0u'}))"


@lowering("webgpu", "ConvInteger")
def _conv_integer(ctx: Ctx) -> Lowered:
    """ConvInteger (ONNX spec, opset 10): int32 sum of (x - x_zero_point) * (w - w_zero_point), one invocation per
    output; w_zero_point scalar or per output channel."""
    xs, ws = list(ctx.shape(0)), list(ctx.shape(1))
    kernel = list(ctx.attrs["kernel_shape"] or ws[2:])
    strides, dil, pads = _spatial(ctx.attrs, xs, kernel)
    ops = [ctx.x(0), ctx.x(1)]
    xzp, wzp = _zp(ctx, 2, ops, "0u"), _zp(ctx, 3, ops, "o1")
    lines = window_sum_lines(ctx, kernel, strides, dil, pads, "0i", f"(i32({{x}}) - {xzp}) * (i32({{w}}) - {wzp})")
    ops.append(ctx.y())
    return Lowered([Kernel("direct", {"n": ctx.outs[0].size, "lines": lines + [f"st{len(ops) - 1}(i, acc);"]}, ops,
                           threads=ctx.outs[0].size, label="ConvInteger")])


@lowering("webgpu", "MatMulInteger")
def _matmul_integer(ctx: Ctx) -> Lowered:
    """MatMulInteger (ONNX spec, opset 10) of A [..., M, K] and a 2-D B [K, N]: int32 sums of (a - a_zero_point) *
    (b - b_zero_point), b_zero_point scalar or per column, one invocation per output."""
    a, b = list(ctx.shape(0)), list(ctx.shape(1))
    if len(b) != 2 or len(a) < 1 or (ctx.has(2) and ctx.ins[2].size > 1):
        raise unsupported(ctx.node, "a batched B or a per-row A zero point")
    k, n = b
    ops = [ctx.x(0), ctx.x(1)]
    azp, bzp = _zp(ctx, 2, ops, "0u"), _zp(ctx, 3, ops, "col")
    lines = [f"let row = i / {n}u;", f"let col = i % {n}u;", "var acc = 0i;",
             f"for (var kk = 0u; kk < {k}u; kk = kk + 1u) {{",
             f"  acc = acc + (i32(ld0(row * {k}u + kk)) - {azp}) * (i32(ld1(kk * {n}u + col)) - {bzp});", "}"]
    ops.append(ctx.y())
    return Lowered([Kernel("direct", {"n": ctx.outs[0].size, "lines": lines + [f"st{len(ops) - 1}(i, acc);"]}, ops,
                           threads=ctx.outs[0].size, label="MatMulInteger")])
