"""C lowerings of data movement and reductions.

Most data movement is one *remap*: every output element copies the input element at
``sum over axes of table_axis[index_axis]`` (a negative entry means "the pad value"). Python builds the per-axis
tables (Transpose, Slice, Pad, Expand, Tile, Gather with constant indices, nearest Resize, Upsample); the
``remap.c.j2`` template loops over them. Views (Reshape, Squeeze, Unsqueeze, Flatten, Identity, Dropout) copy
only when the planner did not give input and output the same bytes.
"""
from __future__ import annotations

import numpy as np

from ...ops.registry import lowering
from ..common import resize
from .ctypes_ import literal
from ..common.lowering import contiguous_strides
from .lowering import Lowered, CCtx, Stage


def _copy(ctx: CCtx) -> Lowered:
    stages = [Stage("copy", {"bytes": ctx.outs[0].nbytes, "dst": "Y0", "src": "X0"})]
    if ctx.node.op == "Dropout" and len(ctx.node.outputs) > 1 and ctx.node.outputs[1]:
        stages.append(Stage("fill", {"dst": "Y1", "n": ctx.outs[1].size, "value": "1", "T": "uint8_t"}))
    return Lowered(stages, [0])


for _op in ("Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Dropout"):
    lowering("c", _op)(_copy)


@lowering("c", "BitCast")
def _bitcast(ctx: CCtx) -> Lowered:
    """BitCast (opset 26): the same bytes read as another type of the same width."""
    if ctx.ins[0].nbytes != ctx.outs[0].nbytes:
        raise ctx.unsupported("BitCast between types of different widths")
    return Lowered([Stage("copy", {"bytes": ctx.outs[0].nbytes, "dst": "Y0", "src": "X0"})], [0])


def remap_stage(ctx: CCtx, tables: list[list[int]], pad_value=None, base: int = 0) -> Stage:
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
def _transpose(ctx: CCtx) -> Lowered:
    return Lowered([remap_stage(ctx, _transpose_tables(ctx))], [0])


@lowering("c", "Slice")
def _slice(ctx: CCtx) -> Lowered:
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
def _pad(ctx: CCtx) -> Lowered:
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
def _gather(ctx: CCtx) -> Lowered:
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
    if ind.ndim > 1:            # N-D constant indices: the bounds-checked loop over the flattened indices
        return Lowered([Stage("gather", {"outer": int(np.prod(xs[:ax], dtype=np.int64)), "D": xs[ax],
                                         "inner": int(np.prod(xs[ax + 1:], dtype=np.int64)), "n_idx": ind.size,
                                         "T": ctx.oct(), "IT": ctx.ct(1)})], [0, 1])
    st = contiguous_strides(xs)
    before = [[i * st[k] for i in range(xs[k])] for k in range(ax)]
    after = [[i * st[k] for i in range(xs[k])] for k in range(ax + 1, len(xs))]
    if ind.ndim == 0:
        return Lowered([remap_stage(ctx, before + after, base=int(ind) * st[ax])], [0])
    return Lowered([remap_stage(ctx, before + [[int(i) * st[ax] for i in ind]] + after)], [0])


@lowering("c", "GatherND")
def _gather_nd(ctx: CCtx) -> Lowered:
    """GatherND (ONNX spec, GatherND-13, batch_dims): a bounds-checked copy of one slice per index tuple."""
    xs, ids = ctx.shape(0), ctx.shape(1)
    b, k = ctx.attrs["batch_dims"], ids[-1]
    if k == 0:
        raise ctx.unsupported("empty index tuples")
    nb = int(np.prod(xs[:b], dtype=np.int64))
    return Lowered([Stage("gather_nd", {"NB": nb, "NI": int(np.prod(ids[b:-1], dtype=np.int64)), "K": k,
                                        "dims": list(xs[b:b + k]), "inner": int(np.prod(xs[b + k:], dtype=np.int64)),
                                        "XB": int(np.prod(xs[b:], dtype=np.int64)), "T": ctx.oct(), "IT": ctx.ct(1)})],
                   [0, 1])


@lowering("c", "Concat")
def _concat(ctx: CCtx) -> Lowered:
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
def _split(ctx: CCtx) -> Lowered:
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
def _constantofshape(ctx: CCtx) -> Lowered:
    v = ctx.attrs["value"]
    value = 0 if v is None else np.asarray(v).ravel()[0]
    return Lowered([Stage("fill", {"dst": "Y0", "n": ctx.outs[0].size, "value": literal(value, ctx.outs[0].dtype), "T": ctx.oct()})], [])


def _resize_general(ctx: CCtx, passes: list, ws_elems: int) -> Lowered:
    """Linear / cubic (and nearest with tf_crop_and_resize) Resize as one pass per resized axis
    (:func:`bornc.backends.common.resize.axis_passes`), each applying its interpolation weights in double;
    intermediate results live in the workspace (two halves, ping-pong)."""
    if not passes:
        return _copy(ctx)
    stages = []
    for n, p in enumerate(passes):
        last = n == len(passes) - 1
        src = "X0" if n == 0 else f"((const double *)WS + {(n - 1) % 2 * ws_elems}u)"
        dst = "Y0" if last else f"((double *)WS + {n % 2 * ws_elems}u)"
        stages.append(Stage("resize_axis", {
            "idx": [int(k) for k in p.idx.ravel()], "w": [literal(float(v), "float64") if v else "0.0" for v in p.w.ravel()],
            "taps": p.taps, "din": p.din, "dout": p.dout, "outer": p.outer, "inner": p.inner,
            "src": src, "src_t": ctx.ct(0) if n == 0 else "double", "dst": dst, "dst_t": ctx.oct() if last else "double",
            "extrap": [int(b) for b in p.extrap] if p.extrap is not None else [],
            "extrap_value": literal(float(ctx.attrs["extrapolation_value"]), "float64")}))
    return Lowered(stages, [0], workspace=(2 * ws_elems * 8) if len(passes) > 1 else 0)


@lowering("c", "Resize")
def _resize(ctx: CCtx) -> Lowered:
    a = ctx.attrs
    xs = list(ctx.shape(0))
    out, scales, roi = resize.resize_constants(ctx)
    if a["mode"] == "nearest" and a["coordinate_transformation_mode"] != "tf_crop_and_resize" and a["axes"] is None:
        return Lowered([remap_stage(ctx, resize.nearest_offsets(a, xs, out, scales))], [0])
    if a["antialias"] and a["mode"] == "nearest":
        raise ctx.unsupported("antialiased nearest Resize in C")
    return _resize_general(ctx, *resize.axis_passes(a, xs, out, scales, roi))


@lowering("c", "Upsample")
def _upsample(ctx: CCtx) -> Lowered:
    if ctx.attrs["mode"] != "nearest":
        raise ctx.unsupported("linear Upsample in C")
    scales = [float(s) for s in ctx.const(1, "scales")]
    attrs = {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    return Lowered([remap_stage(ctx, resize.nearest_offsets(attrs, list(ctx.shape(0)), list(ctx.oshape()), scales))], [0])


def _reduce(ctx: CCtx, kind: str) -> Lowered:
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
    strided = bool(red_eff and keep_eff and not _contiguous(red_eff, keep_eff))
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
    params = {"kind": kind, "outer": outer, "R": r, "inner": inner, "T": ctx.oct(), "roff": None,
              "is_float": ctx.outs[0].dtype in ("float32", "float64")}
    if strided:                 # non-adjacent reduced axes: offset tables of the kept and the reduced positions
        st = contiguous_strides(xs)
        params.update(R=int(np.prod([xs[a] for a in red_eff], dtype=np.int64)),
                      ooff=_offsets([xs[a] for a in keep_eff], [st[a] for a in keep_eff]),
                      roff=_offsets([xs[a] for a in red_eff], [st[a] for a in red_eff]), big=ctx.ins[0].size)
    return Lowered([Stage("reduce", params)], [0])


def _offsets(dims: list[int], strides: list[int]) -> list[int]:
    """Element offsets of every position of ``dims`` (row-major order) under ``strides``."""
    off = np.zeros(1, np.int64)
    for d, s in zip(dims, strides):
        off = (off[:, None] + np.arange(d, dtype=np.int64)[None, :] * s).ravel()
    return [int(v) for v in off]


def _contiguous(red, keep) -> bool:
    return all(not (min(red) < k < max(red)) for k in keep)


for _op, _k in (("ReduceSum", "sum"), ("ReduceMean", "mean"), ("ReduceMax", "max"), ("ReduceMin", "min"),
                ("ReduceProd", "prod"), ("ReduceL1", "l1"), ("ReduceL2", "l2"), ("ReduceSumSquare", "sumsq"),
                ("ReduceLogSumExp", "logsumexp"), ("ReduceLogSum", "logsum")):
    lowering("c", _op)(lambda ctx, k=_k: _reduce(ctx, k))


def _arg(ctx: CCtx, kind: str) -> Lowered:
    xs = ctx.shape(0)
    ax = ctx.attrs["axis"] % len(xs)
    return Lowered([Stage("argreduce", {"kind": kind, "outer": int(np.prod(xs[:ax], dtype=np.int64)), "R": xs[ax],
                                        "inner": int(np.prod(xs[ax + 1:], dtype=np.int64)), "T": ctx.ct(0),
                                        "last": bool(ctx.attrs["select_last_index"])})], [0])


lowering("c", "ArgMax")(lambda ctx: _arg(ctx, "max"))
lowering("c", "ArgMin")(lambda ctx: _arg(ctx, "min"))


@lowering("c", "GatherElements", props=("half",))
def _gather_elements(ctx: CCtx) -> Lowered:
    xs, ishape = ctx.shape(0), ctx.shape(1)
    ax = ctx.attrs["axis"] % len(xs)
    xst, ost = contiguous_strides(xs), contiguous_strides(ishape)
    dims = list(ishape) or [1]
    out_index = " + ".join(f"i{k} * {s}" for k, s in enumerate(ost)) or "0"
    src_index = " + ".join(f"i{k} * {s}" for k, s in enumerate(xst) if k != ax) or "0"
    return Lowered([Stage("gather_elements", {"dims": dims, "out_index": out_index, "src_index": src_index, "D": xs[ax],
                                              "axis_stride": xst[ax]})], [0, 1])


@lowering("c", "Trilu")
def _trilu(ctx: CCtx) -> Lowered:
    xs = ctx.shape(0)
    k = int(np.asarray(ctx.const(1, "k")).ravel()[0]) if ctx.has(1) else 0
    rows, cols = (xs[-2], xs[-1]) if len(xs) >= 2 else (1, xs[-1])
    return Lowered([Stage("trilu", {"B": int(np.prod(xs[:-2], dtype=np.int64)) if len(xs) > 2 else 1, "R": rows, "C": cols,
                                    "k": k, "upper": bool(ctx.attrs["upper"]), "T": ctx.oct()})], [0])


@lowering("c", "CumSum")
@lowering("c", "CumProd")
def _cumsum(ctx: CCtx) -> Lowered:
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
def _hardmax(ctx: CCtx) -> Lowered:
    xs = ctx.shape(0)
    ax = ctx.attrs["axis"]
    ax = (ax if ax is not None else (-1 if ctx.opset >= 13 else 1)) % len(xs)
    outer, d, inner = _axis_split(xs, ax)
    if ctx.opset < 13:
        d, inner = int(np.prod(xs[ax:], dtype=np.int64)), 1
    return Lowered([Stage("hardmax", {"outer": outer, "D": d, "inner": inner, "T": ctx.oct()})], [0])


@lowering("c", "TopK")
def _topk(ctx: CCtx) -> Lowered:
    xs = ctx.shape(0)
    k = int(np.asarray(ctx.const(1, "K")).ravel()[0])
    ax = ctx.attrs["axis"] % len(xs)
    outer, d, inner = _axis_split(xs, ax)
    return Lowered([Stage("topk", {"outer": outer, "D": d, "inner": inner, "K": k, "T": ctx.ct(0),
                                   "largest": bool(ctx.attrs["largest"]), "has_vals": bool(ctx.node.outputs[0]),
                                   "has_idx": len(ctx.node.outputs) > 1 and bool(ctx.node.outputs[1])})], [0])


@lowering("c", "OneHot")
def _onehot(ctx: CCtx) -> Lowered:
    depth = int(np.asarray(ctx.const(1, "depth")).ravel()[0])
    out = ctx.oshape()
    ax = ctx.attrs["axis"] % len(out)
    outer, _, inner = _axis_split(out, ax)
    return Lowered([Stage("onehot", {"outer": outer, "D": depth, "inner": inner, "T": ctx.oct()})], [0, 2])


@lowering("c", "ScatterElements")
@lowering("c", "Scatter")
def _scatter_elements(ctx: CCtx) -> Lowered:
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
def _scatter_nd(ctx: CCtx) -> Lowered:
    xs, ids = ctx.shape(0), ctx.shape(1)
    k = ids[-1]
    xst = contiguous_strides(xs)
    red = ctx.attrs.get("reduction", "none")
    return Lowered([Stage("scatter_nd", {
        "n": int(np.prod(ids[:-1], dtype=np.int64)), "k": k, "dims": list(xs[:k]), "strides": xst[:k],
        "slice": int(np.prod(xs[k:], dtype=np.int64)), "bytes": ctx.outs[0].nbytes, "T": ctx.oct(),
        "op": "" if red == "none" else red})], [0, 1, 2])

