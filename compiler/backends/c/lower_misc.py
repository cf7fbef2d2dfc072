"""C lowerings of less common data-movement and geometry ops: AffineGrid, Col2Im, ReverseSequence, Det,
MaxUnpool, TensorScatter and TfIdfVectorizer (semantics as the reference kernels, ``ops/misc.py``, ``ops/tensor.py``,
``ops/nn.py``; run-time indices are bounds-checked and give BORNC_ERR_INDEX)."""
from __future__ import annotations

import numpy as np

from ...ops.registry import lowering
from ..common.tables import tfidf_grams, tree_arrays
from .ctypes_ import literal
from .lowering import CCtx, Lowered, Stage


def _prod(xs) -> int:
    return int(np.prod(list(xs), dtype=np.int64))


@lowering("c", "AffineGrid")
def _affine_grid(ctx: CCtx) -> Lowered:
    size = [int(v) for v in ctx.const(1, "size")]
    sp = size[2:]
    if ctx.oct() not in ("float", "double") or len(sp) not in (2, 3):
        raise ctx.unsupported(f"{len(sp)}-D grid on {ctx.ins[0].dtype}")
    return Lowered([Stage("affine_grid", {"N": size[0], "nd": len(sp), "sizes": sp, "points": _prod(sp),
                                          "align": bool(ctx.attrs["align_corners"]), "T": ctx.oct()})], [0])


@lowering("c", "Col2Im")
def _col2im(ctx: CCtx) -> Lowered:
    img = [int(v) for v in ctx.const(1, "image_shape")]
    blk = [int(v) for v in ctx.const(2, "block_shape")]
    nd = len(img)
    a = ctx.attrs
    dil, st, pads = a["dilations"] or [1] * nd, a["strides"] or [1] * nd, a["pads"] or [0] * (2 * nd)
    n, ck, length = ctx.shape(0)
    taps = _prod(blk)
    outs = [(img[i] + pads[i] + pads[i + nd] - dil[i] * (blk[i] - 1) - 1) // st[i] + 1 for i in range(nd)]
    if _prod(outs) != length:
        raise ctx.unsupported(f"{length} columns for a {outs} block grid")
    dst = []
    for tap in np.ndindex(*blk):
        for pos in np.ndindex(*outs):
            coord = [pos[i] * st[i] + tap[i] * dil[i] - pads[i] for i in range(nd)]
            inside = all(0 <= coord[i] < img[i] for i in range(nd))
            dst.append(int(np.ravel_multi_index(coord, img)) if inside else -1)
    return Lowered([Stage("col2im", {"NC": n * (ck // taps), "taps": taps, "L": length, "isz": _prod(img),
                                     "dst": dst, "T": ctx.oct()})], [0])


@lowering("c", "ReverseSequence")
def _reverse_sequence(ctx: CCtx) -> Lowered:
    xs = ctx.shape(0)
    b, t = ctx.attrs["batch_axis"] % len(xs), ctx.attrs["time_axis"] % len(xs)
    strides = [_prod(xs[k + 1:]) for k in range(len(xs))]
    lo, hi = min(b, t), max(b, t)
    return Lowered([Stage("reverse_sequence", {
        "NB": xs[b], "T_LEN": xs[t], "batch_axis": b, "time_axis": t, "sb": strides[b], "st": strides[t],
        "outer": _prod(xs[:lo]), "so": strides[lo] * xs[lo], "mid": _prod(xs[lo + 1:hi]), "sm": strides[hi] * xs[hi],
        "inner": _prod(xs[hi + 1:])})], [0, 1])


@lowering("c", "Det")
def _det(ctx: CCtx) -> Lowered:
    xs = ctx.shape(0)
    if ctx.oct() not in ("float", "double") or xs[-1] != xs[-2]:
        raise ctx.unsupported(f"Det of {list(xs)} {ctx.ins[0].dtype}")
    d = xs[-1]
    return Lowered([Stage("det", {"M": _prod(xs[:-2]), "D": d, "T": ctx.oct()})], [0], workspace=d * d * 8)


@lowering("c", "MaxUnpool")
def _max_unpool(ctx: CCtx) -> Lowered:
    from ...ops.nn import maxunpool_default_shape
    default, out = maxunpool_default_shape(ctx.attrs, ctx.shape(0)), list(ctx.oshape())
    return Lowered([Stage("max_unpool", {"n_out": ctx.outs[0].size, "n_in": ctx.ins[0].size, "n_def": _prod(default),
                                         "dims": default if default != out else None, "out": out})], [0, 1])


@lowering("c", "TensorScatter")
def _tensor_scatter(ctx: CCtx) -> Lowered:
    ps, us = ctx.shape(0), ctx.shape(1)
    ax = ctx.attrs["axis"] % len(ps)
    if ax == 0 or tuple(us[:ax]) != tuple(ps[:ax]) or tuple(us[ax + 1:]) != tuple(ps[ax + 1:]):
        raise ctx.unsupported(f"update {list(us)} into {list(ps)} along axis {ax}")
    return Lowered([Stage("tensor_scatter", {
        "mode": ctx.attrs["mode"], "axis": ax, "n": ctx.ins[0].size, "outer": _prod(ps[:ax]), "per_batch": _prod(ps[1:ax]),
        "S": us[ax], "MAXLEN": ps[ax], "inner": _prod(ps[ax + 1:]), "has_idx": ctx.has(2), "T": ctx.oct()})],
        [k for k in range(3) if ctx.has(k)])


@lowering("c", "TfIdfVectorizer")
def _tfidf(ctx: CCtx) -> Lowered:
    """Integer tokens only (a string pool stays on the reference); the pool's n-grams become tables."""
    a = ctx.attrs
    g = tfidf_grams(a)
    if isinstance(g, str) or ctx.ins[0].dtype not in ("int32", "int64"):
        raise ctx.unsupported(g if isinstance(g, str) else "string tokens")
    xs = ctx.shape(0)
    return Lowered([Stage("tfidf", {
        **g, "pool": [f"INT64_C({v})" for v in g["pool"]], "K": len(g["off"]),
        "weights": [literal(w, "float32") for w in g["weights"]], "rows": 1 if len(xs) == 1 else xs[0], "L": xs[-1],
        "W": max(g["outs"]) + 1, "min_len": a["min_gram_length"], "max_len": a["max_gram_length"],
        "max_skip": a["max_skip_count"], "mode": a["mode"], "T": ctx.ct(0)})], [0])


@lowering("c", "TreeEnsemble", domain="ai.onnx.ml")
def _tree_ensemble(ctx: CCtx) -> Lowered:
    """ai.onnx.ml TreeEnsemble-5 (post_transform NONE) on float32/float64 features: the checked tables
    (common/tables.py) as static arrays, templates/c/tree_ensemble.c.j2."""
    xs = ctx.shape(0)
    if ctx.oct() not in ("float", "double") or len(xs) != 2:
        raise ctx.unsupported(f"TreeEnsemble on {ctx.ins[0].dtype}[{len(xs)}-D]")
    t = tree_arrays(ctx.attrs, xs[1])
    big = np.finfo(np.float32 if ctx.oct() == "float" else np.float64)
    f64 = lambda v: [literal(x, "float64") for x in v]  # noqa: E731
    return Lowered([Stage("tree_ensemble", {
        **t, "N": xs[0], "F": xs[1], "split": f64(t["split"]), "weight": f64(t["weight"]),
        "members": f64(t["members"]) or ["0.0"],
        "init": {2: literal(float(big.max), "float64"), 3: literal(float(big.min), "float64")}.get(t["agg"], "0.0"),
        "T": ctx.oct()})], [0])
