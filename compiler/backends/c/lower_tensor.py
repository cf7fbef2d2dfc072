"""C lowerings of data movement and reductions.

Most data movement is one *remap*: every output element copies the input element at
``sum over axes of table_axis[index_axis]`` (a negative entry means "the pad value"). Python builds the per-axis
tables (Transpose, Slice, Pad, Expand, Tile, Gather with constant indices, nearest Resize, Upsample); the
``remap.c.j2`` template loops over them. Views (Reshape, Squeeze, Unsqueeze, Flatten, Identity, Dropout) copy
only when the planner did not give input and output the same bytes.
"""
from __future__ import annotations

import numpy as np

from ...pyrt import rt
_nearest, source_coords = rt._nearest, rt.source_coords
from ...ops.registry import lowering
from .ctypes_ import literal
from .lowering import Lowered, LowerCtx, Stage, contiguous_strides


def _copy(ctx: LowerCtx) -> Lowered:
    stages = [Stage("copy", {"bytes": ctx.outs[0].nbytes, "dst": "Y0", "src": "X0"})]
    if ctx.node.op == "Dropout" and len(ctx.node.outputs) > 1 and ctx.node.outputs[1]:
        stages.append(Stage("fill", {"dst": "Y1", "n": ctx.outs[1].size, "value": "1", "T": "uint8_t"}))
    return Lowered(stages, [0])


for _op in ("Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Dropout"):
    lowering("c", _op)(_copy)


@lowering("c", "BitCast")
def _bitcast(ctx: LowerCtx) -> Lowered:
    """BitCast (opset 26): the same bytes read as another type of the same width."""
    if ctx.ins[0].nbytes != ctx.outs[0].nbytes:
        raise ctx.unsupported("BitCast between types of different widths")
    return Lowered([Stage("copy", {"bytes": ctx.outs[0].nbytes, "dst": "Y0", "src": "X0"})], [0])


def remap_stage(ctx: LowerCtx, tables: list[list[int]], pad_value=None, base: int = 0) -> Stage:
    """Output element (i0, i1, ...) = X0[base + tables[0][i0] + tables[1][i1] + ...], or the pad value where
    any entry is negative. Size-1 output axes fold into ``base``."""
    out_shape = ctx.oshape()
    assert len(tables) == len(out_shape), (ctx.node.name, len(tables), out_shape)
    padded = any(v < 0 for t in tables for v in t)
    dims, tabs = [], []
    for d, t in zip(out_shape, tables):
        if d == 1 and not padded:
            base += int(t[0])
            continue
        dims.append(d)
        tabs.append([int(v) for v in t])
    if not dims:
        dims, tabs = [1], [[0]]
    ostr = contiguous_strides(dims)
    return Stage("remap", {"dims": dims, "tables": tabs, "ostr": ostr, "padded": padded, "base": base,
                           "pad": literal(pad_value if pad_value is not None else 0, ctx.outs[0].dtype), "T": ctx.oct()})


def _transpose_tables(ctx):
    xs = ctx.shape(0)
    perm = ctx.attrs["perm"] or list(range(len(xs)))[::-1]
    st = contiguous_strides(xs)
    return [[i * st[p] for i in range(xs[p])] for p in perm]


@lowering("c", "Transpose")
def _transpose(ctx: LowerCtx) -> Lowered:
    return Lowered([remap_stage(ctx, _transpose_tables(ctx))], [0])


@lowering("c", "Slice")
def _slice(ctx: LowerCtx) -> Lowered:
    xs = ctx.shape(0)
    starts, ends = ctx.const(1, "starts"), ctx.const(2, "ends")
    axes = ctx.const(3, "axes") if ctx.has(3) else np.arange(len(starts))
    steps = ctx.const(4, "steps") if ctx.has(4) else np.ones(len(starts), np.int64)
    st = contiguous_strides(xs)
    sl = [slice(None)] * len(xs)
    for a, s, e, p in zip(axes, starts, ends, steps):
        sl[int(a) % len(xs)] = slice(int(s), int(e), int(p)) if int(e) < 2 ** 62 and int(e) > -(2 ** 62) else \
            slice(int(s), None if int(p) > 0 else None, int(p))
    tables = [list(np.arange(d)[sl[k]] * st[k]) for k, d in enumerate(xs)]
    return Lowered([remap_stage(ctx, tables)], [0])


@lowering("c", "Pad")
def _pad(ctx: LowerCtx) -> Lowered:
    xs = ctx.shape(0)
    pads = ctx.const(1, "pads")
    rank = len(xs)
    axes = [int(a) % rank for a in ctx.const(3, "axes")] if ctx.has(3) else list(range(rank))
    begin, end = [0] * rank, [0] * rank
    for k, a in enumerate(axes):
        begin[a], end[a] = int(pads[k]), int(pads[k + len(axes)])
    value = float(ctx.const(2, "value").ravel()[0]) if ctx.has(2) and ctx.const(2, "value").size else 0.0
    mode = ctx.attrs["mode"]
    st = contiguous_strides(xs)
    tables = []
    for a, d in enumerate(xs):
        out_len = d + begin[a] + end[a]
        src = np.arange(out_len) - begin[a]
        if mode == "constant":
            idx = np.where((src >= 0) & (src < d), src, -1)
        elif mode == "edge":
            idx = np.clip(src, 0, d - 1)
        elif mode == "reflect":
            period = 2 * (d - 1) if d > 1 else 1
            m = np.mod(src, period)
            idx = np.where(m < d, m, period - m) if d > 1 else np.zeros_like(src)
        else:   # wrap
            idx = np.mod(src, d)
        tables.append([int(i) * st[a] if i >= 0 else -1 for i in idx])
    return Lowered([remap_stage(ctx, tables, value)], [0])


def _broadcast_tables(xs, out):
    pad = (1,) * (len(out) - len(xs)) + tuple(xs)
    st = contiguous_strides(pad)
    return [[(i % p) * s for i in range(o)] for p, o, s in zip(pad, out, st)]


lowering("c", "Expand")(lambda ctx: Lowered([remap_stage(ctx, _broadcast_tables(ctx.shape(0), ctx.oshape()))], [0]))
lowering("c", "Tile")(lambda ctx: Lowered([remap_stage(ctx, _broadcast_tables(ctx.shape(0), ctx.oshape()))], [0]))


@lowering("c", "Gather")
def _gather(ctx: LowerCtx) -> Lowered:
    """Constant indices: a remap (a scalar index becomes a base offset); run-time indices: a bounds-checked loop."""
    xs = ctx.shape(0)
    ax = ctx.attrs["axis"] % len(xs)
    if not ctx.has(1) or ctx.consts[1] is None:
        outer = int(np.prod(xs[:ax], dtype=np.int64))
        inner = int(np.prod(xs[ax + 1:], dtype=np.int64))
        return Lowered([Stage("gather", {"outer": outer, "D": xs[ax], "inner": inner, "n_idx": ctx.ins[1].size,
                                         "T": ctx.oct(), "IT": ctx.ct(1)})], [0, 1])
    ind = np.asarray(ctx.consts[1]).astype(np.int64)
    ind = np.where(ind < 0, ind + xs[ax], ind)
    if ind.ndim > 1:
        raise ctx.unsupported("multi-dimensional constant indices in C")
    st = contiguous_strides(xs)
    before = [[i * st[k] for i in range(xs[k])] for k in range(ax)]
    after = [[i * st[k] for i in range(xs[k])] for k in range(ax + 1, len(xs))]
    if ind.ndim == 0:
        return Lowered([remap_stage(ctx, before + after, base=int(ind) * st[ax])], [0])
    return Lowered([remap_stage(ctx, before + [[int(i) * st[ax] for i in ind]] + after)], [0])


@lowering("c", "Concat")
def _concat(ctx: LowerCtx) -> Lowered:
    out = ctx.oshape()
    ax = ctx.attrs["axis"] % len(out)
    outer = int(np.prod(out[:ax], dtype=np.int64))
    inner = int(np.prod(out[ax + 1:], dtype=np.int64))
    parts, off = [], 0
    for k in range(len(ctx.node.inputs)):
        d = ctx.shape(k)[ax]
        parts.append({"src": f"X{k}", "d": d, "off": off})
        off += d
    return Lowered([Stage("concat", {"outer": outer, "inner": inner, "D": out[ax], "parts": parts, "T": ctx.oct()})],
                   list(range(len(ctx.node.inputs))))


@lowering("c", "Split")
def _split(ctx: LowerCtx) -> Lowered:
    xs = ctx.shape(0)
    ax = ctx.attrs["axis"] % len(xs)
    outer = int(np.prod(xs[:ax], dtype=np.int64))
    inner = int(np.prod(xs[ax + 1:], dtype=np.int64))
    parts, off = [], 0
    for k, o in enumerate(ctx.node.outputs):
        d = ctx.outs[k].shape[ax]
        if o:
            parts.append({"dst": f"Y{k}", "d": d, "off": off})
        off += d
    return Lowered([Stage("split", {"outer": outer, "inner": inner, "D": xs[ax], "parts": parts, "T": ctx.oct()})], [0])


@lowering("c", "ConstantOfShape")
def _constantofshape(ctx: LowerCtx) -> Lowered:
    v = ctx.attrs["value"]
    value = 0 if v is None else np.asarray(v).ravel()[0]
    return Lowered([Stage("fill", {"dst": "Y0", "n": ctx.outs[0].size, "value": literal(value, ctx.outs[0].dtype), "T": ctx.oct()})], [])


def _resize_tables(ctx: LowerCtx, attrs: dict, scales) -> list[list[int]]:
    xs, out = ctx.shape(0), ctx.oshape()
    st = contiguous_strides(xs)
    tables = []
    for a, (d, o) in enumerate(zip(xs, out)):
        if d == o and scales[a] == 1.0:
            tables.append([i * st[a] for i in range(d)])
            continue
        xs_ = source_coords(attrs["coordinate_transformation_mode"], o, d, float(scales[a]))
        idx = np.clip(_nearest(xs_, attrs["nearest_mode"]), 0, d - 1).astype(np.int64)
        tables.append([int(i) * st[a] for i in idx])
    return tables


def resize_passes(attrs: dict, xs: list, out: list, scales, roi) -> list[tuple]:
    """Separable Resize: (axis, interpolation matrix [out, in], extrapolation flags per output or None) for every
    axis that changes, from the reference's ``source_coords`` / ``interp_matrix`` (shared by the C and WebGPU
    backends)."""
    rank = len(xs)
    mode = attrs["coordinate_transformation_mode"]
    passes = []
    for a in range(rank):
        if xs[a] == out[a] and scales[a] == 1.0 and mode != "tf_crop_and_resize":
            continue
        d, o = xs[a], out[a]
        r = (float(roi[a]), float(roi[a + rank])) if roi is not None and len(roi) == 2 * rank else (0.0, 1.0)
        coords = rt.source_coords(mode, o, d, float(scales[a]), r)
        if attrs["mode"] == "nearest":
            m = np.zeros((o, d))
            m[np.arange(o), np.clip(rt._nearest(coords, attrs["nearest_mode"]), 0, d - 1).astype(np.int64)] = 1.0
        else:
            m = rt.interp_matrix(coords, d, attrs, float(scales[a]))
        extrap = ((coords < 0) | (coords > d - 1)).astype(np.uint8) if mode == "tf_crop_and_resize" else None
        passes.append((a, m, extrap))
    return passes


def _resize_general(ctx: LowerCtx, attrs: dict, out: list, scales: list, roi) -> Lowered:
    """Linear / cubic (and nearest with tf_crop_and_resize) Resize as one pass per resized axis. Each pass
    applies the axis's interpolation weights (:func:`resize_passes`, computed at compile time) in double;
    intermediate results live in the workspace."""
    xs = list(ctx.shape(0))
    passes = resize_passes(attrs, xs, out, scales, roi)
    if not passes:
        return _copy(ctx)
    cur = list(xs)
    sizes = []
    for a, m, _ in passes:
        cur[a] = out[a]
        sizes.append(int(np.prod(cur, dtype=np.int64)))
    ws_elems = max(sizes[:-1], default=0)
    stages = []
    cur = list(xs)
    for n, (a, m, ex) in enumerate(passes):
        d, o = cur[a], out[a]
        taps = max(int((m != 0).sum(axis=1).max()) if m.size else 1, 1)
        idx, w = [], []
        for row in m:
            nz = np.flatnonzero(row)[:taps]
            idx += [int(k) for k in nz] + [0] * (taps - len(nz))
            w += [literal(float(row[k]), "float64") for k in nz] + ["0.0"] * (taps - len(nz))
        extrap = [int(b) for b in ex] if ex is not None else []
        src = "X0" if n == 0 else f"((const double *)WS + {(n - 1) % 2 * ws_elems}u)"
        src_t = ctx.ct(0) if n == 0 else "double"
        last = n == len(passes) - 1
        dst = "Y0" if last else f"((double *)WS + {n % 2 * ws_elems}u)"
        dst_t = ctx.oct() if last else "double"
        outer = int(np.prod(cur[:a], dtype=np.int64))
        inner = int(np.prod(cur[a + 1:], dtype=np.int64))
        stages.append(Stage("resize_axis", {"idx": idx, "w": w, "taps": taps, "din": d, "dout": o, "outer": outer,
                                            "inner": inner, "src": src, "src_t": src_t, "dst": dst, "dst_t": dst_t,
                                            "extrap": extrap,
                                            "extrap_value": literal(float(attrs["extrapolation_value"]), "float64")}))
        cur[a] = o
    return Lowered(stages, [0], workspace=(2 * ws_elems * 8) if len(passes) > 1 else 0)


@lowering("c", "Resize")
def _resize(ctx: LowerCtx) -> Lowered:
    a = ctx.attrs
    xs, out = list(ctx.shape(0)), list(ctx.oshape())
    roi = ctx.consts[1] if ctx.has(1) else None
    scales = ctx.consts[2] if ctx.has(2) else None
    sizes = ctx.consts[3] if ctx.has(3) else None
    if any(ctx.has(k) and ctx.consts[k] is None for k in (1, 2, 3)):
        raise ctx.unsupported("run-time roi, scales or sizes in C")
    plan_out, full_scales, full_roi = rt.resize_plan(a, xs, roi, scales, sizes)
    if list(plan_out) != out:
        raise ctx.unsupported("output shape differs from the plan")
    if a["mode"] == "nearest" and a["coordinate_transformation_mode"] != "tf_crop_and_resize" and a["axes"] is None:
        return Lowered([remap_stage(ctx, _resize_tables(ctx, a, full_scales))], [0])
    if a["antialias"] and a["mode"] == "nearest":
        raise ctx.unsupported("antialiased nearest Resize in C")
    return _resize_general(ctx, a, out, full_scales, full_roi)


@lowering("c", "Upsample")
def _upsample(ctx: LowerCtx) -> Lowered:
    if ctx.attrs["mode"] != "nearest":
        raise ctx.unsupported("linear Upsample in C")
    scales = [float(s) for s in ctx.const(1, "scales")]
    attrs = {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    return Lowered([remap_stage(ctx, _resize_tables(ctx, attrs, scales))], [0])


def _reduce(ctx: LowerCtx, kind: str) -> Lowered:
    xs = ctx.shape(0)
    rank = len(xs)
    axes = ctx.consts[1] if ctx.has(1) else None
    if ctx.has(1) and axes is None:
        raise ctx.unsupported("run-time axes in C")
    if axes is None or np.asarray(axes).size == 0:
        if ctx.attrs["noop_with_empty_axes"]:
            return _copy(ctx)
        red = list(range(rank))
    else:
        red = sorted({int(a) % rank for a in np.asarray(axes).ravel()})
    red_eff = [a for a in red if xs[a] != 1]
    keep_eff = [a for a in range(rank) if a not in red and xs[a] != 1]
    if red_eff and keep_eff and not _contiguous(red_eff, keep_eff):
        raise ctx.unsupported("reduction over non-adjacent axes in C")
    lo = min(red_eff) if red_eff else 0
    hi = max(red_eff) + 1 if red_eff else 0
    outer = int(np.prod([xs[a] for a in range(rank) if a < lo], dtype=np.int64))
    r = int(np.prod([xs[a] for a in range(lo, hi)], dtype=np.int64)) if red_eff else 1
    inner = int(np.prod([xs[a] for a in range(rank) if a >= hi], dtype=np.int64))
    if r == 0 or 0 in [xs[a] for a in red]:     # reduction over an empty set: the identity of the operation
        is_f = ctx.outs[0].dtype in ("float32", "float64")
        if ctx.outs[0].dtype == "bool":
            ident_bool = {"max": 0, "min": 1, "prod": 1}.get(kind, 0)
            return Lowered([Stage("fill", {"dst": "Y0", "n": ctx.outs[0].size, "value": str(ident_bool), "T": ctx.oct()})], [0])
        ident = {"sum": 0, "sumsq": 0, "l1": 0, "l2": 0, "prod": 1, "mean": float("nan") if is_f else 0,
                 "max": -np.inf if is_f else np.iinfo(np.dtype(ctx.outs[0].dtype)).min,
                 "min": np.inf if is_f else np.iinfo(np.dtype(ctx.outs[0].dtype)).max,
                 "logsum": -np.inf, "logsumexp": -np.inf}[kind]
        return Lowered([Stage("fill", {"dst": "Y0", "n": ctx.outs[0].size, "value": literal(ident, ctx.outs[0].dtype), "T": ctx.oct()})], [0])
    return Lowered([Stage("reduce", {"kind": kind, "outer": outer, "R": r, "inner": inner, "T": ctx.oct(),
                                     "is_float": ctx.outs[0].dtype in ("float32", "float64")})], [0])


def _contiguous(red, keep) -> bool:
    return all(not (min(red) < k < max(red)) for k in keep)


for _op, _k in (("ReduceSum", "sum"), ("ReduceMean", "mean"), ("ReduceMax", "max"), ("ReduceMin", "min"),
                ("ReduceProd", "prod"), ("ReduceL1", "l1"), ("ReduceL2", "l2"), ("ReduceSumSquare", "sumsq"),
                ("ReduceLogSumExp", "logsumexp"), ("ReduceLogSum", "logsum")):
    lowering("c", _op)(lambda ctx, k=_k: _reduce(ctx, k))


def _arg(ctx: LowerCtx, kind: str) -> Lowered:
    xs = ctx.shape(0)
    ax = ctx.attrs["axis"] % len(xs)
    return Lowered([Stage("argreduce", {"kind": kind, "outer": int(np.prod(xs[:ax], dtype=np.int64)), "R": xs[ax],
                                        "inner": int(np.prod(xs[ax + 1:], dtype=np.int64)), "T": ctx.ct(0),
                                        "last": bool(ctx.attrs["select_last_index"])})], [0])


lowering("c", "ArgMax")(lambda ctx: _arg(ctx, "max"))
lowering("c", "ArgMin")(lambda ctx: _arg(ctx, "min"))


@lowering("c", "GatherElements", props=("half",))
def _gather_elements(ctx: LowerCtx) -> Lowered:
    xs, ishape = ctx.shape(0), ctx.shape(1)
    ax = ctx.attrs["axis"] % len(xs)
    xst, ost = contiguous_strides(xs), contiguous_strides(ishape)
    dims = list(ishape) or [1]
    out_index = " + ".join(f"i{k} * {s}" for k, s in enumerate(ost)) or "0"
    src_index = " + ".join(f"i{k} * {s}" for k, s in enumerate(xst) if k != ax) or "0"
    return Lowered([Stage("gather_elements", {"dims": dims, "out_index": out_index, "src_index": src_index, "D": xs[ax],
                                              "axis_stride": xst[ax]})], [0, 1])


@lowering("c", "Trilu")
def _trilu(ctx: LowerCtx) -> Lowered:
    xs = ctx.shape(0)
    k = int(np.asarray(ctx.const(1, "k")).ravel()[0]) if ctx.has(1) else 0
    rows, cols = (xs[-2], xs[-1]) if len(xs) >= 2 else (1, xs[-1])
    return Lowered([Stage("trilu", {"B": int(np.prod(xs[:-2], dtype=np.int64)) if len(xs) > 2 else 1, "R": rows, "C": cols,
                                    "k": k, "upper": bool(ctx.attrs["upper"]), "T": ctx.oct()})], [0])


@lowering("c", "CumSum")
@lowering("c", "CumProd")
def _cumsum(ctx: LowerCtx) -> Lowered:
    xs = ctx.shape(0)
    if ctx.ins[0].dtype in ("float16", "bfloat16"):
        raise ctx.unsupported(f"on {ctx.ins[0].dtype}")
    ax = int(np.asarray(ctx.const(1, "axis")).ravel()[0]) % len(xs)
    return Lowered([Stage("cumsum", {"outer": int(np.prod(xs[:ax], dtype=np.int64)), "D": xs[ax],
                                     "inner": int(np.prod(xs[ax + 1:], dtype=np.int64)), "T": ctx.oct(),
                                     "exclusive": bool(ctx.attrs["exclusive"]), "reverse": bool(ctx.attrs["reverse"]),
                                     "op": "*" if ctx.node.op == "CumProd" else "+"})], [0])


def _axis_split(shape, ax):
    return int(np.prod(shape[:ax], dtype=np.int64)), shape[ax], int(np.prod(shape[ax + 1:], dtype=np.int64))


@lowering("c", "Hardmax")
def _hardmax(ctx: LowerCtx) -> Lowered:
    xs = ctx.shape(0)
    ax = ctx.attrs["axis"]
    ax = (ax if ax is not None else (-1 if ctx.opset >= 13 else 1)) % len(xs)
    outer, d, inner = _axis_split(xs, ax)
    if ctx.opset < 13:
        d, inner = int(np.prod(xs[ax:], dtype=np.int64)), 1
    return Lowered([Stage("hardmax", {"outer": outer, "D": d, "inner": inner, "T": ctx.oct()})], [0])


@lowering("c", "TopK")
def _topk(ctx: LowerCtx) -> Lowered:
    xs = ctx.shape(0)
    k = int(np.asarray(ctx.const(1, "K")).ravel()[0])
    ax = ctx.attrs["axis"] % len(xs)
    outer, d, inner = _axis_split(xs, ax)
    return Lowered([Stage("topk", {"outer": outer, "D": d, "inner": inner, "K": k, "T": ctx.ct(0),
                                   "largest": bool(ctx.attrs["largest"]), "has_vals": bool(ctx.node.outputs[0]),
                                   "has_idx": len(ctx.node.outputs) > 1 and bool(ctx.node.outputs[1])})], [0])


@lowering("c", "OneHot")
def _onehot(ctx: LowerCtx) -> Lowered:
    depth = int(np.asarray(ctx.const(1, "depth")).ravel()[0])
    out = ctx.oshape()
    ax = ctx.attrs["axis"] % len(out)
    outer, _, inner = _axis_split(out, ax)
    return Lowered([Stage("onehot", {"outer": outer, "D": depth, "inner": inner, "T": ctx.oct()})], [0, 2])


@lowering("c", "ScatterElements")
@lowering("c", "Scatter")
def _scatter_elements(ctx: LowerCtx) -> Lowered:
    xs, ids = ctx.shape(0), ctx.shape(1)
    ax = ctx.attrs["axis"] % len(xs)
    xst, ist = contiguous_strides(xs), contiguous_strides(ids)
    red = ctx.attrs.get("reduction", "none")
    dims = list(ids) or [1]
    return Lowered([Stage("scatter_elements", {
        "dims": dims, "bytes": ctx.outs[0].nbytes, "D": xs[ax], "axis_stride": xst[ax], "T": ctx.oct(),
        "idx_index": " + ".join(f"i{k} * {s}u" for k, s in enumerate(ist)) or "0",
        "dst_index": " + ".join(f"i{k} * {s}u" for k, s in enumerate(xst) if k != ax) or "0",
        "op": "" if red == "none" else red})], [0, 1, 2])


@lowering("c", "ScatterND")
def _scatter_nd(ctx: LowerCtx) -> Lowered:
    xs, ids = ctx.shape(0), ctx.shape(1)
    k = ids[-1]
    xst = contiguous_strides(xs)
    red = ctx.attrs.get("reduction", "none")
    return Lowered([Stage("scatter_nd", {
        "n": int(np.prod(ids[:-1], dtype=np.int64)), "k": k, "dims": list(xs[:k]), "strides": xst[:k],
        "slice": int(np.prod(xs[k:], dtype=np.int64)), "bytes": ctx.outs[0].nbytes, "T": ctx.oct(),
        "op": "" if red == "none" else red})], [0, 1, 2])

