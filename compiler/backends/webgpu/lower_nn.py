"""WebGPU lowerings of MatMul, Gemm, Conv (and their Fused* forms), ConvTranspose, pooling, LRN, normalizations
and LSTM. Geometry comes from the helpers the reference kernels use, so both agree on padding rules.

MatMul, Gemm and Conv share one tiled kernel (``gemm.wgsl.j2``): a workgroup of 16x16 invocations computes a
(16*TM)x(16*TN) output tile, staging BK-deep slices of A and B in workgroup memory, each invocation keeping TMxTN
accumulators in registers (the classic shared-memory tiling of Volkov & Demmel, SC'08). Conv runs as an implicit
GEMM (M = output channels of a group, N = output pixels, K = input channels x taps) whose B loader reads the
input window directly, so no im2col buffer exists. Depthwise and 3-D convolutions use a direct kernel.
"""
from __future__ import annotations

import numpy as np

from ...ops.registry import lowering
from ...pyrt import rt
from . import kernel as kernel_mod
from ..common import geometry
from ..common.tables import tfidf_grams, tree_arrays
from ..common.lowering import broadcast_strides, collapse, contiguous_strides, unsupported
from .kernel import Ctx, Kernel, Lowered, decompose, offset
from .lower_elementwise import program_lines
from .wgsl import lit


#: the fewest workgroups a GEMM grid should have: below it the per-invocation tile shrinks (8x8 -> 4x8 -> 4x4 ->
#: ...) for more, smaller workgroups. On an H200 (132 multiprocessors, Vulkan) 128 took matmul 1024^3 from 10.0 to
#: 15.2 TFLOP/s and left 2048^3, 4096^3 and conv3x3 as they were; 256 cost the conv a quarter, 512 the matmuls
#: (examples/bench_webgpu.py kernels, 2026-12-02). Tiles capped at 4x4 and staging depths 8 or 32 were slower
#: there at 4096^3 (18-24 against 27 TFLOP/s) and for the conv. Unrolling the depth loop of the slice then took
#: 1024^3 from 14.5 to 20-21 TFLOP/s, 4096^3 from 27.2 to 29.3 and the conv from 17.3 to 18.4-18.8; with it,
#: staging depth 8 or 32 and two workgroup buffers (one barrier a step, 32 KiB) were slower again (2026-12-03).
MIN_WORKGROUPS = 128


def _tile(size: int) -> int:
    """Per-invocation tile (1, 2, 4 or 8) so that 16 invocations cover min(size, 128)."""
    t = 1
    while 16 * t < min(size, 128) and t < 8:
        t *= 2
    return t


def _epilogue(ctx: Ctx, first_extra: int, ops: list, value: str, oi: str) -> list[str]:
    """Lines applying the node's epilogue program to ``value`` (output flat index ``oi``); extra operands are
    appended to ``ops``. Leaves the result in ``v``."""
    prog = ctx.attrs.get("epilogue") or []
    lines = [f"var v = {value};"]
    if not prog:
        return lines
    oshape = list(ctx.oshape())
    args = ["v"]
    for i in range(first_extra, len(ctx.node.inputs)):
        dims, (cs,) = collapse(oshape, [broadcast_strides(ctx.shape(i), oshape)])
        j = len(ops)
        ops.append(ctx.x(i))
        if cs == [1] and len(dims) == 1:
            args.append(f"ld{j}({oi})")
        elif all(s == 0 for s in cs):
            args.append(f"ld{j}(0u)")
        else:
            lines += [s.replace("let ", "let ") for s in decompose(dims, oi, f"e{j}_")]
            args.append(f"ld{j}({offset(cs, f'e{j}_')})")
    body, res = program_lines(prog, args, ctx.ot(), prefix="p")
    return lines + body + [f"v = {res};"]


def gemm_kernel(ctx: Ctx, m: int, n: int, k: int, batch: int, ops: list, a_fn: str, b_fn: str, epi_lines: list,
                label: str, vec_fns: tuple | None = None) -> Kernel:
    """The tiled GEMM dispatch. ``a_fn`` / ``b_fn``: WGSL bodies returning A[z](m, k) and B[z](k, c) as f32;
    ``vec_fns``: bodies (or "") returning 4 consecutive k of A / 4 consecutive c of B as vec4<f32>, used for a
    side whose tiles are all full (operand 0 / 1 is then bound as vec4 words)."""
    tm, tn = _tile(m), _tile(n)
    while batch * -(-m // (16 * tm)) * -(-n // (16 * tn)) < MIN_WORKGROUPS and max(tm, tn) > 2:
        if tm >= tn:                 # a small grid leaves most of a large GPU idle: smaller tiles, more workgroups
            tm //= 2
        else:
            tn //= 2
    bm, bn = 16 * tm, 16 * tn
    half = getattr(ctx, "f16", False) and all(t.dtype == "float16" for t in (ctx.ins[0], ctx.ins[1], ctx.outs[0]))
    item = 2 if half else 4          # f16 mode stages float16 tiles as halves: twice the depth in the same bytes
    bk = 16 if (bm + bn) * 16 * item <= 16384 else 8
    if half and (bm + bn) * 32 * item <= 16384:
        bk = 32
    a_full, b_full = m % bm == 0 and k % bk == 0, n % bn == 0 and k % bk == 0
    vec_a = bool(vec_fns and vec_fns[0]) and a_full and not half and k % 4 == 0
    vec_b = bool(vec_fns and vec_fns[1]) and b_full and not half and n % 4 == 0
    ops[0].vec4, ops[1].vec4 = vec_a, vec_b
    return Kernel("gemm", {"M": m, "N": n, "K": k, "tm": tm, "tn": tn, "bm": bm, "bn": bn, "bk": bk, "a_fn": a_fn,
                           "a_full": a_full, "b_full": b_full, "half": half, "vec_a": vec_a, "vec_b": vec_b,
                           "a4_fn": vec_fns[0] if vec_a else "", "b4_fn": vec_fns[1] if vec_b else "",
                           "b_fn": b_fn, "epi": epi_lines, "wg_storage_bytes": (bm + bn) * bk * item},
                  ops, groups=(-(-n // bn), -(-m // bm), batch), label=label)


def _matmul(ctx: Ctx, first_extra: int) -> Lowered:
    a, b = ctx.shape(0), ctx.shape(1)
    a2 = (1,) + tuple(a) if len(a) == 1 else tuple(a)
    b2 = tuple(b) + (1,) if len(b) == 1 else tuple(b)
    batch = tuple(np.broadcast_shapes(a2[:-2], b2[:-2]))
    nb = int(np.prod(batch, dtype=np.int64)) if batch else 1
    m, kk, n = a2[-2], a2[-1], b2[-1]
    if ctx.outs[0].size == 0:
        return Lowered([])
    if nb > 65535:
        raise unsupported(ctx.node, "more than 65535 batched matrices")
    if ctx.ot() != "f32":
        raise unsupported(ctx.node, f"{ctx.outs[0].dtype} MatMul")
    za, zb = ("0u", "0u")
    zlines = []
    if batch:
        sa = [s * m * kk for s in broadcast_strides(a2[:-2], batch)]
        sb = [s * kk * n for s in broadcast_strides(b2[:-2], batch)]
        zlines = decompose(list(batch), "z", "zb")
        za, zb = offset(sa, "zb"), offset(sb, "zb")
    ops = [ctx.x(0), ctx.x(1)]
    zl = " ".join(zlines)
    a_fn = f"{zl} return ld0({za} + m * {kk}u + k);"
    b_fn = f"{zl} return ld1({zb} + k * {n}u + c);"
    vec_fns = (f"{zl} return bitcast<vec4<f32>>(ld0(({za} + m * {kk}u + k) / 4u));",
               f"{zl} return bitcast<vec4<f32>>(ld1(({zb} + k * {n}u + c) / 4u));")
    oi = f"z * {m * n}u + m * {n}u + c"
    epi = [f"let oi = {oi};"] + _epilogue(ctx, first_extra, ops, "acc", "oi")
    ops.append(ctx.y())
    epi.append(f"st{len(ops) - 1}(oi, v);")
    return Lowered([gemm_kernel(ctx, m, n, kk, nb, ops, a_fn, b_fn, epi, ctx.node.op, vec_fns)])


lowering("webgpu", "MatMul")(lambda ctx: _matmul(ctx, 2))
lowering("webgpu", "FusedMatMul", "bornc")(lambda ctx: _matmul(ctx, 2))


def _gemm(ctx: Ctx) -> Lowered:
    """Gemm (and FusedGemm). A B larger than one binding may cover (fully connected layers of VGG-sized models)
    is split into column blocks, one dispatch each, when it is stored (N, K) (transB = 1)."""
    at = ctx.attrs
    a, b = ctx.shape(0), ctx.shape(1)
    m, kk = (a[1], a[0]) if at["transA"] else (a[0], a[1])
    n = b[0] if at["transB"] else b[1]
    if ctx.ot() != "f32":
        raise unsupported(ctx.node, f"{ctx.outs[0].dtype} Gemm")
    if m * n == 0:
        return Lowered([])
    chunk = n
    if n * kk * 4 > kernel_mod.BINDING_LIMIT:
        if not at["transB"]:
            raise unsupported(ctx.node, f"a B of {n * kk * 4:,} bytes stored (K, N): more than one binding holds")
        chunk = max(kernel_mod.BINDING_LIMIT // (kk * 4) // 128 * 128, 1)
    ks = []
    for n0 in range(0, n, chunk):
        nc = min(chunk, n - n0)
        ops = [ctx.x(0), ctx.window(ctx.x(1), n0 * kk, nc * kk) if chunk < n else ctx.x(1)]
        a_fn = f"return ld0(k * {m}u + m);" if at["transA"] else f"return ld0(m * {kk}u + k);"
        b_fn = f"return ld1(c * {kk}u + k);" if at["transB"] else f"return ld1(k * {n}u + c);"
        val = f"{lit(at['alpha'], 'f32')} * acc" if at["alpha"] != 1.0 else "acc"
        if ctx.has(2) and at["beta"] != 0.0:
            cs = broadcast_strides(ctx.shape(2), (m, n))
            ops.append(ctx.x(2))
            val += f" + {lit(at['beta'], 'f32')} * ld2({offset(cs, 'q')})".replace("q0", "m").replace("q1", "cg")
        epi = [f"let cg = c + {n0}u;", f"let oi = m * {n}u + cg;"] + _epilogue(ctx, 3, ops, val, "oi")
        ops.append(ctx.y())
        epi.append(f"st{len(ops) - 1}(oi, v);")
        ks.append(gemm_kernel(ctx, m, nc, kk, 1, ops, a_fn, b_fn, epi, ctx.node.op))
    return Lowered(ks)


lowering("webgpu", "Gemm")(_gemm)
lowering("webgpu", "FusedGemm", "bornc")(_gemm)


# ---------------------------------------------------------------------------------------------------- Conv
def _conv(ctx: Ctx) -> Lowered:
    xs, ws = list(ctx.shape(0)), list(ctx.shape(1))
    if ctx.ot() != "f32":
        raise unsupported(ctx.node, f"{ctx.outs[0].dtype} Conv")
    kernel, strides, dil, pads, outs = rt.conv_geometry(ctx.attrs, xs, ws)
    g = ctx.attrs["group"]
    nb, c = xs[0], xs[1]
    cout = ws[0]
    cg, mg = c // g, cout // g
    if ctx.outs[0].size == 0:
        return Lowered([])
    nd = len(kernel)
    if nd > 2 or (cg * int(np.prod(kernel)) < 8) or mg < 4:
        return _conv_direct(ctx, kernel, strides, dil, pads, outs)
    geo = geometry.conv_window(ctx.attrs, xs, ws, ctx.oshape())
    h, w, oh, ow, kh, kw = (geo[k] for k in ("H", "W", "OH", "OW", "KH", "KW"))
    taps = kh * kw
    ops = [ctx.x(1), ctx.x(0)]
    kdim = cg * taps
    a_fn = f"let g = z % {g}u; return ld0((g * {mg}u + m) * {kdim}u + k);"
    a4_fn = f"let g = z % {g}u; return bitcast<vec4<f32>>(ld0(((g * {mg}u + m) * {kdim}u + k) / 4u));"
    b_fn = (f"let b = z / {g}u; let g = z % {g}u; let ci = k / {taps}u; let r = k % {taps}u; "
            f"let oy = c / {ow}u; let ox = c % {ow}u; "
            f"let iy = i32(oy * {geo['SH']}u + (r / {kw}u) * {geo['DH']}u) - {geo['PT']}i; "
            f"let ix = i32(ox * {geo['SW']}u + (r % {kw}u) * {geo['DW']}u) - {geo['PL']}i; "
            f"if (iy < 0i || ix < 0i || iy >= {h}i || ix >= {w}i) {{ return 0.0f; }} "
            f"return ld1(((b * {c}u + g * {cg}u + ci) * {h}u + u32(iy)) * {w}u + u32(ix));")
    val = "acc"
    if ctx.has(2):
        ops.append(ctx.x(2))
        val = f"acc + ld{len(ops) - 1}(g * {mg}u + m)"
    epi = [f"let b = z / {g}u; let g = z % {g}u;", f"let oi = (b * {cout}u + g * {mg}u + m) * {oh * ow}u + c;"]
    epi += _epilogue(ctx, 3, ops, val, "oi")
    ops.append(ctx.y())
    epi.append(f"st{len(ops) - 1}(oi, v);")
    if nb * g > 65535:
        raise unsupported(ctx.node, "more than 65535 batch x group")
    return Lowered([gemm_kernel(ctx, mg, oh * ow, kdim, nb * g, ops, a_fn, b_fn, epi, ctx.node.op, (a4_fn, ""))])


def window_sum_lines(ctx: Ctx, kernel, strides, dil, pads, zero: str, term: str) -> list[str]:
    """WGSL lines that decompose output index ``i`` (o0, o1, ...) and sum ``term`` over the group's input
    channels and the kernel taps into ``acc`` (starting at ``zero``); ``term`` reads ld0(x index) and ld1(w
    index), spelled as ``{x}`` and ``{w}``. Taps outside the input contribute nothing (N-D, NCHW)."""
    xs, ws = list(ctx.shape(0)), list(ctx.shape(1))
    c, cg = xs[1], xs[1] // ctx.attrs["group"]
    mg = ws[0] // ctx.attrs["group"]
    taps = int(np.prod(kernel))
    lines = decompose(list(ctx.oshape()), "i", "o")
    lines += [f"let g = o1 / {mg}u;", f"var acc = {zero};",
              f"for (var ci = 0u; ci < {cg}u; ci = ci + 1u) {{",
              f"  let xb = (o0 * {c}u + g * {cg}u + ci);",
              f"  let wb = (o1 * {cg}u + ci) * {taps}u;",
              f"  for (var t = 0u; t < {taps}u; t = t + 1u) {{"]
    lines += ["    " + s for s in decompose(kernel, "t", "kq")]
    cond, idx = [], "xb"
    for d in range(len(kernel)):
        lines.append(f"    let p{d} = i32(o{d + 2} * {strides[d]}u + kq{d} * {dil[d]}u) - {pads[d][0]}i;")
        cond.append(f"p{d} < 0i || p{d} >= {xs[2 + d]}i")
        idx = f"({idx}) * {xs[2 + d]}u + u32(p{d})"
    return lines + [f"    if ({' || '.join(cond)}) {{ continue; }}",
                    "    acc = acc + " + term.format(x=f"ld0({idx})", w="ld1(wb + t)") + ";", "  }", "}"]


def _conv_direct(ctx: Ctx, kernel, strides, dil, pads, outs) -> Lowered:
    """One invocation per output element, looping over the group's input channels and the kernel taps (N-D)."""
    n = ctx.outs[0].size
    ops = [ctx.x(0), ctx.x(1)]
    lines = window_sum_lines(ctx, kernel, strides, dil, pads, "0.0f", "{x} * {w}")
    val = "acc"
    if ctx.has(2):
        ops.append(ctx.x(2))
        val = f"acc + ld{len(ops) - 1}(o1)"
    lines += _epilogue(ctx, 3, ops, val, "i")
    ops.append(ctx.y())
    lines.append(f"st{len(ops) - 1}(i, v);")
    return Lowered([Kernel("direct", {"n": n, "lines": lines}, ops, threads=n, label=ctx.node.op)])


lowering("webgpu", "Conv")(_conv)
lowering("webgpu", "FusedConv", "bornc")(_conv)


@lowering("webgpu", "ConvTranspose")
def _convtranspose(ctx: Ctx) -> Lowered:
    xs, ws = list(ctx.shape(0)), list(ctx.shape(1))
    if ctx.ot() != "f32":
        raise unsupported(ctx.node, f"{ctx.outs[0].dtype} ConvTranspose")
    kernel, strides, dil, pads, _, outs = rt.convtranspose_geometry(ctx.attrs, xs, ws)
    g = ctx.attrs["group"]
    c = xs[1]
    cg, mg = c // g, ws[1]
    nd = len(kernel)
    oshape = list(ctx.oshape())
    n = ctx.outs[0].size
    if n == 0:
        return Lowered([])
    taps = int(np.prod(kernel))
    ops = [ctx.x(0), ctx.x(1)]
    lines = decompose(oshape, "i", "o")
    lines += [f"let g = o1 / {mg}u;", f"let mm = o1 % {mg}u;", "var acc = 0.0f;",
              f"for (var t = 0u; t < {taps}u; t = t + 1u) {{"]
    lines += ["  " + s for s in decompose(kernel, "t", "kq")]
    sp_idx = "0u"
    for d in range(nd):
        lines += [f"  let q{d} = i32(o{d + 2}) + {pads[d][0]}i - i32(kq{d} * {dil[d]}u);",
                  f"  if (q{d} < 0i || q{d} % {strides[d]}i != 0i) {{ continue; }}",
                  f"  let p{d} = u32(q{d} / {strides[d]}i);", f"  if (p{d} >= {xs[2 + d]}u) {{ continue; }}"]
        sp_idx = f"({sp_idx}) * {xs[2 + d]}u + p{d}"
    sp = int(np.prod(xs[2:], dtype=np.int64))
    lines += [f"  for (var ci = 0u; ci < {cg}u; ci = ci + 1u) {{",
              f"    let cc = g * {cg}u + ci;",
              f"    acc = acc + ld0((o0 * {c}u + cc) * {sp}u + {sp_idx}) * ld1((cc * {mg}u + mm) * {taps}u + t);",
              "  }", "}"]
    val = "acc"
    if ctx.has(2):
        ops.append(ctx.x(2))
        val = "acc + ld2(o1)"
    lines.append(f"let v = {val};")
    ops.append(ctx.y())
    lines.append(f"st{len(ops) - 1}(i, v);")
    return Lowered([Kernel("direct", {"n": n, "lines": lines}, ops, threads=n, label="ConvTranspose")])


# ---------------------------------------------------------------------------------------------------- pools
def _pool(ctx: Ctx, kind: str) -> Lowered:
    xs = list(ctx.shape(0))
    kernel, strides, dil, pads, ext, outs = rt.pool_geometry(ctx.attrs, xs)
    nd = len(kernel)
    oshape = list(ctx.oshape())
    n = ctx.outs[0].size
    if n == 0:
        return Lowered([])
    t = ctx.t(0)
    taps = int(np.prod(kernel))
    ops = [ctx.x(0)]
    sp = int(np.prod(xs[2:], dtype=np.int64))
    lines = decompose(oshape, "i", "o")
    lo = lit(-np.inf, t) if t == "f32" else ("i32(-2147483647 - 1)" if t == "i32" else "0u")
    lines += [f"let xb = (o0 * {xs[1]}u + o1) * {sp}u;",
              f"var acc = {lo if kind == 'max' else lit(0, t)};", "var cnt = 0.0f;", "var at = 0u;", "var found = false;",
              f"for (var t = 0u; t < {taps}u; t = t + 1u) {{"]
    lines += ["  " + s for s in decompose(kernel, "t", "kq")]
    inside, counted, idx = [], [], "0u"
    for d in range(nd):
        lines.append(f"  let p{d} = i32(o{d + 2} * {strides[d]}u + kq{d} * {dil[d]}u) - {pads[d][0]}i;")
        inside.append(f"p{d} >= 0i && p{d} < {xs[2 + d]}i")
        counted.append(f"p{d} >= {-pads[d][0]}i && p{d} < {xs[2 + d] + pads[d][1]}i")
        idx = f"({idx}) * {xs[2 + d]}u + u32(p{d})"
    if ctx.attrs.get("storage_order", 0) == 1 and nd >= 2:
        idx_t = "0u"
        for d in reversed(range(nd)):
            idx_t = f"({idx_t}) * {xs[2 + d]}u + u32(p{d})"
    else:
        idx_t = idx
    if kind == "avg" and ctx.attrs.get("count_include_pad"):
        lines.append(f"  if ({' && '.join(counted)}) {{ cnt = cnt + 1.0f; }}")
    lines.append(f"  if (!({' && '.join(inside)})) {{ continue; }}")
    if kind == "max":
        better = "v > acc || !found" if t != "f32" else "v > acc || (bn_isnan(v) && !bn_isnan(acc)) || !found"
        lines += [f"  let v = ld0(xb + {idx});", f"  if ({better}) {{ acc = v; at = {idx_t}; found = true; }}", "}"]
    elif kind == "avg":
        lines += [f"  acc = acc + ld0(xb + {idx});"]
        if not ctx.attrs.get("count_include_pad"):
            lines.append("  cnt = cnt + 1.0f;")
        lines += ["}", "acc = acc / cnt;"]
    else:
        p = ctx.attrs["p"]
        lines += [f"  acc = acc + pow(abs(ld0(xb + {idx})), {lit(p, 'f32')});", "}",
                  f"acc = pow(acc, {lit(1.0 / p, 'f32')});"]
    ops.append(ctx.y())
    lines.append("st1(i, acc);")
    if len(ctx.node.outputs) > 1 and ctx.node.outputs[1]:
        ops.append(ctx.y(1))
        lines.append(f"st2(i, i32((o0 * {xs[1]}u + o1) * {sp}u + at));")
    return Lowered([Kernel("direct", {"n": n, "lines": lines}, ops, threads=n, label=ctx.node.op)])


lowering("webgpu", "MaxPool")(lambda ctx: _pool(ctx, "max"))
lowering("webgpu", "AveragePool")(lambda ctx: _pool(ctx, "avg"))
lowering("webgpu", "LpPool")(lambda ctx: _pool(ctx, "lp"))


@lowering("webgpu", "LRN")
def _lrn(ctx: Ctx) -> Lowered:
    xs = list(ctx.shape(0))
    a = ctx.attrs
    size = a["size"]
    lo, hi = (size - 1) // 2, -(-(size - 1) // 2)
    n = ctx.outs[0].size
    inner = int(np.prod(xs[2:], dtype=np.int64))
    c = xs[1]
    lines = [f"let s = i % {inner}u;", f"let ch = i32((i / {inner}u) % {c}u);", f"let b = i / {inner * c}u;",
             "var acc = 0.0f;",
             f"for (var q = max(ch - {lo}i, 0i); q <= min(ch + {hi}i, {c - 1}i); q = q + 1i) {{",
             f"  let v = ld0((b * {c}u + u32(q)) * {inner}u + s);", "  acc = acc + v * v;", "}",
             f"let v = ld0(i) / pow({lit(a['bias'], 'f32')} + {lit(a['alpha'] / size, 'f32')} * acc, {lit(a['beta'], 'f32')});",
             "st1(i, v);"]
    return Lowered([Kernel("direct", {"n": n, "lines": lines}, [ctx.x(0), ctx.y()], threads=n, label="LRN")])


# ---------------------------------------------------------------------------------------------------- normalization
def _normalize(ctx: Ctx, axes: list, scale_idx: str | None, bias_idx: str | None, eps: float, rms: bool = False) -> Lowered:
    """(x - mean) / sqrt(var + eps) * scale + bias over ``axes`` (contiguous tail or any set), one workgroup per
    row; ``scale_idx`` / ``bias_idx``: WGSL index expressions in the row number ``o`` and position ``j``."""
    from .lower_tensor import _groups, row_params
    if ctx.outs[0].size == 0:
        return Lowered([])
    rp = row_params(ctx, axes)
    ops = [ctx.x(0)]
    sc = bi = ""
    if scale_idx is not None:
        ops.append(ctx.x(1))
        sc = f"ld1({scale_idx})"
    if bias_idx is not None:
        ops.append(ctx.x(2))
        bi = f"ld{len(ops) - 1}({bias_idx})"
    ops.append(ctx.y())
    extra = []
    for k in (1, 2):
        if len(ctx.node.outputs) > k and ctx.node.outputs[k]:
            ops.append(ctx.y(k))
            extra.append((len(ops) - 1, "mean" if k == 1 else "inv"))
    return Lowered([Kernel("normalize", {**rp, "eps": lit(eps, "f32"), "scale": sc, "bias": bi,
                                         "y": len(ops) - 1 - len(extra), "extra": extra, "rms": rms},
                           ops, groups=_groups(rp["rows"]), label=ctx.node.op)])


@lowering("webgpu", "LayerNormalization")
def _layernorm(ctx: Ctx) -> Lowered:
    xs = list(ctx.shape(0))
    ax = ctx.attrs["axis"] % len(xs)
    axes = list(range(ax, len(xs)))
    rshape = xs[ax:]
    sidx = _bcast_index(ctx.shape(1), rshape)
    bidx = _bcast_index(ctx.shape(2), rshape) if ctx.has(2) else None
    return _normalize(ctx, axes, sidx, bidx, ctx.attrs["epsilon"])


@lowering("webgpu", "RMSNormalization")
def _rmsnorm(ctx: Ctx) -> Lowered:
    xs = list(ctx.shape(0))
    ax = ctx.attrs["axis"] % len(xs)
    return _normalize(ctx, list(range(ax, len(xs))), _bcast_index(ctx.shape(1), xs[ax:]), None, ctx.attrs["epsilon"], rms=True)


def _bcast_index(shape, rshape) -> str:
    """Index into an operand of ``shape`` broadcast over the normalized block ``rshape`` at position j."""
    return _inline_index(list(rshape), broadcast_strides(shape, rshape))


def _inline_index(dims, strides) -> str:
    """A single WGSL expression for sum(coord_k(j) * strides_k) over row-major ``dims``."""
    terms = []
    inner = 1
    for d, s in zip(reversed(dims), reversed(strides)):
        if s and d > 1:
            terms.append(f"((j / {inner}u) % {d}u) * {s}u")
        inner *= d
    return " + ".join(terms) if terms else "0u"


@lowering("webgpu", "InstanceNormalization")
def _instancenorm(ctx: Ctx) -> Lowered:
    xs = list(ctx.shape(0))
    c = xs[1]
    return _normalize(ctx, list(range(2, len(xs))), f"o % {c}u", f"o % {c}u", ctx.attrs["epsilon"])


@lowering("webgpu", "GridSample")
def _gridsample(ctx: Ctx) -> Lowered:
    """GridSample (opset 16-22: linear/bilinear, nearest, cubic/bicubic; zeros, border, reflection) over any
    number of spatial axes, one invocation per output element, templates/wgsl/gridsample.wgsl.j2."""
    xs, out = list(ctx.shape(0)), list(ctx.oshape())
    if ctx.ot() != "f32":
        raise unsupported(ctx.node, f"GridSample on {ctx.ins[0].dtype}")
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(ctx.attrs["mode"], ctx.attrs["mode"])
    if mode not in ("linear", "nearest", "cubic") or ctx.attrs["padding_mode"] not in ("zeros", "border", "reflection"):
        raise unsupported(ctx.node, f"mode {ctx.attrs['mode']!r} with padding {ctx.attrs['padding_mode']!r}")
    spatial, osp = xs[2:], out[2:]
    total = ctx.outs[0].size
    if not total:
        return Lowered([])
    return Lowered([Kernel("gridsample", {
        "N": xs[0], "C": xs[1], "nd": len(spatial), "I": spatial, "O": osp, "istr": contiguous_strides(spatial),
        "isz": int(np.prod(spatial, dtype=np.int64)), "osz": int(np.prod(osp, dtype=np.int64)), "total": total,
        "mode": mode, "taps": {"linear": 2, "nearest": 1, "cubic": 4}[mode], "padding": ctx.attrs["padding_mode"],
        "align": int(ctx.attrs["align_corners"])}, [ctx.x(0), ctx.x(1), ctx.y()], threads=total, label="GridSample")])


@lowering("webgpu", "TfIdfVectorizer")
def _tfidf(ctx: Ctx) -> Lowered:
    """TfIdfVectorizer on integer tokens whose pool fits 32 bits (the GPU holds int64 as i32), one invocation per
    output entry, templates/wgsl/tfidf.wgsl.j2 (the C kernel's rules)."""
    a = ctx.attrs
    g = tfidf_grams(a)
    if isinstance(g, str) or ctx.ins[0].dtype not in ("int32", "int64"):
        raise unsupported(ctx.node, g if isinstance(g, str) else "string tokens")
    if any(not -2 ** 31 <= v < 2 ** 31 for v in g["pool"]):
        raise unsupported(ctx.node, "pool tokens outside 32 bits")
    xs = ctx.shape(0)
    rows, width = 1 if len(xs) == 1 else xs[0], max(g["outs"]) + 1
    return Lowered([Kernel("tfidf", {
        **g, "pool": [f"{v}i" for v in g["pool"]], "K": len(g["off"]),
        "weights": [lit(w, "f32") for w in g["weights"]], "rows": rows, "L": xs[-1], "W": width,
        "min_len": a["min_gram_length"], "max_len": a["max_gram_length"], "max_skip": a["max_skip_count"],
        "mode": a["mode"]}, [ctx.x(0), ctx.y()], threads=rows * width, label="TfIdfVectorizer")])


@lowering("webgpu", "RoiAlign")
def _roialign(ctx: Ctx) -> Lowered:
    """RoiAlign (opsets 10-22, avg and max, both coordinate modes) with run-time boxes and batch indices,
    templates/wgsl/roialign.wgsl.j2 (the C kernel's rules, in f32)."""
    xs, rs = ctx.shape(0), ctx.shape(1)
    if ctx.ot() != "f32" or ctx.t(1) != "f32":
        raise unsupported(ctx.node, f"RoiAlign on {ctx.ins[0].dtype} with {ctx.ins[1].dtype} boxes")
    a = ctx.attrs
    half = a["coordinate_transformation_mode"] == "half_pixel"
    total = ctx.outs[0].size
    if not total:
        return Lowered([])
    return Lowered([Kernel("roialign", {
        "N": xs[0], "C": xs[1], "H": xs[2], "W": xs[3], "R": rs[0], "OH": int(a["output_height"]),
        "OW": int(a["output_width"]), "ratio": max(int(a["sampling_ratio"]), 0), "mode": a["mode"], "half": half,
        "scale": lit(float(a["spatial_scale"]), "f32"), "off": "0.5" if half else "0.0"},
        [ctx.x(0), ctx.x(1), ctx.x(2), ctx.y(), ctx.status()], threads=total, label="RoiAlign")])


def _f32_bits(values) -> list[int]:
    """float32 bit patterns of ``values`` (u32 words), for constant tables that may hold NaN."""
    return [int(v) for v in np.asarray(values, np.float32).ravel().view(np.uint32)]


@lowering("webgpu", "TreeEnsemble", domain="ai.onnx.ml")
def _tree_ensemble(ctx: Ctx) -> Lowered:
    """ai.onnx.ml TreeEnsemble-5 (post_transform NONE) on float features: the checked tables (common/tables.py)
    as private arrays, templates/wgsl/tree_ensemble.wgsl.j2, one invocation per row."""
    xs = ctx.shape(0)
    if ctx.ot() != "f32" or len(xs) != 2:
        raise unsupported(ctx.node, f"TreeEnsemble on {ctx.ins[0].dtype}[{len(xs)}-D]")
    t = tree_arrays(ctx.attrs, xs[1])
    big = float(np.finfo(np.float32).max)
    return Lowered([Kernel("tree_ensemble", {
        **t, "N": xs[0], "F": xs[1], "split": _f32_bits(t["split"]), "weight": _f32_bits(t["weight"]),
        "members": _f32_bits(t["members"]) or [0], "init": {2: lit(big, "f32"), 3: lit(-big, "f32")}.get(t["agg"], "0.0f")},
        [ctx.x(0), ctx.y()], threads=xs[0], label="TreeEnsemble")])


# ---------------------------------------------------------------------------------------------------- LSTM
def _recurrent_shape(ctx: Ctx, default_acts: list[str], gates: int) -> tuple:
    """(seq, batch, input, directions, hidden, layout, sequence lengths) of an LSTM/GRU/RNN the WebGPU kernels
    run: default activations, no clip, a constant or absent sequence_lens; unsupported otherwise."""
    a = ctx.attrs
    acts = a.get("activations")
    if acts and [s.lower() for s in acts] not in (default_acts, default_acts * 2):
        raise unsupported(ctx.node, "non-default activations")
    if a.get("clip") is not None:
        raise unsupported(ctx.node, "clip")
    if ctx.has(4) and ctx.consts[4] is None:
        raise unsupported(ctx.node, "run-time sequence_lens")
    xs = list(ctx.shape(0))
    layout = a.get("layout", 0)
    seq, batch, isz = (xs[0], xs[1], xs[2]) if layout == 0 else (xs[1], xs[0], xs[2])
    dirs, hsz = ctx.shape(1)[0], ctx.shape(1)[1] // gates
    lens = [int(v) for v in np.asarray(ctx.consts[4]).ravel()] if ctx.has(4) else [seq] * batch
    return seq, batch, isz, dirs, hsz, layout, lens


@lowering("webgpu", "LSTM")
def _lstm(ctx: Ctx) -> Lowered:
    """LSTM (ONNX spec, default activations, layout 0 or 1, forward/reverse/bidirectional, peepholes, initial
    states, constant or absent sequence_lens) in one workgroup: invocations own hidden units, states live in the
    workspace, a barrier separates time steps."""
    a = ctx.attrs
    if a.get("input_forget"):
        raise unsupported(ctx.node, "input_forget")
    seq, batch, isz, dirs, hsz, layout, lens = _recurrent_shape(ctx, ["sigmoid", "tanh", "tanh"], 4)
    ops = [ctx.x(0), ctx.x(1), ctx.x(2)]
    names = {}
    for k, nm in ((3, "B"), (5, "H0"), (6, "C0"), (7, "P")):
        if ctx.has(k):
            names[nm] = len(ops)
            ops.append(ctx.x(k))
    ws_h = ctx.ws(0, dirs * batch * hsz * 2)
    ws_c = ctx.ws(dirs * batch * hsz * 2, dirs * batch * hsz)
    names["WS_H"] = len(ops)
    ops.append(ws_h)
    names["WS_C"] = len(ops)
    ops.append(ws_c)
    outs = {}
    for k, nm in ((0, "Y"), (1, "YH"), (2, "YC")):
        if len(ctx.node.outputs) > k and ctx.node.outputs[k]:
            outs[nm] = len(ops)
            ops.append(ctx.y(k))
    lens_t = ctx.table(lens, "i32")
    names["LENS"] = len(ops)
    ops.append(lens_t)
    return Lowered([Kernel("lstm", {"seq": seq, "batch": batch, "isz": isz, "hsz": hsz, "dirs": dirs,
                                    "reverse": a.get("direction") == "reverse", "layout": layout, "ops": names,
                                    "outs": outs}, ops, groups=(1, 1, 1), label="LSTM")],
                   workspace=dirs * batch * hsz * 3 * 4)


@lowering("webgpu", "GRU")
@lowering("webgpu", "RNN")
def _gru_rnn(ctx: Ctx) -> Lowered:
    """GRU (either linear_before_reset) and RNN (ONNX spec, default activations, no clip, layout 0 or 1, every
    direction, initial state, constant or absent sequence_lens) in one workgroup, as the LSTM kernel."""
    a, op = ctx.attrs, ctx.node.op
    gates = 3 if op == "GRU" else 1
    seq, batch, isz, dirs, hsz, layout, lens = _recurrent_shape(ctx, ["sigmoid", "tanh"] if op == "GRU" else ["tanh"], gates)
    lbr = op == "GRU" and bool(a.get("linear_before_reset"))
    ops = [ctx.x(0), ctx.x(1), ctx.x(2)]
    names = {}
    for k, nm in ((3, "B"), (5, "H0")):
        if ctx.has(k):
            names[nm] = len(ops)
            ops.append(ctx.x(k))
    dbh = dirs * batch * hsz
    names["WS_H"] = len(ops)
    ops.append(ctx.ws(0, 2 * dbh))
    names["WS_G"] = len(ops)
    ops.append(ctx.ws(2 * dbh, 2 * batch * hsz))
    outs = {}
    for k, nm in ((0, "Y"), (1, "YH")):
        if len(ctx.node.outputs) > k and ctx.node.outputs[k]:
            outs[nm] = len(ops)
            ops.append(ctx.y(k))
    names["LENS"] = len(ops)
    ops.append(ctx.table(lens, "i32"))
    return Lowered([Kernel("gru", {"op": op, "seq": seq, "batch": batch, "isz": isz, "hsz": hsz, "dirs": dirs,
                                   "gates": gates, "lbr": lbr, "reverse": a.get("direction") == "reverse",
                                   "layout": layout, "ops": names, "outs": outs}, ops, groups=(1, 1, 1), label=op)],
                   workspace=(2 * dbh + 2 * batch * hsz) * 4)
