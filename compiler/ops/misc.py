"""Operators of newer opsets and special domains: SwiGLU (28), TensorScatter (24), BitCast (26),
CausalConvWithState (27), NonMaxSuppression (10-11), Col2Im (18), GridSample (16-22), AffineGrid (20).

Source: the ONNX spec text of each operator.
"""
from __future__ import annotations

import numpy as np

from ..ir.types import np_dtype, onnx_elem_to_name
from .elementwise import sigmoid
from .registry import TensorType, register, same_as_input


@register("SwiGLU", attrs={"alpha": 1.0}, infer=same_as_input, versions="28")
def ref_swiglu(ctx, a, b):
    a64 = a.astype(np.float64)
    return (a64 * sigmoid(ctx.attrs["alpha"] * a64) * b).astype(a.dtype)


@register("TensorScatter", attrs={"axis": -2, "mode": "linear"}, infer=same_as_input, versions="24")
def ref_tensorscatter(ctx, past, update, write_indices=None):
    ax = ctx.attrs["axis"] % past.ndim
    out = past.copy()
    max_len, seq = past.shape[ax], update.shape[ax]
    for prefix in np.ndindex(past.shape[:ax]):
        start = 0 if write_indices is None else int(write_indices[prefix[0]])
        for s in range(seq):
            dst = start + s
            if ctx.attrs["mode"] == "circular":
                dst %= max_len
            out[prefix + (dst,)] = update[prefix + (s,)]
    return out


@register("BitCast", attrs={"to": 1}, infer=lambda c: [TensorType(onnx_elem_to_name(c.attrs["to"]), c.shape(0))], versions="26")
def ref_bitcast(ctx, x):
    dt = np_dtype(onnx_elem_to_name(ctx.attrs["to"]))
    if dt.itemsize != x.dtype.itemsize:
        raise ValueError(f"BitCast from {x.dtype} to {dt} changes the bit width")
    return np.ascontiguousarray(x).view(dt).reshape(x.shape)


@register("CausalConvWithState", attrs={"activation": "none"}, versions="27")
def ref_causalconvwithstate(ctx, x, w, b=None, past=None):
    n, c, length = x.shape
    k = w.shape[-1]
    past = np.zeros((n, c, k - 1), dtype=x.dtype) if past is None else past
    full = np.concatenate([past, x], axis=2).astype(np.float64)
    y = np.zeros((n, c, length))
    for t in range(k):
        y += full[:, :, t:t + length] * w[:, 0, t].astype(np.float64)[None, :, None]
    if b is not None:
        y += b.astype(np.float64)[None, :, None]
    if ctx.attrs["activation"] in ("silu", "swish"):
        y = y * sigmoid(y)
    present = full[:, :, full.shape[2] - (k - 1):] if k > 1 else np.zeros((n, c, 0))
    return y.astype(x.dtype), present.astype(x.dtype)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
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


@register("NonMaxSuppression", attrs={"center_point_box": 0}, dynamic=True, versions="10-24")
def ref_nonmaxsuppression(ctx, boxes, scores, max_out=None, iou_th=None, score_th=None):
    """Greedy NMS per batch and class: highest score first, drop boxes whose IoU exceeds the threshold."""
    limit = int(np.asarray(max_out).ravel()[0]) if max_out is not None and max_out.size else 0
    iou_t = float(np.asarray(iou_th).ravel()[0]) if iou_th is not None and iou_th.size else 0.0
    sc_t = float(np.asarray(score_th).ravel()[0]) if score_th is not None and score_th.size else None
    b = boxes.astype(np.float64)
    if ctx.attrs["center_point_box"]:
        xc, yc, w, h = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
        b = np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=-1)
    out = []
    for n in range(scores.shape[0]):
        for c in range(scores.shape[1]):
            s = scores[n, c].astype(np.float64)
            order = [i for i in np.argsort(-s, kind="stable") if sc_t is None or s[i] > sc_t]
            keep: list[int] = []
            for i in order:
                if len(keep) >= limit:
                    break
                if keep and np.any(_iou(b[n, i], b[n, keep]) > iou_t):
                    continue
                keep.append(int(i))
            out.extend([n, c, i] for i in keep)
    return np.array(out, dtype=np.int64).reshape(-1, 3)


@register("Col2Im", attrs={"dilations": None, "pads": None, "strides": None}, value_inputs=(1, 2), versions="18-24")
def ref_col2im(ctx, x, image_shape, block_shape):
    img = [int(v) for v in image_shape]
    blk = [int(v) for v in block_shape]
    nd = len(img)
    dil = ctx.attrs["dilations"] or [1] * nd
    st = ctx.attrs["strides"] or [1] * nd
    pads = ctx.attrs["pads"] or [0] * (2 * nd)
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


# ---------------------------------------------------------------------------------------------------- GridSample
def _unnormalize(g: np.ndarray, size: int, align: bool) -> np.ndarray:
    return (g + 1) / 2 * (size - 1) if align else ((g + 1) * size - 1) / 2


def _reflect(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    span = hi - lo
    if span <= 0:
        return np.zeros_like(x) + lo
    d = np.abs(x - lo) % (2 * span)
    flips = np.floor(np.abs(x - lo) / span).astype(np.int64)
    return np.where(flips % 2 == 0, lo + d % span, hi - (d % span))


def _cubic_w(t: np.ndarray, a: float = -0.75) -> np.ndarray:
    t = np.abs(t)
    return np.where(t <= 1, ((a + 2) * t - (a + 3)) * t * t + 1, np.where(t < 2, ((a * t - 5 * a) * t + 8 * a) * t - 4 * a, 0.0))


@register("GridSample", attrs={"align_corners": 0, "mode": "linear", "padding_mode": "zeros"}, versions="16-22")
def ref_gridsample(ctx, x, grid):
    """Sample x (N, C, *D) at grid (N, *D_out, nd) normalized coordinates (last entry = width), with linear,
    nearest or cubic (a = -0.75) interpolation and zeros/border/reflection padding."""
    a = ctx.attrs
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

    def gather(idx: list) -> tuple[np.ndarray, np.ndarray]:
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


@register("AffineGrid", attrs={"align_corners": 0}, value_inputs=(1,), versions="20-24")
def ref_affinegrid(ctx, theta, size):
    dims = [int(v) for v in size]
    n, sp = dims[0], dims[2:]
    align = bool(ctx.attrs["align_corners"])
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
