"""WebGPU lowerings of data movement, reductions, Softmax, Resize, CumSum, TopK and scatter ops.

Data movement (Transpose, Slice, Pad, Expand, Tile, Split, DepthToSpace, Gather with constant indices...) is
found by *probing*: the op's reference kernel runs on ``1..n`` (and again shifted by n+7) in float64, which
tells, for every output element, which input element it copies or that it is a fill value. When the map is
affine in the output coordinates the kernel computes it (``remap.wgsl.j2``, strided); otherwise the map is a
table in the weights. Reductions use one workgroup of 64 invocations per output element and a tree reduction
in workgroup memory.
"""
from __future__ import annotations

import numpy as np

from ...ir.types import np_dtype
from ...ops import registry
from ...ops.registry import KernelCtx, lowering
from . import kernel as kernel_mod
from ..common import resize
from ..common.lowering import collapse, contiguous_strides, unsupported
from .kernel import Ctx, Kernel, Lowered, decompose, offset
from .lower_elementwise import identity_kernel
from .wgsl import lit

RED_WG = 64


def probe_map(ctx: Ctx, k_out: int = 0, data: int = 0):
    """(source index per output element, -1 for fills; fill value or None) of a pure data-movement op, found by
    running its reference kernel on 1..n. UnsupportedOpError when another input is not constant or the op
    computes rather than moves."""
    node = ctx.node
    for i in range(len(node.inputs)):
        if i != data and ctx.has(i) and ctx.consts[i] is None:
            raise unsupported(node, f"run-time input {i}")
    opdef = registry.get(node.op, node.domain)
    kctx = KernelCtx(node, ctx.attrs, ctx.opset)
    xs = ctx.shape(data)
    n = int(np.prod(xs, dtype=np.int64))

    def go(x):
        args = [x if i == data else (ctx.consts[i] if ctx.has(i) else None) for i in range(len(node.inputs))]
        r = opdef.reference(kctx, *args)
        return np.asarray(r[k_out] if isinstance(r, (tuple, list)) else r)
    try:
        base = np.arange(1, n + 1, dtype=np.float64).reshape(xs)
        a, b = go(base), go(base + (n + 7))
    except Exception:
        raise unsupported(node, "not a data-movement op the probe understands") from None
    if tuple(a.shape) != tuple(ctx.oshape(k_out)):
        raise unsupported(node, "probe shape differs")
    a = a.astype(np.float64)
    fill = a == b.astype(np.float64)
    moved = ~fill
    if not np.all(b[moved] - a[moved] == n + 7) or not np.all(a[moved] == np.round(a[moved])):
        raise unsupported(node, "computes rather than moves data")
    idx = np.where(fill, -1, a - 1).astype(np.int64)
    fill_value = None
    if fill.any():
        z = go(np.zeros(xs, np_dtype(ctx.ins[data].dtype)))
        vals = np.unique(np.asarray(z)[fill].astype(np.float64))
        if len(vals) != 1 and not fill.all():
            raise unsupported(node, "fill values vary")
        fill_value = z[fill] if fill.all() else vals[0]
    return idx, fill_value


def affine(idx: np.ndarray) -> tuple[int, list[int]] | None:
    """(base, strides) when idx[c] = base + sum(c_k * strides_k) over its shape, else None."""
    if idx.size == 0 or (idx < 0).any():
        return None
    base = int(idx.flat[0])
    strides = []
    for k, d in enumerate(idx.shape):
        if d > 1:
            e = [0] * idx.ndim
            e[k] = 1
            strides.append(int(idx[tuple(e)]) - base)
        else:
            strides.append(0)
    grid = np.indices(idx.shape, dtype=np.int64) if idx.ndim else np.zeros((0,), np.int64)
    pred = base + sum(g * s for g, s in zip(grid, strides)) if idx.ndim else np.int64(base)
    return (base, strides) if np.array_equal(pred, idx) else None


def remap_kernel(ctx: Ctx, idx: np.ndarray, fill, data: int = 0, out_k: int = 0) -> Kernel:
    """out[i] = in[idx[i]] (fill where idx < 0): strided when idx is affine, else through a table."""
    n = int(idx.size)
    t = ctx.ot(out_k)
    if fill is not None and np.ndim(fill) > 0:                # the output is a constant: copy it from a table
        table = ctx.table(np.asarray(fill).reshape(-1), t)
        table.dtype = ctx.outs[out_k].dtype
        return Kernel("remap", {"n": n, "index": [], "src": "i", "mode": "copy"}, [table, ctx.y(out_k)], threads=n,
                      label=ctx.node.op)
    fit = affine(idx) if fill is None else None
    if fit is not None:
        base, strides = fit
        dims, (cs,) = collapse(list(idx.shape), [strides])
        return Kernel("remap", {"n": n, "index": decompose(dims), "src": offset(cs, base=base), "mode": "copy"},
                      [ctx.x(data), ctx.y(out_k)], threads=n, label=ctx.node.op)
    fv = lit(float(fill) if t == "f32" else int(fill), t) if fill is not None else lit(0, t)
    return Kernel("remap", {"n": n, "index": [], "mode": "table", "fill": fv},
                  [ctx.x(data), ctx.table(idx, "i32"), ctx.y(out_k)], threads=n, label=ctx.node.op)


def _probed(ctx: Ctx) -> Lowered:
    ks = []
    for k, o in enumerate(ctx.node.outputs):
        if not o or ctx.outs[k].size == 0:
            continue
        idx, fill = probe_map(ctx, k)
        ks.append(remap_kernel(ctx, idx, fill, 0, k))
    return Lowered(ks)


for _op in ("Transpose", "Slice", "Pad", "Expand", "Tile", "Split", "DepthToSpace", "SpaceToDepth", "ReverseSequence",
            "Trilu", "Compress", "CenterCropPad", "Upsample", "EyeLike", "Col2Im"):
    if registry.get(_op) is not None:
        lowering("webgpu", _op)(_probed)


@lowering("webgpu", "Concat")
def _concat(ctx: Ctx) -> Lowered:
    """One dispatch per input: the input's elements placed at their offset along the axis (strided store)."""
    oshape = list(ctx.oshape())
    ax = ctx.attrs["axis"] % len(oshape)
    ost = contiguous_strides(oshape)
    ks, pos = [], 0
    for i in range(len(ctx.node.inputs)):
        if not ctx.has(i):
            continue
        xs = list(ctx.shape(i))
        n = int(np.prod(xs, dtype=np.int64))
        if n:
            dims, (cs,) = collapse(xs, [ost])
            ks.append(Kernel("remap", {"n": n, "index": decompose(dims), "dst": offset(cs, base=pos * ost[ax]),
                                       "src": "i", "mode": "place"}, [ctx.x(i), ctx.y()], threads=n, label="Concat"))
        pos += xs[ax]
    return Lowered(ks)


def _runtime_or_probe(ctx: Ctx, runtime) -> Lowered:
    if all(ctx.consts[i] is not None for i in range(1, len(ctx.node.inputs)) if ctx.has(i)):
        return _probed(ctx)
    return runtime(ctx)


def _index_check(q: str, dim: int, status: int) -> str:
    """WGSL: an index ``q`` (i32, negative ones already shifted) outside [0, dim) fails the inference (operand
    ``status`` of the kernel) and ends this invocation."""
    return f"if ({q} < 0i || {q} >= {dim}i) {{ fail{status}(); return; }}"


def _gather_rt(ctx: Ctx) -> Lowered:
    xs = list(ctx.shape(0))
    ax = ctx.attrs["axis"] % len(xs)
    n = ctx.outs[0].size
    inner = int(np.prod(xs[ax + 1:], dtype=np.int64))
    nind = max(ctx.ins[1].size, 1)
    lines = [f"let inner = i % {inner}u;", f"let j = (i / {inner}u) % {nind}u;", f"let outer = i / {inner * nind}u;",
             "var q = i32(ld1(j));", f"if (q < 0i) {{ q = q + {xs[ax]}i; }}", _index_check("q", xs[ax], 3),
             f"let src = (outer * {xs[ax]}u + u32(q)) * {inner}u + inner;"]
    return Lowered([Kernel("gather", {"n": n, "lines": lines}, [ctx.x(0), ctx.x(1), ctx.y(), ctx.status()], threads=n, label="Gather")])


def _gather_elements_rt(ctx: Ctx) -> Lowered:
    xs, ish = list(ctx.shape(0)), list(ctx.shape(1))
    ax = ctx.attrs["axis"] % len(xs)
    n = ctx.outs[0].size
    xst = contiguous_strides(xs)
    lines = decompose(ish) + ["var q = i32(ld1(i));", f"if (q < 0i) {{ q = q + {xs[ax]}i; }}",
                              _index_check("q", xs[ax], 3),
                              f"let src = {offset([s if k != ax else 0 for k, s in enumerate(xst)])} + u32(q) * {xst[ax]}u;"]
    return Lowered([Kernel("gather", {"n": n, "lines": lines}, [ctx.x(0), ctx.x(1), ctx.y(), ctx.status()], threads=n, label="GatherElements")])


lowering("webgpu", "Gather")(lambda ctx: _runtime_or_probe(ctx, _gather_rt))
lowering("webgpu", "GatherElements")(lambda ctx: _runtime_or_probe(ctx, _gather_elements_rt))
lowering("webgpu", "GatherND")(lambda ctx: _probed(ctx))


@lowering("webgpu", "ConstantOfShape")
def _constant_of_shape(ctx: Ctx) -> Lowered:
    v = ctx.attrs.get("value")
    v = np.asarray(v).ravel()[0].item() if v is not None else 0.0
    total = ctx.outs[0].size
    t = ctx.ot()
    step = kernel_mod.BINDING_LIMIT // 4
    return Lowered([Kernel("remap", {"n": min(step, total - s), "index": [], "mode": "fill", "fill": lit(v, t)},
                           [ctx.window(ctx.y(), s, min(step, total - s))], threads=min(step, total - s), label="ConstantOfShape")
                    for s in range(0, total, step)])


# ---------------------------------------------------------------------------------------------------- reductions
def _reduce_axes_shape(xs: list, axes) -> tuple[list, list, list, list]:
    """(kept dims, kept strides, reduced dims, reduced strides) of a row-major ``xs``, each collapsed."""
    st = contiguous_strides(xs)
    keep = [a for a in range(len(xs)) if a not in axes]
    kd, (ks,) = collapse([xs[a] for a in keep] or [1], [[st[a] for a in keep] or [0]])
    rd, (rs,) = collapse([xs[a] for a in axes] or [1], [[st[a] for a in axes] or [0]])
    return kd, ks, rd, rs


def _reduce_axes(ctx: Ctx, axes) -> tuple[list, list, list, list]:
    """(kept dims, kept strides, reduced dims, reduced strides) of input 0, each collapsed."""
    return _reduce_axes_shape(list(ctx.shape(0)), axes)


def row_params(ctx: Ctx, axes: list) -> dict:
    """Template parameters of a one-workgroup-per-row kernel over ``axes`` of input 0: rows, r (elements per
    row), and the WGSL lines and offsets that map row ``o`` and position ``j`` to elements."""
    xs = list(ctx.shape(0))
    kd, ks, rd, rs = _reduce_axes(ctx, axes)
    r = int(np.prod([xs[a] for a in axes], dtype=np.int64))
    return {"rows": int(np.prod(xs, dtype=np.int64)) // max(r, 1), "r": r, "wg": RED_WG,
            "out_index": decompose(kd, "o", "k"), "base": offset(ks, "k"), "red_index": decompose(rd, "j", "q"),
            "roff": offset(rs, "q")}


_REDUCE = {  # kind: (init, combine(acc, v), finish(acc, count), map(v))
    "sum": ("0", "{a} + {b}", "{a}", "{v}"), "mean": ("0", "{a} + {b}", "{a} / f32({n})", "{v}"),
    "max": ("lo", "MAX({a}, {b})", "{a}", "{v}"), "min": ("hi", "MIN({a}, {b})", "{a}", "{v}"),
    "prod": ("1", "{a} * {b}", "{a}", "{v}"), "l1": ("0", "{a} + {b}", "{a}", "abs({v})"),
    "l2": ("0", "{a} + {b}", "sqrt({a})", "{v} * {v}"), "sumsq": ("0", "{a} + {b}", "{a}", "{v} * {v}"),
    "logsum": ("0", "{a} + {b}", "log({a})", "{v}"), "logsumexp": ("0", "{a} + {b}", "log({a}) + m", "exp({v} - m)"),
}


def _reduce_op(ctx: Ctx, kind: str) -> Lowered:
    """ReduceX: the axes input (opset 13/18) or attribute; none reduces everything unless noop_with_empty_axes."""
    rank = len(ctx.shape(0))
    axes = ctx.consts[1] if ctx.has(1) else ctx.attrs.get("axes")
    if ctx.has(1) and axes is None:
        raise unsupported(ctx.node, "run-time axes")
    if axes is None or np.asarray(axes).size == 0:
        if ctx.attrs.get("noop_with_empty_axes"):
            return Lowered([identity_kernel(ctx)])
        return _reduce(ctx, kind, list(range(rank)))
    return _reduce(ctx, kind, sorted({int(a) % rank for a in np.asarray(axes).ravel()}))


def _reduce(ctx: Ctx, kind: str, red: list) -> Lowered:
    """Reduction ``kind`` of input 0 over axes ``red``, one workgroup per output element."""
    t = ctx.t(0)
    n = ctx.outs[0].size
    if n == 0:
        return Lowered([])
    rp = row_params(ctx, red)
    r = rp["r"]
    init, comb, fin, mp = _REDUCE[kind]
    if t == "f32":
        lo, hi, mx, mn = lit(-np.inf, t), lit(np.inf, t), "bn_max", "bn_min"
    else:
        lo, hi = ("i32(-2147483647 - 1)", "2147483647i") if t == "i32" else ("0u", "4294967295u")
        mx, mn = "max", "min"
    init = {"0": lit(0, t), "1": lit(1, t), "lo": lo, "hi": hi}[init]
    if kind == "mean" and r == 0:
        init = lit(np.nan, t) if t == "f32" else init
    comb = comb.replace("MAX", mx).replace("MIN", mn)
    return Lowered([Kernel("reduce", {**rp, "n": n, "t": t, "init": init, "kind": kind, "comb": comb, "fin": fin.replace("f32({n})", f"f32({r})" if t == "f32" else lit(max(r, 1), t)), "map": mp,
                                      "two_pass": kind == "logsumexp"},
                           [ctx.x(0), ctx.y()], groups=_groups(n), label=ctx.node.op)])


def _groups(n: int) -> tuple:
    return (min(n, 65535), -(-n // 65535), 1)


for _op, _k in (("ReduceSum", "sum"), ("ReduceMean", "mean"), ("ReduceMax", "max"), ("ReduceMin", "min"),
                ("ReduceProd", "prod"), ("ReduceL1", "l1"), ("ReduceL2", "l2"), ("ReduceSumSquare", "sumsq"),
                ("ReduceLogSumExp", "logsumexp"), ("ReduceLogSum", "logsum")):
    lowering("webgpu", _op)(lambda ctx, k=_k: _reduce_op(ctx, k))


def _global_pool(ctx: Ctx, kind: str) -> Lowered:
    return _reduce(ctx, kind, list(range(2, len(ctx.shape(0)))))


lowering("webgpu", "GlobalAveragePool")(lambda ctx: _global_pool(ctx, "mean"))
lowering("webgpu", "GlobalMaxPool")(lambda ctx: _global_pool(ctx, "max"))


def _arg(ctx: Ctx, kind: str) -> Lowered:
    xs = list(ctx.shape(0))
    ax = ctx.attrs["axis"] % len(xs)
    n = ctx.outs[0].size
    if n == 0:
        return Lowered([])
    kd, ks, rd, rs = _reduce_axes(ctx, [ax])
    t = ctx.t(0)
    better = (">" if kind == "max" else "<") + ("=" if ctx.attrs["select_last_index"] else "")
    return Lowered([Kernel("argreduce", {"n": n, "r": xs[ax], "t": t, "better": better,
                                         "out_index": decompose(kd, "o", "k"), "base": offset(ks, "k"),
                                         "stride": rs[0] if rs else 0, "nan_aware": t == "f32"},
                           [ctx.x(0), ctx.y()], threads=n, label=ctx.node.op)])


lowering("webgpu", "ArgMax")(lambda ctx: _arg(ctx, "max"))
lowering("webgpu", "ArgMin")(lambda ctx: _arg(ctx, "min"))


def _softmax(ctx: Ctx, kind: str) -> Lowered:
    """Softmax / LogSoftmax / Hardmax over ``axis`` (opset 13+: one axis; older: the flattened tail), one
    workgroup per row."""
    xs = list(ctx.shape(0))
    ax = ctx.attrs["axis"]
    ax = (ax if ax is not None else (-1 if ctx.opset >= 13 else 1)) % max(len(xs), 1)
    if ctx.opset < 13:
        axes = list(range(ax, len(xs)))
    else:
        axes = [ax]
    if ctx.outs[0].size == 0:
        return Lowered([])
    rp = row_params(ctx, axes)
    return Lowered([Kernel("softmax", {**rp, "kind": kind}, [ctx.x(0), ctx.y()], groups=_groups(rp["rows"]),
                           label=ctx.node.op)])


lowering("webgpu", "Softmax")(lambda ctx: _softmax(ctx, "softmax"))
lowering("webgpu", "LogSoftmax")(lambda ctx: _softmax(ctx, "logsoftmax"))
lowering("webgpu", "Hardmax")(lambda ctx: _softmax(ctx, "hardmax"))


def _cumulative(ctx: Ctx, op: str) -> Lowered:
    xs = list(ctx.shape(0))
    ax = int(np.asarray(ctx.const(1, "axis")).ravel()[0]) % len(xs)
    n = ctx.outs[0].size
    if n == 0:
        return Lowered([])
    kd, ks, rd, rs = _reduce_axes(ctx, [ax])
    lines = int(np.prod(kd, dtype=np.int64))
    return Lowered([Kernel("cumsum", {"n": lines, "r": xs[ax], "t": ctx.t(0), "out_index": decompose(kd, "o", "k"),
                                      "base": offset(ks, "k"), "stride": rs[0], "exclusive": bool(ctx.attrs["exclusive"]),
                                      "reverse": bool(ctx.attrs["reverse"]), "zero": lit(0 if op == "+" else 1, ctx.t(0)),
                                      "op": op},
                           [ctx.x(0), ctx.y()], threads=lines, label=ctx.node.op)])


lowering("webgpu", "CumSum")(lambda ctx: _cumulative(ctx, "+"))
lowering("webgpu", "CumProd")(lambda ctx: _cumulative(ctx, "*"))


@lowering("webgpu", "LpNormalization")
def _lpnorm(ctx: Ctx) -> Lowered:
    """x / ||x||_p along ``axis`` (p = 1 or 2), one invocation per element (it sums its line)."""
    xs = list(ctx.shape(0))
    ax = ctx.attrs["axis"] % len(xs)
    p = ctx.attrs["p"]
    n = ctx.outs[0].size
    if n == 0 or ctx.t(0) != "f32":
        raise unsupported(ctx.node, "empty or non-float input")
    inner = int(np.prod(xs[ax + 1:], dtype=np.int64))
    d = xs[ax]
    term = "abs(v)" if p == 1 else "v * v"
    lines = [f"let base = (i / {inner * d}u) * {inner * d}u + i % {inner}u;", "var acc = 0.0f;",
             f"for (var j = 0u; j < {d}u; j = j + 1u) {{ let v = ld0(base + j * {inner}u); acc = acc + {term}; }}",
             f"let nrm = {'acc' if p == 1 else 'sqrt(acc)'};", "st1(i, select(ld0(i) / nrm, 0.0f, nrm == 0.0f));"]
    return Lowered([Kernel("direct", {"n": n, "lines": lines}, [ctx.x(0), ctx.y()], threads=n, label="LpNormalization")])


# ---------------------------------------------------------------------------------------------------- Resize
def _resize(ctx: Ctx) -> Lowered:
    """Nearest Resize as a probed gather; every other mode as one ``resize_axis`` dispatch per resized axis
    (:func:`bornc.backends.common.resize.axis_passes`), intermediate results in the workspace (ping-pong)."""
    a = ctx.attrs
    if a["mode"] == "nearest" and a["coordinate_transformation_mode"] != "tf_crop_and_resize" and not a.get("antialias"):
        return _probed(ctx)
    out, scales, roi = resize.resize_constants(ctx)
    passes, ws_elems = resize.axis_passes(a, list(ctx.shape(0)), out, scales, roi)
    if not passes:
        return Lowered([identity_kernel(ctx)])
    ks = []
    for n, p in enumerate(passes):
        src = ctx.x(0) if n == 0 else ctx.ws((n - 1) % 2 * ws_elems, p.outer * p.din * p.inner)
        last = n == len(passes) - 1
        size = p.outer * p.dout * p.inner
        dst = ctx.y() if last else ctx.ws(n % 2 * ws_elems, size)
        ops = [src, ctx.table(p.idx, "i32"), ctx.table(p.w, "f32"), dst]
        if p.extrap is not None:
            ops.insert(3, ctx.table(p.extrap, "u32"))
        ks.append(Kernel("resize_axis", {"n": size, "din": p.din, "dout": p.dout, "inner": p.inner, "taps": p.taps,
                                         "extrap": p.extrap is not None, "extrap_value": lit(a["extrapolation_value"], "f32")},
                         ops, threads=size, label="Resize"))
    return Lowered(ks, workspace=(2 * ws_elems * 4) if len(passes) > 1 else 0)


lowering("webgpu", "Resize")(_resize)


# ---------------------------------------------------------------------------------------------------- TopK, scatter
@lowering("webgpu", "TopK")
def _topk(ctx: Ctx) -> Lowered:
    xs = list(ctx.shape(0))
    ax = ctx.attrs["axis"] % len(xs)
    k = int(np.asarray(ctx.const(1, "K")).ravel()[0])
    kd, ks, rd, rs = _reduce_axes(ctx, [ax])
    lines = int(np.prod(kd, dtype=np.int64))
    if lines == 0 or k == 0:
        return Lowered([])
    _, oks, _, ors = _reduce_axes_shape(list(ctx.oshape()), [ax])
    return Lowered([Kernel("topk", {"n": lines, "r": xs[ax], "k": k, "t": ctx.t(0), "largest": bool(ctx.attrs["largest"]),
                                    "out_index": decompose(kd, "o", "k"), "base": offset(ks, "k"), "stride": rs[0],
                                    "obase": offset(oks, "k"), "ostride": ors[0]},
                           [ctx.x(0), ctx.y(0), ctx.y(1)], threads=lines, label="TopK")])


def _scatter(ctx: Ctx, kind: str) -> Lowered:
    """ScatterElements / ScatterND: copy the data, then one invocation applies the updates in order (the spec's
    sequential semantics, reductions included)."""
    n = ctx.outs[0].size
    xs = list(ctx.shape(0))
    ish = list(ctx.shape(1))
    red = ctx.attrs.get("reduction", "none")
    t = ctx.t(0)
    comb = {"none": "{b}", "add": "{a} + {b}", "mul": "{a} * {b}",
            "max": ("bn_max({a}, {b})" if t == "f32" else "max({a}, {b})"),
            "min": ("bn_min({a}, {b})" if t == "f32" else "min({a}, {b})")}[red]
    xst = contiguous_strides(xs)
    if kind == "elements":
        ax = ctx.attrs["axis"] % len(xs)
        m = int(np.prod(ish, dtype=np.int64))
        body = decompose(ish, "u", "c") + ["var q = i32(ld0(u));", f"if (q < 0i) {{ q = q + {xs[ax]}i; }}",
                                          _index_check("q", xs[ax], 3),
                                          f"let dst = {offset([s if k != ax else 0 for k, s in enumerate(xst)])} + u32(q) * {xst[ax]}u;",
                                          "let val = ld1(u);"]
    else:
        kdim = ish[-1]
        m = int(np.prod(ish[:-1], dtype=np.int64))
        inner = int(np.prod(xs[kdim:], dtype=np.int64))
        body = ["var dst0 = 0u;"]
        for j in range(kdim):
            body += [f"var q{j} = i32(ld0(u * {kdim}u + {j}u));", f"if (q{j} < 0i) {{ q{j} = q{j} + {xs[j]}i; }}",
                     _index_check(f"q{j}", xs[j], 3),
                     f"dst0 = dst0 + u32(q{j}) * {xst[j]}u;"]
        m = m * inner
        body = [f"let e = u % {inner}u;", f"let uu = u / {inner}u;"] + [s.replace("(u *", "(uu *") for s in body] + \
               ["let dst = dst0 + e;", "let val = ld1(u);"]
    return Lowered([identity_kernel(ctx),
                    Kernel("scatter", {"m": m, "body": body, "comb": comb.replace("{a}", "ld2(dst)").replace("{b}", "val")},
                           [ctx.x(1), ctx.x(2), ctx.y(), ctx.status()], groups=(1, 1, 1), label=ctx.node.op)] if n else [])


lowering("webgpu", "ScatterElements")(lambda ctx: _scatter(ctx, "elements"))
lowering("webgpu", "ScatterND")(lambda ctx: _scatter(ctx, "nd"))
